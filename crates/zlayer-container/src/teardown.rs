//! Removing everything a container owns: its processes, network, cgroups,
//! libcontainer state, rootfs mount and state dir. Shared by the agent's
//! `remove_container`, failed starts, and the monitor's `delete_on_exit`.

use super::cgroups::ContainerCgroup;
use super::paths::ContainerPaths;
use super::state_dir::{self, ContainerRecord, ShimRecord};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_sys::procfs;

/// How long a monitor gets to record the exit after its init was killed.
const MONITOR_GRACE: Duration = Duration::from_secs(2);

/// How directory trees are deleted once nothing is mounted in them.
#[derive(Debug, Clone)]
pub enum Deletion {
    /// Delete before returning.
    Now,
    /// Move them into `<root>/containers/.trash` (one rename) and delete
    /// them on a background thread tracked by the given set: a container's
    /// files cost a few dozen journaled metadata operations, which stall for
    /// milliseconds each on a busy disk. The runtime waits for the set when
    /// it is dropped; leftovers of a process that died meanwhile are removed
    /// by the next [`super::ContainerRuntime::new`].
    Background(BackgroundDeletions),
}

/// Background deletions still running.
#[derive(Debug, Clone, Default)]
pub struct BackgroundDeletions(Arc<Mutex<Vec<JoinHandle<()>>>>);

impl BackgroundDeletions {
    /// Runs `f` on a new thread, tracked by this set.
    pub fn spawn(&self, f: impl FnOnce() + Send + 'static) {
        let handle = std::thread::spawn(f);
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        v.retain(|h| !h.is_finished());
        v.push(handle);
    }

