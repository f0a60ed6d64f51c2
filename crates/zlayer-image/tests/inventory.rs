//! Lookup, list, remove, prune, leases and pull decisions.

mod common;

use std::collections::HashSet;

use common::{names, Env};
use zlayer_image::fixtures::{self, FixtureOptions};
use zlayer_image::{Digest, Error, PullDecision, PullPolicy};

fn blob_set(env: &Env) -> HashSet<Digest> {
    env.store
        .content()
        .list_blobs()
        .unwrap()
        .into_iter()
        .collect()
}

fn snapshot_set(env: &Env) -> HashSet<String> {
    names(&env.store.root().join("snapshots/sha256"))
        .into_iter()
        .collect()
}

/// Every blob/snapshot on disk belongs to a stored image, and vice versa.
fn assert_no_orphans(env: &Env) {
    let mut want_blobs = HashSet::new();
    let mut want_snaps = HashSet::new();
    for rec in env.store.list().unwrap() {
        want_blobs.extend(rec.blobs());
        for l in &rec.layers {
            if env.store.snapshot_dir(&l.diff_id).is_some() {
                want_snaps.insert(l.diff_id.hex().to_string());
            }
        }
    }
    assert_eq!(blob_set(env), want_blobs);
    assert_eq!(snapshot_set(env), want_snaps);
}

#[test]
fn lookup_tries_equivalent_spellings_without_rewriting_keys() {
    let env = Env::new();
    let img = fixtures::busybox_layout(&env.path("l"), &FixtureOptions::default()).unwrap();
    let rec = env
        .store
        .load(&img.path, Some("busybox"))
        .unwrap()
        .remove(0);
    assert_eq!(rec.reference, "busybox");
    for spelling in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        "library/busybox",
        "index.docker.io/library/busybox",
    ] {
        let found = env
            .store
            .lookup(spelling)
            .unwrap()
            .unwrap_or_else(|| panic!("{spelling}"));
        assert_eq!(found.reference, "busybox", "key kept as typed");
    }
    assert!(env.store.lookup("busybox:other").unwrap().is_none());
    assert!(env.store.lookup("localhost/busybox").unwrap().is_none());
    // By digest.
    assert_eq!(
        env.store
            .lookup(&rec.manifest_digest.to_string())
            .unwrap()
            .unwrap()
            .reference,
        "busybox"
    );
    // Recording an equivalent spelling updates the same record.
    let again = env
        .store
        .record_image("docker.io/library/busybox:latest", &rec.manifest_digest)
        .unwrap();
    assert_eq!(again.reference, "busybox");
    assert_eq!(env.store.list().unwrap().len(), 1);
    // Bad input is an error, not a miss.
    assert!(matches!(
        env.store.lookup("Not Valid").unwrap_err(),
        Error::InvalidReference { .. }
    ));
}

#[test]
fn record_image_requires_blobs() {
    let env = Env::new();
    let missing = Digest::of(b"nothing");
    let err = env
        .store
        .record_image("localhost/a/b:c", &missing)
        .unwrap_err();
    assert!(matches!(err, Error::BlobNotFound { .. }), "{err}");
    // A manifest whose layer blob is absent.
    let img = fixtures::busybox_layout(&env.path("l"), &FixtureOptions::default()).unwrap();
    let blobs = img.path.join("blobs/sha256");
    let cs = env.store.content();
    for d in [&img.manifest_digest, &img.config_digest] {
        cs.put_blob(d, &std::fs::read(blobs.join(d.hex())).unwrap())
            .unwrap();
    }
    let err = env
        .store
        .record_image("localhost/a/b:c", &img.manifest_digest)
        .unwrap_err();
    assert!(
        matches!(err, Error::BlobNotFound { ref digest, .. } if *digest == img.layers[0].digest.to_string()),
        "{err}"
    );
    assert!(env.store.list().unwrap().is_empty());
}

