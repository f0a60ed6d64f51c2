//! Copy-on-write clones of root filesystems: regular files are reflinked
//! (`FICLONE`) where the filesystem supports it and copied otherwise;
//! directories, modes and owners are kept; symlinks stay symlinks, with
//! absolute targets rewritten relative so they resolve inside the clone (a
//! sandbox has no chroot: `/bin/busybox` would name the host's file).

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// `_IOW(0x94, 9, int)`.
const FICLONE: libc::c_ulong = 0x4004_9409;

/// How a tree was cloned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloneStats {
    /// Files shared by reflink.
    pub reflinked: u64,
    /// Files copied byte by byte.
    pub copied: u64,
    /// Symlinks recreated.
    pub symlinks: u64,
    /// Entries skipped (device nodes, sockets).
    pub skipped: u64,
}

/// Clones the tree `src` into `dst` (which must not exist), see the module
/// doc.
pub fn clone_tree(src: &Path, dst: &Path) -> io::Result<CloneStats> {
    let mut stats = CloneStats::default();
    let mut reflink_ok = true;
    fs::create_dir(dst)?;
    copy_dir(src, dst, dst, &mut stats, &mut reflink_ok)?;
    Ok(stats)
}

/// Merges one image layer (`src`, OCI or overlay whiteout conventions) onto
/// `dst`, which holds the layers below it.
pub fn merge_layer(src: &Path, dst: &Path, root: &Path, stats: &mut CloneStats) -> io::Result<()> {
    let mut reflink_ok = true;
    if !dst.exists() {
        fs::create_dir_all(dst)?;
    }
    // An opaque directory hides everything the lower layers put there.
    if src.join(".wh..wh..opq").exists() || is_overlay_opaque(src) {
        for e in fs::read_dir(dst)? {
            zlayer_sys::fs::remove_any(&e?.path())?;
        }
    }
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let name = entry.file_name();
        let name_s = name.to_string_lossy();
        if name_s == ".wh..wh..opq" {
            continue;
        }
        if let Some(hidden) = name_s.strip_prefix(".wh.") {
            zlayer_sys::fs::remove_any(&dst.join(hidden))?;
            continue;
        }
        let from = entry.path();
        let to = dst.join(&name);
        let meta = fs::symlink_metadata(&from)?;
        let ft = meta.file_type();
        if is_overlay_whiteout(&meta) {
            zlayer_sys::fs::remove_any(&to)?;
            continue;
        }
        if ft.is_dir() {
            match fs::symlink_metadata(&to) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    zlayer_sys::fs::remove_any(&to)?;
                    fs::create_dir(&to)?;
                }
                Err(_) => fs::create_dir(&to)?,
            }
            merge_layer(&from, &to, root, stats)?;
            set_meta(&to, &meta)?;
        } else {
            if fs::symlink_metadata(&to).is_ok() {
                zlayer_sys::fs::remove_any(&to)?;
            }
            copy_entry(&from, &to, root, &meta, stats, &mut reflink_ok)?;
        }
    }
    Ok(())
}

fn is_overlay_whiteout(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_overlay_opaque(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: valid C string and buffer of the given length.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    root: &Path,
    stats: &mut CloneStats,
    reflink_ok: &mut bool,
) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from)?;
        if meta.is_dir() {
            fs::create_dir(&to)?;
            copy_dir(&from, &to, root, stats, reflink_ok)?;
            set_meta(&to, &meta)?;
        } else {
            copy_entry(&from, &to, root, &meta, stats, reflink_ok)?;
        }
    }
    let meta = fs::symlink_metadata(src)?;
    set_meta(dst, &meta)
}

fn copy_entry(
    from: &Path,
    to: &Path,
    root: &Path,
    meta: &fs::Metadata,
    stats: &mut CloneStats,
    reflink_ok: &mut bool,
) -> io::Result<()> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(from)?;
        let target = if target.is_absolute() {
            relative_target(root, to, &target)
        } else {
            target
        };
        std::os::unix::fs::symlink(&target, to)?;
        lchown(to, meta.uid(), meta.gid());
        stats.symlinks += 1;
    } else if ft.is_file() {
        let mut src = fs::File::open(from)?;
        let mut dst = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(to)?;
        if *reflink_ok && reflink(&src, &dst) {
            stats.reflinked += 1;
        } else {
            // Into the same file: no second inode after a refused reflink.
            *reflink_ok = false;
            io::copy(&mut src, &mut dst)?;
            stats.copied += 1;
        }
        drop(dst);
        set_meta(to, meta)?;
    } else {
        stats.skipped += 1;
    }
    Ok(())
}

