//! Mounting and unmounting overlayfs.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount, FsMountFlags, FsOpenFlags,
    MountAttrFlags, MountFlags, MoveMountFlags, UnmountFlags,
};

use super::mountinfo::is_mountpoint;
use crate::error::{Error, Result};

/// Escapes characters overlayfs treats specially in option values.
fn escape(p: &Path) -> String {
    let mut s = String::new();
    for c in p.to_string_lossy().chars() {
        if matches!(c, ':' | ',' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

fn mount_err(path: &Path, reason: String) -> Error {
    Error::Rootfs {
        op: "mount",
        path: path.to_path_buf(),
        reason,
    }
}

/// Mounts overlay at `target` with `layers` (lowest first) below `upper`.
pub(super) fn mount(
    layers: &[PathBuf],
    empty: &Path,
    upper: &Path,
    work: &Path,
    target: &Path,
) -> Result<()> {
    let lowers: Vec<PathBuf> = if layers.is_empty() {
        vec![empty.to_path_buf()]
    } else {
        layers.iter().rev().cloned().collect()
    };
    let lowerdir = lowers
        .iter()
        .map(|p| escape(p))
        .collect::<Vec<_>>()
        .join(":");
    let data = format!(
        "lowerdir={lowerdir},upperdir={},workdir={}",
        escape(upper),
        escape(work)
    );
    // The classic mount(2) data is limited to one page; beyond that use the
    // fsconfig API, which takes one lower dir at a time (Linux 6.8+).
    if data.len() < 4000 {
        // `volatile` (Linux 5.10+): the upper dir is never synced, so
        // unmounting does not flush the whole upper filesystem (10+ ms under
        // load). Container writes need no durability: a container does not
        // survive a reboot. Older kernels reject the option: mount without.
        let volatile = CString::new(format!("{data},volatile"))
            .map_err(|_| mount_err(target, "a path contains a NUL byte".into()))?;
        let plain = CString::new(data)
            .map_err(|_| mount_err(target, "a path contains a NUL byte".into()))?;
        let mount = |d: &CString| {
            rustix::mount::mount(
                "overlay",
                target,
                "overlay",
                MountFlags::empty(),
                d.as_c_str(),
            )
        };
        return match mount(&volatile) {
            Err(Errno::INVAL) => mount(&plain),
            other => other,
        }
        .map_err(|e| mount_err(target, format!("overlay mount failed: {e}")));
    }
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| mount_err(target, format!("fsopen(overlay): {e}")))?;
    for l in &lowers {
        fsconfig_set_string(&fs, "lowerdir+", l.as_path()).map_err(|e| {
            mount_err(
                target,
                format!("too many layers for mount(2) and this kernel lacks `lowerdir+` (needs Linux 6.8): {e}"),
            )
        })?;
    }
    fsconfig_set_string(&fs, "upperdir", upper)
        .map_err(|e| mount_err(target, format!("upperdir: {e}")))?;
    fsconfig_set_string(&fs, "workdir", work)
        .map_err(|e| mount_err(target, format!("workdir: {e}")))?;
    fsconfig_create(&fs).map_err(|e| mount_err(target, format!("creating the overlay: {e}")))?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| mount_err(target, format!("fsmount: {e}")))?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| mount_err(target, format!("move_mount: {e}")))
}

/// Unmounts everything mounted at `target` (stacked mounts too); lazy if busy.
pub(super) fn unmount_all(target: &Path) -> Result<()> {
    for _ in 0..16 {
        if !is_mountpoint(target)? {
            return Ok(());
        }
        match rustix::mount::unmount(target, UnmountFlags::empty()) {
            Ok(()) => {}
            Err(Errno::BUSY) => {
                rustix::mount::unmount(target, UnmountFlags::DETACH).map_err(|e| Error::Rootfs {
                    op: "unmount",
                    path: target.to_path_buf(),
                    reason: format!("lazy unmount failed: {e}"),
                })?
            }
            Err(Errno::INVAL) | Err(Errno::NOENT) => return Ok(()),
            Err(e) => {
                return Err(Error::Rootfs {
                    op: "unmount",
                    path: target.to_path_buf(),
                    reason: e.to_string(),
                })
            }
        }
    }
    Err(Error::Rootfs {
        op: "unmount",
        path: target.to_path_buf(),
        reason: "still mounted after 16 unmounts".into(),
    })
}
