//! Layer extraction: formats, metadata, whiteout conversion, hostile input.

use std::io::Cursor;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::EntryType;
use zlayer_image::fixtures::{EntryMeta, LayerBuilder, LayerCompression};
use zlayer_image::unpack::{self, ExtractOptions};
use zlayer_image::{Digest, Error};

fn sample_tar() -> Vec<u8> {
    let mut l = LayerBuilder::new();
    l.dir("etc", &EntryMeta::mode(0o755))
        .unwrap()
        .file("etc/hello", b"hello world\n", &EntryMeta::mode(0o644))
        .unwrap()
        .file("deep/implicit/parent.txt", b"p", &EntryMeta::mode(0o600))
        .unwrap();
    l.finish().unwrap()
}

fn unpack_into(blob: &[u8], dest: &Path) -> zlayer_image::Result<(Digest, u64)> {
    std::fs::create_dir_all(dest).unwrap();
    unpack::unpack(
        Cursor::new(blob.to_vec()),
        dest,
        "test-layer",
        &ExtractOptions::default(),
    )
    .map(|(d, n, _)| (d, n))
}

#[test]
fn gzip_zstd_and_plain_layers_unpack_with_correct_diff_id() {
    let tar = sample_tar();
    let tmp = tempfile::tempdir().unwrap();
    for c in [
        LayerCompression::Gzip,
        LayerCompression::Zstd,
        LayerCompression::None,
    ] {
        let blob = c.compress(&tar).unwrap();
        let dest = tmp.path().join(format!("{c:?}"));
        let (diff_id, len) = unpack_into(&blob, &dest).unwrap();
        assert_eq!(diff_id, Digest::of(&tar), "{c:?}");
        assert_eq!(len, tar.len() as u64);
        assert_eq!(
            std::fs::read_to_string(dest.join("etc/hello")).unwrap(),
            "hello world\n"
        );
        assert_eq!(
            std::fs::read(dest.join("deep/implicit/parent.txt")).unwrap(),
            b"p"
        );
    }
}

#[test]
fn corrupt_and_unsupported_compression_fail_cleanly() {
    let tar = sample_tar();
    let mut gz = LayerCompression::Gzip.compress(&tar).unwrap();
    let mid = gz.len() / 2;
    gz[mid] ^= 0xff;
    gz[mid + 1] ^= 0xff;
    let tmp = tempfile::tempdir().unwrap();
    let err = unpack_into(&gz, &tmp.path().join("a")).unwrap_err();
    assert!(err.to_string().contains("test-layer"), "{err}");

    let truncated = LayerCompression::Zstd.compress(&tar).unwrap();
    let err = unpack_into(&truncated[..truncated.len() / 2], &tmp.path().join("b")).unwrap_err();
    assert!(err.to_string().contains("test-layer"), "{err}");

    let err = unpack_into(b"BZh91AY&SY....", &tmp.path().join("c")).unwrap_err();
    assert!(err.to_string().contains("bzip2"), "{err}");
}

#[test]
fn metadata_is_preserved() {
    let mut l = LayerBuilder::new();
    let mtime_dir = 1_600_000_000;
    l.dir(
        "srv",
        &EntryMeta::mode(0o750).owner(1000, 1001).mtime(mtime_dir),
    )
    .unwrap()
    .file(
        "srv/tool",
        b"#!/bin/sh\n",
        &EntryMeta::mode(0o4755)
            .owner(1234, 5678)
            .mtime(1_500_000_000)
            .xattr("user.zlayer", b"yes"),
    )
    .unwrap()
    .file(
        "srv/secret",
        b"s",
        &EntryMeta::mode(0o600).owner(65534, 65534),
    )
    .unwrap()
    .symlink("srv/link", "tool")
    .unwrap()
    .symlink("srv/abs-link", "/etc/passwd")
    .unwrap()
    .hardlink("srv/hard", "srv/tool")
    .unwrap()
    .fifo("srv/pipe", &EntryMeta::mode(0o620).owner(7, 8))
    .unwrap()
    .char_device("srv/null", 1, 3, &EntryMeta::mode(0o666))
    .unwrap()
    .raw(
        EntryType::Block,
        "srv/blk",
        None,
        &[],
        &EntryMeta::mode(0o660),
    )
    .unwrap()
    .dir("srv/sticky", &EntryMeta::mode(0o1777))
    .unwrap();
    let tar = l.finish().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    unpack_into(&tar, &dest).unwrap();
    let srv = dest.join("srv");

    let m = std::fs::symlink_metadata(&srv).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o750);
    assert_eq!((m.uid(), m.gid()), (1000, 1001));
    assert_eq!(
        m.mtime(),
        mtime_dir as i64,
        "directory mtime is applied after its children"
    );

    let m = std::fs::symlink_metadata(srv.join("tool")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755, "setuid survives chown");
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    assert_eq!(m.mtime(), 1_500_000_000);
    assert_eq!(m.nlink(), 2);
    let mut buf = [0u8; 16];
    let n = rustix::fs::lgetxattr(srv.join("tool"), "user.zlayer", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"yes");

    let hard = std::fs::symlink_metadata(srv.join("hard")).unwrap();
    assert_eq!(hard.ino(), m.ino(), "hardlink shares the inode");

    let m = std::fs::symlink_metadata(srv.join("secret")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (65534, 65534, 0o600));

    assert_eq!(
        std::fs::read_link(srv.join("link")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(
        std::fs::read_link(srv.join("abs-link")).unwrap(),
        Path::new("/etc/passwd")
    );

    let m = std::fs::symlink_metadata(srv.join("pipe")).unwrap();
    assert!(m.file_type().is_fifo());
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o620, 7, 8));

    let m = std::fs::symlink_metadata(srv.join("null")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(
        (rustix::fs::major(m.rdev()), rustix::fs::minor(m.rdev())),
        (1, 3)
    );
    assert_eq!(m.mode() & 0o777, 0o666);
    assert!(std::fs::symlink_metadata(srv.join("blk"))
        .unwrap()
        .file_type()
        .is_block_device());

    assert_eq!(
        std::fs::symlink_metadata(srv.join("sticky"))
            .unwrap()
            .mode()
            & 0o7777,
        0o1777
    );
}

