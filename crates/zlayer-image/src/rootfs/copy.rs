//! Merging layer snapshots into one plain directory (the no-overlay fallback).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{makedev, AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags, CWD};

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::unpack::OVERLAY_OPAQUE_XATTR;

/// Merges `layers` (lowest first, overlay lower-dir format) into `dest`,
/// applying whiteouts (char device 0:0) and opaque dirs as overlayfs would.
pub(super) fn merge(layers: &[PathBuf], dest: &Path) -> Result<()> {
    let mut dir_times: HashMap<PathBuf, Timestamps> = HashMap::new();
    for layer in layers {
        // Hardlinks inside a layer stay hardlinks in the copy.
        let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
        let walker = walkdir::WalkDir::new(layer)
            .follow_links(false)
            .min_depth(1)
            .sort_by_file_name();
        for entry in walker {
            let entry = entry.map_err(|e| Error::io("walk", layer, e.into()))?;
            let rel = entry
                .path()
                .strip_prefix(layer)
                .map_err(|_| {
                    Error::io(
                        "walk",
                        entry.path(),
                        std::io::Error::other("path outside layer"),
                    )
                })?
                .to_path_buf();
            let src = entry.path();
            let dst = dest.join(&rel);
            let meta = fs::symlink_metadata(src).ctx("stat", src)?;
            let ft = meta.file_type();
            if ft.is_char_device() && meta.rdev() == 0 {
                fsutil::remove_any(&dst)?;
                dir_times.retain(|p, _| !p.starts_with(&dst));
                continue;
            }
            if ft.is_dir() {
                let existing = fs::symlink_metadata(&dst).ok();
                let opaque = is_opaque(src);
                match existing {
                    Some(m) if m.is_dir() && !opaque => {}
                    Some(_) => {
                        fsutil::remove_any(&dst)?;
                        dir_times.retain(|p, _| !p.starts_with(&dst) || *p == dst);
                        fs::create_dir(&dst).ctx("create directory", &dst)?;
                    }
                    None => fs::create_dir(&dst).ctx("create directory", &dst)?,
                }
                copy_owner_mode_xattrs(src, &dst, &meta, true)?;
                dir_times.insert(dst, times(&meta));
                continue;
            }
            fsutil::remove_any(&dst)?;
            if ft.is_file() {
                let key = (meta.dev(), meta.ino());
                if meta.nlink() > 1 {
                    if let Some(first) = links.get(&key) {
                        fs::hard_link(first, &dst).ctx("hardlink", &dst)?;
                        continue;
                    }
                    links.insert(key, dst.clone());
                }
                copy_file(src, &dst)?;
                copy_owner_mode_xattrs(src, &dst, &meta, true)?;
            } else if ft.is_symlink() {
                let target = fs::read_link(src).ctx("readlink", src)?;
                std::os::unix::fs::symlink(&target, &dst).ctx("symlink", &dst)?;
                copy_owner_mode_xattrs(src, &dst, &meta, false)?;
            } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                let kind = if ft.is_char_device() {
                    FileType::CharacterDevice
                } else if ft.is_block_device() {
                    FileType::BlockDevice
                } else {
                    FileType::Fifo
                };
                let rdev = meta.rdev();
                let dev = makedev(rustix::fs::major(rdev), rustix::fs::minor(rdev));
                rustix::fs::mknodat(CWD, &dst, kind, Mode::from_raw_mode(0o600), dev)
                    .ctx("mknod", &dst)?;
                copy_owner_mode_xattrs(src, &dst, &meta, true)?;
            } else {
                continue; // sockets are not copied
            }
            rustix::fs::utimensat(CWD, &dst, &times(&meta), AtFlags::SYMLINK_NOFOLLOW)
                .ctx("set mtime", &dst)?;
        }
    }
    let mut dirs: Vec<_> = dir_times.into_iter().collect();
    dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (p, ts) in dirs {
        let _ = rustix::fs::utimensat(CWD, &p, &ts, AtFlags::SYMLINK_NOFOLLOW);
    }
    Ok(())
}

fn times(meta: &fs::Metadata) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    }
}

fn is_opaque(dir: &Path) -> bool {
    let mut buf = [0u8; 8];
    matches!(rustix::fs::lgetxattr(dir, OVERLAY_OPAQUE_XATTR, &mut buf), Ok(1) if buf[0] == b'y')
}

/// Clones `src` to `dst` with a reflink when possible, else copies the bytes.
fn copy_file(src: &Path, dst: &Path) -> Result<()> {
    let input = File::open(src).ctx("open", src)?;
    let mut output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .mode(0o600)
        .open(dst)
        .ctx("create", dst)?;
    if rustix::fs::ioctl_ficlone(&output, &input).is_ok() {
        return Ok(());
    }
    let mut input = input;
    std::io::copy(&mut input, &mut output).ctx("copy into", dst)?;
    Ok(())
}

fn copy_owner_mode_xattrs(src: &Path, dst: &Path, meta: &fs::Metadata, chmod: bool) -> Result<()> {
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid())).ctx("chown", dst)?;
    }
    if chmod {
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .ctx("chmod", dst)?;
    }
    let mut names = vec![0u8; 64 * 1024];
    let n = match rustix::fs::llistxattr(src, &mut names) {
        Ok(n) => n,
        Err(_) => return Ok(()),
    };
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let name = std::ffi::OsStr::from_bytes(name);
        let mut value = vec![0u8; 64 * 1024];
        if let Ok(len) = rustix::fs::lgetxattr(src, name, &mut value) {
            if let Err(e) = rustix::fs::lsetxattr(dst, name, &value[..len], XattrFlags::empty()) {
                tracing::warn!("cannot copy xattr {name:?} to {}: {e}", dst.display());
            }
        }
    }
    Ok(())
}
