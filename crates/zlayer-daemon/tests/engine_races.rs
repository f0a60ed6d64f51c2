//! Races between creates in progress and whoever lists containers at the
//! same moment (the daemon's reconcile loop, `docker ps`): the state
//! directories are the one record of which containers exist, so a create is
//! listed from its first write, as created, and never lost.

mod support;

use std::sync::Arc;
use std::time::Duration;
use support::load_busybox;
use zlayer_engine::{CreateRequest, Engine, NodeConfig};
use zlayer_runtime::ContainerState;
use zlayer_spec::ServiceSpec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_during_creates_never_loses_or_fails_one() {
    let root = tempfile::Builder::new()
        .prefix("zl-race")
        .tempdir()
        .unwrap();
    let engine = Arc::new(Engine::open(root.path(), NodeConfig::default()).unwrap());
    load_busybox(engine.images());
    let creates: Vec<_> = (0..8)
        .map(|i| {
            let engine = engine.clone();
            let mut spec = ServiceSpec::minimal("race", "busybox:latest");
            spec.command.entrypoint = Some(vec!["true".into()]);
            spec.network_mode = zlayer_spec::NetworkMode::None;
            let mut req = CreateRequest::new(spec);
            req.name = Some(format!("race-{i}"));
            tokio::spawn(async move { engine.create(req).await })
        })
        .collect();
    let mut lists = 0;
    while !creates.iter().all(|c| c.is_finished()) {
        for v in engine.list().await.unwrap() {
            assert_eq!(
                v.state,
                ContainerState::Pending,
                "{} is listed as {} while it is created",
                v.record.name,
                v.state
            );
        }
        lists += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(lists > 0);
    let mut records = Vec::new();
    for c in creates {
        records.push(c.await.unwrap().unwrap());
    }
    let views = engine.list().await.unwrap();
    assert_eq!(views.len(), records.len());
    for r in &records {
        assert_eq!(engine.resolve(&r.name).unwrap().id, r.id);
        assert_eq!(engine.resolve(&r.id[..12]).unwrap().name, r.name);
        engine.start(r).await.unwrap();
        assert_eq!(engine.wait(r).await.unwrap(), 0);
        engine.remove(r, false).await.unwrap();
    }
    assert!(engine.list().await.unwrap().is_empty());
}
