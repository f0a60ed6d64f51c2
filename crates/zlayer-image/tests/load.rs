//! Loading OCI layouts, oci-archives and docker-archives; cross-checks with skopeo and umoci.

mod common;

use std::process::Command;

use common::Env;
use zlayer_image::fixtures::{self, FixtureFormat, FixtureOptions, FIXTURE_LABEL, FIXTURE_PATH};
use zlayer_image::{Error, ImageRecord};

fn check_busybox_record(env: &Env, rec: &ImageRecord, reference: &str, layers: usize) {
    assert_eq!(rec.reference, reference);
    assert_eq!(rec.layers.len(), layers);
    assert!(rec.size > 1_000_000, "busybox is in there: {}", rec.size);
    assert_eq!(rec.created.as_deref(), Some("2023-11-14T22:13:20Z"));
    for d in rec.blobs() {
        assert!(env.store.content().has_blob(&d), "{d}");
    }
    let cfg = env.store.image_config(rec).unwrap();
    assert_eq!(cfg.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(cfg.env, vec![FIXTURE_PATH.to_string()]);
    assert!(cfg.labels.contains_key(FIXTURE_LABEL));
    assert_eq!(cfg.os, "linux");
    assert_eq!(env.store.lookup(reference).unwrap().as_ref(), Some(rec));
}

#[test]
fn loads_all_three_formats() {
    let env = Env::new();
    let opts = FixtureOptions::default();
    let multi = FixtureOptions::named("localhost/zlayer/multi-docker:v1");
    let cases = [
        (
            FixtureFormat::OciLayout,
            "bb-layout",
            fixtures::busybox_image(&FixtureOptions::named("localhost/zlayer/bb-layout:1"))
                .unwrap(),
            1,
        ),
        (
            FixtureFormat::OciArchive,
            "bb.oci.tar",
            fixtures::busybox_image(&FixtureOptions::named("localhost/zlayer/bb-oci:1")).unwrap(),
            1,
        ),
        (
            FixtureFormat::DockerArchive,
            "bb.docker.tar",
            fixtures::busybox_image(&opts).unwrap(),
            1,
        ),
        (
            FixtureFormat::DockerArchive,
            "multi.docker.tar",
            fixtures::multilayer_image(&multi).unwrap(),
            3,
        ),
        (
            FixtureFormat::OciArchive,
            "multi.oci.tar",
            fixtures::multilayer_image(&FixtureOptions::default()).unwrap(),
            3,
        ),
    ];
    for (format, name, image, layers) in cases {
        let written = fixtures::write(&image, format, &env.path(name)).unwrap();
        let recs = env.store.load(&written.path, None).unwrap();
        assert_eq!(recs.len(), 1, "{name}");
        check_busybox_record(&env, &recs[0], &written.reference, layers);
        if format != FixtureFormat::DockerArchive {
            assert_eq!(recs[0].manifest_digest, written.manifest_digest, "{name}");
        }
        // The layers' diff_ids match the fixture's, whatever the format.
        let diff_ids: Vec<_> = recs[0].layers.iter().map(|l| l.diff_id.clone()).collect();
        let want: Vec<_> = written.layers.iter().map(|l| l.diff_id.clone()).collect();
        assert_eq!(diff_ids, want, "{name}");
        // And they unpack.
        env.store.ensure_unpacked(&recs[0]).unwrap();
    }
    assert_eq!(env.store.list().unwrap().len(), 5);
}

#[test]
fn load_with_tag_and_compressed_docker_archive() {
    let env = Env::new();
    let img =
        fixtures::busybox_docker_archive(&env.path("bb.tar"), &FixtureOptions::default()).unwrap();
    // `docker save | gzip` is accepted too.
    let gz = env.path("bb.tar.gz");
    let raw = std::fs::read(&img.path).unwrap();
    std::fs::write(
        &gz,
        fixtures::LayerCompression::Gzip.compress(&raw).unwrap(),
    )
    .unwrap();
    let recs = env.store.load(&gz, Some("busybox:test")).unwrap();
    assert_eq!(recs[0].reference, "busybox:test");
    assert!(env
        .store
        .lookup("docker.io/library/busybox:test")
        .unwrap()
        .is_some());
    assert!(
        env.store.lookup(&img.reference).unwrap().is_none(),
        "the tag replaces the archive's name"
    );
    assert!(matches!(
        env.store.load(&gz, Some("Bad Tag")).unwrap_err(),
        Error::InvalidReference { .. }
    ));
}

#[test]
fn untagged_and_corrupt_inputs_are_rejected() {
    let env = Env::new();
    let img = fixtures::busybox_layout(&env.path("layout"), &FixtureOptions::default()).unwrap();
    // Strip the names from index.json.
    let idx = std::fs::read_to_string(img.path.join("index.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&idx).unwrap();
    v["manifests"][0]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    std::fs::write(img.path.join("index.json"), serde_json::to_vec(&v).unwrap()).unwrap();
    let err = env.store.load(&img.path, None).unwrap_err();
    assert!(err.to_string().contains("--tag"), "{err}");
    let recs = env.store.load(&img.path, Some("localhost/x/y:z")).unwrap();
    assert_eq!(recs[0].reference, "localhost/x/y:z");

    // Flip a byte in the layer blob: the load fails and nothing is recorded.
    let env = Env::new();
    let img = fixtures::busybox_layout(&env.path("layout"), &FixtureOptions::default()).unwrap();
    let blob = img
        .path
        .join("blobs/sha256")
        .join(img.layers[0].digest.hex());
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[1000] ^= 0x55;
    std::fs::write(&blob, bytes).unwrap();
    let err = env.store.load(&img.path, None).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(env.store.list().unwrap().is_empty());
    assert!(!env.store.content().has_blob(&img.layers[0].digest));

    // Truncated archive.
    let arch =
        fixtures::busybox_oci_archive(&env.path("a.tar"), &FixtureOptions::default()).unwrap();
    let bytes = std::fs::read(&arch.path).unwrap();
    std::fs::write(&arch.path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(env.store.load(&arch.path, None).is_err());
    assert!(env.store.list().unwrap().is_empty());

    // Not an image at all.
    std::fs::write(env.path("junk"), b"junk").unwrap();
    let err = env.store.load(&env.path("junk"), None).unwrap_err();
    assert!(matches!(err, Error::Load { .. }), "{err}");
    let err = env.store.load(&env.path("missing"), None).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn skopeo_and_umoci_read_fixtures_and_the_store() {
    let env = Env::new();
    let layout =
        fixtures::multilayer_layout(&env.path("layout"), &FixtureOptions::default()).unwrap();
    let out =
        run(Command::new("skopeo")
            .args(["inspect", &format!("oci:{}:latest", layout.path.display())]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], layout.manifest_digest.to_string());
    assert_eq!(v["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(v["Labels"][FIXTURE_LABEL], "busybox-multilayer");

    let arch =
        fixtures::busybox_oci_archive(&env.path("bb.oci.tar"), &FixtureOptions::default()).unwrap();
    let out = run(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("oci-archive:{}", arch.path.display()),
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["config"]["Cmd"], serde_json::json!(["sh"]));

    let darch =
        fixtures::busybox_docker_archive(&env.path("bb.docker.tar"), &FixtureOptions::default())
            .unwrap();
    let out = run(Command::new("skopeo").args([
        "inspect",
        "--config",
        &format!("docker-archive:{}", darch.path.display()),
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["config"]["Env"], serde_json::json!([FIXTURE_PATH]));

    // umoci unpacks the layout (and so applies our whiteouts its own way).
    let bundle = env.path("bundle");
    run(Command::new("umoci")
        .args([
            "unpack",
            "--image",
            &format!("{}:latest", layout.path.display()),
        ])
        .arg(&bundle));
    assert_eq!(
        common::names(&bundle.join("rootfs/opaque")),
        vec!["upper.txt"]
    );
    assert_eq!(
        common::names(&bundle.join("rootfs/data")),
        vec!["keep.txt", "new.txt", "recreated.txt"]
    );

    // The content store itself is an OCI layout skopeo can read.
    let rec = env.store.load(&layout.path, None).unwrap().remove(0);
    let content = env.store.content().dir().to_path_buf();
    let out = run(Command::new("skopeo").args([
        "inspect",
        &format!("oci:{}:{}", content.display(), rec.reference),
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], rec.manifest_digest.to_string());
    // And can copy an image out of it, verifying every blob.
    let copy = env.path("copied");
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &format!("oci:{}:{}", content.display(), rec.reference),
        &format!("oci:{}:x", copy.display()),
    ]));
    assert!(copy.join("index.json").is_file());
}
