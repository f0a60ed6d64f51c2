//! Copy-on-write root filesystems by overlayfs, and the container's
//! runtime tmpfs.
//!
//! The image directory is the read-only lower layer; the upper and work
//! directories live in the container's runtime directory (`run/`, a private
//! tmpfs); the merged view is mounted on
//! `rootfs/` in the host's mount namespace (the sandbox has no namespace of
//! its own; the workload sees a normal directory). Creating it is O(1)
//! whatever the image size, where a copy is O(image) on filesystems without
//! reflink, and none of it allocates disk inodes (an overlay mount creates
//! and deletes a handful of files in its work directory).
//!
//! The upper layer only holds what create changed in the rootfs (volume
//! links, the working directory): Landlock keeps the workload out of the
//! rootfs. A tmpfs does not survive a reboot, so start remounts a missing
//! overlay and create's edits are applied again
//! ([`super::create::reapply_rootfs_edits`]).
//!
//! Needs `CAP_SYS_ADMIN` (the agent runs as root); without it, or where
//! overlayfs refuses, create falls back to a clone ([`super::clone`]) and
//! `run/` is a plain directory.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The runtime directory of the container in `dir` (the hosting layer's
/// `run/`).
fn run_dir(dir: &Path) -> PathBuf {
    dir.join("run")
}
use zlayer_hosting::run_tmpfs::is_mounted;

/// The upper layer of the container in `dir`.
pub fn upper_dir(dir: &Path) -> PathBuf {
    run_dir(dir).join("upper")
}

/// The overlay work directory of the container in `dir`.
pub fn work_dir(dir: &Path) -> PathBuf {
    run_dir(dir).join("work")
}

/// Whether `path` can be written into overlayfs mount options as is (no
/// separators or escapes, and printed unescaped in `/proc/self/mountinfo`).
pub fn option_safe(path: &Path) -> bool {
    path.is_absolute()
        && path
            .as_os_str()
            .as_bytes()
            .iter()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b',' | b':' | b'\\' | b'='))
}

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Mounts the overlay of `lower` on `dir/rootfs` (created if missing), with its
/// upper and work directories in `dir/run` (which must exist, see
/// [`make_run_dir`]). Errors leave nothing mounted.
pub fn mount(lower: &Path, dir: &Path) -> io::Result<()> {
    if !option_safe(lower) || !option_safe(dir) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the image or container path has characters overlayfs options cannot carry",
        ));
    }
    let rootfs = dir.join("rootfs");
    let upper = upper_dir(dir);
    std::fs::create_dir(&upper)?;
    std::fs::create_dir(work_dir(dir))?;
    match std::fs::create_dir(&rootfs) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    // The merged root takes the upper directory's owner and mode.
    if let Ok(meta) = std::fs::metadata(lower) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            &upper,
            std::fs::Permissions::from_mode(meta.mode() & 0o7777),
        )?;
        let _ = std::os::unix::fs::chown(&upper, Some(meta.uid()), Some(meta.gid()));
    }
    mount_layers(lower, dir, &rootfs)
}

fn mount_layers(lower: &Path, dir: &Path, rootfs: &Path) -> io::Result<()> {
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper_dir(dir).display(),
        work_dir(dir).display()
    );
    let options = CString::new(options)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad overlay options"))?;
    let target = cstr(rootfs)?;
    // SAFETY: all pointers are valid NUL-terminated strings for the call.
    let r = unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            target.as_ptr(),
            c"overlay".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Remounts the overlay of the container in `dir` when it is not mounted
/// (after a reboot emptied its runtime tmpfs). Returns true when it mounted
/// a fresh upper layer, which then lacks create's edits.
pub fn ensure_mounted(dir: &Path, lower: &Path) -> io::Result<bool> {
    let rootfs = dir.join("rootfs");
    if is_mounted(&rootfs) {
        return Ok(false);
    }
    // The hosting layer mounted `run/` again before the start.
    for d in [upper_dir(dir), work_dir(dir)] {
        if d.exists() {
            std::fs::remove_dir_all(&d)?;
        }
    }
    mount(lower, dir)?;
    Ok(true)
}