#[test]
fn list_remove_prune_leave_no_orphans() {
    let env = Env::new();
    let (_bb, bb) = env.load_busybox(&FixtureOptions::default());
    let (_ml, ml) = env.load_multilayer(&FixtureOptions::default());
    env.store.ensure_unpacked(&bb).unwrap();
    env.store.ensure_unpacked(&ml).unwrap();
    let list = env.store.list().unwrap();
    assert_eq!(
        list.iter()
            .map(|r| r.reference.as_str())
            .collect::<Vec<_>>(),
        vec![fixtures::MULTILAYER_REF, fixtures::BUSYBOX_REF]
    );
    assert!(list
        .iter()
        .all(|r| r.size > 0 && r.created.is_some() && r.stored_at > 0));

    // Nothing to prune while everything is referenced.
    let report = env.store.prune().unwrap();
    assert!(
        report.blobs_removed.is_empty() && report.snapshots_removed.is_empty(),
        "{report:?}"
    );
    assert_no_orphans(&env);

    env.store.remove(fixtures::MULTILAYER_REF).unwrap();
    assert!(env
        .store
        .lookup(fixtures::MULTILAYER_REF)
        .unwrap()
        .is_none());
    assert!(matches!(
        env.store.remove(fixtures::MULTILAYER_REF).unwrap_err(),
        Error::ImageNotFound { .. }
    ));
    // Remove alone keeps the data; prune deletes exactly the multilayer image's data.
    assert_eq!(snapshot_set(&env).len(), 4);
    let report = env.store.prune().unwrap();
    assert_eq!(report.snapshots_removed.len(), 3);
    assert_eq!(
        report.blobs_removed.len(),
        5,
        "manifest, config, 3 layers: {report:?}"
    );
    assert!(report.bytes_freed > 1_000_000);
    assert_no_orphans(&env);
    // The busybox image still works.
    let rootfs = env.store.prepare_rootfs(&bb, &env.path("c")).unwrap();
    assert!(rootfs.path.join("bin/busybox").is_file());
    env.store.release_rootfs(&env.path("c")).unwrap();

    // index.json lists only what is stored.
    let idx: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.store.content().dir().join("index.json")).unwrap(),
    )
    .unwrap();
    let refs: Vec<_> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(refs, vec![fixtures::BUSYBOX_REF.to_string()]);

    env.store.remove(fixtures::BUSYBOX_REF).unwrap();
    env.store.prune().unwrap();
    assert!(blob_set(&env).is_empty());
    assert!(snapshot_set(&env).is_empty());
}

#[test]
fn leases_keep_layers_of_running_containers() {
    let env = Env::new();
    let (_ml, ml) = env.load_multilayer(&FixtureOptions::default());
    let cdir = env.path("ctr");
    let rootfs = env.store.prepare_rootfs(&ml, &cdir).unwrap();
    env.store.remove(fixtures::MULTILAYER_REF).unwrap();
    let report = env.store.prune().unwrap();
    assert!(report.snapshots_removed.is_empty(), "{report:?}");
    assert!(report.blobs_removed.is_empty(), "{report:?}");
    assert!(
        rootfs.path.join("data/keep.txt").is_file(),
        "the running rootfs still works"
    );
    env.store.release_rootfs(&cdir).unwrap();
    let report = env.store.prune().unwrap();
    assert_eq!(report.snapshots_removed.len(), 3);
    assert!(blob_set(&env).is_empty() && snapshot_set(&env).is_empty());

    // A lease whose holder vanished (crashed container) is dropped by prune.
    let (_bb, bb) = env.load_busybox(&FixtureOptions::default());
    env.store.ensure_unpacked(&bb).unwrap();
    let holder = env.path("vm-holder");
    std::fs::create_dir(&holder).unwrap();
    env.store.register_use(&holder, &bb).unwrap();
    env.store.remove(fixtures::BUSYBOX_REF).unwrap();
    assert!(env.store.prune().unwrap().snapshots_removed.is_empty());
    std::fs::remove_dir(&holder).unwrap();
    let report = env.store.prune().unwrap();
    assert_eq!(report.stale_leases_removed, 1);
    assert_eq!(report.snapshots_removed.len(), 1);
    env.store.unregister_use(&holder).unwrap();
}

#[test]
fn pull_decisions() {
    let env = Env::new();
    let (_bb, bb) = env.load_busybox(&FixtureOptions::default());
    let present = fixtures::BUSYBOX_REF;
    let absent = "localhost/zlayer/absent:1";
    use PullPolicy::*;
    assert_eq!(
        env.store.pull_decision(present, IfNotPresent).unwrap(),
        PullDecision::UseLocal(bb.clone())
    );
    assert_eq!(
        env.store.pull_decision(present, Never).unwrap(),
        PullDecision::UseLocal(bb.clone())
    );
    assert_eq!(
        env.store.pull_decision(present, Always).unwrap(),
        PullDecision::MustPull
    );
    assert_eq!(
        env.store.pull_decision(present, Newer).unwrap(),
        PullDecision::CheckRemote(bb.manifest_digest.clone())
    );
    for p in [IfNotPresent, Always, Newer] {
        assert_eq!(
            env.store.pull_decision(absent, p).unwrap(),
            PullDecision::MustPull,
            "{p:?}"
        );
    }
    let err = env.store.pull_decision(absent, Never).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("image {absent} not found locally and pull policy is never; run `zlayer pull {absent}` or `zlayer load`")
    );
    // An image whose blobs went missing counts as absent.
    std::fs::remove_file(env.store.content().blob_path(&bb.layers[0].digest)).unwrap();
    assert_eq!(
        env.store.pull_decision(present, IfNotPresent).unwrap(),
        PullDecision::MustPull
    );
    assert!(env.store.pull_decision(present, Never).is_err());
}
