//! Removing a container: the launcher's teardown, then its state
//! directory, deleted in the background.
//!
//! [`remove_container`] has the launcher release what it allocated (mounts,
//! cgroups, network, image leases), unmounts the `run/` tmpfs, renames the
//! directory into `containers/.trash` (one rename) and empties it on a
//! background thread, so a remove returns without waiting for a dozen
//! deletions (each an inode-table update, and with the `discard` mount
//! option a synchronous TRIM). The emptied directory keeps its skeleton
//! (`rootfs/`, `run/`, `tmp/`, all empty, owned by root) and the inodes of
//! its small state files as spares, and goes to `containers/.free` (up to
//! [`MAX_FREE`] of them), where the next create takes it instead of
//! allocating inodes: on ext4 without a journal each new inode scans past
//! every inode freed in the last minutes. A process that exits before its
//! deletions finish leaves the rest in the trash; the next
//! [`crate::runtime::HostedRuntime`] sweeps it (unmounting anything a crash
//! left mounted there first).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::launcher::Launcher;
use crate::layout::{StateDir, SPARED_FILES};
use zlayer_runtime::{ContainerRecord, Result, RuntimeError};
use zlayer_sys::atomic::spare_path;

/// The log of a removed container, moved into its directory by `remove`
/// (on the same filesystem, that is one rename instead of an unlink).
pub const REMOVED_LOG: &str = "removed.log";

/// The spare log inode of a recycled container directory: an empty
/// [`REMOVED_LOG`] kept for the next container's log.
pub const LOG_SPARE: &str = ".log.spare";

/// Removes the container in `dir` completely: the launcher's teardown, the
/// `run/` tmpfs, then the directory (through the trash of its data root).
/// No workload process may run any more. Idempotent.
pub fn remove_container<L: Launcher + ?Sized>(
    launcher: &L,
    dir: &StateDir,
    record: &ContainerRecord,
) -> Result<()> {
    let containers = dir
        .dir
        .parent()
        .ok_or_else(|| RuntimeError::Internal(format!("{} has no parent", dir.dir.display())))?;
    let trash = Trash::new(containers);
    let r = remove_with(launcher, dir, record, &trash);
    trash.wait();
    r
}

/// [`remove_container`] with the caller's trash (whose deletions it waits
/// for when it wants).
pub fn remove_with<L: Launcher + ?Sized>(
    launcher: &L,
    dir: &StateDir,
    record: &ContainerRecord,
    trash: &Trash,
) -> Result<()> {
    if !dir.dir.exists() {
        return Ok(());
    }
    launcher.teardown(dir, record)?;
    zlayer_failpoints::hit("remove.after-teardown");
    // The log goes with the directory: a rename, not an unlink.
    let _ = std::fs::rename(dir.log(), dir.file(REMOVED_LOG));
    unmount_known(dir);
    zlayer_failpoints::hit("remove.before-discard");
    trash.discard(&dir.dir)?;
    // The name is free again (whoever removes: a front end, or the
    // monitor of a `--rm` container).
    if let Some(containers) = dir.dir.parent() {
        crate::runtime::NameIndex::in_containers_dir(containers).release(&record.name, &dir.name());
    }
    Ok(())
}

