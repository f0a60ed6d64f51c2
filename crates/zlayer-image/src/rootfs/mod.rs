//! Container root filesystems built from layer snapshots.
//!
//! The normal path is an overlayfs mount: the image's snapshot directories
//! as read-only lower dirs plus a per-container `upper` and `work` dir. When
//! overlay is unavailable (or [`RootfsMode::Copy`] is asked for), the layers
//! are merged into a plain directory instead, applying whiteouts and opaque
//! dirs the way overlayfs would and cloning files with reflinks where the
//! filesystem supports them.

mod copy;
mod mountinfo;
mod overlay;

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fsutil;

pub use mountinfo::{is_mountpoint, mounts_under};

/// How to build a rootfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootfsMode {
    /// Overlay if the kernel allows it, else copy.
    #[default]
    Auto,
    /// Overlay or fail.
    Overlay,
    /// Always merge the layers into a plain directory.
    Copy,
}

/// How a rootfs was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootfsKind {
    /// An overlayfs mount; writes go to the upper dir.
    Overlay,
    /// A private merged copy of the layers.
    Copy,
}

/// A prepared container root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rootfs {
    /// The directory to use as the container's `/`.
    pub path: PathBuf,
    /// How it was built.
    pub kind: RootfsKind,
    /// The overlay upper dir (container writes), for [`RootfsKind::Overlay`].
    pub upper: Option<PathBuf>,
    /// The overlay work dir, for [`RootfsKind::Overlay`].
    pub work: Option<PathBuf>,
    /// The layer snapshot directories, lowest first.
    pub layers: Vec<PathBuf>,
}

/// Builds `container_dir/rootfs` from `layers` (lowest first).
pub(crate) fn prepare(
    layers: &[PathBuf],
    empty: &Path,
    container_dir: &Path,
    mode: RootfsMode,
) -> Result<Rootfs> {
    fs::create_dir_all(container_dir).ctx("create directory", container_dir)?;
    let rootfs = container_dir.join("rootfs");
    let upper = container_dir.join("upper");
    let work = container_dir.join("work");
    if is_mountpoint(&rootfs)? {
        return Ok(Rootfs {
            path: rootfs,
            kind: RootfsKind::Overlay,
            upper: Some(upper),
            work: Some(work),
            layers: layers.to_vec(),
        });
    }
    if mode != RootfsMode::Copy {
        for d in [&rootfs, &upper, &work] {
            fs::create_dir_all(d).ctx("create directory", d)?;
        }
        match overlay::mount(layers, empty, &upper, &work, &rootfs) {
            Ok(()) => {
                return Ok(Rootfs {
                    path: rootfs,
                    kind: RootfsKind::Overlay,
                    upper: Some(upper),
                    work: Some(work),
                    layers: layers.to_vec(),
                })
            }
            Err(e) if mode == RootfsMode::Overlay => return Err(e),
            Err(e) => {
                tracing::warn!("overlay mount unavailable ({e}); copying the layers instead");
                let _ = fs::remove_dir(&upper);
                let _ = fsutil::remove_any(&work);
            }
        }
    }
    fsutil::remove_any(&rootfs)?;
    let staging = container_dir.join(".rootfs-copy");
    fsutil::remove_any(&staging)?;
    fs::create_dir_all(&staging).ctx("create directory", &staging)?;
    copy::merge(layers, &staging).map_err(|e| Error::Rootfs {
        op: "copy",
        path: rootfs.clone(),
        reason: e.to_string(),
    })?;
    fs::rename(&staging, &rootfs).ctx("rename merged rootfs to", &rootfs)?;
    Ok(Rootfs {
        path: rootfs,
        kind: RootfsKind::Copy,
        upper: None,
        work: None,
        layers: layers.to_vec(),
    })
}

/// Unmounts `container_dir/rootfs` (lazily if busy) and removes the rootfs,
/// upper and work directories. Idempotent.
pub(crate) fn release(container_dir: &Path) -> Result<()> {
    let rootfs = container_dir.join("rootfs");
    overlay::unmount_all(&rootfs)?;
    // Anything still mounted below (e.g. bind mounts a runtime put into a
    // copied rootfs) is detached deepest first; deleting through a mount
    // would destroy the mounted data.
    for name in ["rootfs", "upper", "work"] {
        let dir = container_dir.join(name);
        if !dir.exists() {
            continue;
        }
        let mut below = mounts_under(&dir)?;
        below.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for m in below {
            overlay::unmount_all(&m)?;
        }
        let left = mounts_under(&dir)?;
        if !left.is_empty() {
            return Err(Error::Rootfs {
                op: "unmount",
                path: dir,
                reason: format!("mounts remain below it ({left:?}); refusing to delete it"),
            });
        }
    }
    for name in ["rootfs", "upper", "work", ".rootfs-copy"] {
        fsutil::remove_any(&container_dir.join(name))?;
    }
    Ok(())
}