#[test]
fn whiteouts_become_overlay_devices_and_opaque_xattrs() {
    let mut l = LayerBuilder::new();
    l.dir("a", &EntryMeta::mode(0o755))
        .unwrap()
        .whiteout("a/gone")
        .unwrap()
        .opaque("b")
        .unwrap()
        .file("b/kept", b"k", &EntryMeta::mode(0o644))
        .unwrap()
        .raw(
            EntryType::Regular,
            "a/.wh..wh.plnk",
            None,
            &[],
            &EntryMeta::mode(0o644),
        )
        .unwrap();
    let tar = l.finish().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    unpack_into(&tar, &dest).unwrap();
    let m = std::fs::symlink_metadata(dest.join("a/gone")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), 0);
    assert!(!dest.join("a/.wh.gone").exists());
    assert!(!dest.join("a/.wh..wh.plnk").exists());
    let mut buf = [0u8; 4];
    let n = rustix::fs::lgetxattr(dest.join("b"), "trusted.overlay.opaque", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert!(!dest.join("b/.wh..wh..opq").exists());
    assert!(dest.join("b/kept").is_file());
}

#[test]
fn layer_xattrs_cannot_inject_overlay_metadata() {
    let mut l = LayerBuilder::new();
    l.dir(
        "d",
        &EntryMeta::mode(0o755).xattr("trusted.overlay.redirect", b"/etc"),
    )
    .unwrap();
    let tar = l.finish().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    unpack_into(&tar, &dest).unwrap();
    let mut buf = [0u8; 16];
    assert!(rustix::fs::lgetxattr(dest.join("d"), "trusted.overlay.redirect", &mut buf).is_err());
}

/// Each hostile layer must fail with UnsafeEntry naming `entry` and leave
/// the sentinel directory next to the extraction root untouched.
struct Hostile {
    tmp: tempfile::TempDir,
}

impl Hostile {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("sentinel")).unwrap();
        std::fs::write(tmp.path().join("sentinel/secret"), b"secret").unwrap();
        Hostile { tmp }
    }

    fn sentinel(&self) -> std::path::PathBuf {
        self.tmp.path().join("sentinel")
    }

    fn check(&self, case: &str, build: impl FnOnce(&mut LayerBuilder, &Path), entry: &str) {
        let dest = self.tmp.path().join(format!("root-{case}"));
        let mut l = LayerBuilder::new();
        build(&mut l, self.tmp.path());
        let tar = l.finish().unwrap();
        let err = unpack_into(&tar, &dest).unwrap_err();
        match &err {
            Error::UnsafeEntry {
                entry: e, reason, ..
            } => {
                assert_eq!(e, entry, "{case}: wrong entry named ({reason})");
            }
            other => panic!("{case}: expected UnsafeEntry, got {other}"),
        }
        assert!(err.to_string().contains(entry), "{case}: {err}");
        // Nothing escaped: the sentinel holds exactly its secret, unchanged.
        assert_eq!(
            common_names(&self.sentinel()),
            vec!["secret".to_string()],
            "{case}"
        );
        let m = std::fs::metadata(self.sentinel().join("secret")).unwrap();
        assert_eq!(m.nlink(), 1, "{case}: secret was hardlinked");
        assert_eq!(
            std::fs::read(self.sentinel().join("secret")).unwrap(),
            b"secret"
        );
        for stray in ["etc", "x", "pwned"] {
            assert!(
                !self.tmp.path().join(stray).exists(),
                "{case}: {stray} written outside"
            );
        }
    }
}

