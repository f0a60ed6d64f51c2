//! Lifecycle of real containers (busybox fixture): create, start, wait,
//! logs, stop, kill, remove, exit codes, stale state, unknown ids,
//! concurrency, start failures and delete-on-exit.

mod container_support;

use container_support::*;
use std::time::{Duration, Instant};
use zlayer_runtime::*;
use zlayer_spec::ServiceSpec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_echo() {
    let env = TestEnv::new();
    let id = unique_id("echo");
    let spec = sh("echo", "echo hello from zlayer; echo to stderr >&2");
    env.rt.create_from_spec(&id, &spec).await.unwrap();
    assert_eq!(
        env.rt.container_state(&id).await.unwrap(),
        ContainerState::Pending
    );
    assert!(listed(&env.rt, &id).await);
    assert_eq!(env.rt.get_container_pid(&id).await.unwrap(), None);
    env.rt.start_container(&id).await.unwrap();
    assert_eq!(env.rt.wait_container(&id).await.unwrap(), 0);
    assert_eq!(
        env.rt.container_state(&id).await.unwrap(),
        ContainerState::Exited { code: 0 }
    );
    // Waiting again gives the same answer from disk.
    assert_eq!(env.rt.wait_container(&id).await.unwrap(), 0);
    let logs = env.rt.get_logs(&id).await.unwrap();
    assert!(
        logs.iter()
            .any(|e| e.stream == LogStream::Stdout && e.message == "hello from zlayer"),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|e| e.stream == LogStream::Stderr && e.message == "to stderr"),
        "{logs:?}"
    );
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
    assert!(env
        .rt
        .container_state(&id)
        .await
        .unwrap_err()
        .is_not_found());
    assert!(!listed(&env.rt, &id).await);
    // Removing twice is fine.
    env.rt.remove_container(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_propagate() {
    let env = TestEnv::new();
    let seven = unique_id("seven");
    env.rt
        .create_from_spec(&seven, &sh("seven", "exit 7"))
        .await
        .unwrap();
    env.rt.start_container(&seven).await.unwrap();
    assert_eq!(env.rt.wait_container(&seven).await.unwrap(), 7);
    assert_eq!(
        env.rt.container_state(&seven).await.unwrap(),
        ContainerState::Exited { code: 7 }
    );

    // Killed by SIGKILL: 128 + 9.
    let killed = unique_id("killed");
    env.rt
        .create_from_spec(&killed, &sh("killed", "sleep 300"))
        .await
        .unwrap();
    env.rt.start_container(&killed).await.unwrap();
    assert_eq!(
        env.rt.container_state(&killed).await.unwrap(),
        ContainerState::Running
    );
    assert!(env.rt.get_container_pid(&killed).await.unwrap().is_some());
    env.rt.kill_container(&killed, None).await.unwrap();
    assert_eq!(env.rt.wait_container(&killed).await.unwrap(), 137);
    assert_eq!(
        env.rt.container_state(&killed).await.unwrap(),
        ContainerState::Exited { code: 137 }
    );
    // Signalling an exited container is an error; a bad signal is InvalidSpec.
    assert!(env.rt.kill_container(&killed, Some("TERM")).await.is_err());
    let err = env
        .rt
        .kill_container(&seven, Some("SIGBOGUS"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::InvalidSpec(ref m) if m.contains("unknown signal")),
        "{err}"
    );

    for id in [&seven, &killed] {
        env.rt.remove_container(id).await.unwrap();
        assert_nothing_left(&env, id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_uses_sigterm_then_sigkill() {
    let env = TestEnv::new();
    // A workload that honours SIGTERM stops well within the timeout.
    let polite = unique_id("polite");
    env.rt
        .create_from_spec(
            &polite,
            &sh(
                "polite",
                "trap 'echo got TERM; exit 3' TERM; sleep 300 & wait",
            ),
        )
        .await
        .unwrap();
    env.rt.start_container(&polite).await.unwrap();
    // Let the shell install its trap.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    env.rt
        .stop_container(&polite, Duration::from_secs(20))
        .await
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(
        env.rt.container_state(&polite).await.unwrap(),
        ContainerState::Exited { code: 3 }
    );
    assert!(stdout_lines(&env.rt, &polite)
        .await
        .contains(&"got TERM".to_string()));

    // `sleep 300` as PID 1 ignores SIGTERM (no handler): SIGKILL after the timeout.
    let stubborn = unique_id("stubborn");
    env.rt
        .create_from_spec(&stubborn, &sh("stubborn", "exec sleep 300"))
        .await
        .unwrap();
    env.rt.start_container(&stubborn).await.unwrap();
    let t = Instant::now();
    env.rt
        .stop_container(&stubborn, Duration::from_secs(1))
        .await
        .unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(
        env.rt.container_state(&stubborn).await.unwrap(),
        ContainerState::Exited { code: 137 }
    );
    // Idempotent.
    env.rt
        .stop_container(&stubborn, Duration::from_secs(1))
        .await
        .unwrap();

    // The image's/spec's stop signal is used: SIGUSR1 trapped.
    let custom = unique_id("custom");
    let mut spec = sh("custom", "trap 'exit 4' USR1; sleep 300 & wait");
    spec.stop_signal = Some("SIGUSR1".into());
    env.rt.create_from_spec(&custom, &spec).await.unwrap();
    env.rt.start_container(&custom).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    env.rt
        .stop_container(&custom, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(env.rt.wait_container(&custom).await.unwrap(), 4);

    for id in [&polite, &stubborn, &custom] {
        env.rt.remove_container(id).await.unwrap();
        assert_nothing_left(&env, id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids() {
    let env = TestEnv::new();
    let id = unique_id("ghost");
    assert!(env
        .rt
        .start_container(&id)
        .await
        .unwrap_err()
        .is_not_found());
    assert!(env
        .rt
        .container_state(&id)
        .await
        .unwrap_err()
        .is_not_found());
    assert!(env.rt.wait_container(&id).await.unwrap_err().is_not_found());
    assert!(env
        .rt
        .get_container_stats(&id)
        .await
        .unwrap_err()
        .is_not_found());
    assert!(env.rt.get_logs(&id).await.unwrap_err().is_not_found());
    assert!(env
        .rt
        .kill_container(&id, None)
        .await
        .unwrap_err()
        .is_not_found());
    assert!(env
        .rt
        .stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap_err()
        .is_not_found());
    assert!(env
        .rt
        .get_container_ip(&id)
        .await
        .unwrap_err()
        .is_not_found());
    env.rt.remove_container(&id).await.unwrap();
    // Bad names never touch the disk.
    let bad = ContainerId::new("../etc", 1);
    assert!(matches!(
        env.rt
            .create_from_spec(&bad, &sh("x", "true"))
            .await
            .unwrap_err(),
        RuntimeError::InvalidSpec(_)
    ));
    env.rt.remove_container(&bad).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_state_is_cleaned_up() {
    let env = TestEnv::new();
    let id = unique_id("stale");
    // A running container left by an earlier process, then created again.
    env.rt
        .create_from_spec(&id, &sh("stale", "sleep 300"))
        .await
        .unwrap();
    env.rt.start_container(&id).await.unwrap();
    let old_pid = env.rt.get_container_pid(&id).await.unwrap().unwrap();
    // Another process sees it, and may not create over it.
    let fresh = runtime_at(env.root.path());
    let err = fresh
        .create_from_spec(&id, &sh("stale", "echo second"))
        .await
        .unwrap_err();
    assert!(matches!(err, RuntimeError::NameInUse { .. }), "{err}");
    fresh.remove_container(&id).await.unwrap();
    fresh
        .create_from_spec(&id, &sh("stale", "echo second"))
        .await
        .unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{old_pid}")).exists() || {
            let s = std::fs::read_to_string(format!("/proc/{old_pid}/stat")).unwrap_or_default();
            s.contains(") Z")
        }
    );
    assert_eq!(
        fresh.container_state(&id).await.unwrap(),
        ContainerState::Pending
    );
    fresh.start_container(&id).await.unwrap();
    assert_eq!(fresh.wait_container(&id).await.unwrap(), 0);
    assert_eq!(stdout_lines(&fresh, &id).await, vec!["second".to_string()]);
    fresh.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);

    // Garbage from an interrupted create (no container.json) and stray
    // libcontainer state.
    let junk = unique_id("junk");
    let dir = env.root.path().join("containers").join(junk.to_string());
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    std::fs::write(dir.join("config.json"), b"{garbage").unwrap();
    let lc = dir.join("run").join(junk.to_string());
    std::fs::create_dir_all(&lc).unwrap();
    std::fs::write(lc.join("state.json"), b"{}").unwrap();
    assert!(env
        .rt
        .container_state(&junk)
        .await
        .unwrap_err()
        .is_not_found());
    env.rt
        .create_from_spec(&junk, &sh("junk", "echo ok"))
        .await
        .unwrap();
    env.rt.start_container(&junk).await.unwrap();
    assert_eq!(env.rt.wait_container(&junk).await.unwrap(), 0);
    env.rt.remove_container(&junk).await.unwrap();
    assert_nothing_left(&env, &junk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_concurrent_containers() {
    let env = TestEnv::new();
    let ids: Vec<ContainerId> = (0..5).map(|_| unique_id("conc")).collect();
    let tasks = ids.iter().enumerate().map(|(i, id)| {
        let rt = env.rt.clone();
        let id = id.clone();
        tokio::spawn(async move {
            rt.create_from_spec(&id, &sh("conc", &format!("echo container {i}")))
                .await
                .unwrap();
            rt.start_container(&id).await.unwrap();
            rt.wait_container(&id).await.unwrap()
        })
    });
    for r in futures_util::future::join_all(tasks).await {
        assert_eq!(r.unwrap(), 0);
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            stdout_lines(&env.rt, id).await,
            vec![format!("container {i}")]
        );
    }
    let removals = ids.iter().map(|id| {
        let rt = env.rt.clone();
        let id = id.clone();
        tokio::spawn(async move { rt.remove_container(&id).await })
    });
    for r in futures_util::future::join_all(removals).await {
        r.unwrap().unwrap();
    }
    for id in &ids {
        assert_nothing_left(&env, id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_failure_reports_and_cleans_up() {
    let env = TestEnv::new();
    let id = unique_id("nope");
    let mut spec = ServiceSpec::minimal("nope", IMAGE);
    spec.command.entrypoint = Some(vec!["/no/such/program".into()]);
    env.rt.create_from_spec(&id, &spec).await.unwrap();
    let err = env.rt.start_container(&id).await.unwrap_err();
    // A typed failure (docker's 127); the container stays created, with
    // nothing of the start left (no process, no cgroup).
    assert!(
        matches!(&err, RuntimeError::Invoke { failure: zlayer_runtime::InvokeFailure::CommandNotFound, message } if message.contains("no such file")),
        "{err}"
    );
    assert_eq!(err.exit_code(), 127);
    let cg = cgroup_of(&env, &id);
    assert!(cg.existing_dirs().is_empty(), "{:?}", cg.existing_dirs());
    assert_eq!(
        env.rt.container_state(&id).await.unwrap(),
        ContainerState::Pending
    );
    env.rt.remove_container(&id).await.unwrap();
    assert!(env
        .rt
        .container_state(&id)
        .await
        .unwrap_err()
        .is_not_found());
    assert_nothing_left(&env, &id);

    // An image without a command fails at create, leaving nothing.
    let bare = unique_id("bare");
    let mut spec = ServiceSpec::minimal("bare", IMAGE);
    spec.command.args = Some(vec![]);
    let err = env.rt.create_from_spec(&bare, &spec).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::InvalidSpec(m) if m.contains("no command")),
        "{err}"
    );
    assert_nothing_left(&env, &bare);

    // An unknown user fails at create too.
    let nouser = unique_id("nouser");
    let mut spec = sh("nouser", "true");
    spec.user = Some("ghost".into());
    let err = env.rt.create_from_spec(&nouser, &spec).await.unwrap_err();
    assert!(err.to_string().contains("/etc/passwd"), "{err}");
    assert_nothing_left(&env, &nouser);

    // An unknown image is a pull failure, leaving nothing.
    let noimg = unique_id("noimg");
    let mut spec = sh("noimg", "true");
    spec.image.name = "localhost/zlayer/absent:1".into();
    spec.image.pull_policy = PullPolicy::Never;
    let err = env.rt.create_from_spec(&noimg, &spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::PullFailed { .. }), "{err}");
    assert_nothing_left(&env, &noimg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_on_exit_removes_the_container() {
    let env = TestEnv::new();
    let id = unique_id("rm");
    // Long enough for the waiter below to reach the monitor: one that
    // comes after the removal finds no container (as with docker).
    let mut spec = sh("rm", "echo bye; sleep 0.5; exit 5");
    spec.lifecycle.delete_on_exit = true;
    env.rt.create_from_spec(&id, &spec).await.unwrap();
    env.rt.start_container(&id).await.unwrap();
    // A waiter still learns the code.
    assert_eq!(env.rt.wait_container(&id).await.unwrap(), 5);
    let dir = env.root.path().join("containers").join(id.to_string());
    assert!(eventually(Duration::from_secs(5), || !dir.exists()).await);
    assert!(env
        .rt
        .container_state(&id)
        .await
        .unwrap_err()
        .is_not_found());
    assert_nothing_left(&env, &id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_env_workdir_hostname_and_network() {
    let env = TestEnv::new();
    let id = unique_id("cfg");
    let mut spec = sh(
        "cfg",
        "id -u; id -g; pwd; echo $FOO; hostname; cat /sys/class/net/lo/operstate; ls /sys/class/net | wc -l",
    );
    spec.user = Some("65534:4242".into());
    spec.env.insert("FOO".into(), "bar baz".into());
    spec.command.workdir = Some("/srv/app".into());
    spec.network_mode = zlayer_spec::NetworkMode::None;
    env.rt.create_from_spec(&id, &spec).await.unwrap();
    env.rt.start_container(&id).await.unwrap();
    assert_eq!(env.rt.wait_container(&id).await.unwrap(), 0);
    let lines = stdout_lines(&env.rt, &id).await;
    assert_eq!(
        lines,
        vec![
            "65534",
            "4242",
            "/srv/app",
            "bar baz",
            &hostname_of(&id),
            "unknown",
            "1"
        ],
        "lo must be up and alone"
    );
    assert_eq!(env.rt.get_container_ip(&id).await.unwrap(), None);
    assert!(env
        .rt
        .port_mappings_container(&id)
        .await
        .unwrap()
        .is_empty());
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);

    // Host networking sees the host's interfaces. Other tests add and
    // remove veths meanwhile, so the check is on the interfaces that exist
    // both before and after the run, not on a count.
    let host_ifaces = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let before = host_ifaces();
    let host = unique_id("hostnet");
    let mut spec = sh("hostnet", "ls /sys/class/net");
    spec.network_mode = zlayer_spec::NetworkMode::Host;
    env.rt.create_from_spec(&host, &spec).await.unwrap();
    env.rt.start_container(&host).await.unwrap();
    assert_eq!(env.rt.wait_container(&host).await.unwrap(), 0);
    let stable: Vec<String> = before.intersection(&host_ifaces()).cloned().collect();
    assert!(stable.len() > 1, "the host has more than lo: {stable:?}");
    let seen: std::collections::BTreeSet<String> = stdout_lines(&env.rt, &host)
        .await
        .into_iter()
        .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    for iface in &stable {
        assert!(seen.contains(iface), "{iface} missing from {seen:?}");
    }
    env.rt.remove_container(&host).await.unwrap();
    assert_nothing_left(&env, &host);
}

fn hostname_of(id: &ContainerId) -> String {
    id.to_string().to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_relay() {
    let env = TestEnv::new();
    let id = unique_id("stdin");
    env.rt
        .create_from_spec(&id, &sh("stdin", "read a; echo got:$a; cat; echo eof"))
        .await
        .unwrap();
    env.rt.start_container(&id).await.unwrap();
    env.rt.write_stdin(&id, b"first line\n").await.unwrap();
    env.rt.write_stdin(&id, b"more\nand more\n").await.unwrap();
    env.rt.close_stdin(&id).await.unwrap();
    assert_eq!(env.rt.wait_container(&id).await.unwrap(), 0);
    assert_eq!(
        stdout_lines(&env.rt, &id).await,
        vec!["got:first line", "more", "and more", "eof"]
    );
    // stdin of an exited container is a clear error.
    assert!(env.rt.write_stdin(&id, b"x").await.is_err());
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_after_exit_restarts_in_place() {
    let env = TestEnv::new();
    let id = unique_id("again");
    let script = "n=$(cat /runs 2>/dev/null | wc -l); echo run$n; echo x >> /runs; exit $((n+3))";
    env.rt
        .create_from_spec(&id, &sh("again", script))
        .await
        .unwrap();
    env.rt.start_container(&id).await.unwrap();
    assert_eq!(env.rt.wait_container(&id).await.unwrap(), 3);
    // Same container, same rootfs (the file written by the first run), logs appended.
    env.rt.start_container(&id).await.unwrap();
    assert_eq!(env.rt.wait_container(&id).await.unwrap(), 4);
    assert_eq!(
        env.rt.container_state(&id).await.unwrap(),
        ContainerState::Exited { code: 4 }
    );
    assert_eq!(stdout_lines(&env.rt, &id).await, vec!["run0", "run1"]);
    // And after a kill too.
    let long = unique_id("again-long");
    env.rt
        .create_from_spec(&long, &sh("again-long", "echo up; exec sleep 300"))
        .await
        .unwrap();
    env.rt.start_container(&long).await.unwrap();
    let logs = env
        .root
        .path()
        .join("containers")
        .join(long.to_string())
        .join("log");
    let printed = |n: usize| {
        let logs = logs.clone();
        move || {
            std::fs::read_to_string(&logs)
                .unwrap_or_default()
                .matches("\"up\"")
                .count()
                >= n
        }
    };
    assert!(eventually(std::time::Duration::from_secs(10), printed(1)).await);
    env.rt.kill_container(&long, None).await.unwrap();
    assert_eq!(env.rt.wait_container(&long).await.unwrap(), 137);
    env.rt.start_container(&long).await.unwrap();
    assert_eq!(
        env.rt.container_state(&long).await.unwrap(),
        ContainerState::Running
    );
    assert!(eventually(std::time::Duration::from_secs(10), printed(2)).await);
    env.rt
        .stop_container(&long, std::time::Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(stdout_lines(&env.rt, &long).await, vec!["up", "up"]);
    for id in [&id, &long] {
        env.rt.remove_container(id).await.unwrap();
        assert_nothing_left(&env, id);
    }
}
