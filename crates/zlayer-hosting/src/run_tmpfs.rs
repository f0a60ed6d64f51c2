//! Private tmpfs mounts for a container's runtime-only files.
//!
//! Files that only matter while a container exists (libcontainer's state,
//! the sandbox's overlay upper layer) go on a small tmpfs mounted in the
//! container's state directory rather than on the data root's disk:
//! creating and deleting them allocates and frees no disk inodes (on an
//! ext4 without a journal each freed inode slows later allocations for
//! minutes, and with `discard` each freed file waits for a TRIM), and
//! removing the container drops them all with one unmount. A tmpfs does
//! not survive a reboot; callers remount it ([`ensure_private_tmpfs`] is
//! idempotent) before they need it again.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Whether `path` is a mount point (its device differs from its parent's).
pub fn is_mounted(path: &Path) -> bool {
    let parent = path.parent().unwrap_or(path);
    match (std::fs::metadata(path), std::fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

/// Makes `dir` (created if missing) a private tmpfs with mount `options`
/// (`mode=0700,size=...`), unless it is one already. Returns whether it
/// is a tmpfs: false (a plain directory) when this process may not mount
/// or the mount fails, which callers accept as a slower fallback.
pub fn ensure_private_tmpfs(dir: &Path, options: &CStr) -> io::Result<bool> {
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    if is_mounted(dir) {
        return Ok(true);
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(false);
    }
    let target = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::other(format!("{} contains a NUL byte", dir.display())))?;
    // SAFETY: valid NUL-terminated strings for the call.
    let r = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        )
    };
    if r == 0 {
        Ok(true)
    } else {
        let e = io::Error::last_os_error();
        tracing::debug!(error = %e, dir = %dir.display(), "no tmpfs for runtime files");
        Ok(false)
    }
}

/// Mount options of a container's `run/` tmpfs: owner-only, small (it
/// holds sockets, libcontainer's state, an overlay upper layer of create's
/// edits), with room for many small files.
pub const RUN_OPTIONS: &CStr = c"mode=0700,size=64m,nr_inodes=65536";

/// Makes `dir`'s `run/` a private tmpfs unless it is one (at create, and
/// at start after a reboot emptied it). Where mounting is refused it stays
/// a plain directory.
pub fn ensure_run_dir(dir: &crate::layout::StateDir) -> std::io::Result<bool> {
    ensure_private_tmpfs(&dir.run(), RUN_OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_once_and_reports_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let first = ensure_private_tmpfs(&dir, c"mode=0700,size=1m").unwrap();
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        assert_eq!(first, root, "a tmpfs exactly when running as root");
        assert_eq!(is_mounted(&dir), root);
        assert_eq!(
            ensure_private_tmpfs(&dir, c"mode=0700,size=1m").unwrap(),
            root
        );
        if root {
            nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH).unwrap();
        }
        assert!(!is_mounted(&dir));
    }
}
