//! Snapshots, overlay/copy rootfs, whiteouts across layers, concurrency, mounts.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::{mounts_below, names, Env};
use zlayer_image::fixtures::{
    self, EntryMeta, FixtureConfig, FixtureOptions, ImageBuilder, LayerBuilder, LayerCompression,
};
use zlayer_image::{Error, ImageStore, RootfsKind, RootfsMode};

/// The merged view the multi-layer fixture must produce.
fn assert_multilayer_view(root: &Path) {
    assert_eq!(
        names(&root.join("data")),
        vec!["keep.txt", "new.txt", "recreated.txt"]
    );
    assert_eq!(
        std::fs::read_to_string(root.join("data/recreated.txt")).unwrap(),
        "recreated\n"
    );
    assert_eq!(names(&root.join("opaque")), vec!["upper.txt"]);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/motd")).unwrap(),
        "layer1\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("layer2.txt")).unwrap(),
        "layer2\n"
    );
    assert!(!root.join("data/dir-gone").exists());
    // Busybox from the base layer is intact.
    assert!(root.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(root.join("bin/echo")).unwrap(),
        Path::new("busybox")
    );
    let sh = std::fs::metadata(root.join("bin/sh")).unwrap();
    let bb = std::fs::metadata(root.join("bin/busybox")).unwrap();
    assert_eq!(sh.ino(), bb.ino(), "bin/sh is a hardlink to bin/busybox");
    assert_eq!(
        std::fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
}

