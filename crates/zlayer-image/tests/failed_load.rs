//! A load that fails leaves nothing behind (no partial blob, no blob that
//! no image uses), and prune removes every partial download.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use common::Env;
use zlayer_image::fixtures::{self, FixtureOptions, LayerCompression, RandomImageOptions};
use zlayer_image::{Digest, Error};

fn blobs(env: &Env) -> HashSet<Digest> {
    env.store
        .content()
        .list_blobs()
        .unwrap()
        .into_iter()
        .collect()
}

fn partials(env: &Env) -> Vec<PathBuf> {
    let dir = env.store.root().join("content/ingest");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".partial"))
        .collect()
}

/// Two random layers of 1 MiB each on busybox, as a gzipped oci-archive
/// cut at `keep` of its length: reading it fails in the middle of a blob
/// (gzip's "unexpected end of file").
fn truncated_archive(env: &Env, keep: f64) -> PathBuf {
    let opts = RandomImageOptions {
        reference: "localhost/zlayer/random:failed-load".into(),
        layers: 2,
        total_bytes: 2 << 20,
        files_per_layer: 2,
        compression: LayerCompression::Gzip,
        seed: 7,
    };
    let tar = env.path("random.tar");
    fixtures::random_image(&opts)
        .unwrap()
        .write_oci_archive(&tar)
        .unwrap();
    let bytes = std::fs::read(&tar).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    let mut gz = gz.finish().unwrap();
    gz.truncate((gz.len() as f64 * keep) as usize);
    let path = env.path("random.tar.gz");
    std::fs::write(&path, gz).unwrap();
    path
}

#[test]
fn a_truncated_archive_leaves_no_partial_and_no_new_blob() {
    let env = Env::new();
    env.load_busybox(&FixtureOptions::default());
    let before = blobs(&env);
    // Cut in the middle of the last random layer: the read fails while
    // that blob is being written, after others were stored.
    let archive = truncated_archive(&env, 0.8);
    let err = env.store.load(&archive, None).unwrap_err();
    assert!(matches!(err, Error::Load { .. }), "{err}");
    assert_eq!(partials(&env), Vec::<PathBuf>::new());
    assert_eq!(blobs(&env), before, "the failed load's blobs are gone");
    // The store still holds (and can load again) what it had.
    env.load_busybox(&FixtureOptions::default());
}

#[test]
fn a_corrupt_layer_in_a_layout_leaves_no_new_blob() {
    let env = Env::new();
    let before = blobs(&env);
    let img = fixtures::multilayer_layout(&env.path("multi"), &FixtureOptions::default()).unwrap();
    // Same size, other bytes: the last layer fails its digest check after
    // the manifest, the config and the lower layers were stored.
    let top = img.layers.last().unwrap();
    let blob = img.path.join("blobs/sha256").join(top.digest.hex());
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::File::create(&blob)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    let err = env.store.load(&img.path, None).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert_eq!(blobs(&env), before);
    assert_eq!(partials(&env), Vec::<PathBuf>::new());
}

#[test]
fn a_failed_load_keeps_blobs_an_image_uses() {
    let env = Env::new();
    let (_, busybox) = env.load_busybox(&FixtureOptions::default());
    let archive = truncated_archive(&env, 0.9);
    assert!(env.store.load(&archive, None).is_err());
    for d in busybox.blobs() {
        assert!(env.store.content().has_blob(&d), "{d} of busybox is kept");
    }
}

#[test]
fn prune_removes_every_partial_download_and_counts_it() {
    let env = Env::new();
    let data = vec![7u8; 300_000];
    let digest = Digest::of(&data);
    {
        // A pull that stopped half-way keeps its partial to resume it.
        let mut ingest = env
            .store
            .content()
            .begin_ingest(&digest, Some(data.len() as u64))
            .unwrap();
        ingest.write_all(&data[..100_000]).unwrap();
    }
    let left = partials(&env);
    assert_eq!(left.len(), 1, "{left:?}");
    let usage = env.store.usage().unwrap();
    assert_eq!(usage.partials.len(), 1);
    assert_eq!(usage.partials[0].size, 100_000);
    let report = env.store.prune().unwrap();
    assert_eq!(report.partials_removed.len(), 1);
    assert_eq!(report.partials_removed[0].path, left[0]);
    assert_eq!(report.partials_removed[0].size, 100_000);
    assert!(report.bytes_freed >= 100_000, "{report:?}");
    assert_eq!(partials(&env), Vec::<PathBuf>::new());
}