/// Tries `FICLONE` of `src` into the empty `dst`; false when the
/// filesystem cannot reflink.
fn reflink(src: &fs::File, dst: &fs::File) -> bool {
    // SAFETY: both fds are open for the duration of the call.
    unsafe { libc::ioctl(dst.as_raw_fd(), FICLONE as _, src.as_raw_fd()) == 0 }
}

fn set_meta(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    lchown(path, meta.uid(), meta.gid());
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
}

fn lchown(path: &Path, uid: u32, gid: u32) {
    // Only root can give files away; others keep their own ownership.
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let _ = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
    }
}

/// The relative form of absolute `target` for a link at `link` inside
/// `root`: `/bin/busybox` from `root/bin/sh` becomes `../bin/busybox`.
pub fn relative_target(root: &Path, link: &Path, target: &Path) -> PathBuf {
    let depth = link
        .parent()
        .and_then(|p| p.strip_prefix(root).ok())
        .map(|p| {
            p.components()
                .filter(|c| matches!(c, Component::Normal(_)))
                .count()
        })
        .unwrap_or(0);
    let mut out = PathBuf::new();
    for _ in 0..depth {
        out.push("..");
    }
    for c in target.components() {
        if let Component::Normal(n) = c {
            out.push(n);
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_targets() {
        let root = Path::new("/r");
        assert_eq!(
            relative_target(root, Path::new("/r/bin/sh"), Path::new("/bin/busybox")),
            PathBuf::from("../bin/busybox")
        );
        assert_eq!(
            relative_target(root, Path::new("/r/bin"), Path::new("/usr/bin")),
            PathBuf::from("usr/bin")
        );
        assert_eq!(
            relative_target(root, Path::new("/r/a/b/c"), Path::new("/")),
            PathBuf::from("../..")
        );
    }

    #[test]
    fn clones_files_links_and_modes() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        fs::create_dir_all(src.join("bin")).unwrap();
        fs::write(src.join("bin/tool"), b"#!x").unwrap();
        fs::set_permissions(src.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/bin/tool", src.join("bin/abs")).unwrap();
        std::os::unix::fs::symlink("tool", src.join("bin/rel")).unwrap();
        let dst = d.path().join("dst");
        let st = clone_tree(&src, &dst).unwrap();
        assert_eq!(st.reflinked + st.copied, 1);
        assert_eq!(st.symlinks, 2);
        assert_eq!(
            fs::read_link(dst.join("bin/abs")).unwrap(),
            PathBuf::from("../bin/tool")
        );
        assert_eq!(fs::read(dst.join("bin/abs")).unwrap(), b"#!x");
        assert_eq!(
            fs::metadata(dst.join("bin/tool")).unwrap().mode() & 0o777,
            0o755
        );
        // The clone is independent of the source.
        fs::write(dst.join("bin/tool"), b"changed").unwrap();
        assert_eq!(fs::read(src.join("bin/tool")).unwrap(), b"#!x");
    }

    #[test]
    fn merges_layers_with_whiteouts() {
        let d = tempfile::tempdir().unwrap();
        let l1 = d.path().join("l1");
        let l2 = d.path().join("l2");
        fs::create_dir_all(l1.join("etc/sub")).unwrap();
        fs::write(l1.join("etc/a"), b"1").unwrap();
        fs::write(l1.join("etc/b"), b"1").unwrap();
        fs::write(l1.join("etc/sub/x"), b"1").unwrap();
        fs::create_dir_all(l2.join("etc/sub")).unwrap();
        fs::write(l2.join("etc/.wh.a"), b"").unwrap();
        fs::write(l2.join("etc/sub/.wh..wh..opq"), b"").unwrap();
        fs::write(l2.join("etc/sub/y"), b"2").unwrap();
        fs::write(l2.join("etc/b"), b"2").unwrap();
        let root = d.path().join("root");
        let mut st = CloneStats::default();
        merge_layer(&l1, &root, &root, &mut st).unwrap();
        merge_layer(&l2, &root, &root, &mut st).unwrap();
        assert!(!root.join("etc/a").exists());
        assert_eq!(fs::read(root.join("etc/b")).unwrap(), b"2");
        assert!(!root.join("etc/sub/x").exists());
        assert!(root.join("etc/sub/y").exists());
        assert!(!root.join("etc/sub/.wh..wh..opq").exists());
    }
}
