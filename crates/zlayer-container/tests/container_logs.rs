//! Logs of real containers: tail, stream filters, since, and follow without
//! gaps or duplicates across the snapshot/follow boundary; pause/unpause.

mod container_support;

use container_support::*;
use futures_util::StreamExt;
use std::time::{Duration, SystemTime};
use zlayer_runtime::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_has_no_gaps_or_duplicates() {
    let env = TestEnv::new();
    let id = unique_id("follow");
    // Two bursts with a pause between, so following starts mid-way.
    let script = "i=0; while [ $i -lt 500 ]; do echo line$i; i=$((i+1)); done; \
                  sleep 0.5; \
                  while [ $i -lt 1000 ]; do echo line$i; [ $((i % 100)) -eq 0 ] && sleep 0.05; i=$((i+1)); done";
    env.rt
        .create_from_spec(&id, &sh("follow", script))
        .await
        .unwrap();
    env.rt.start_container(&id).await.unwrap();
    let rt = env.rt.clone();
    let id2 = id.clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            std::fs::metadata(
                env.root
                    .path()
                    .join("containers")
                    .join(id2.to_string())
                    .join("log"),
            )
            .map(|m| m.len() > 0)
            .unwrap_or(false)
        })
        .await
    );
    let opts = LogsStreamOptions {
        follow: true,
        ..Default::default()
    };
    let got = collect_logs(rt.logs_stream(&id, opts).await.unwrap())
        .await
        .unwrap();
    let msgs: Vec<String> = got.into_iter().map(|e| e.message).collect();
    let want: Vec<String> = (0..1000).map(|i| format!("line{i}")).collect();
    assert_eq!(
        msgs.len(),
        want.len(),
        "first diff at {:?}",
        msgs.iter().zip(&want).position(|(a, b)| a != b)
    );
    assert_eq!(msgs, want);
    // Follow on an exited container ends after the snapshot.
    let again = collect_logs(
        rt.logs_stream(
            &id,
            LogsStreamOptions {
                follow: true,
                tail: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(again.len(), 3);
    assert_eq!(again[2].message, "line999");
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_filters_and_since() {
    let env = TestEnv::new();
    let id = unique_id("tail");
    env.rt
        .create_from_spec(
            &id,
            &sh(
                "tail",
                "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; sleep 0.3; echo late",
            ),
        )
        .await
        .unwrap();
    env.rt.start_container(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mid = SystemTime::now();
    assert_eq!(env.rt.wait_container(&id).await.unwrap(), 0);

    let last = env.rt.container_logs(&id, 2).await.unwrap();
    assert_eq!(last.len(), 2);
    assert_eq!(last[1].message, "late");

    let only_err = collect_logs(
        env.rt
            .logs_stream(
                &id,
                LogsStreamOptions {
                    stdout: false,
                    ..Default::default()
                },
            )
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    let msgs: Vec<_> = only_err.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs, ["err1", "err2", "err3", "err4", "err5"]);
    assert!(only_err.iter().all(|e| e.stream == LogStream::Stderr));

    let since = collect_logs(
        env.rt
            .logs_stream(
                &id,
                LogsStreamOptions {
                    since: Some(mid),
                    timestamps: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    let msgs: Vec<_> = since.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs, ["late"]);
    assert!(since[0].timestamp >= mid);
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_unpause_freeze_the_workload() {
    let env = TestEnv::new();
    let id = unique_id("pause");
    env.rt
        .create_from_spec(
            &id,
            &sh("pause", "while true; do echo tick; sleep 0.05; done"),
        )
        .await
        .unwrap();
    // Pausing something that does not run is an error.
    assert!(env.rt.pause_container(&id).await.is_err());
    env.rt.start_container(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    env.rt.pause_container(&id).await.unwrap();
    assert_eq!(
        env.rt.container_state(&id).await.unwrap(),
        ContainerState::Paused
    );
    // Exec into a paused container is refused clearly.
    let err = env.rt.exec(&id, &["true".to_string()]).await.unwrap_err();
    assert!(err.to_string().contains("paused"), "{err}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let frozen = stdout_lines(&env.rt, &id).await.len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        stdout_lines(&env.rt, &id).await.len(),
        frozen,
        "output while paused"
    );
    env.rt.unpause_container(&id).await.unwrap();
    assert_eq!(
        env.rt.container_state(&id).await.unwrap(),
        ContainerState::Running
    );
    let rt = env.rt.clone();
    let id2 = id.clone();
    let mut grew = false;
    for _ in 0..50 {
        if stdout_lines(&rt, &id2).await.len() > frozen {
            grew = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(grew, "no output after unpause");
    // Stop works on a paused container too.
    env.rt.pause_container(&id).await.unwrap();
    env.rt
        .stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(env.rt.container_state(&id).await.unwrap().is_terminal());
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_streams_while_running() {
    let env = TestEnv::new();
    let id = unique_id("live");
    env.rt
        .create_from_spec(
            &id,
            &sh(
                "live",
                "echo one; sleep 0.3; echo two; sleep 0.3; echo three",
            ),
        )
        .await
        .unwrap();
    env.rt.start_container(&id).await.unwrap();
    let mut stream = env
        .rt
        .logs_stream(
            &id,
            LogsStreamOptions {
                follow: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.message, "one");
    // "three" arrives later, while the stream is open.
    let rest: Vec<String> = stream.map(|e| e.unwrap().message).collect().await;
    assert_eq!(rest, ["two", "three"]);
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_started_before_start_sees_the_run() {
    let env = TestEnv::new();
    let id = unique_id("early");
    env.rt
        .create_from_spec(&id, &sh("early", "echo first; sleep 0.2; echo second"))
        .await
        .unwrap();
    // docker attaches before it starts the container.
    let stream = env
        .rt
        .logs_stream(
            &id,
            LogsStreamOptions {
                follow: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let reader = tokio::spawn(collect_logs(stream));
    tokio::time::sleep(Duration::from_millis(200)).await;
    env.rt.start_container(&id).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("follow must end when the container exits")
        .unwrap()
        .unwrap();
    let msgs: Vec<_> = got.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs, ["first", "second"]);
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
}