    /// Waits for every deletion started so far.
    pub fn wait_all(&self) {
        let handles: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}

/// Removes container `paths` completely. Idempotent; `record` is read from
/// disk when not given (a container without one is removed all the same).
///
/// `store` is the caller's image store handle, if it has one (else the
/// store of the data root is opened).
pub fn remove_container(
    paths: &ContainerPaths,
    record: Option<&ContainerRecord>,
    store: Option<&zlayer_image::ImageStore>,
    deletion: Deletion,
) -> Result<()> {
    let loaded;
    let record = match record {
        Some(r) => Some(r),
        None => {
            loaded = state_dir::read_json::<ContainerRecord>(&paths.record())
                .ok()
                .flatten();
            loaded.as_ref()
        }
    };
    let shim: Option<ShimRecord> = state_dir::read_json(&paths.shim()).ok().flatten();
    // Without a (readable) record the cgroup path follows from the layout.
    let cgroup_path = record.map(|r| r.cgroup_path.clone()).or_else(|| {
        paths
            .data_root()
            .map(|root| super::paths::Layout::new(root).cgroup_path_for(&paths.lc_id))
    });
    let cgroup = cgroup_path.map(|p| ContainerCgroup::new(&p));

    // 1. Processes: the init, everything in the cgroup, then the monitor.
    if let Some(s) = &shim {
        if s.init_alive() {
            kill(s.init_pid);
        }
    }
    if let Some(cg) = &cgroup {
        cg.kill_all();
    }
    let me = std::process::id() as i32;
    if let Some(s) = shim.as_ref().filter(|s| s.shim_pid != me) {
        if !wait_exit(s.shim_pid, s.shim_starttime, MONITOR_GRACE) {
            kill(s.shim_pid);
        }
    }

    // The remaining steps all run even when one fails, so a failure leaves
    // as little as possible behind; the first error is returned.
    let mut first_err: Option<RuntimeError> = None;
    let mut note = |r: Result<()>| {
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    };

    // 2. The network: veth, port rules, address lease (the monitor did it
    //    already when it saw the exit; this covers a killed monitor).
    note(super::network::detach(paths, record));

    // 3. libcontainer's state (its cgroups are ours to remove below).
    note(delete_tree(paths, &paths.lc_dir(), "lc", &deletion));

    // 4. cgroups.
    if let Some(cg) = &cgroup {
        let left = cg.remove();
        if !left.is_empty() {
            note(Err(RuntimeError::Internal(format!(
                "could not remove the cgroups {left:?} of {}; some process in them survived SIGKILL \
                 (stuck in the kernel?); remove the container again later",
                paths.lc_id
            ))));
        }
    }

    // 5. The rootfs and the state dir: unmount, drop the image lease, then
    //    delete the tree (only once nothing is mounted in it).
    if paths.dir.exists() {
        match unmount_all_under(&paths.dir) {
            Ok(()) => {
                note(release_lease(paths, store));
                note(delete_tree(paths, &paths.dir, "dir", &deletion));
            }
            Err(e) => note(Err(e)),
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

pub use zlayer_hosting::mounts::unmount_all_under;

/// Drops the image lease of the container (prune may then collect layers
/// no other container or image uses).
fn release_lease(paths: &ContainerPaths, store: Option<&zlayer_image::ImageStore>) -> Result<()> {
    let opened;
    let store = match store {
        Some(s) => s,
        None => {
            let root = paths.data_root().ok_or_else(|| {
                RuntimeError::Internal(format!("{} has no data root", paths.dir.display()))
            })?;
            opened = zlayer_image::ImageStore::open(root).map_err(|e| {
                RuntimeError::Internal(format!(
                    "opening the image store at {}: {e}",
                    root.display()
                ))
            })?;
            &opened
        }
    };
    store.unregister_use(&paths.dir).map_err(|e| {
        RuntimeError::Internal(format!(
            "releasing the image of {} failed: {e}",
            paths.dir.display()
        ))
    })
}

/// The directory deleted trees are moved to.
pub fn trash_dir(paths: &ContainerPaths) -> Option<std::path::PathBuf> {
    paths
        .dir
        .parent()
        .map(|containers| containers.join(".trash"))
}

/// Deletes `tree` now, or moves it to the trash and deletes it on a
/// background thread (falling back to now when the move fails).
fn delete_tree(paths: &ContainerPaths, tree: &Path, tag: &str, deletion: &Deletion) -> Result<()> {
    if let Deletion::Background(set) = deletion {
        if let Some(trash) = trash_dir(paths) {
            static SEQ: AtomicU64 = AtomicU64::new(0);
            let name = format!(
                "{}-{tag}-{}-{}",
                paths.lc_id,
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            );
            let target = trash.join(name);
            let _ = std::fs::create_dir_all(&trash);
            match std::fs::rename(tree, &target) {
                Ok(()) => {
                    set.spawn(move || {
                        let _ = std::fs::remove_dir_all(&target);
                    });
                    return Ok(());
                }
                Err(_) if !tree.exists() => return Ok(()),
                // A trash on another filesystem, or emptied meanwhile.
                Err(_) => {}
            }
        }
    }
    remove_dir_if_exists(tree)
}

/// Removes whatever an interrupted background deletion left in the trash.
pub fn empty_trash(containers_dir: &Path) {
    let _ = std::fs::remove_dir_all(containers_dir.join(".trash"));
}

/// Clears what the previous run of an exited container left (its
/// monitor, processes, libcontainer state, cgroups and exit records) so it
/// can be started again in place: the rootfs (with its changes), volumes
/// and logs stay.
pub fn reset_for_restart(
    paths: &ContainerPaths,
    record: &ContainerRecord,
    shim: Option<&ShimRecord>,
) -> Result<()> {
    if let Some(s) = shim {
        if s.init_alive() {
            return Err(RuntimeError::InvalidSpec(format!(
                "container {} is still running; stop it first",
                paths.lc_id
            )));
        }
        if !wait_exit(s.shim_pid, s.shim_starttime, MONITOR_GRACE) {
            kill(s.shim_pid);
        }
    }
    let cg = ContainerCgroup::new(&record.cgroup_path);
    cg.kill_all();
    remove_dir_if_exists(&paths.lc_dir())?;
    let left = cg.remove();
    if !left.is_empty() {
        return Err(RuntimeError::Internal(format!(
            "could not remove the cgroups {left:?} of {}",
            paths.lc_id
        )));
    }
    for f in [paths.shim(), paths.exit(), paths.socket()] {
        match std::fs::remove_file(&f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::Internal(format!(
                    "removing {} failed: {e}",
                    f.display()
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RuntimeError::Internal(format!(
            "removing {} failed: {e}",
            dir.display()
        ))),
    }
}

fn kill(pid: i32) {
    if pid > 0 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Waits up to `timeout` for process `pid` (started at `starttime`) to
/// end; true when it did (or was already gone). Uses a pidfd, so it returns
/// as soon as the process exits.
pub fn wait_exit(pid: i32, starttime: u64, timeout: Duration) -> bool {
    // SAFETY: pidfd_open has no memory-safety preconditions.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return true;
    }
    // SAFETY: a fresh fd from pidfd_open.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Checked after opening the pidfd: it then refers to this very process.
    if !procfs::is_alive(pid, Some(starttime)) {
        return true;
    }
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
        if n > 0 {
            return true;
        }
        if n == 0 || left.is_zero() {
            return !procfs::is_alive(pid, Some(starttime));
        }
    }
}