fn common_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn hostile_layers_are_refused_and_write_nothing_outside() {
    let h = Hostile::new();
    let f = EntryMeta::mode(0o644);
    let marker = format!("zlayer-hostile-{}", std::process::id());
    let abs_target = format!("/etc/{marker}");

    h.check(
        "dotdot",
        |l, _| {
            l.raw(EntryType::Regular, "../etc/x", None, b"x", &f)
                .unwrap();
        },
        "../etc/x",
    );
    h.check(
        "dotdot-middle",
        |l, _| {
            l.raw(EntryType::Regular, "a/../../x", None, b"x", &f)
                .unwrap();
        },
        "a/../../x",
    );
    h.check(
        "absolute",
        |l, _| {
            l.raw(EntryType::Regular, &abs_target, None, b"x", &f)
                .unwrap();
        },
        &abs_target,
    );
    assert!(!Path::new(&abs_target).exists());

    h.check(
        "symlink-relative-escape",
        |l, _| {
            l.symlink("escape", "../sentinel").unwrap();
            l.raw(EntryType::Regular, "escape/pwned", None, b"x", &f)
                .unwrap();
        },
        "escape/pwned",
    );
    h.check(
        "symlink-absolute-escape",
        |l, tmp| {
            l.symlink("escape", tmp.join("sentinel").to_str().unwrap())
                .unwrap();
            l.raw(EntryType::Regular, "escape/pwned", None, b"x", &f)
                .unwrap();
        },
        "escape/pwned",
    );
    h.check(
        "symlink-chain-escape",
        |l, _| {
            l.dir("a", &EntryMeta::mode(0o755)).unwrap();
            l.symlink("a/up", "..").unwrap();
            l.symlink("a/b", "up/../../sentinel").unwrap();
            l.raw(EntryType::Regular, "a/b/pwned", None, b"x", &f)
                .unwrap();
        },
        "a/b/pwned",
    );
    h.check(
        "symlink-escape-then-mkdir",
        |l, _| {
            l.symlink("escape", "../sentinel").unwrap();
            l.dir("escape/newdir", &EntryMeta::mode(0o755)).unwrap();
        },
        "escape/newdir/",
    );
    h.check(
        "symlink-escape-then-overwrite",
        |l, _| {
            l.symlink("escape", "../sentinel").unwrap();
            l.raw(
                EntryType::Regular,
                "escape/secret",
                None,
                b"overwritten",
                &f,
            )
            .unwrap();
        },
        "escape/secret",
    );

    h.check(
        "hardlink-dotdot",
        |l, _| {
            l.hardlink("link", "../sentinel/secret").unwrap();
        },
        "link",
    );
    h.check(
        "hardlink-absolute",
        |l, tmp| {
            l.hardlink("link", tmp.join("sentinel/secret").to_str().unwrap())
                .unwrap();
        },
        "link",
    );
    h.check(
        "hardlink-through-symlink",
        |l, _| {
            l.symlink("escape", "../sentinel").unwrap();
            l.hardlink("link", "escape/secret").unwrap();
        },
        "link",
    );

    h.check(
        "whiteout-dotdot",
        |l, _| {
            l.dir("sub", &EntryMeta::mode(0o755)).unwrap();
            l.raw(EntryType::Regular, "sub/.wh..", None, &[], &f)
                .unwrap();
        },
        "sub/.wh..",
    );
    h.check(
        "whiteout-dotdot-root",
        |l, _| {
            l.raw(EntryType::Regular, ".wh..", None, &[], &f).unwrap();
        },
        ".wh..",
    );
    h.check(
        "whiteout-through-symlink",
        |l, _| {
            l.symlink("escape", "../sentinel").unwrap();
            l.raw(EntryType::Regular, "escape/.wh.secret", None, &[], &f)
                .unwrap();
        },
        "escape/.wh.secret",
    );
    h.check(
        "opaque-through-symlink",
        |l, _| {
            l.symlink("escape", "../sentinel").unwrap();
            l.raw(EntryType::Regular, "escape/.wh..wh..opq", None, &[], &f)
                .unwrap();
        },
        "escape/.wh..wh..opq",
    );
}

#[test]
fn symlinks_inside_the_root_are_followed_safely() {
    // A relative symlink that stays inside the layer may be written through.
    let mut l = LayerBuilder::new();
    let f = EntryMeta::mode(0o644);
    l.dir("usr/lib", &EntryMeta::mode(0o755)).unwrap();
    l.symlink("lib", "usr/lib").unwrap();
    l.file("lib/libx.so", b"x", &f).unwrap();
    let tar = l.finish().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    unpack_into(&tar, &dest).unwrap();
    assert_eq!(std::fs::read(dest.join("usr/lib/libx.so")).unwrap(), b"x");
}

#[test]
fn later_entries_replace_earlier_ones() {
    let mut l = LayerBuilder::new();
    let f = EntryMeta::mode(0o644);
    l.file("x", b"first", &f).unwrap();
    l.file("x", b"second", &f).unwrap();
    l.symlink("y", "nowhere").unwrap();
    l.file("y", b"file now", &f).unwrap();
    l.dir("z", &EntryMeta::mode(0o755)).unwrap();
    l.file("z/inner", b"i", &f).unwrap();
    l.symlink("z", "x").unwrap();
    let tar = l.finish().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    unpack_into(&tar, &dest).unwrap();
    assert_eq!(std::fs::read(dest.join("x")).unwrap(), b"second");
    assert_eq!(std::fs::read(dest.join("y")).unwrap(), b"file now");
    assert_eq!(std::fs::read_link(dest.join("z")).unwrap(), Path::new("x"));
}
