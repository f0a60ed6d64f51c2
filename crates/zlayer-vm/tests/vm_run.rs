//! VM runs to completion under TCG: output, exit codes, cleanup.

mod vm_support;

use std::time::Duration;
use vm_support::{no_qemu_left, Env};
use zlayer_runtime::{ContainerId, ContainerState, LogStream, Runtime};
use zlayer_vm::Accel;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_echo_hello_logs_and_exits_zero() {
    let env = Env::new(Accel::Tcg);
    let id = ContainerId::new("echo", 1);
    env.rt
        .create_from_spec(&id, &env.spec("echo", &["echo", "hello"]))
        .await
        .unwrap();
    assert_eq!(
        env.rt.container_state(&id).await.unwrap(),
        ContainerState::Pending
    );
    env.rt.start_container(&id).await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(120), env.rt.wait_container(&id))
        .await
        .expect("wait timed out")
        .unwrap();
    assert_eq!(code, 0);
    let logs = env.rt.get_logs(&id).await.unwrap();
    assert!(
        logs.iter()
            .any(|l| l.stream == LogStream::Stdout && l.message == "hello"),
        "logs: {logs:?}"
    );
    // The guest's console is kept beside the log (the agent's ready line).
    let console =
        std::fs::read_to_string(env.rt.state_dir(&id).unwrap().dir.join("console.log")).unwrap();
    assert!(console.contains("zlayer-guest: ready"), "{console}");
    assert_eq!(
        env.rt.container_state(&id).await.unwrap(),
        ContainerState::Exited { code: 0 }
    );
    // The VM powered itself off once the workload ended.
    assert_eq!(env.rt.get_container_pid(&id).await.unwrap(), None);
    env.rt.remove_container(&id).await.unwrap();
    assert!(!env.rt.state_dir(&id).unwrap().dir.exists());
    assert!(no_qemu_left(env.dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_seven_is_reported() {
    let env = Env::new(Accel::Tcg);
    let id = ContainerId::new("seven", 1);
    env.rt
        .create_from_spec(
            &id,
            &env.spec("seven", &["sh", "-c", "echo oops >&2; exit 7"]),
        )
        .await
        .unwrap();
    env.rt.start_container(&id).await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(120), env.rt.wait_container(&id))
        .await
        .expect("wait timed out")
        .unwrap();
    assert_eq!(code, 7);
    assert_eq!(
        env.rt.container_state(&id).await.unwrap(),
        ContainerState::Exited { code: 7 }
    );
    let logs = env.rt.get_logs(&id).await.unwrap();
    assert!(
        logs.iter()
            .any(|l| l.stream == LogStream::Stderr && l.message == "oops"),
        "{logs:?}"
    );
    env.rt.remove_container(&id).await.unwrap();
    env.rt.remove_container(&id).await.unwrap();
    assert!(no_qemu_left(env.dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_on_exit_removes_everything_after_the_workload_ends() {
    let env = Env::new(Accel::Tcg);
    let id = ContainerId::new("oneshot", 1);
    let mut spec = env.spec("oneshot", &["true"]);
    spec.lifecycle.delete_on_exit = true;
    env.rt.create_from_spec(&id, &spec).await.unwrap();
    env.rt.start_container(&id).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while env.rt.state_dir(&id).unwrap().dir.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not removed after exit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(env
        .rt
        .container_state(&id)
        .await
        .unwrap_err()
        .is_not_found());
    assert!(no_qemu_left(env.dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_fails_the_start_and_leaves_no_vm() {
    let env = Env::new(Accel::Tcg);
    let id = ContainerId::new("nope", 1);
    env.rt
        .create_from_spec(&id, &env.spec("nope", &["/no/such/program"]))
        .await
        .unwrap();
    let err = env.rt.start_container(&id).await.unwrap_err();
    // A typed failure from the guest: docker's 127.
    assert_eq!(err.exit_code(), 127, "{err}");
    assert!(err.to_string().contains("/no/such/program"), "{err}");
    assert!(no_qemu_left(env.dir.path()));
    assert_eq!(env.rt.get_container_pid(&id).await.unwrap(), None);
    env.rt.remove_container(&id).await.unwrap();
}
