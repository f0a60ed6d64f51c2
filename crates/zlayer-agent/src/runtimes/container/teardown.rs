//! Removing everything a container owns: its processes, cgroups,
//! libcontainer state, rootfs mount and state dir. Shared by the agent's
//! `remove_container`, failed starts, and the monitor's `delete_on_exit`.

use super::cgroups::ContainerCgroup;
use super::paths::ContainerPaths;
use super::state_dir::{self, ContainerRecord, ShimRecord};
use crate::error::{AgentError, Result};
use crate::runtimes::common::procfs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a monitor gets to record the exit after its init was killed.
const MONITOR_GRACE: Duration = Duration::from_secs(2);

/// Removes container `paths` completely. Idempotent; `record` is read from
/// disk when not given (a container without one is removed all the same).
///
/// `store` is the caller's image store handle, if it has one (else the
/// store of the data root is opened).
pub fn remove_container(
    paths: &ContainerPaths,
    record: Option<&ContainerRecord>,
    store: Option<&zlayer_image::ImageStore>,
) -> Result<()> {
    let loaded;
    let record = match record {
        Some(r) => Some(r),
        None => {
            loaded = state_dir::read_json::<ContainerRecord>(&paths.record()).ok().flatten();
            loaded.as_ref()
        }
    };
    let shim: Option<ShimRecord> = state_dir::read_json(&paths.shim()).ok().flatten();
    let cgroup = record.map(|r| ContainerCgroup::new(&r.cgroup_path));

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

    // 2. libcontainer's state (its cgroups are ours to remove below).
    remove_dir_if_exists(&paths.lc_dir())?;

    // 3. cgroups.
    if let Some(cg) = &cgroup {
        let left = cg.remove();
        if !left.is_empty() {
            return Err(AgentError::Internal(format!(
                "could not remove the cgroups {left:?} of {}; some process in them survived SIGKILL",
                paths.lc_id
            )));
        }
    }

    // 4. The rootfs.
    if paths.dir.exists() {
        release_rootfs(paths, store)?;
    }

    // 5. The state dir.
    remove_dir_if_exists(&paths.dir)
}

/// Unmounts the rootfs and drops the image lease.
pub fn release_rootfs(paths: &ContainerPaths, store: Option<&zlayer_image::ImageStore>) -> Result<()> {
    let opened;
    let store = match store {
        Some(s) => s,
        None => {
            let root = paths.dir.parent().and_then(Path::parent).ok_or_else(|| {
                AgentError::Internal(format!("{} has no data root", paths.dir.display()))
            })?;
            opened = zlayer_image::ImageStore::open(root).map_err(|e| {
                AgentError::Internal(format!("opening the image store at {}: {e}", root.display()))
            })?;
            &opened
        }
    };
    store.release_rootfs(&paths.dir).map_err(|e| {
        AgentError::Internal(format!(
            "releasing the rootfs of {} failed: {e}",
            paths.dir.display()
        ))
    })?;
    if zlayer_image::is_mountpoint(&paths.rootfs()).unwrap_or(false) {
        return Err(AgentError::Internal(format!(
            "{} is still mounted; unmount it (umount -l) and remove the container again",
            paths.rootfs().display()
        )));
    }
    Ok(())
}

fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(AgentError::Internal(format!(
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
