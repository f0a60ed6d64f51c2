//! Lifecycle of real containers (busybox fixture): create, start, wait,
//! logs, stop, kill, remove, exit codes, stale state, unknown ids.

mod container_support;

use container_support::*;
use std::time::{Duration, Instant};
use zlayer_agent::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_lifecycle_echo() {
    let env = TestEnv::new();
    let id = unique_id("echo");
    let spec = sh("echo", "echo hello from zlayer; echo to stderr >&2");
    env.rt.create_container(&id, &spec).await.unwrap();
    assert_eq!(env.rt.container_state(&id).await.unwrap(), ContainerState::Pending);
    assert!(env.rt.list_containers().await.unwrap().contains(&id));
    env.rt.start_container(&id).await.unwrap();
    assert_eq!(env.rt.wait_container(&id).await.unwrap(), 0);
    assert_eq!(
        env.rt.container_state(&id).await.unwrap(),
        ContainerState::Exited { code: 0 }
    );
    let logs = env.rt.get_logs(&id).await.unwrap();
    assert!(logs.iter().any(|e| e.stream == LogStream::Stdout && e.message == "hello from zlayer"), "{logs:?}");
    assert!(logs.iter().any(|e| e.stream == LogStream::Stderr && e.message == "to stderr"), "{logs:?}");
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
    assert!(env.rt.container_state(&id).await.unwrap_err().is_not_found());
}
