//! Sandbox runtime: the container's copy-on-write rootfs (an overlay of
//! the image, or a clone): one per container, gone on remove, remounted
//! after a reboot, unaffected by the image being replaced.

mod sandbox_support;

use sandbox_support::*;
use zlayer_runtime::Runtime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rootfs_is_cloned_per_container_and_removed() {
    let (rt, tmp) = ready_runtime(false).await;
    let (a, b) = (cid("clone-a"), cid("clone-b"));
    let s = spec("clone", &["/bin/true"]);
    rt.create_from_spec(&a, &s).await.unwrap();
    rt.create_from_spec(&b, &s).await.unwrap();
    use std::os::unix::fs::MetadataExt;
    let (ma, mb) = (
        std::fs::metadata(cdir(&rt, &a).join("rootfs/bin/busybox")).unwrap(),
        std::fs::metadata(cdir(&rt, &b).join("rootfs/bin/busybox")).unwrap(),
    );
    assert!(ma.is_file() && mb.is_file());
    assert_ne!(
        (ma.dev(), ma.ino()),
        (mb.dev(), mb.ino()),
        "each container needs its own copy-on-write rootfs"
    );
    assert_eq!(ma.len(), std::fs::metadata("/bin/busybox").unwrap().len());
    // Absolute links of the image are made relative to stay inside the rootfs.
    assert_eq!(
        std::fs::read_link(cdir(&rt, &a).join("rootfs/usr/bin/env")).unwrap(),
        std::path::PathBuf::from("../../bin/busybox")
    );
    // Copy-on-write: a change in one rootfs reaches neither the other one
    // nor the image.
    std::fs::write(cdir(&rt, &a).join("rootfs/bin/busybox"), b"changed").unwrap();
    std::fs::write(cdir(&rt, &a).join("rootfs/etc/new"), b"new").unwrap();
    assert_eq!(
        ma.len(),
        std::fs::metadata(cdir(&rt, &b).join("rootfs/bin/busybox"))
            .unwrap()
            .len()
    );
    assert!(!cdir(&rt, &b).join("rootfs/etc/new").exists());
    let image = image_rootfs(tmp.path());
    assert_eq!(
        ma.len(),
        std::fs::metadata(image.join("bin/busybox")).unwrap().len()
    );
    assert!(!image.join("etc/new").exists());
    rt.remove_container(&a).await.unwrap();
    assert!(!cdir(&rt, &a).exists());
    assert!(!mounted_under(&cdir(&rt, &a)), "remove unmounts the rootfs");
    assert!(cdir(&rt, &b).join("rootfs/bin/busybox").exists());
    rt.remove_container(&b).await.unwrap();
    rt.wait_for_deletions();
    let containers = data_root(tmp.path()).join("containers");
    assert!(!mounted_under(&containers), "nothing stays mounted");
    let left: Vec<_> = std::fs::read_dir(&containers)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".trash" && n != ".free" && n != ".names")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        std::fs::read_dir(containers.join(".trash")).map_or(0, |d| d.count()),
        0,
        "removed directories are deleted"
    );
}

/// The image's flattened tree (the overlay's lower layer).
fn image_rootfs(tmp: &std::path::Path) -> std::path::PathBuf {
    let flat = data_root(tmp).join("sandbox/flat");
    std::fs::read_dir(&flat)
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path()
}

/// Whether anything is mounted at or below `dir` (this mount namespace).
fn mounted_under(dir: &std::path::Path) -> bool {
    let needle = format!(" {}", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(&needle))
}

/// The rootfs is an overlay on a per-container tmpfs: after a reboot (both
/// mounts gone) start mounts it again and restores create's edits (volume
/// links); replacing the image while a container uses it keeps the old tree
/// for that container.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlay_rootfs_survives_reboot_and_image_replacement() {
    let (rt, tmp) = ready_runtime(false).await;
    let id = cid("reboot");
    let mut s = spec(
        "reboot",
        &[
            "/bin/sh",
            "-c",
            "echo run >> $ZLAYER_ROOTFS/data/runs; cat $ZLAYER_ROOTFS/data/runs | wc -l",
        ],
    );
    s.storage = vec![zlayer_spec::StorageSpec::Named {
        name: "reboot-data".into(),
        target: "/data".into(),
        readonly: false,
    }];
    rt.create_from_spec(&id, &s).await.unwrap();
    let dir = cdir(&rt, &id);
    assert!(mounted_under(&dir.join("rootfs")) && mounted_under(&dir.join("run")));
    rt.start_container(&id).await.unwrap();
    assert_eq!(rt.wait_container(&id).await.unwrap(), 0);
    // A reboot: the mounts vanish, the directory stays.
    for m in ["rootfs", "run"] {
        let st = std::process::Command::new("umount")
            .arg("-l")
            .arg(dir.join(m))
            .status()
            .unwrap();
        assert!(st.success());
    }
    assert!(!dir.join("rootfs/bin").exists());
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
        logs.iter().any(|l| l.trim() == "2"),
        "the volume link is back: {logs:?}"
    );
    // Replacing the image while the container uses it.
    let other = tmp.path().join("other-rootfs");
    std::fs::create_dir_all(other.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", other.join("bin/busybox")).unwrap();
    std::fs::write(other.join("marker"), b"v2").unwrap();
    register(&rt, IMAGE, &other);
    assert!(
        dir.join("rootfs/bin/echo").exists(),
        "the running container keeps its image"
    );
    assert!(!dir.join("rootfs/marker").exists());
    let id2 = cid("reboot2");
    rt.create_from_spec(&id2, &spec("reboot2", &["/bin/busybox", "true"]))
        .await
        .unwrap();
    assert!(
        cdir(&rt, &id2).join("rootfs/marker").exists(),
        "new containers get the new image"
    );
    rt.remove_container(&id).await.unwrap();
    rt.remove_container(&id2).await.unwrap();
}
