//! Sandbox runtime: lifecycle, state, logs, exec, stats, ports, survival of
//! the agent (real processes under Landlock + seccomp).

mod sandbox_support;

use futures_util::StreamExt;
use sandbox_support::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use zlayer_runtime::{
    ContainerId, ContainerState, ExecOptions, LogStream, LogsStreamOptions, Runtime, RuntimeError,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_initialization_creates_dirs() {
    let (rt, tmp) = runtime(false);
    let root = data_root(tmp.path());
    for d in [root.join("containers"), root.join("volumes")] {
        assert!(d.is_dir(), "{} missing", d.display());
    }
    assert_eq!(rt.isolations(), [zlayer_spec::Isolation::Sandbox]);
    // Bad locations are an error, not a panic.
    assert!(zlayer_image::ImageStore::open(std::path::Path::new("/proc/zlayer")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_echo() {
    let (rt, _tmp) = ready_runtime(false).await;
    let id = cid("lifecycle");
    let s = spec_with_endpoint("lifecycle", &["/bin/echo", "hello from sandbox"]);
    rt.create_from_spec(&id, &s).await.unwrap();
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Pending
    );
    assert_eq!(rt.get_container_pid(&id).await.unwrap(), None);
    let dir = cdir(&rt, &id);
    assert!(dir.join("sandbox.policy").is_file());
    assert!(dir.join("launch.json").is_file());
    assert!(dir.join("rootfs/bin/echo").exists());
    rt.start_container(&id).await.unwrap();
    assert!(dir.join("monitor.json").is_file());
    let st = wait_state(&rt, &id, Duration::from_secs(10), |s| s.is_terminal()).await;
    assert_eq!(st, ContainerState::Exited { code: 0 });
    let logs = rt.container_logs(&id, 100).await.unwrap();
    assert!(
        logs.iter()
            .any(|e| e.message == "hello from sandbox" && e.stream == LogStream::Stdout),
        "{logs:?}"
    );
    let listed: Vec<_> = rt
        .list_containers()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.record.container)
        .collect();
    assert_eq!(listed, vec![id.clone()]);
    rt.remove_container(&id).await.unwrap();
    assert!(!dir.exists());
    assert!(rt.container_state(&id).await.unwrap_err().is_not_found());
    assert!(rt.list_containers().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sends_sigterm_then_sigkill() {
    let (rt, _tmp) = ready_runtime(false).await;
    let id = cid("stop");
    rt.create_from_spec(&id, &spec("stop", &["/bin/sleep", "300"]))
        .await
        .unwrap();
    rt.start_container(&id).await.unwrap();
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Running
    );
    let pid = rt
        .get_container_pid(&id)
        .await
        .unwrap()
        .expect("pid while running");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let t = Instant::now();
    rt.stop_container(&id, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "SIGTERM should end sleep at once"
    );
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Exited { code: 143 }
    );
    assert_eq!(rt.get_container_pid(&id).await.unwrap(), None);
    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap(); // idempotent

    // A workload ignoring SIGTERM is killed after the timeout.
    let id2 = cid("stubborn");
    rt.create_from_spec(
        &id2,
        &spec(
            "stubborn",
            &["/bin/sh", "-c", "trap '' TERM; echo ready; sleep 300"],
        ),
    )
    .await
    .unwrap();
    rt.start_container(&id2).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    rt.stop_container(&id2, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        rt.container_state(&id2).await.unwrap(),
        ContainerState::Exited { code: 137 }
    );
    // Removing unmounts the rootfs (the temp dir could not go otherwise).
    rt.remove_container(&id).await.unwrap();
    rt.remove_container(&id2).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_exit_code_and_restart_appends_logs() {
    let (rt, _tmp) = ready_runtime(false).await;
    let id = cid("code");
    rt.create_from_spec(&id, &spec("code", &["/bin/sh", "-c", "echo run; exit 7"]))
        .await
        .unwrap();
    rt.start_container(&id).await.unwrap();
    assert_eq!(rt.wait_container(&id).await.unwrap(), 7);
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Exited { code: 7 }
    );
    // Starting an exited container runs it again in place.
    rt.start_container(&id).await.unwrap();
    assert_eq!(rt.wait_container(&id).await.unwrap(), 7);
    let runs = rt
        .get_logs(&id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.message == "run")
        .count();
    assert_eq!(runs, 2);
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_ports_and_localhost_ip() {
    let (rt, _tmp) = ready_runtime(false).await;
    let mut ports = HashSet::new();
    for i in 0..3 {
        let id = ContainerId::new("port", i + 1);
        rt.create_from_spec(
            &id,
            &spec_with_endpoint(
                "port",
                &["/bin/sh", "-c", "echo port=$PORT http=$ZLAYER_PORT_HTTP"],
            ),
        )
        .await
        .unwrap();
        let p = port_of(&rt, &id).await;
        assert!(p > 1024, "{p}");
        assert!(ports.insert(p), "duplicate port {p}");
        let maps = rt.port_mappings_container(&id).await.unwrap();
        assert_eq!(maps.len(), 1);
        assert_eq!(
            (
                maps[0].host_ip.as_str(),
                maps[0].host_port,
                maps[0].container_port
            ),
            ("127.0.0.1", p, 8080)
        );
        assert_eq!(
            rt.get_container_ip(&id).await.unwrap(),
            Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        );
        if i == 0 {
            rt.start_container(&id).await.unwrap();
            rt.wait_container(&id).await.unwrap();
            let logs = rt.get_logs(&id).await.unwrap();
            assert!(
                logs.iter()
                    .any(|e| e.message == format!("port={p} http={p}")),
                "{logs:?}"
            );
        }
    }
    assert!(rt
        .get_container_ip(&cid("nope"))
        .await
        .unwrap_err()
        .is_not_found());
    for i in 0..3 {
        rt.remove_container(&ContainerId::new("port", i + 1))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_under_the_same_policy() {
    let (rt, _tmp) = ready_runtime(false).await;
    let id = cid("exec");
    let mut s = spec("exec", &["/bin/sleep", "60"]);
    s.env.insert("FROM_SPEC".into(), "yes".into());
    rt.create_from_spec(&id, &s).await.unwrap();
    // Not running yet.
    assert!(rt.exec(&id, &["echo".into(), "x".into()]).await.is_err());
    rt.start_container(&id).await.unwrap();
    let (code, out, _) = rt
        .exec(&id, &["echo".into(), "exec test".into()])
        .await
        .unwrap();
    assert_eq!((code, out.as_str()), (0, "exec test\n"));
    let mut opts = ExecOptions::command([
        "sh",
        "-c",
        "echo $FROM_SPEC $EXTRA; pwd; echo oops >&2; cat /etc/shadow; exit 3",
    ]);
    opts.env.insert("EXTRA".into(), "more".into());
    opts.working_dir = Some("/bin".into());
    let out = rt.exec_with_opts(&id, &opts).await.unwrap();
    assert_eq!(out.exit_code, 3);
    assert!(out.stdout.starts_with("yes more\n"), "{out:?}");
    assert!(out.stdout.contains("/rootfs/bin"), "{out:?}");
    assert!(
        out.stderr.contains("oops") && out.stderr.contains("Permission denied"),
        "{out:?}"
    );
    let mut opts = ExecOptions::command(["cat"]);
    opts.stdin = Some(b"fed through stdin".to_vec());
    assert_eq!(
        rt.exec_with_opts(&id, &opts).await.unwrap().stdout,
        "fed through stdin"
    );
    // The exec'd process belongs to the sandbox: stats see it.
    let mut long = rt
        .exec_stream(
            &id,
            &ExecOptions::command(["sh", "-c", "echo started; sleep 5"]),
        )
        .await
        .unwrap();
    let first = long.output.next().await.unwrap().unwrap();
    assert_eq!(first.data, b"started\n");
    assert!(rt.get_container_stats(&id).await.unwrap().pids_current >= 2);
    rt.stop_container(&id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        long.exit_code.await.unwrap(),
        137,
        "exec processes end with the container"
    );

    let err = rt.exec(&id, &[]).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::InvalidSpec(m) if m.contains("empty")),
        "{err}"
    );
    let err = rt
        .exec(&cid("missing"), &["true".into()])
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_come_from_the_process_tree() {
    let (rt, _tmp) = ready_runtime(false).await;
    let id = cid("stats");
    rt.create_from_spec(
        &id,
        &spec(
            "stats",
            &["/bin/sh", "-c", "sleep 60 & sleep 60; echo never"],
        ),
    )
    .await
    .unwrap();
    let err = rt.get_container_stats(&id).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::WrongState { state, .. } if state == "created"),
        "{err}"
    );
    rt.start_container(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = rt.get_container_stats(&id).await.unwrap();
    assert!(st.memory_used_bytes > 0);
    assert!(st.pids_current >= 3, "sh and two sleeps: {st:?}");
    assert!(st.memory_limit_bytes > 0 && st.online_cpus > 0 && st.cpu_system_ns > 0);
    let mut stream = rt.stats_stream(&id).await.unwrap();
    assert!(stream.next().await.unwrap().unwrap().memory_used_bytes > 0);
    rt.kill_container(&id, None).await.unwrap();
    assert_eq!(rt.wait_container(&id).await.unwrap(), 137);
    assert!(rt.get_container_stats(&id).await.is_err());
    // The background sleep died with the container.
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_watchdog_kills_the_tree() {
    let (rt, _tmp) = ready_runtime(false).await;
    let id = cid("memhog");
    // `tail` buffers /dev/zero (no newline ever) until memory runs out.
    let mut s = spec(
        "memhog",
        &["/bin/sh", "-c", "tail /dev/zero; echo survived"],
    );
    s.resources.memory = Some(zlayer_spec::ByteSize::parse("32Mi").unwrap());
    rt.create_from_spec(&id, &s).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(20), rt.wait_container(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, 137);
    match rt.container_state(&id).await.unwrap() {
        ContainerState::Failed { reason, .. } => {
            assert!(reason.contains("memory limit 32Mi exceeded"), "{reason}")
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let logs = rt.get_logs(&id).await.unwrap();
    assert!(!logs.iter().any(|e| e.message == "survived"), "{logs:?}");
    assert!(logs
        .iter()
        .any(|e| e.stream == LogStream::System && e.message.contains("memory limit")));
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_for_unknown_and_bad_input() {
    let (rt, _tmp) = ready_runtime(false).await;
    let ghost = cid("ghost");
    rt.remove_container(&ghost).await.unwrap();
    assert!(rt.container_state(&ghost).await.unwrap_err().is_not_found());
    assert!(rt.start_container(&ghost).await.unwrap_err().is_not_found());
    assert!(rt.wait_container(&ghost).await.unwrap_err().is_not_found());
    assert!(rt
        .logs_stream(&ghost, LogsStreamOptions::default())
        .await
        .err()
        .is_some_and(|e| e.is_not_found()));

    let mut s = spec("noimg", &["/bin/true"]);
    s.image.name = "localhost:1/does-not-exist:1".into();
    let err = rt.create_from_spec(&cid("noimg"), &s).await.unwrap_err();
    assert!(matches!(&err, RuntimeError::PullFailed { .. }), "{err}");
    assert!(
        !cdir(&rt, &cid("noimg")).exists(),
        "a failed create leaves nothing"
    );

    // A missing command is docker's 127 at start; the container stays.
    rt.create_from_spec(&cid("nobin"), &spec("nobin", &["/bin/nonexistent"]))
        .await
        .unwrap();
    let err = rt.start_container(&cid("nobin")).await.unwrap_err();
    assert_eq!(err.exit_code(), 127, "{err}");
    assert!(err.to_string().contains("not found"), "{err}");
    rt.remove_container(&cid("nobin")).await.unwrap();
    assert!(!cdir(&rt, &cid("nobin")).exists());

    let err = rt
        .create_from_spec(&ContainerId::new("../evil", 1), &spec("x", &["/bin/true"]))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidSpec(_)), "{err}");

    let err = rt
        .kill_container(&cid("ghost"), Some("NOPE"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown signal"), "{err}");
    assert!(rt.pull_image("localhost:1/does-not-exist:1").await.is_err());
    rt.pull_image(IMAGE).await.unwrap();
    assert!(rt
        .list_images()
        .await
        .unwrap()
        .iter()
        .any(|i| i.reference == IMAGE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_start_leaves_it_created() {
    let (rt, _tmp) = ready_runtime(false).await;
    let id = cid("badstart");
    rt.create_from_spec(&id, &spec("badstart", &["/bin/true"]))
        .await
        .unwrap();
    // The binary vanishes between create and start.
    std::fs::remove_file(cdir(&rt, &id).join("rootfs/bin/true")).unwrap();
    let err = rt.start_container(&id).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::Invoke { failure: zlayer_runtime::InvokeFailure::CommandNotFound, message } if message.contains("executing")),
        "{err}"
    );
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Pending
    );
    let logs = rt.get_logs(&id).await.unwrap();
    assert!(
        logs.iter()
            .any(|e| e.stream == LogStream::System && e.message.contains("start failed")),
        "{logs:?}"
    );
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_concurrent_containers() {
    let (rt, _tmp) = ready_runtime(false).await;
    let rt = std::sync::Arc::new(rt);
    let mut tasks = Vec::new();
    for i in 0..5 {
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            let id = ContainerId::new(format!("conc-{i}"), 1);
            rt.create_from_spec(
                &id,
                &spec_with_endpoint("conc", &["/bin/sh", "-c", &format!("echo n={i}")]),
            )
            .await?;
            rt.start_container(&id).await?;
            let code = rt.wait_container(&id).await?;
            let logs = rt.get_logs(&id).await?;
            rt.remove_container(&id).await?;
            Ok::<_, RuntimeError>((code, logs.iter().any(|e| e.message == format!("n={i}"))))
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), (0, true));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_dir_is_replaced_and_a_live_container_is_not() {
    let (rt, _tmp) = ready_runtime(false).await;
    let id = cid("stale");
    let dir = cdir(&rt, &id);
    // The remains of a create that crashed before its record.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("leftover.txt"), "stale").unwrap();
    rt.create_from_spec(&id, &spec("stale", &["/bin/sleep", "60"]))
        .await
        .unwrap();
    assert!(!dir.join("leftover.txt").exists());
    assert!(dir.join("launch.json").exists());
    rt.start_container(&id).await.unwrap();
    let old = rt.get_container_pid(&id).await.unwrap().unwrap();
    // The id is taken: a second create fails and the first runs on.
    let err = rt
        .create_from_spec(&id, &spec("stale", &["/bin/true"]))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::NameInUse { .. }), "{err}");
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Running
    );
    assert_eq!(rt.get_container_pid(&id).await.unwrap(), Some(old));
    rt.remove_container(&id).await.unwrap();
    let gone = zlayer_sys::procfs::stat(old as i32).is_none_or(|s| s.state == 'Z');
    assert!(gone, "old process {old} still runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tail_streams_and_follow_from_before_start() {
    let (rt, _tmp) = ready_runtime(false).await;
    let id = cid("logs");
    rt.create_from_spec(
        &id,
        &spec(
            "logs",
            &[
                "/bin/sh",
                "-c",
                "for i in 1 2 3 4 5; do echo out$i; sleep 0.05; done; echo err >&2; printf partial",
            ],
        ),
    )
    .await
    .unwrap();
    let follow = rt
        .logs_stream(
            &id,
            LogsStreamOptions {
                follow: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    rt.start_container(&id).await.unwrap();
    let all = tokio::time::timeout(
        Duration::from_secs(10),
        zlayer_runtime::collect_logs(follow),
    )
    .await
    .unwrap()
    .unwrap();
    // Order holds within a stream (stdout and stderr are separate pipes).
    let out: Vec<_> = all
        .iter()
        .filter(|e| e.stream == LogStream::Stdout)
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(out, ["out1", "out2", "out3", "out4", "out5", "partial"]);
    let err: Vec<_> = all
        .iter()
        .filter(|e| e.stream == LogStream::Stderr)
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(err, ["err"]);
    let tail = rt.container_logs(&id, 2).await.unwrap();
    assert_eq!(tail.len(), 2);
    let only_err = rt
        .logs_stream(
            &id,
            LogsStreamOptions {
                stdout: false,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        zlayer_runtime::collect_logs(only_err).await.unwrap().len(),
        1
    );
    assert_eq!(rt.get_logs(&id).await.unwrap().len(), 7);
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_unpause_kill_and_stdin() {
    let (rt, _tmp) = ready_runtime(false).await;
    let id = cid("pause");
    rt.create_from_spec(&id, &spec("pause", &["/bin/sleep", "60"]))
        .await
        .unwrap();
    assert!(rt.pause_container(&id).await.is_err(), "not running yet");
    rt.start_container(&id).await.unwrap();
    let pid = rt.get_container_pid(&id).await.unwrap().unwrap() as i32;
    rt.pause_container(&id).await.unwrap();
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Paused
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(zlayer_sys::procfs::stat(pid).unwrap().state, 'T');
    rt.unpause_container(&id).await.unwrap();
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Running
    );
    rt.kill_container(&id, Some("TERM")).await.unwrap();
    assert_eq!(rt.wait_container(&id).await.unwrap(), 143);
    assert!(
        rt.kill_container(&id, None).await.is_err(),
        "not running any more"
    );

    let id = cid("stdin");
    rt.create_from_spec(&id, &spec("stdin", &["/bin/cat"]))
        .await
        .unwrap();
    rt.start_container(&id).await.unwrap();
    rt.write_stdin(&id, b"line one\n").await.unwrap();
    rt.write_stdin(&id, b"line two\n").await.unwrap();
    rt.close_stdin(&id).await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), rt.wait_container(&id))
            .await
            .unwrap()
            .unwrap(),
        0
    );
    let msgs: Vec<_> = rt
        .get_logs(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(msgs, ["line one", "line two"]);
    rt.remove_container(&cid("pause")).await.unwrap();
    rt.remove_container(&id).await.unwrap();
}

/// Not a test on its own: the "agent" process of `killed_agent_loses_nothing`
/// (runs only when that test starts it with ZLAYER_SANDBOX_TEST_AGENT set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helper_agent_process() {
    let Ok(root) = std::env::var("ZLAYER_SANDBOX_TEST_AGENT") else {
        return;
    };
    let rt = runtime_at(&data_root(std::path::Path::new(&root)), false);
    let src = busybox_rootfs(std::path::Path::new(&root));
    register(&rt, IMAGE, &src);
    let id = cid("survivor");
    let s = spec(
        "survivor",
        &["/bin/sh", "-c", "echo before; sleep 1; echo after; exit 5"],
    );
    rt.create_from_spec(&id, &s).await.unwrap();
    rt.start_container(&id).await.unwrap();
    std::fs::write(std::path::Path::new(&root).join("started"), b"").unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_agent_loses_nothing() {
    // Dropped last, after the runtime (see TestDir: its trash thread).
    let tmp = TestDir::create("zl-sbx");
    let mut agent = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_agent_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ZLAYER_SANDBOX_TEST_AGENT", tmp.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = tmp.path().join("started");
    let t = Instant::now();
    while !marker.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "agent never started the container"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();
    // A new agent re-adopts the container from disk.
    let rt = runtime_at(&data_root(tmp.path()), false);
    let id = cid("survivor");
    assert_eq!(rt.list_containers().await.unwrap()[0].record.container, id);
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Running
    );
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), rt.wait_container(&id))
            .await
            .unwrap()
            .unwrap(),
        5
    );
    let msgs: Vec<_> = rt
        .get_logs(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(msgs, ["before", "after"]);
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Exited { code: 5 }
    );
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tty_label_gives_a_terminal() {
    let (rt, _tmp) = ready_runtime(false).await;
    let id = cid("tty");
    let mut s = spec(
        "tty",
        &["/bin/sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; printf 'prompt> '; read x; echo got=$x; cat; echo after-eof"],
    );
    s.labels
        .insert(zlayer_sandbox::TTY_LABEL.into(), "true".into());
    rt.create_from_spec(&id, &s).await.unwrap();
    rt.start_container(&id).await.unwrap();
    // The prompt has no newline; it is logged anyway.
    let t = Instant::now();
    while !rt
        .get_logs(&id)
        .await
        .unwrap()
        .iter()
        .any(|e| e.message.contains("prompt> "))
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{:?}",
            rt.get_logs(&id).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rt.write_stdin(&id, b"typed\n").await.unwrap();
    let t = Instant::now();
    while !rt
        .get_logs(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect::<String>()
        .contains("got=typed\r\n")
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{:?}",
            rt.get_logs(&id).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rt.close_stdin(&id).await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(10), rt.wait_container(&id))
        .await
        .unwrap()
        .unwrap();
    let msgs: Vec<_> = rt
        .get_logs(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(code, 0, "{msgs:?}");
    // Terminal output is logged raw (CR LF line ends included).
    let all = msgs.concat();
    assert!(all.contains("is-a-tty\r\n"), "{msgs:?}");
    assert!(all.contains("after-eof"), "^D ends cat: {msgs:?}");
    rt.remove_container(&id).await.unwrap();
}
