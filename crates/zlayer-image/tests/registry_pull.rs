//! Pulls from a real `docker-registry` on loopback: single- and multi-layer
//! images, pull by digest, multi-arch index selection, missing tags, pull
//! policies and concurrent pulls.

#[path = "common/images.rs"]
mod images;
#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/registry.rs"]
mod registry_helper;

use std::sync::Arc;

use images::{index_layout, layout, Event, Recorder};
use proxy::{Faults, FlakyProxy};
use registry_helper::TestRegistry;
use zlayer_image::fixtures::{self, FixtureOptions};
use zlayer_image::{Error, ImageStore, PullOptions, PullPolicy, RegistryAuth};

fn opts(policy: PullPolicy) -> PullOptions {
    PullOptions {
        policy,
        ..PullOptions::default()
    }
}

fn new_store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("root")).unwrap();
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_single_and_multi_layer_images_unpacking_as_they_arrive() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let one = fixtures::busybox_layout(
        &work.path().join("one"),
        &FixtureOptions::named("localhost/t/one:v1"),
    )
    .unwrap();
    reg.push_layout(&one.path, "v1", "app/one:v1");
    let multi = fixtures::multilayer_layout(
        &work.path().join("multi"),
        &FixtureOptions::named("localhost/t/multi:v2"),
    )
    .unwrap();
    reg.push_layout(&multi.path, "v2", "app/multi:v2");

    let (_d, store) = new_store();
    let rec = store
        .pull(&reg.reference("app/one:v1"), &opts(PullPolicy::Always))
        .await
        .unwrap();
    assert_eq!(rec.manifest_digest, one.manifest_digest);
    assert_eq!(rec.layers.len(), 1);
    assert_eq!(rec.layers[0].diff_id, one.layers[0].diff_id);
    assert_eq!(
        store.extraction_count(),
        1,
        "layer extracted during the pull"
    );
    let dirs = store.ensure_unpacked(&rec).unwrap();
    let busybox = std::fs::metadata(dirs[0].join("bin/busybox")).unwrap();
    assert_eq!(
        busybox.len(),
        std::fs::metadata(fixtures::busybox_path()).unwrap().len()
    );
    assert_eq!(store.extraction_count(), 1, "nothing left to extract");

    let recorder = Arc::new(Recorder::default());
    let mut o = opts(PullPolicy::Always);
    o.progress = Some(recorder.clone());
    let rec = store
        .pull(&reg.reference("app/multi:v2"), &o)
        .await
        .unwrap();
    assert_eq!(rec.manifest_digest, multi.manifest_digest);
    assert_eq!(rec.layers.len(), 3);
    assert_eq!(store.extraction_count(), 4);
    let dirs = store.ensure_unpacked(&rec).unwrap();
    assert_eq!(
        std::fs::read(dirs[1].join("etc/motd")).unwrap(),
        b"layer1\n"
    );
    assert!(dirs[2].join("layer2.txt").is_file());

    // Progress: every layer started, finished (downloaded) and extracted.
    let events = recorder.events();
    for l in &multi.layers {
        assert!(
            events.contains(&Event::Started(l.digest.clone(), l.size, 0)),
            "{events:?}"
        );
        assert!(events.contains(&Event::Finished(l.digest.clone(), false)));
        assert!(events.contains(&Event::Extracted(l.digest.clone())));
    }
    assert_eq!(
        events.last(),
        Some(&Event::Done(multi.manifest_digest.clone()))
    );
    let layer_bytes: u64 = multi.layers.iter().map(|l| l.size).sum();
    assert_eq!(recorder.total_bytes(), layer_bytes);

    // `always` again: nothing is downloaded twice.
    let recorder = Arc::new(Recorder::default());
    let mut o = opts(PullPolicy::Always);
    o.progress = Some(recorder.clone());
    store
        .pull(&reg.reference("app/multi:v2"), &o)
        .await
        .unwrap();
    assert_eq!(recorder.total_bytes(), 0);
    assert!(recorder
        .events()
        .iter()
        .all(|e| !matches!(e, Event::Started(..) | Event::Finished(_, false))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_by_digest_verifies_the_manifest() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let img = layout(&work.path().join("img"), "v1", &[&[("f", b"by digest")]]);
    reg.push_layout(&img.path, "v1", "app/pinned:v1");
    let by_digest = reg.reference(&format!("app/pinned@{}", img.manifest_digest));

    let (_d, store) = new_store();
    let rec = store
        .pull(&by_digest, &opts(PullPolicy::Always))
        .await
        .unwrap();
    assert_eq!(rec.manifest_digest, img.manifest_digest);
    assert_eq!(rec.reference, by_digest);

    // A digest the registry does not have.
    let unknown = reg.reference(&format!("app/pinned@sha256:{}", "0".repeat(64)));
    let err = store
        .pull(&unknown, &opts(PullPolicy::Always))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ManifestUnknown { .. }), "{err}");

    // Tamper with the manifest in the registry's storage: the bytes served
    // for the digest no longer hash to it.
    let manifest_file = reg.blob_data_path(&img.manifest_digest.to_string());
    let mut bytes = std::fs::read(&manifest_file).unwrap();
    let pos = bytes.len() - 2;
    bytes.insert(pos, b' ');
    std::fs::write(&manifest_file, &bytes).unwrap();
    let (_d2, fresh) = new_store();
    let err = fresh
        .pull(&by_digest, &opts(PullPolicy::Always))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{msg}");
    assert!(msg.contains(&img.manifest_digest.to_string()), "{msg}");
    assert!(fresh.lookup(&by_digest).unwrap().is_none());
    assert!(!fresh.content().has_blob(&img.manifest_digest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_arch_index_selects_linux_amd64() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let amd = layout(&work.path().join("amd"), "amd", &[&[("arch", b"amd64")]]);
    let arm = layout(
        &work.path().join("arm"),
        "arm",
        &[&[("arch", b"arm64")], &[("extra", b"x")]],
    );
    let index = index_layout(&work.path().join("multi"), "multi", &amd, &arm);
    reg.push_layout(&work.path().join("multi"), "multi", "app/multiarch:1");

    let (_d, store) = new_store();
    let rec = store
        .pull(&reg.reference("app/multiarch:1"), &opts(PullPolicy::Always))
        .await
        .unwrap();
    assert_eq!(rec.index_digest.as_ref(), Some(&index));
    assert_eq!(rec.manifest_digest, amd.manifest_digest);
    let dirs = store.ensure_unpacked(&rec).unwrap();
    assert_eq!(std::fs::read(dirs[0].join("arch")).unwrap(), b"amd64");
    // The arm64 image's layers were never fetched.
    for l in &arm.layers {
        assert!(!store.content().has_blob(&l.digest));
    }
    // `newer` compares against the index digest: unchanged, no new pull.
    let recorder = Arc::new(Recorder::default());
    let mut o = opts(PullPolicy::Newer);
    o.progress = Some(recorder.clone());
    let again = store
        .pull(&reg.reference("app/multiarch:1"), &o)
        .await
        .unwrap();
    assert_eq!(again.manifest_digest, amd.manifest_digest);
    assert!(recorder.events().is_empty(), "{:?}", recorder.events());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_tag_and_repository_are_reported() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let img = layout(&work.path().join("img"), "v1", &[&[("f", b"x")]]);
    reg.push_layout(&img.path, "v1", "app/here:v1");
    let (_d, store) = new_store();
    for name in ["app/here:nope", "app/absent:v1"] {
        let reference = reg.reference(name);
        let err = store
            .pull(&reference, &opts(PullPolicy::Always))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "manifest unknown: {reference} not found in {}",
                reg.addr
            )),
            "{msg}"
        );
        assert!(store.lookup(&reference).unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_policies() {
    let mut reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let v1 = layout(&work.path().join("v1"), "v1", &[&[("version", b"1")]]);
    reg.push_layout(&v1.path, "v1", "app/pol:latest");
    let reference = reg.reference("app/pol:latest");
    let (_d, store) = new_store();

    // never + absent: error, no pull.
    let err = store
        .pull(&reference, &opts(PullPolicy::Never))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotPresentPolicyNever { .. }), "{err}");
    assert!(err.to_string().contains("zlayer pull"), "{err}");

    // if_not_present + absent: pulls.
    let rec = store
        .pull(&reference, &opts(PullPolicy::IfNotPresent))
        .await
        .unwrap();
    assert_eq!(rec.manifest_digest, v1.manifest_digest);

    // newer + unchanged: no layer download.
    let recorder = Arc::new(Recorder::default());
    let mut o = opts(PullPolicy::Newer);
    o.progress = Some(recorder.clone());
    let same = store.pull(&reference, &o).await.unwrap();
    assert_eq!(same.manifest_digest, v1.manifest_digest);
    assert!(recorder.events().is_empty());

    // newer + changed tag: pulls the new image.
    let v2 = layout(&work.path().join("v2"), "v2", &[&[("version", b"2")]]);
    reg.push_layout(&v2.path, "v2", "app/pol:latest");
    let newer = store
        .pull(&reference, &opts(PullPolicy::Newer))
        .await
        .unwrap();
    assert_eq!(newer.manifest_digest, v2.manifest_digest);
    assert_eq!(
        store.lookup(&reference).unwrap().unwrap().manifest_digest,
        v2.manifest_digest
    );

    // With the registry gone, if_not_present and never must not touch the network...
    reg.kill();
    assert!(!reg.accepting());
    for policy in [PullPolicy::IfNotPresent, PullPolicy::Never] {
        let rec = store.pull(&reference, &opts(policy)).await.unwrap();
        assert_eq!(rec.manifest_digest, v2.manifest_digest);
    }
    // ...while always does, and says which registry it could not reach.
    let err = store
        .pull(&reference, &opts(PullPolicy::Always))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RegistryUnreachable { .. }), "{err}");
    assert!(err.to_string().contains(&reg.addr), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_share_work() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let base: &[(&str, &[u8])] = &[("base", b"shared base layer")];
    let a = layout(&work.path().join("a"), "a", &[base, &[("a", b"a")]]);
    let b = layout(&work.path().join("b"), "b", &[base, &[("b", b"b")]]);
    reg.push_layout(&a.path, "a", "app/a:1");
    reg.push_layout(&b.path, "b", "app/b:1");
    assert_eq!(a.layers[0].digest, b.layers[0].digest);

    let (dir, store) = new_store();
    // A second handle on the same root, as another caller would have.
    let other = ImageStore::open(&dir.path().join("root")).unwrap();
    let (ref_a, ref_b, o) = (
        reg.reference("app/a:1"),
        reg.reference("app/b:1"),
        opts(PullPolicy::Always),
    );
    let (ra, rb, ra2) = tokio::join!(
        store.pull(&ref_a, &o),
        other.pull(&ref_b, &o),
        store.pull(&ref_a, &o),
    );
    let (ra, rb, ra2) = (ra.unwrap(), rb.unwrap(), ra2.unwrap());
    assert_eq!(ra.manifest_digest, a.manifest_digest);
    assert_eq!(ra2.manifest_digest, a.manifest_digest);
    assert_eq!(rb.manifest_digest, b.manifest_digest);
    // Three distinct layers, each extracted exactly once across both handles.
    assert_eq!(store.extraction_count() + other.extraction_count(), 3);
    for rec in [&ra, &rb] {
        let dirs = store.ensure_unpacked(rec).unwrap();
        assert_eq!(
            std::fs::read(dirs[0].join("base")).unwrap(),
            b"shared base layer"
        );
    }
    assert_eq!(store.extraction_count() + other.extraction_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_registry() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let img = layout(&work.path().join("img"), "v1", &[&[("t", b"token")]]);
    reg.push_layout(&img.path, "v1", "private/tok:v1");
    // A Docker-Hub-style token flow in front of the registry.
    let proxy = FlakyProxy::start(
        &reg.addr,
        Faults {
            bearer: Some(("bob".into(), "hunter2".into())),
            ..Faults::default()
        },
    );
    let reference = format!("{}/private/tok:v1", proxy.addr);
    let (_d, store) = new_store();

    // Anonymous: the token endpoint refuses, and the user is told to log in.
    let err = store
        .pull(&reference, &opts(PullPolicy::Always))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthRequired { .. }), "{err}");
    assert!(err.to_string().contains(&proxy.addr), "{err}");

    // With credentials: a token is fetched for the pull scope and used.
    let o = PullOptions {
        auth: Some(RegistryAuth::new("bob", "hunter2")),
        ..opts(PullPolicy::Always)
    };
    let rec = store.pull(&reference, &o).await.unwrap();
    assert_eq!(rec.manifest_digest, img.manifest_digest);
    let tokens = proxy.token_requests();
    assert!(
        tokens
            .iter()
            .any(|t| t.contains("scope=repository%3Aprivate%2Ftok%3Apull")),
        "{tokens:?}"
    );

    // Wrong password: the token endpoint says no.
    let o = PullOptions {
        auth: Some(RegistryAuth::new("bob", "wrong")),
        ..opts(PullPolicy::Always)
    };
    let err = store.pull(&reference, &o).await.unwrap_err();
    assert!(matches!(err, Error::AuthFailed { .. }), "{err}");
}
