//! Pulls from a registry with htpasswd (basic) auth: 401 without
//! credentials, credentials passed in the call, wrong credentials, and
//! credentials from a Docker `config.json` found through `DOCKER_CONFIG`.
//!
//! One test function on purpose: it changes `DOCKER_CONFIG` for the process.

#[path = "common/images.rs"]
mod images;
#[path = "common/registry.rs"]
mod registry_helper;

use base64::Engine as _;
use images::layout;
use registry_helper::TestRegistry;
use zlayer_image::{Error, ImageStore, PullOptions, PullPolicy, RegistryAuth};

fn new_store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("root")).unwrap();
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_registry() {
    let reg = TestRegistry::start_with_auth("alice", "s3cret:pw");
    let work = tempfile::tempdir().unwrap();
    let img = layout(&work.path().join("img"), "v1", &[&[("secret", b"data")]]);
    reg.push_layout(&img.path, "v1", "private/app:v1");
    let reference = reg.reference("private/app:v1");

    // No credentials anywhere: an empty Docker config directory.
    let empty = tempfile::tempdir().unwrap();
    std::env::set_var("DOCKER_CONFIG", empty.path());
    let always = PullOptions {
        policy: PullPolicy::Always,
        ..PullOptions::default()
    };
    let (_d, store) = new_store();
    let err = store.pull(&reference, &always).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::AuthRequired { .. }), "{msg}");
    assert!(
        msg.contains(&format!("authentication required for {}", reg.addr)),
        "{msg}"
    );
    assert!(msg.contains("docker login"), "{msg}");

    // Wrong password in the call.
    let wrong = PullOptions {
        auth: Some(RegistryAuth::new("alice", "nope")),
        ..always.clone()
    };
    let err = store.pull(&reference, &wrong).await.unwrap_err();
    assert!(matches!(err, Error::AuthFailed { .. }), "{err}");
    assert!(err.to_string().contains("\"alice\""), "{err}");
    assert!(store.lookup(&reference).unwrap().is_none());

    // Right credentials in the call.
    let right = PullOptions {
        auth: Some(RegistryAuth::new("alice", "s3cret:pw")),
        ..always.clone()
    };
    let rec = store.pull(&reference, &right).await.unwrap();
    assert_eq!(rec.manifest_digest, img.manifest_digest);

    // Credentials from $DOCKER_CONFIG/config.json (base64 `auth`).
    let cfg = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:pw");
    std::fs::write(
        cfg.path().join("config.json"),
        format!(
            r#"{{"auths":{{"other.example":{{"auth":"Zm9vOmJhcg=="}},"{}":{{"auth":"{auth}"}}}}}}"#,
            reg.addr
        ),
    )
    .unwrap();
    std::env::set_var("DOCKER_CONFIG", cfg.path());
    let (_d2, fresh) = new_store();
    let rec = fresh.pull(&reference, &always).await.unwrap();
    assert_eq!(rec.manifest_digest, img.manifest_digest);
    let dirs = fresh.ensure_unpacked(&rec).unwrap();
    assert_eq!(std::fs::read(dirs[0].join("secret")).unwrap(), b"data");

    // A malformed config file is reported with its path.
    std::fs::write(cfg.path().join("config.json"), "{not json").unwrap();
    let err = fresh.pull(&reference, &always).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::DockerConfig { .. }), "{msg}");
    assert!(msg.contains("config.json"), "{msg}");
    std::env::remove_var("DOCKER_CONFIG");
}
