//! Races between a create in progress and whoever lists containers at the
//! same moment (the daemon's reconcile loop, `docker ps`).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use support::host_runtime::HostRuntime;
use support::load_busybox;
use zlayer_engine::{CreateRequest, Engine};
use zlayer_image::ImageStore;
use zlayer_runtime::{CompositeRuntime, ContainerState, Runtime};
use zlayer_spec::ServiceSpec;

/// CI once saw `zlayer run` fail with "No such container" for the
/// container it had just created: the catalog record is written before the
/// runtime creates the container, and a `list` in between took the record
/// for one whose runtime state had vanished, and dropped it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_during_a_create_keeps_the_new_record() {
    let root = tempfile::tempdir().unwrap();
    let images = ImageStore::open(root.path()).unwrap();
    load_busybox(&images);
    let mut runtimes: BTreeMap<String, Arc<dyn Runtime>> = BTreeMap::new();
    runtimes.insert(
        "container".into(),
        Arc::new(HostRuntime::with_create_delay(Duration::from_millis(300))),
    );
    let composite = CompositeRuntime::new(runtimes, "container").unwrap();
    let engine = Arc::new(Engine::new(root.path(), images, Arc::new(composite)).unwrap());

    let mut spec = ServiceSpec::minimal("ignored", "busybox:latest");
    spec.command.entrypoint = Some(vec!["true".into()]);
    let creating = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.create(CreateRequest::new(spec)).await })
    };
    // List while the create runs: the record is there, the runtime's
    // container not yet.
    let mut listed_while_creating = 0;
    while !creating.is_finished() {
        let views = engine.list().await.unwrap();
        assert!(
            views.is_empty(),
            "a container still being created is not listed"
        );
        listed_while_creating += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(listed_while_creating > 3, "{listed_while_creating}");
    let record = creating.await.unwrap().unwrap();

    let found = engine.resolve(&record.id).unwrap();
    assert_eq!(found.id, record.id);
    engine.start(&record).await.unwrap();
    assert_eq!(engine.wait(&record).await.unwrap(), 0);
    let views = engine.list().await.unwrap();
    assert_eq!(views.len(), 1);
    assert!(matches!(views[0].state, ContainerState::Exited { code: 0 }));
}