/// Unmounts the rootfs overlay and the runtime tmpfs of the container in
/// `dir`, whichever is mounted. Lazy detaches: processes that still hold
/// files there keep them until they close them, and the directory can be
/// deleted at once.
pub fn unmount(dir: &Path) -> io::Result<()> {
    for target in [dir.join("rootfs"), run_dir(dir)] {
        if is_mounted(&target) {
            detach(&target)?;
        }
    }
    Ok(())
}

fn detach(target: &Path) -> io::Result<()> {
    let c = cstr(target)?;
    // SAFETY: a valid NUL-terminated path.
    let r = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINVAL) {
        // Not a mount point (any more).
        return Ok(());
    }
    Err(e)
}

/// Whether an overlay in this mount namespace uses `lower` as lower layer
/// (read from `/proc/self/mountinfo`).
pub fn lower_in_use(lower: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        // Unknown: keep the directory.
        return true;
    };
    let needle = format!("lowerdir={}", lower.display());
    info.lines()
        .filter(|l| l.contains(" - overlay "))
        .any(|l| l.split([',', ' ']).any(|opt| opt == needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_safe_paths() {
        assert!(option_safe(Path::new(
            "/var/lib/zlayer/sandbox/images/x-1/rootfs"
        )));
        assert!(!option_safe(Path::new("relative/dir")));
        assert!(!option_safe(Path::new("/a,b")));
        assert!(!option_safe(Path::new("/a:b")));
        assert!(!option_safe(Path::new("/a b")));
        assert!(!option_safe(Path::new("/a\\b")));
        assert!(!option_safe(Path::new("/a=b")));
    }

    /// A real mount (the tests run as root): writes land in the upper layer
    /// on the runtime tmpfs, the lower one is untouched, and unmount leaves
    /// empty mount points.
    #[test]
    fn mount_write_and_unmount() {
        let d = tempfile::tempdir().unwrap();
        let lower = d.path().join("lower");
        std::fs::create_dir_all(lower.join("bin")).unwrap();
        std::fs::write(lower.join("bin/tool"), b"v1").unwrap();
        let dir = d.path().join("c");
        std::fs::create_dir_all(&dir).unwrap();
        let run_tmpfs = |dir: &Path| {
            zlayer_hosting::run_tmpfs::ensure_private_tmpfs(
                &run_dir(dir),
                zlayer_hosting::run_tmpfs::RUN_OPTIONS,
            )
            .unwrap()
        };
        assert!(run_tmpfs(&dir), "root gets a tmpfs");
        assert!(run_tmpfs(&dir), "idempotent");
        mount(&lower, &dir).unwrap();
        let rootfs = dir.join("rootfs");
        assert!(is_mounted(&rootfs));
        assert!(lower_in_use(&lower));
        assert_eq!(std::fs::read(rootfs.join("bin/tool")).unwrap(), b"v1");
        std::fs::write(rootfs.join("bin/tool"), b"v2").unwrap();
        std::fs::write(rootfs.join("new"), b"n").unwrap();
        assert_eq!(std::fs::read(lower.join("bin/tool")).unwrap(), b"v1");
        assert!(!lower.join("new").exists());
        assert_eq!(
            std::fs::read(upper_dir(&dir).join("bin/tool")).unwrap(),
            b"v2"
        );
        assert!(!ensure_mounted(&dir, &lower).unwrap(), "already mounted");
        // A reboot: both mounts gone; the remount starts from the image.
        unmount(&dir).unwrap();
        assert!(!is_mounted(&rootfs) && !is_mounted(&run_dir(&dir)));
        assert!(!lower_in_use(&lower));
        assert!(!rootfs.join("bin").exists());
        // The hosting layer mounts `run/` again before a start.
        assert!(run_tmpfs(&dir));
        assert!(ensure_mounted(&dir, &lower).unwrap());
        assert_eq!(std::fs::read(rootfs.join("bin/tool")).unwrap(), b"v1");
        unmount(&dir).unwrap();
        unmount(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(std::fs::read(lower.join("bin/tool")).unwrap(), b"v1");
    }
}
