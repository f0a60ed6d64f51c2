//! Removing everything a container owns: its processes, cgroups,
//! libcontainer state, rootfs mount and state dir. Shared by the agent's
//! `remove_container`, failed starts, and the monitor's `delete_on_exit`.

use super::cgroups::ContainerCgroup;
use super::paths::ContainerPaths;
use super::state_dir::{self, ContainerRecord, ShimRecord};
use crate::error::{AgentError, Result};
use crate::runtimes::common::procfs;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a monitor gets to record the exit after its init was killed.
const MONITOR_GRACE: Duration = Duration::from_secs(2);

/// Removes container `paths` completely. Idempotent; `record` is read from
/// disk when not given (a container without one is removed all the same).
pub fn remove_container(paths: &ContainerPaths, record: Option<&ContainerRecord>) -> Result<()> {
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
        let deadline = Instant::now() + MONITOR_GRACE;
        while s.shim_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if s.shim_alive() {
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
        release_rootfs(paths)?;
    }

    // 5. The state dir.
    remove_dir_if_exists(&paths.dir)
}

/// Unmounts the rootfs and drops the image lease.
pub fn release_rootfs(paths: &ContainerPaths) -> Result<()> {
    let root = paths
        .dir
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| AgentError::Internal(format!("{} has no data root", paths.dir.display())))?;
    let store = zlayer_image::ImageStore::open(root)
        .map_err(|e| AgentError::Internal(format!("opening the image store at {}: {e}", root.display())))?;
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

/// Whether `pid` is alive (not a zombie).
pub fn alive(pid: i32) -> bool {
    procfs::is_alive(pid, None)
}
