//! Pulls under failure: corrupt blobs, 503s, connections cut mid-blob, and a
//! registry killed mid-pull then restarted on the same storage.

#[path = "common/images.rs"]
mod images;
#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/registry.rs"]
mod registry_helper;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use images::{big_layout, layout, Event, Recorder};
use proxy::{Faults, FlakyProxy};
use registry_helper::TestRegistry;
use zlayer_image::{Digest, Error, ImageStore, PullOptions, PullPolicy};

fn always() -> PullOptions {
    PullOptions {
        policy: PullPolicy::Always,
        ..PullOptions::default()
    }
}

fn with_progress(r: &Arc<Recorder>) -> PullOptions {
    PullOptions {
        progress: Some(r.clone()),
        ..always()
    }
}

fn new_store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("root")).unwrap();
    (dir, store)
}

/// Files left in the content store's ingest area (partial downloads).
fn partials(store: &ImageStore) -> Vec<(String, u64)> {
    let dir = store.content().dir().join("ingest");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with(".partial") {
            out.push((name, e.metadata().unwrap().len()));
        }
    }
    out
}

/// Every blob file in the store hashes to its name.
fn assert_blobs_verified(store: &ImageStore) {
    for d in store.content().list_blobs().unwrap() {
        let bytes = std::fs::read(store.content().blob_path(&d)).unwrap();
        assert_eq!(Digest::of(&bytes), d, "blob {d} is corrupt");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_blob_is_rejected_and_never_visible() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let img = layout(
        &work.path().join("img"),
        "v1",
        &[
            &[("good", b"good layer")],
            &[("bad", b"this layer gets corrupted")],
        ],
    );
    reg.push_layout(&img.path, "v1", "app/corrupt:v1");
    let bad = &img.layers[1];
    // Same size, different bytes.
    let data = reg.blob_data_path(&bad.digest.to_string());
    let mut bytes = std::fs::read(&data).unwrap();
    for b in bytes.iter_mut().skip(20) {
        *b ^= 0x5a;
    }
    std::fs::write(&data, &bytes).unwrap();

    let (_d, store) = new_store();
    let reference = reg.reference("app/corrupt:v1");
    let err = store.pull(&reference, &always()).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{msg}");
    assert!(msg.contains(&format!("expected {}", bad.digest)), "{msg}");
    assert!(
        msg.contains(&format!("got {}", Digest::of(&bytes))),
        "{msg}"
    );
    assert!(store.lookup(&reference).unwrap().is_none());
    assert!(!store.content().has_blob(&bad.digest));
    // The corrupt download was discarded (other layers' partials may stay for a resume).
    assert!(
        !partials(&store)
            .iter()
            .any(|(name, _)| name.starts_with(bad.digest.hex())),
        "{:?}",
        partials(&store)
    );
    assert!(store.snapshot_dir(&bad.diff_id).is_none());
    assert_blobs_verified(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_503_and_resumes_a_cut_connection() {
    let reg = TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    let img = big_layout(&work.path().join("img"), "v1", 1, 3 << 20);
    reg.push_layout(&img.path, "v1", "app/flaky:v1");
    let layer = &img.layers[0];

    // Two 503s, then a connection cut 1 MiB into the layer, then fine.
    let proxy = FlakyProxy::start(
        &reg.addr,
        Faults {
            blob_503s: 2,
            blob_cuts: 2,
            cut_after: 1 << 20,
            ..Faults::default()
        },
    );
    let reference = format!("{}/app/flaky:v1", proxy.addr);
    let (_d, store) = new_store();
    let recorder = Arc::new(Recorder::default());
    let rec = store
        .pull(&reference, &with_progress(&recorder))
        .await
        .unwrap();
    assert_eq!(rec.manifest_digest, img.manifest_digest);
    assert_blobs_verified(&store);

    // The config blob took the 503s and the first cut; the layer was cut
    // once and then resumed with a range request from where it stopped.
    let ranges = proxy.range_headers();
    let resumed: Vec<&String> = ranges
        .iter()
        .filter(|r| r.starts_with("bytes=") && !r.starts_with("bytes=0-"))
        .collect();
    assert!(!resumed.is_empty(), "no resumed range request: {ranges:?}");
    let events = recorder.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Retrying(d, off) if d == &layer.digest && *off > 0)),
        "{events:?}"
    );
    // Resuming did not download the layer twice.
    assert!(
        recorder.total_bytes() < layer.size + (1 << 20),
        "{}",
        recorder.total_bytes()
    );
}

async fn pull_until_killed(
    store: &ImageStore,
    reference: String,
    killer: registry_helper::Killer,
    after: u64,
) -> Arc<Recorder> {
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    let recorder = Arc::new(Recorder {
        on_bytes: Some(Box::new(move |total| {
            if total >= after && !f.swap(true, Ordering::SeqCst) {
                killer.kill();
            }
        })),
        ..Recorder::default()
    });
    let err = store
        .pull(&reference, &with_progress(&recorder))
        .await
        .unwrap_err();
    assert!(fired.load(Ordering::SeqCst));
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            Error::RegistryUnreachable { .. } | Error::Registry { .. }
        ),
        "{msg}"
    );
    recorder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_registry_mid_pull_resumes_on_restart() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("registry-storage");
    std::fs::create_dir_all(&storage).unwrap();
    let img = big_layout(&work.path().join("img"), "v1", 3, 8 << 20);
    let total: u64 = img.layers.iter().map(|l| l.size).sum();

    let (_d, store) = new_store();
    let kept = {
        let reg = TestRegistry::start_on(&storage);
        reg.push_layout(&img.path, "v1", "app/big:v1");
        let reference = reg.reference("app/big:v1");
        // Kill the registry after a third of the bytes.
        let _ = pull_until_killed(&store, reference.clone(), reg.killer(), total / 3).await;
        assert!(store.lookup(&reference).unwrap().is_none());
        // The interrupted layer's partial download is kept for the next
        // pull (how many bytes reached it depends on when the kill landed;
        // byte-exact resumption is covered by `retries_503_and_resumes_a_cut_connection`).
        let left = partials(&store);
        assert!(!left.is_empty(), "no partial download was kept");
        assert_blobs_verified(&store);
        left
    };

    // Same storage, new process (and port): the pull completes, resuming.
    let reg = TestRegistry::start_on(&storage);
    let reference = reg.reference("app/big:v1");
    let recorder = Arc::new(Recorder::default());
    let rec = store
        .pull(&reference, &with_progress(&recorder))
        .await
        .unwrap();
    assert_eq!(rec.manifest_digest, img.manifest_digest);
    let resumed_from: u64 = recorder
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Started(_, _, off) => Some(*off),
            _ => None,
        })
        .sum();
    // A kill that lands before any byte of the pending layers arrived
    // leaves only empty partials: nothing to resume from then.
    if kept.iter().any(|(_, len)| *len > 0) {
        assert!(resumed_from > 0, "kept {kept:?}; {:?}", recorder.events());
    }
    assert!(
        recorder.total_bytes() + resumed_from <= total,
        "downloaded {} + resumed {resumed_from} > {total}",
        recorder.total_bytes()
    );
    assert!(partials(&store).is_empty(), "{:?}", partials(&store));
    assert_blobs_verified(&store);
    let dirs = store.ensure_unpacked(&rec).unwrap();
    for (i, dir) in dirs.iter().enumerate() {
        let data = std::fs::read(dir.join(format!("data/blob{i}"))).unwrap();
        assert_eq!(data, images::random_bytes(8 << 20, i as u64 + 1));
    }
}
