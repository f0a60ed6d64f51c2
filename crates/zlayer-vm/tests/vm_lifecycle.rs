//! The full lifecycle of a long-running VM under TCG, mirroring the seeds'
//! VZ-Linux suite: create → Pending → start → Running → logs → stats →
//! exec → re-adoption by a second runtime → stop → Exited → remove.

mod vm_support;

use std::time::Duration;
use vm_support::{no_qemu_left, wait_for_log, Env};
use zlayer_runtime::{ContainerId, ContainerState, ExecOptions, Runtime};
use zlayer_vm::Accel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_with_exec_stats_and_readoption() {
    let env = Env::new(Accel::Tcg);
    let rt = &env.rt;
    let id = ContainerId::new("life", 1);
    let share = env.dir.path().join("share");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(share.join("note.txt"), "from-the-host\n").unwrap();
    let mut spec = env.spec("life", &["sh", "-c", "echo lifecycle-up; exec sleep 600"]);
    spec.storage = vec![zlayer_spec::StorageSpec::Bind {
        source: share.to_string_lossy().into_owned(),
        target: "/data".into(),
        readonly: true,
    }];
    rt.create_from_spec(&id, &spec).await.unwrap();
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Pending
    );
    assert!(
        rt.get_container_stats(&id).await.is_err(),
        "stats before start must fail"
    );
    rt.start_container(&id).await.unwrap();
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Running
    );
    assert_eq!(rt.list_containers().await.unwrap()[0].record.container, id);

    // Boots to console and runs the workload.
    assert!(
        wait_for_log(rt, &id, "lifecycle-up", Duration::from_secs(60)).await,
        "no banner in logs"
    );
    // The guest's console is kept beside the log.
    let console = std::fs::read_to_string(rt.state_dir(&id).unwrap().dir.join("console.log"))
        .unwrap_or_default();
    assert!(console.contains("zlayer-guest: ready"), "{console}");

    // Stats: QEMU's process plus the guest's memory.
    let stats = rt.get_container_stats(&id).await.unwrap();
    assert!(
        stats.memory_used_bytes > 0 && stats.memory_limit_bytes == 256 * 1024 * 1024,
        "{stats:?}"
    );
    assert!(stats.pids_current >= 2, "agent + sleep: {stats:?}");
    let pid = rt.get_container_pid(&id).await.unwrap().expect("QEMU pid");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    // Exec: output, exit codes, env, stdin, missing programs.
    let (code, out, err) = rt.exec(&id, &["echo".into(), "hi".into()]).await.unwrap();
    assert_eq!((code, out.as_str(), err.as_str()), (0, "hi\n", ""));
    let (code, _, _) = rt
        .exec(&id, &["sh".into(), "-c".into(), "exit 42".into()])
        .await
        .unwrap();
    assert_eq!(code, 42);
    let mut opts = ExecOptions::command(["sh", "-c", "cat; echo $ZL_X; pwd"]);
    opts.env.insert("ZL_X".into(), "x-value".into());
    opts.stdin = Some(b"from-stdin\n".to_vec());
    opts.working_dir = Some("/tmp".into());
    let out = rt.exec_with_opts(&id, &opts).await.unwrap();
    assert_eq!(out.stdout, "from-stdin\nx-value\n/tmp\n");
    let missing = rt.exec(&id, &["no-such-program".into()]).await.unwrap_err();
    assert_eq!(missing.exit_code(), 127, "{missing}");
    assert!(rt
        .exec(&id, &[])
        .await
        .unwrap_err()
        .to_string()
        .contains("empty"));
    // The bind mount is there, read-only.
    let (code, out, err) = rt
        .exec(&id, &["cat".into(), "/data/note.txt".into()])
        .await
        .unwrap();
    assert_eq!((code, out.as_str()), (0, "from-the-host\n"), "{err}");
    let (code, _, _) = rt
        .exec(&id, &["touch".into(), "/data/new".into()])
        .await
        .unwrap();
    assert_ne!(code, 0, "a read-only bind must refuse writes");
    // The root is writable (tmpfs upper) without touching the image.
    let (code, _, _) = rt
        .exec(
            &id,
            &["sh".into(), "-c".into(), "echo x > /etc/written".into()],
        )
        .await
        .unwrap();
    assert_eq!(code, 0);
    // The workload's PID namespace is the guest's: exec sees the sleep.
    let (_, ps, _) = rt
        .exec(&id, &["sh".into(), "-c".into(), "ps -o comm".into()])
        .await
        .unwrap();
    assert!(ps.contains("sleep"), "{ps}");

    // Pause/unpause through QMP.
    rt.pause_container(&id).await.unwrap();
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Paused
    );
    rt.unpause_container(&id).await.unwrap();
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Running
    );

    // A restarted agent re-adopts the VM from its state directory.
    let again = env.reopen();
    assert_eq!(
        again.list_containers().await.unwrap()[0].record.container,
        id
    );
    assert_eq!(
        again.container_state(&id).await.unwrap(),
        ContainerState::Running
    );

    // Graceful stop (SIGTERM to `sleep` ends it: 143), then the VM is gone.
    again
        .stop_container(&id, Duration::from_secs(20))
        .await
        .unwrap();
    let stopped = rt.container_state(&id).await.unwrap();
    assert!(
        matches!(stopped, ContainerState::Exited { .. }),
        "{stopped:?}"
    );
    assert_eq!(rt.get_container_pid(&id).await.unwrap(), None);
    assert!(
        rt.exec(&id, &["true".into()]).await.is_err(),
        "exec into a stopped VM"
    );
    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();

    rt.remove_container(&id).await.unwrap();
    assert!(rt.container_state(&id).await.unwrap_err().is_not_found());
    assert!(rt.get_logs(&id).await.unwrap_err().is_not_found());
    rt.remove_container(&id).await.unwrap();
    assert!(no_qemu_left(env.dir.path()));
    rt.wait_for_deletions();
    let left: Vec<_> = std::fs::read_dir(rt.state_dir(&id).unwrap().dir.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| !n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_maps_signals_and_remove_of_a_running_vm_cleans_up() {
    let env = Env::new(Accel::Tcg);
    let rt = &env.rt;
    let id = ContainerId::new("killme", 1);
    rt.create_from_spec(&id, &env.spec("killme", &["sleep", "600"]))
        .await
        .unwrap();
    assert!(
        rt.kill_container(&id, Some("KILL")).await.is_err(),
        "kill before start"
    );
    rt.start_container(&id).await.unwrap();
    assert!(rt.kill_container(&id, Some("NOPE")).await.is_err());
    rt.kill_container(&id, Some("USR1")).await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(30), rt.wait_container(&id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, 128 + 10, "sleep dies of SIGUSR1");
    // Remove of a running VM: start again, then remove right away.
    rt.start_container(&id).await.unwrap();
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Running
    );
    rt.remove_container(&id).await.unwrap();
    assert!(no_qemu_left(env.dir.path()));
    assert!(!rt.state_dir(&id).unwrap().dir.exists());
}
