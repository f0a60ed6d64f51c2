//! Unmounting what a container left mounted in its state directory.

use std::path::Path;
use zlayer_runtime::RuntimeError;

/// Unmounts everything mounted at or below `dir` (stacked mounts too),
/// deepest first; lazily when busy. Fails if a mount remains.
pub fn unmount_all_under(dir: &Path) -> Result<(), RuntimeError> {
    let io =
        |e: zlayer_image::Error| RuntimeError::Internal(format!("reading the mount table: {e}"));
    for _ in 0..16 {
        let mut below = zlayer_image::mounts_under(dir).map_err(io)?;
        if below.is_empty() {
            return Ok(());
        }
        below.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for m in below {
            if nix::mount::umount2(&m, nix::mount::MntFlags::empty()).is_err() {
                let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
    let left = zlayer_image::mounts_under(dir).map_err(io)?;
    Err(RuntimeError::Internal(format!(
        "{left:?} are still mounted below {}; unmount them (umount -l) and remove the container again",
        dir.display()
    )))
}
