//! Resource limits and statistics of real containers (cgroup v1 on this
//! host; v2 parsing is unit-tested), and storage: named volumes, binds,
//! tmpfs, anonymous volumes.

mod container_support;

use container_support::*;
use futures_util::StreamExt;
use std::time::Duration;
use zlayer_runtime::*;
use zlayer_spec::{ByteSize, StorageSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_of_a_running_container() {
    let env = TestEnv::new();
    let id = unique_id("stats");
    let mut spec = sh(
        "stats",
        "x=0; while [ $x -lt 20000 ]; do x=$((x+1)); done; exec sleep 300",
    );
    spec.resources.memory = Some(ByteSize::parse("64Mi").unwrap());
    spec.resources.cpu = Some(0.5);
    env.rt.create_from_spec(&id, &spec).await.unwrap();
    let err = env.rt.get_container_stats(&id).await.unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
    assert!(env.rt.stats_stream(&id).await.is_err());
    env.rt.start_container(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = env.rt.get_container_stats(&id).await.unwrap();
    assert!(s.memory_used_bytes > 0, "{s:?}");
    assert_eq!(s.memory_limit_bytes, 64 << 20);
    assert!(s.pids_current >= 1, "{s:?}");
    assert!(s.cpu_total_ns > 0, "{s:?}");
    assert!(s.cpu_system_ns > 0 && s.online_cpus >= 1);
    // cpu: 0.5 is a CFS quota of half a period.
    let cpu_dir = cgroup_of(&env, &id)
        .v1_dir("cpu")
        .or_else(|| cgroup_of(&env, &id).v2_dir())
        .unwrap();
    let quota = std::fs::read_to_string(cpu_dir.join("cpu.cfs_quota_us"))
        .or_else(|_| std::fs::read_to_string(cpu_dir.join("cpu.max")))
        .unwrap();
    assert!(quota.starts_with("50000"), "{quota}");

    // A stream yields samples until the container stops.
    let mut stream = env.rt.stats_stream(&id).await.unwrap();
    assert!(stream.next().await.unwrap().unwrap().pids_current >= 1);
    assert!(stream.next().await.unwrap().unwrap().memory_used_bytes > 0);
    env.rt.kill_container(&id, None).await.unwrap();
    env.rt.wait_container(&id).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), async {
        while stream.next().await.is_some() {}
    })
    .await
    .is_ok());
    assert!(env.rt.get_container_stats(&id).await.is_err());
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_oom_kills() {
    let env = TestEnv::new();
    let id = unique_id("oom");
    // The shell keeps 64 MB of 'a's in a variable: far over the 32 MiB limit.
    let mut spec = sh(
        "oom",
        "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived",
    );
    spec.resources.memory = Some(ByteSize::parse("32Mi").unwrap());
    env.rt.create_from_spec(&id, &spec).await.unwrap();
    env.rt.start_container(&id).await.unwrap();
    assert_eq!(env.rt.wait_container(&id).await.unwrap(), 137);
    match env.rt.container_state(&id).await.unwrap() {
        ContainerState::Failed { reason, code } => {
            assert!(reason.contains("OOM"), "{reason}");
            assert_eq!(code, Some(137), "an OOM kill reports 137, as docker does");
        }
        other => panic!("expected an OOM failure, got {other:?}"),
    }
    assert!(!stdout_lines(&env.rt, &id)
        .await
        .contains(&"survived".to_string()));
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pids_limit_enforced() {
    let env = TestEnv::new();
    let id = unique_id("pids");
    let mut spec = sh("pids", "exec sleep 300");
    spec.resources.pids_limit = Some(8);
    env.rt.create_from_spec(&id, &spec).await.unwrap();
    env.rt.start_container(&id).await.unwrap();
    // An exec (it joins the container's cgroup) tries to start 20 sleeps.
    let script = "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 30 >/dev/null 2>&1 & done; wait";
    let out = env
        .rt
        .exec(
            &id,
            &["sh".to_string(), "-c".to_string(), script.to_string()],
        )
        .await
        .unwrap();
    assert_ne!(out.0, 0);
    assert!(out.2.contains("fork"), "expected fork failures: {out:?}");
    let s = env.rt.get_container_stats(&id).await.unwrap();
    assert_eq!(s.pids_limit, Some(8));
    assert!(s.pids_current >= 1 && s.pids_current <= 8, "{s:?}");
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_binds_and_tmpfs() {
    let env = TestEnv::new();
    let vol = format!("vol{}", std::process::id());
    let writer = unique_id("writer");
    let mut spec = sh(
        "writer",
        "echo persisted > /data/file; echo scratch > /cache/f; df -k /scratch | tail -1",
    );
    spec.storage = vec![
        StorageSpec::Named {
            name: vol.clone(),
            target: "/data".into(),
            readonly: false,
        },
        StorageSpec::Anonymous {
            target: "/cache".into(),
        },
        StorageSpec::Tmpfs {
            target: "/scratch".into(),
            size: Some(ByteSize::parse("2Mi").unwrap()),
        },
    ];
    env.rt.create_from_spec(&writer, &spec).await.unwrap();
    env.rt.start_container(&writer).await.unwrap();
    assert_eq!(env.rt.wait_container(&writer).await.unwrap(), 0);
    let df = stdout_lines(&env.rt, &writer).await;
    let size_kib: u64 = df[0].split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(size_kib, 2048, "{df:?}");
    env.rt.remove_container(&writer).await.unwrap();
    assert_nothing_left(&env, &writer);

    // The named volume outlived the container.
    let host_file = env
        .root
        .path()
        .join("volumes")
        .join(&vol)
        .join("_data/file");
    assert_eq!(std::fs::read_to_string(&host_file).unwrap(), "persisted\n");
    let reader = unique_id("reader");
    let mut spec = sh("reader", "cat /data/file; ls /cache 2>&1 | wc -l");
    spec.storage = vec![
        StorageSpec::Named {
            name: vol.clone(),
            target: "/data".into(),
            readonly: true,
        },
        StorageSpec::Anonymous {
            target: "/cache".into(),
        },
    ];
    env.rt.create_from_spec(&reader, &spec).await.unwrap();
    env.rt.start_container(&reader).await.unwrap();
    assert_eq!(env.rt.wait_container(&reader).await.unwrap(), 0);
    assert_eq!(stdout_lines(&env.rt, &reader).await, vec!["persisted", "0"]);
    env.rt.remove_container(&reader).await.unwrap();

    // Read-only binds refuse writes; read-write binds show up on the host.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from host\n").unwrap();
    let binder = unique_id("bind");
    let mut spec = sh(
        "bind",
        "cat /ro/in.txt; echo x > /ro/new 2>/dev/null && echo WROTE || echo refused; echo out > /rw/out.txt",
    );
    spec.storage = vec![
        StorageSpec::Bind {
            source: host.path().to_string_lossy().into(),
            target: "/ro".into(),
            readonly: true,
        },
        StorageSpec::Bind {
            source: host.path().to_string_lossy().into(),
            target: "/rw".into(),
            readonly: false,
        },
    ];
    env.rt.create_from_spec(&binder, &spec).await.unwrap();
    env.rt.start_container(&binder).await.unwrap();
    assert_eq!(env.rt.wait_container(&binder).await.unwrap(), 0);
    assert_eq!(
        stdout_lines(&env.rt, &binder).await,
        vec!["from host", "refused"]
    );
    assert!(!host.path().join("new").exists());
    assert_eq!(
        std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
        "out\n"
    );
    env.rt.remove_container(&binder).await.unwrap();
    assert_nothing_left(&env, &binder);
    // Removing containers never touches bind sources.
    assert!(host.path().join("in.txt").exists());
}