/// Unmounts the `run/` tmpfs (the launchers unmount their own mounts).
fn unmount_known(dir: &StateDir) {
    if crate::run_tmpfs::is_mounted(&dir.run())
        && nix::mount::umount2(&dir.run(), nix::mount::MntFlags::empty()).is_err()
    {
        let _ = nix::mount::umount2(&dir.run(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// How many emptied container directories `.free` keeps for reuse.
pub const MAX_FREE: usize = 8;

/// The subdirectories an emptied container directory keeps.
const SKELETON: &[&str] = &["rootfs", "run", "tmp"];

/// The trash of one containers directory, with its running deletions.
#[derive(Debug, Clone)]
pub struct Trash {
    dir: PathBuf,
    free: PathBuf,
    pending: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Trash {
    /// The trash of `containers_dir` (`containers_dir/.trash`, and
    /// `containers_dir/.free` for emptied directories).
    pub fn new(containers_dir: &Path) -> Self {
        Trash {
            dir: containers_dir.join(".trash"),
            free: containers_dir.join(".free"),
            pending: Arc::default(),
        }
    }

    /// Moves an emptied container directory to `dir` (which must not
    /// exist); false when there is none.
    pub fn reuse(&self, dir: &Path) -> bool {
        let Ok(entries) = std::fs::read_dir(&self.free) else {
            return false;
        };
        // Another process may take the same one first: try the next.
        entries
            .flatten()
            .any(|e| std::fs::rename(e.path(), dir).is_ok())
    }

    /// Moves the container directory `tree` into the trash and empties it
    /// on a background thread; deletes it here when it cannot be moved. A
    /// missing `tree` is fine.
    pub fn discard(&self, tree: &Path) -> Result<()> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{}-{}-{}",
            tree.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let target = self.dir.join(name);
        for _ in 0..2 {
            match std::fs::rename(tree, &target) {
                Ok(()) => {
                    // Usually nothing is left to delete (the state files
                    // become spares): recycled here in a few renames, which
                    // is cheaper than starting a thread. Else in the
                    // background.
                    if !recycle(&target, &self.free, false) {
                        self.spawn_all(vec![target]);
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !tree.exists() {
                        return Ok(());
                    }
                    // No trash yet.
                    let _ = std::fs::create_dir_all(&self.dir);
                }
                // Another filesystem, or no permission: delete in place.
                Err(_) => break,
            }
        }
        if crate::mounts::unmount_all_under(tree).is_ok() {
            remove_dir(tree)?;
        }
        Ok(())
    }

    /// Empties what earlier processes left in the trash, in the background
    /// (the trash directory itself stays, for the next `discard`).
    pub fn sweep(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let trees: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        if !trees.is_empty() {
            self.spawn_all(trees);
        }
    }

    /// Waits for every deletion started by this process so far.
    pub fn wait(&self) {
        let handles = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }

    fn spawn_all(&self, trees: Vec<PathBuf>) {
        let free = self.free.clone();
        let empty = move |trees: &[PathBuf]| {
            for tree in trees {
                recycle(tree, &free, true);
            }
        };
        let spawned = std::thread::Builder::new()
            .name("zlayer-trash".into())
            .spawn({
                let trees = trees.clone();
                let empty = empty.clone();
                move || {
                    // Cleanup must not delay the containers being started:
                    // this thread runs at the lowest priority (nice 19).
                    // SAFETY: gettid and setpriority on this thread only.
                    unsafe {
                        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
                    }
                    empty(&trees)
                }
            });
        match spawned {
            Ok(handle) => {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                pending.retain(|h| !h.is_finished());
                pending.push(handle);
            }
            // No thread: do it now.
            Err(_) => empty(&trees),
        }
    }
}

/// Empties the container directory `tree` (unmounting what a crash left
/// mounted) and moves its skeleton to `free`, or deletes it when `free` is
/// full or the skeleton cannot be kept. Without `deletes`, gives up (false)
/// as soon as a file or directory would have to be deleted, and the caller
/// leaves that to a background thread; true when `tree` is dealt with.
fn recycle(tree: &Path, free: &Path, deletes: bool) -> bool {
    // Anything a crash left mounted (a fast check: most trees have none
    // left, and their skeleton directories are then plain directories).
    if has_mounts(tree) && crate::mounts::unmount_all_under(tree).is_err() {
        return true;
    }
    let kept = std::fs::read_dir(free).map_or(0, |d| d.count());
    if kept < MAX_FREE {
        match empty_to_skeleton(tree, deletes) {
            Ok(true) => {
                let _ = std::fs::create_dir_all(free);
                if let Some(name) = tree.file_name() {
                    if std::fs::rename(tree, free.join(name)).is_ok() {
                        return true;
                    }
                }
            }
            Ok(false) => return false,
            Err(_) => {}
        }
    }
    if !deletes {
        return false;
    }
    let _ = remove_dir(tree);
    true
}

/// Deletes everything in `tree` but the [`SKELETON`] directories, which are
/// emptied (and given back to root, mode 0755), and the files kept as
/// spares ([`keep_inode`]). Without `deletes`, stops (false) before the
/// first deletion.
fn empty_to_skeleton(tree: &Path, deletes: bool) -> std::io::Result<bool> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let remove_tree = |p: &Path| remove_dir(p).map_err(|e| std::io::Error::other(e.to_string()));
    for entry in std::fs::read_dir(tree)? {
        let entry = entry?;
        let path = entry.path();
        let is_dir = entry.file_type()?.is_dir();
        if is_dir && SKELETON.iter().any(|k| entry.file_name() == *k) {
            for inner in std::fs::read_dir(&path)? {
                if !deletes {
                    return Ok(false);
                }
                let inner = inner?;
                if inner.file_type()?.is_dir() {
                    remove_tree(&inner.path())?;
                } else {
                    std::fs::remove_file(inner.path())?;
                }
            }
            let meta = std::fs::metadata(&path)?;
            if (meta.uid(), meta.gid()) != (0, 0) {
                std::os::unix::fs::chown(&path, Some(0), Some(0))?;
            }
            if meta.mode() & 0o7777 != 0o755 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            }
        } else if !keep_inode(&path, &entry.file_name())? {
            if !deletes {
                return Ok(false);
            }
            if is_dir {
                remove_tree(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(true)
}

/// Largest state file whose inode is kept (larger ones are deleted: a new
/// content that is shorter would free blocks on the next write).
const MAX_SPARE: u64 = 64 * 1024;

/// Keeps the file `path` (named `name`) of an emptied container directory
/// as a spare inode for the next container when it is one of the state
/// files ([`SPARED_FILES`], renamed to their spare name), an empty
/// log, or already a spare; false when it is to be deleted.
fn keep_inode(path: &Path, name: &std::ffi::OsStr) -> std::io::Result<bool> {
    let Some(name) = name.to_str() else {
        return Ok(false);
    };
    // Already a spare (`.<name>.spare`, or the log's `.log.spare`).
    if name.starts_with('.') && name.ends_with(".spare") {
        return Ok(true);
    }
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return Ok(false);
    }
    let spare = if name == REMOVED_LOG && meta.len() == 0 {
        path.with_file_name(LOG_SPARE)
    } else if SPARED_FILES.contains(&name) && meta.len() <= MAX_SPARE {
        match spare_path(path) {
            Some(s) => s,
            None => return Ok(false),
        }
    } else {
        return Ok(false);
    };
    std::fs::rename(path, spare)?;
    Ok(true)
}

/// Whether anything is mounted in the skeleton of `tree` (its `rootfs/`
/// or `run/` is a mount point).
fn has_mounts(tree: &Path) -> bool {
    SKELETON
        .iter()
        .any(|d| crate::run_tmpfs::is_mounted(&tree.join(d)))
}

/// Removes a directory tree, making read-only directories writable first.
pub fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_writable(dir);
            std::fs::remove_dir_all(dir).or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(RuntimeError::Internal(format!(
                        "removing {} failed: {e}; remove it by hand",
                        dir.display()
                    )))
                }
            })
        }
    }
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::symlink_metadata(dir) {
        if m.is_dir() {
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discard_empties_and_reuses() {
        let d = tempfile::tempdir().unwrap();
        let containers = d.path().join("containers");
        let tree = containers.join("svc-1");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        std::fs::write(tree.join("a/b/f"), b"x").unwrap();
        std::fs::create_dir_all(tree.join("tmp/x")).unwrap();
        std::fs::create_dir_all(tree.join("rootfs/bin")).unwrap();
        std::fs::write(tree.join("record.json"), b"{}").unwrap();
        let trash = Trash::new(&containers);
        trash.discard(&tree).unwrap();
        assert!(!tree.exists(), "gone at once");
        trash.wait();
        assert_eq!(
            std::fs::read_dir(containers.join(".trash"))
                .unwrap()
                .count(),
            0
        );
        // The emptied skeleton is reused.
        let reused = containers.join("svc-2");
        assert!(trash.reuse(&reused));
        let mut names: Vec<_> = std::fs::read_dir(&reused)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".record.json.spare", "rootfs", "tmp"]);
        assert_eq!(std::fs::read_dir(reused.join("rootfs")).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(reused.join("tmp")).unwrap().count(), 0);
        assert!(!trash.reuse(&containers.join("svc-3")), "none left");
        // Leftovers of a process that exited too early are swept.
        std::fs::create_dir_all(containers.join(".trash/old/x")).unwrap();
        trash.sweep();
        trash.wait();
        assert_eq!(
            std::fs::read_dir(containers.join(".trash"))
                .unwrap()
                .count(),
            0
        );
        // Missing trees are fine.
        trash.discard(&tree).unwrap();
    }
}
