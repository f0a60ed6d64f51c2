//! The fixture builders themselves: reproducibility, options, random images.

mod common;

use common::Env;
use zlayer_image::fixtures::{
    self, FixtureConfig, FixtureOptions, LayerCompression, RandomImageOptions,
};
use zlayer_image::Digest;

#[test]
fn fixtures_are_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let a = fixtures::multilayer_layout(&tmp.path().join("a"), &FixtureOptions::default()).unwrap();
    let b = fixtures::multilayer_layout(&tmp.path().join("b"), &FixtureOptions::default()).unwrap();
    assert_eq!(a.manifest_digest, b.manifest_digest);
    assert_eq!(a.reference, fixtures::MULTILAYER_REF);
    // The manifest digest is the digest of the manifest blob actually written.
    let m = std::fs::read(a.path.join("blobs/sha256").join(a.manifest_digest.hex())).unwrap();
    assert_eq!(Digest::of(&m), a.manifest_digest);
    for l in &a.layers {
        let blob = std::fs::read(a.path.join("blobs/sha256").join(l.digest.hex())).unwrap();
        assert_eq!(Digest::of(&blob), l.digest);
        assert_eq!(blob.len() as u64, l.size);
    }
}

#[test]
fn options_change_config_compression_and_files() {
    let env = Env::new();
    let mut config = FixtureConfig::standard("custom");
    config.entrypoint = Some(vec!["/bin/httpd".into(), "-f".into()]);
    config.cmd = Some(vec!["-p".into(), "8080".into()]);
    config.working_dir = Some("/var/www".into());
    config.user = Some("65534:65534".into());
    config.exposed_ports = vec!["8080/tcp".into()];
    config.stop_signal = Some("SIGQUIT".into());
    let opts = FixtureOptions {
        reference: Some("localhost/zlayer/custom:2".into()),
        compression: LayerCompression::Zstd,
        config: Some(config),
        extra_files: vec![(
            "/app/run.sh".into(),
            b"#!/bin/sh\necho run\n".to_vec(),
            0o755,
        )],
    };
    let img = fixtures::multilayer_oci_archive(&env.path("m.tar"), &opts).unwrap();
    assert!(img.layers.iter().all(|l| l.media_type.ends_with("+zstd")));
    let rec = env.store.load(&img.path, None).unwrap().remove(0);
    assert_eq!(rec.reference, "localhost/zlayer/custom:2");
    let cfg = env.store.image_config(&rec).unwrap();
    assert_eq!(
        cfg.entrypoint.as_deref(),
        Some(&["/bin/httpd".to_string(), "-f".to_string()][..])
    );
    assert_eq!(
        cfg.cmd.as_deref(),
        Some(&["-p".to_string(), "8080".to_string()][..])
    );
    assert_eq!(cfg.working_dir.as_deref(), Some("/var/www"));
    assert_eq!(cfg.user.as_deref(), Some("65534:65534"));
    assert_eq!(cfg.exposed_ports, vec!["8080/tcp".to_string()]);
    assert_eq!(cfg.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(
        cfg.labels.get(fixtures::FIXTURE_LABEL).map(String::as_str),
        Some("custom")
    );
    assert_eq!(
        cfg.env_var("PATH"),
        Some(&fixtures::FIXTURE_PATH["PATH=".len()..])
    );
    let rootfs = env.store.prepare_rootfs(&rec, &env.path("c")).unwrap();
    assert_eq!(
        std::fs::read(rootfs.path.join("app/run.sh")).unwrap(),
        b"#!/bin/sh\necho run\n"
    );
    env.store.release_rootfs(&env.path("c")).unwrap();
}

#[test]
fn random_images_are_incompressible_and_unpack() {
    let env = Env::new();
    let opts = RandomImageOptions {
        layers: 3,
        total_bytes: 3 * 1024 * 1024,
        files_per_layer: 2,
        seed: 7,
        ..Default::default()
    };
    let img = fixtures::random_layout(&env.path("r"), &opts).unwrap();
    assert_eq!(img.layers.len(), 4, "busybox base + 3 random layers");
    for l in &img.layers[1..] {
        assert!(
            l.size > 1_000_000,
            "random data does not compress: {}",
            l.size
        );
        assert!(l.tar_size >= 1024 * 1024);
    }
    // Same seed, same image; other seed, other data.
    let again = fixtures::random_layout(&env.path("r2"), &opts).unwrap();
    assert_eq!(again.manifest_digest, img.manifest_digest);
    let other = fixtures::random_layout(
        &env.path("r3"),
        &RandomImageOptions {
            seed: 8,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_ne!(other.layers[1].diff_id, img.layers[1].diff_id);

    let rec = env.store.load(&img.path, None).unwrap().remove(0);
    let dirs = env.store.ensure_unpacked(&rec).unwrap();
    let f = dirs[2].join("random1/file1.bin");
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 512 * 1024);
}
