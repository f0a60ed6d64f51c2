//! Exec into running containers: output, exit codes, env/user/workdir/stdin,
//! streaming, and the error cases.

mod container_support;

use container_support::*;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use zlayer_runtime::*;

fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_commands() {
    let env = TestEnv::new();
    let id = unique_id("exec");
    let mut spec = sh("exec", "exec sleep 300");
    spec.env.insert("FROM_SPEC".into(), "spec".into());
    spec.command.workdir = Some("/tmp".into());
    env.rt.create_from_spec(&id, &spec).await.unwrap();

    // Exec before start is a clear error.
    let err = env.rt.exec(&id, &cmd(&["true"])).await.unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
    env.rt.start_container(&id).await.unwrap();

    let (code, out, err) = env
        .rt
        .exec(&id, &cmd(&["echo", "hello", "exec"]))
        .await
        .unwrap();
    assert_eq!((code, out.as_str(), err.as_str()), (0, "hello exec\n", ""));

    let (code, _, _) = env
        .rt
        .exec(&id, &cmd(&["sh", "-c", "exit 42"]))
        .await
        .unwrap();
    assert_eq!(code, 42);

    // The container's env and workdir by default; same namespaces (pid 1 is sleep).
    let (code, out, _) = env
        .rt
        .exec(
            &id,
            &cmd(&[
                "sh",
                "-c",
                "echo $FROM_SPEC; pwd; cat /proc/1/cmdline | tr '\\0' ' '; echo; id -u",
            ]),
        )
        .await
        .unwrap();
    assert_eq!(code, 0);
    assert_eq!(out, "spec\n/tmp\nsleep 300 \n0\n");

    // Execs are confined like the init: seccomp filter, no_new_privs.
    let (code, out, _) = env
        .rt
        .exec(
            &id,
            &cmd(&["grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status"]),
        )
        .await
        .unwrap();
    assert_eq!(code, 0);
    assert_eq!(out, "NoNewPrivs:\t1\nSeccomp:\t2\n");

    // Overrides: env, user, workdir, stdin.
    let opts = ExecOptions {
        command: cmd(&[
            "sh",
            "-c",
            "echo $FROM_SPEC $EXTRA; id -u; id -g; pwd; cat; echo err >&2",
        ]),
        env: BTreeMap::from([
            ("EXTRA".to_string(), "extra".to_string()),
            ("FROM_SPEC".to_string(), "over".to_string()),
        ]),
        user: Some("nobody".into()),
        working_dir: Some("/etc".into()),
        stdin: Some(b"from stdin\n".to_vec()),
        tty: false,
    };
    let out = env.rt.exec_with_opts(&id, &opts).await.unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout, "over extra\n65534\n65534\n/etc\nfrom stdin\n");
    assert_eq!(out.stderr, "err\n");

    // Streaming.
    let stream = env
        .rt
        .exec_stream(
            &id,
            &ExecOptions::command(cmd(&["sh", "-c", "echo a; sleep 0.2; echo b; exit 3"])),
        )
        .await
        .unwrap();
    let ExecStream { output, exit_code } = stream;
    let chunks: Vec<LogChunk> = output.map(|c| c.unwrap()).collect().await;
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(&c.data).into_owned())
        .collect();
    assert_eq!(text, "a\nb\n");
    assert!(chunks.len() >= 2, "output arrived in one piece: {chunks:?}");
    assert_eq!(exit_code.await.unwrap(), 3);

    // Errors.
    let err = env.rt.exec(&id, &[]).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::InvalidSpec(m) if m.contains("empty")),
        "{err}"
    );
    let err = env.rt.exec(&id, &cmd(&[""])).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::InvalidSpec(m) if m.contains("empty")),
        "{err}"
    );
    // A missing command is a typed failure: docker's 127.
    let err = env
        .rt
        .exec(&id, &cmd(&["no-such-binary"]))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 127, "{err}");
    assert!(err.to_string().contains("not found"), "{err}");
    let bad_user = ExecOptions {
        user: Some("ghost".into()),
        ..ExecOptions::command(cmd(&["true"]))
    };
    assert!(env.rt.exec_with_opts(&id, &bad_user).await.is_err());

    env.rt.kill_container(&id, None).await.unwrap();
    env.rt.wait_container(&id).await.unwrap();
    let err = env.rt.exec(&id, &cmd(&["true"])).await.unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
    let unknown = unique_id("noexec");
    assert!(env
        .rt
        .exec(&unknown, &cmd(&["true"]))
        .await
        .unwrap_err()
        .is_not_found());

    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
}
