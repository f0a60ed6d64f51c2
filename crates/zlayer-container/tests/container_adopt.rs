//! The agent can die (SIGKILL) without losing its containers: a new agent
//! re-adopts them from disk, sees them running, relays stdin, and gets
//! their exit code and every log line.
//!
//! The "agent" is this test binary re-executed to run only `agent_child`,
//! which creates and starts a container, reports, and waits to be killed.

mod container_support;

use container_support::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use zlayer_runtime::*;

const ROOT_ENV: &str = "ZLAYER_TEST_AGENT_ROOT";
const ID_ENV: &str = "ZLAYER_TEST_AGENT_ID";

/// The child "agent": a no-op unless started by `agent_killed_container_survives`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_child() {
    let (Ok(root), Ok(name)) = (std::env::var(ROOT_ENV), std::env::var(ID_ENV)) else {
        return;
    };
    let id = ContainerId::new(name, 1);
    let rt = runtime_at(Path::new(&root));
    let script = "echo started; read x; echo got:$x; echo done >&2; exit 5";
    rt.create_from_spec(&id, &sh("adopt", script))
        .await
        .unwrap();
    rt.start_container(&id).await.unwrap();
    println!("AGENT-READY");
    std::future::pending::<()>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_container_survives() {
    let env = TestEnv::new();
    let id = unique_id("adopt");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "agent_child", "--nocapture", "--test-threads=1"])
        .env(ROOT_ENV, env.root.path())
        .env(ID_ENV, &id.service)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut ready = false;
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().contains("AGENT-READY") {
            ready = true;
            break;
        }
    }
    assert!(ready, "the child agent did not start its container");
    // SIGKILL the agent: no chance to clean anything up.
    child.kill().unwrap();
    child.wait().unwrap();

    let rt = runtime_at(env.root.path());
    assert!(listed(&rt, &id).await);
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Running
    );
    assert!(rt.get_container_pid(&id).await.unwrap().is_some());
    rt.write_stdin(&id, b"after the crash\n").await.unwrap();
    assert_eq!(rt.wait_container(&id).await.unwrap(), 5);
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Exited { code: 5 }
    );
    let logs = rt.get_logs(&id).await.unwrap();
    let msgs: Vec<(LogStream, String)> = logs.into_iter().map(|e| (e.stream, e.message)).collect();
    assert_eq!(
        msgs,
        vec![
            (LogStream::Stdout, "started".to_string()),
            (LogStream::Stdout, "got:after the crash".to_string()),
            (LogStream::Stderr, "done".to_string()),
        ]
    );
    rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
}
