//! Sandbox runtime: images from the node's image store (layers merged into
//! the container's rootfs, config defaults, leases).

mod sandbox_support;

use sandbox_support::*;
use zlayer_image::fixtures::{self, FixtureOptions, MULTILAYER_REF};
use zlayer_runtime::{ContainerState, Runtime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_a_multilayer_store_image() {
    let (rt, tmp) = runtime(false);
    let layout = tmp.path().join("layout");
    fixtures::multilayer_layout(&layout, &FixtureOptions::default()).unwrap();
    rt.images().load(&layout, None).unwrap();

    rt.pull_image(MULTILAYER_REF).await.unwrap();
    assert!(rt
        .list_images()
        .await
        .unwrap()
        .iter()
        .any(|i| i.reference == MULTILAYER_REF && i.digest.is_some()));

    let id = cid("store");
    let mut s = zlayer_spec::ServiceSpec::minimal("store", MULTILAYER_REF);
    // The image's Cmd is `sh`; give it a script (PATH comes from the image).
    s.command.args = Some(vec![
        "sh".into(),
        "-c".into(),
        "ls data; ls opaque; cat etc/motd; echo path=$PATH".into(),
    ]);
    rt.create_from_spec(&id, &s).await.unwrap();
    let root = cdir(&rt, &id).join("rootfs");
    assert!(root.join("bin/busybox").is_file());
    // Whiteouts and opaque directories were applied while merging.
    assert!(!root.join("data/gone.txt").exists() && !root.join("data/dir-gone").exists());
    assert!(!root.join("opaque/lower1.txt").exists() && root.join("opaque/upper.txt").exists());
    rt.start_container(&id).await.unwrap();
    assert_eq!(rt.wait_container(&id).await.unwrap(), 0);
    let logs: Vec<String> = rt
        .get_logs(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert!(
        logs.contains(&"keep.txt".to_string()) && logs.contains(&"recreated.txt".to_string()),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|l| l.contains("gone.txt")), "{logs:?}");
    assert!(
        logs.contains(&"upper.txt".to_string()) && !logs.contains(&"lower1.txt".to_string()),
        "{logs:?}"
    );
    assert!(logs.contains(&"layer1".to_string()), "{logs:?}");
    let path = logs.iter().find(|l| l.starts_with("path=")).unwrap();
    assert!(
        path.contains(&format!("{}/usr/bin", root.display())),
        "image PATH is mapped into the rootfs: {path}"
    );
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Exited { code: 0 }
    );

    // The container holds a lease on the image's layers until removed
    // (a removed lease leaves its inode as `.spare`, no lease).
    let leases = || {
        std::fs::read_dir(data_root(tmp.path()).join("leases"))
            .unwrap()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count()
    };
    assert_eq!(leases(), 1);
    rt.remove_container(&id).await.unwrap();
    assert_eq!(leases(), 0);
}