#[test]
fn snapshots_hold_layers_in_overlay_format() {
    let env = Env::new();
    let (_img, rec) = env.load_multilayer(&FixtureOptions::default());
    let dirs = env.store.ensure_unpacked(&rec).unwrap();
    assert_eq!(dirs.len(), 3);
    let l1 = &dirs[1];
    for gone in ["data/gone.txt", "data/dir-gone", "data/recreated.txt"] {
        let m = std::fs::symlink_metadata(l1.join(gone)).unwrap();
        assert!(
            m.file_type().is_char_device() && m.rdev() == 0,
            "{gone} is a 0:0 whiteout"
        );
    }
    let mut buf = [0u8; 2];
    let n = rustix::fs::lgetxattr(l1.join("opaque"), "trusted.overlay.opaque", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
    // Layer dirs hold only their own layer.
    assert!(!l1.join("bin").exists());
    assert_eq!(
        env.store.snapshot_dir(&rec.layers[1].diff_id).as_ref(),
        Some(l1)
    );
}

#[test]
fn overlay_rootfs_shows_merged_view_and_release_unmounts() {
    let env = Env::new();
    let (_img, rec) = env.load_multilayer(&FixtureOptions::default());
    let cdir = env.path("ctr-overlay");
    let rootfs = env
        .store
        .prepare_rootfs_with(&rec, &cdir, RootfsMode::Overlay)
        .unwrap();
    assert_eq!(rootfs.kind, RootfsKind::Overlay);
    assert_eq!(rootfs.path, cdir.join("rootfs"));
    assert!(zlayer_image::is_mountpoint(&rootfs.path).unwrap());
    assert_multilayer_view(&rootfs.path);

    // Writes land in the upper dir, never in the shared snapshots.
    std::fs::write(rootfs.path.join("data/keep.txt"), b"changed\n").unwrap();
    std::fs::remove_file(rootfs.path.join("data/new.txt")).unwrap();
    assert_eq!(
        std::fs::read(cdir.join("upper/data/keep.txt")).unwrap(),
        b"changed\n"
    );
    assert_eq!(
        std::fs::read(rootfs.layers[0].join("data/keep.txt")).unwrap(),
        b"keep\n"
    );
    assert!(rootfs.layers[1].join("data/new.txt").exists());

    // Preparing again is idempotent.
    let again = env.store.prepare_rootfs(&rec, &cdir).unwrap();
    assert_eq!(again.path, rootfs.path);
    assert_eq!(mounts_below(&cdir).len(), 1);

    // A busy mount (open file inside) is detached lazily.
    let busy = std::fs::File::open(rootfs.path.join("etc/motd")).unwrap();
    env.store.release_rootfs(&cdir).unwrap();
    drop(busy);
    assert!(
        mounts_below(&cdir).is_empty(),
        "mounts left: {:?}",
        mounts_below(&cdir)
    );
    assert!(
        !cdir.join("rootfs").exists()
            && !cdir.join("upper").exists()
            && !cdir.join("work").exists()
    );
    // Idempotent.
    env.store.release_rootfs(&cdir).unwrap();
    env.store
        .release_rootfs(&env.path("never-prepared"))
        .unwrap();
}

#[test]
fn copy_fallback_gives_the_same_view() {
    let env = Env::new();
    let (_img, rec) = env.load_multilayer(&FixtureOptions::default());
    let cdir = env.path("ctr-copy");
    let rootfs = env
        .store
        .prepare_rootfs_with(&rec, &cdir, RootfsMode::Copy)
        .unwrap();
    assert_eq!(rootfs.kind, RootfsKind::Copy);
    assert!(!zlayer_image::is_mountpoint(&rootfs.path).unwrap());
    assert_multilayer_view(&rootfs.path);
    // No whiteout devices or overlay xattrs leak into the copy.
    let mut buf = [0u8; 2];
    assert!(rustix::fs::lgetxattr(
        rootfs.path.join("opaque"),
        "trusted.overlay.opaque",
        &mut buf
    )
    .is_err());
    // The copy is private: changing it leaves the snapshots alone.
    std::fs::write(rootfs.path.join("data/keep.txt"), b"changed").unwrap();
    assert_eq!(
        std::fs::read(rootfs.layers[0].join("data/keep.txt")).unwrap(),
        b"keep\n"
    );
    // File metadata survives the copy.
    let src = std::fs::metadata(rootfs.layers[0].join("bin/busybox")).unwrap();
    let dst = std::fs::metadata(rootfs.path.join("bin/busybox")).unwrap();
    assert_eq!(
        (src.mode(), src.mtime(), src.uid()),
        (dst.mode(), dst.mtime(), dst.uid())
    );
    env.store.release_rootfs(&cdir).unwrap();
    assert!(!cdir.join("rootfs").exists());
    assert!(mounts_below(&cdir).is_empty());
}

#[test]
fn copy_fallback_replaces_types_across_layers() {
    // dir -> file, file -> dir, symlink -> dir across layers.
    let f = EntryMeta::mode(0o644);
    let d = EntryMeta::mode(0o755);
    let mut l0 = LayerBuilder::new();
    l0.dir("a", &d)
        .unwrap()
        .file("a/x", b"x", &f)
        .unwrap()
        .file("b", b"b", &f)
        .unwrap()
        .symlink("c", "/tmp")
        .unwrap();
    let mut l1 = LayerBuilder::new();
    l1.file("a", b"now a file", &f)
        .unwrap()
        .dir("b", &d)
        .unwrap()
        .file("b/y", b"y", &f)
        .unwrap()
        .dir("c", &d)
        .unwrap()
        .file("c/z", b"z", &f)
        .unwrap();
    let mut img =
        ImageBuilder::new("localhost/t/types:1", FixtureConfig::standard("types")).unwrap();
    img.layer(&l0.finish().unwrap(), LayerCompression::Gzip)
        .unwrap();
    img.layer(&l1.finish().unwrap(), LayerCompression::Gzip)
        .unwrap();
    let env = Env::new();
    let layout = img.write_layout(&env.path("types")).unwrap();
    let rec = env.store.load(&layout.path, None).unwrap().remove(0);
    for mode in [RootfsMode::Overlay, RootfsMode::Copy] {
        let cdir = env.path(&format!("ctr-{mode:?}"));
        let r = env.store.prepare_rootfs_with(&rec, &cdir, mode).unwrap();
        assert_eq!(
            std::fs::read(r.path.join("a")).unwrap(),
            b"now a file",
            "{mode:?}"
        );
        assert_eq!(std::fs::read(r.path.join("b/y")).unwrap(), b"y", "{mode:?}");
        assert!(
            std::fs::symlink_metadata(r.path.join("c"))
                .unwrap()
                .is_dir(),
            "{mode:?}"
        );
        assert_eq!(std::fs::read(r.path.join("c/z")).unwrap(), b"z", "{mode:?}");
        env.store.release_rootfs(&cdir).unwrap();
    }
}

#[test]
fn concurrent_ensure_unpacked_extracts_each_layer_once() {
    let env = Env::new();
    let (_img, rec) = env.load_multilayer(&FixtureOptions::default());
    let root = env.store.root().to_path_buf();
    // Three threads share one handle, three open their own (like separate processes).
    let own: Vec<ImageStore> = (0..3).map(|_| ImageStore::open(&root).unwrap()).collect();
    let results: Vec<Vec<std::path::PathBuf>> = std::thread::scope(|s| {
        let mut hs = Vec::new();
        for i in 0..6 {
            let store = if i < 3 {
                env.store.clone()
            } else {
                own[i - 3].clone()
            };
            let rec = rec.clone();
            hs.push(s.spawn(move || store.ensure_unpacked(&rec).unwrap()));
        }
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results {
        assert_eq!(r, &results[0]);
    }
    let total: u64 =
        env.store.extraction_count() + own.iter().map(|s| s.extraction_count()).sum::<u64>();
    assert_eq!(total, 3, "each of the 3 layers extracted exactly once");
    assert!(
        names(&root.join("snapshots/tmp")).is_empty(),
        "no leftover temp dirs"
    );
    // Again: nothing to do.
    env.store.ensure_unpacked(&rec).unwrap();
    assert_eq!(
        env.store.extraction_count() + own.iter().map(|s| s.extraction_count()).sum::<u64>(),
        3
    );
}

#[test]
fn layers_are_shared_between_images() {
    let env = Env::new();
    let base = {
        let mut l = LayerBuilder::new();
        fixtures::busybox_rootfs(&mut l).unwrap();
        l.finish().unwrap()
    };
    let mut top = LayerBuilder::new();
    top.file("app.txt", b"app", &EntryMeta::mode(0o644))
        .unwrap();
    let top = top.finish().unwrap();
    let mut a = ImageBuilder::new("localhost/t/a:1", FixtureConfig::standard("a")).unwrap();
    a.layer(&base, LayerCompression::Gzip).unwrap();
    let mut b = ImageBuilder::new("localhost/t/b:1", FixtureConfig::standard("b")).unwrap();
    // Same diff_id, different compression: still one snapshot.
    b.layer(&base, LayerCompression::Zstd)
        .unwrap()
        .layer(&top, LayerCompression::None)
        .unwrap();
    let ra = env
        .store
        .load(&a.write_layout(&env.path("a")).unwrap().path, None)
        .unwrap()
        .remove(0);
    let rb = env
        .store
        .load(&b.write_layout(&env.path("b")).unwrap().path, None)
        .unwrap()
        .remove(0);
    let da = env.store.ensure_unpacked(&ra).unwrap();
    assert_eq!(env.store.extraction_count(), 1);
    let db = env.store.ensure_unpacked(&rb).unwrap();
    assert_eq!(
        env.store.extraction_count(),
        2,
        "only b's top layer was extracted"
    );
    assert_eq!(da[0], db[0]);
}

#[test]
fn diff_id_mismatch_and_hostile_layers_leave_no_snapshot() {
    let env = Env::new();
    // A config whose diff_id does not match the layer.
    let mut l = LayerBuilder::new();
    l.file("x", b"x", &EntryMeta::mode(0o644)).unwrap();
    let good = l.finish().unwrap();
    let mut img = ImageBuilder::new("localhost/t/bad:1", FixtureConfig::standard("bad")).unwrap();
    img.layer(&good, LayerCompression::Gzip).unwrap();
    let layout = img.write_layout(&env.path("bad")).unwrap();
    // Rewrite the config's diff_id and re-link manifest/index to it.
    let blobs = layout.path.join("blobs/sha256");
    let cfg_raw = std::fs::read_to_string(blobs.join(layout.config_digest.hex())).unwrap();
    let fake = zlayer_image::Digest::of(b"not the layer");
    let cfg_new = cfg_raw.replace(&layout.layers[0].diff_id.to_string(), &fake.to_string());
    let cfg_digest = zlayer_image::Digest::of(cfg_new.as_bytes());
    std::fs::write(blobs.join(cfg_digest.hex()), &cfg_new).unwrap();
    let man_raw = std::fs::read_to_string(blobs.join(layout.manifest_digest.hex())).unwrap();
    let man_new = man_raw
        .replace(&layout.config_digest.to_string(), &cfg_digest.to_string())
        .replace(
            &format!("\"size\":{}", cfg_raw.len()),
            &format!("\"size\":{}", cfg_new.len()),
        );
    let man_digest = zlayer_image::Digest::of(man_new.as_bytes());
    std::fs::write(blobs.join(man_digest.hex()), &man_new).unwrap();
    let idx = std::fs::read_to_string(layout.path.join("index.json")).unwrap();
    let idx = idx
        .replace(&layout.manifest_digest.to_string(), &man_digest.to_string())
        .replace(
            &format!("\"size\":{}", man_raw.len()),
            &format!("\"size\":{}", man_new.len()),
        );
    std::fs::write(layout.path.join("index.json"), idx).unwrap();
    let rec = env.store.load(&layout.path, None).unwrap().remove(0);
    let err = env.store.ensure_unpacked(&rec).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&fake.to_string()), "{err}");
    assert!(env.store.snapshot_dir(&fake).is_none());

    // A hostile layer inside an image.
    let mut h = LayerBuilder::new();
    h.raw(
        tar::EntryType::Regular,
        "../../escape",
        None,
        b"x",
        &EntryMeta::mode(0o644),
    )
    .unwrap();
    let mut img = ImageBuilder::new("localhost/t/hostile:1", FixtureConfig::standard("h")).unwrap();
    img.layer(&h.finish().unwrap(), LayerCompression::Gzip)
        .unwrap();
    let rec = env
        .store
        .load(&img.write_layout(&env.path("hostile")).unwrap().path, None)
        .unwrap()
        .remove(0);
    let err = env
        .store
        .prepare_rootfs(&rec, &env.path("ctr-hostile"))
        .unwrap_err();
    assert!(
        matches!(err, Error::UnsafeEntry { ref entry, .. } if entry == "../../escape"),
        "{err}"
    );
    assert!(env.store.snapshot_dir(&rec.layers[0].diff_id).is_none());
    let root = env.store.root();
    assert!(names(&root.join("snapshots/tmp")).is_empty());
    assert!(!env.tmp.path().join("escape").exists() && !root.join("escape").exists());
}

#[test]
fn rootfs_runs_busybox() {
    let env = Env::new();
    let (_img, rec) = env.load_busybox(&FixtureOptions::default());
    let cdir = env.path("ctr-run");
    let rootfs = env.store.prepare_rootfs(&rec, &cdir).unwrap();
    let out = std::process::Command::new("/usr/sbin/chroot")
        .arg(&rootfs.path)
        .args([
            "/bin/sh",
            "-c",
            "echo hello from $(cat /etc/os-release | head -n1)",
        ])
        .env_clear()
        .env("PATH", "/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from NAME=\"zlayer busybox fixture\"\n"
    );
    env.store.release_rootfs(&cdir).unwrap();
    assert!(mounts_below(&cdir).is_empty());
}

#[test]
fn release_never_deletes_through_mounts_below_the_rootfs() {
    let env = Env::new();
    let (_img, rec) = env.load_busybox(&FixtureOptions::default());
    let volume = env.path("volume");
    std::fs::create_dir(&volume).unwrap();
    std::fs::write(volume.join("precious"), b"data").unwrap();
    for mode in [RootfsMode::Overlay, RootfsMode::Copy] {
        let cdir = env.path(&format!("ctr-{mode:?}"));
        let rootfs = env.store.prepare_rootfs_with(&rec, &cdir, mode).unwrap();
        let target = rootfs.path.join("mnt");
        std::fs::create_dir_all(&target).unwrap();
        rustix::mount::mount_bind(&volume, &target).unwrap();
        assert_eq!(
            mounts_below(&cdir).len(),
            if mode == RootfsMode::Overlay { 2 } else { 1 }
        );
        env.store.release_rootfs(&cdir).unwrap();
        assert!(mounts_below(&cdir).is_empty(), "{mode:?}");
        assert!(!cdir.join("rootfs").exists(), "{mode:?}");
        assert_eq!(
            std::fs::read(volume.join("precious")).unwrap(),
            b"data",
            "{mode:?}: volume data survived"
        );
    }
}
