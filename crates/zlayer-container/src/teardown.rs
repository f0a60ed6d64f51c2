//! Releasing what a container owns besides its state directory (the
//! hosting layer deletes that): its network, libcontainer state, cgroups,
//! rootfs mount and image lease. Shared by remove, a failed create, a
//! restart and a monitor that was killed.

use super::cgroups::ContainerCgroup;
use super::network;
use super::paths::ContainerPaths;
use super::plan::ContainerPlan;
use zlayer_runtime::error::{Result, RuntimeError};

/// Releases everything of the container at `paths` but its directory.
/// Idempotent; `plan` is `None` for a create that did not finish (the
/// cgroup path then follows from the layout). Processes are killed first
/// (everything in the cgroup).
pub fn teardown(
    paths: &ContainerPaths,
    plan: Option<&ContainerPlan>,
    store: Option<&zlayer_image::ImageStore>,
) -> Result<()> {
    let cgroup_path = plan
        .map(|p| p.cgroup_path.clone())
        .or_else(|| paths.cgroup_path())
        .ok_or_else(|| {
            RuntimeError::Internal(format!("{} has no data root", paths.dir.display()))
        })?;
    let cgroup = ContainerCgroup::new(&cgroup_path);
    cgroup.kill_all();

    // The remaining steps all run even when one fails, so a failure leaves
    // as little as possible behind; the first error is returned.
    let mut first_err: Option<RuntimeError> = None;
    let mut note = |r: Result<()>| {
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    };
    // The network: veth, port rules, address lease (the monitor did it
    // already when it saw the exit; this covers a killed monitor).
    note(network::detach(paths, plan));
    // libcontainer's state (its cgroups are ours to remove below).
    note(remove_dir_if_exists(&paths.lc_dir()));
    let left = cgroup.remove();
    if !left.is_empty() {
        note(Err(RuntimeError::Internal(format!(
            "could not remove the cgroups {left:?} of {}; some process in them survived SIGKILL \
             (stuck in the kernel?); remove the container again later",
            paths.lc_id
        ))));
    }
    // The rootfs overlay, then the image lease.
    let rootfs = paths.rootfs();
    if zlayer_hosting::run_tmpfs::is_mounted(&rootfs)
        && nix::mount::umount2(&rootfs, nix::mount::MntFlags::empty()).is_err()
    {
        let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
    }
    if let Some(store) = store {
        note(store.unregister_use(&paths.dir).map_err(|e| {
            RuntimeError::Internal(format!(
                "releasing the image of {} failed: {e}",
                paths.dir.display()
            ))
        }));
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Clears what the previous run of an exited container left (libcontainer
/// state, cgroups, leftover processes) so it can be started again in
/// place: the rootfs (with its changes), volumes and logs stay.
pub fn reset_for_restart(paths: &ContainerPaths, plan: &ContainerPlan) -> Result<()> {
    let cg = ContainerCgroup::new(&plan.cgroup_path);
    cg.kill_all();
    remove_dir_if_exists(&paths.lc_dir())?;
    let left = cg.remove();
    if !left.is_empty() {
        return Err(RuntimeError::Internal(format!(
            "could not remove the cgroups {left:?} of {}",
            paths.lc_id
        )));
    }
    Ok(())
}

/// What a killed monitor could not do: kill what is left in the cgroup
/// (the init died with the monitor, and the pid namespace with it) and
/// release the network.
pub fn kill_orphans(paths: &ContainerPaths, plan: &ContainerPlan) {
    ContainerCgroup::new(&plan.cgroup_path).kill_all();
    let _ = network::detach(paths, Some(plan));
}

fn remove_dir_if_exists(dir: &std::path::Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RuntimeError::Internal(format!(
            "removing {} failed: {e}",
            dir.display()
        ))),
    }
}
