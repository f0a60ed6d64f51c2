//! Runs the kernel's cgroup-migration grace period ahead of a start.
//!
//! Moving a process between cgroups (a write to `cgroup.procs`, on v1 and
//! v2 alike) takes the kernel's global `cgroup_threadgroup_rwsem` for
//! writing. When no migration happened within the last RCU grace period,
//! taking it first waits for one (`rcu_sync_enter`): 8-20 ms measured here,
//! the largest part of a container start. libcontainer's intermediate
//! process pays it when it joins the container's cgroups.
//!
//! [`begin`] starts a no-op migration of this process into its own cgroup
//! on a short-lived thread, right before the monitor is spawned. The grace
//! period then elapses while the monitor execs and libcontainer prepares
//! the namespaces; the intermediate's migration joins the grace period
//! already under way (or finds it over) instead of starting its own.
//! Nothing changes for this process: it stays in the cgroup it was in.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use super::cgroups::HostCgroups;

/// Whether a warm-up thread is running (one at a time is enough).
static IN_FLIGHT: AtomicBool = AtomicBool::new(false);

/// Starts the warm-up in the background; never fails or blocks.
pub fn begin() {
    if IN_FLIGHT.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("cgroup-warmup".into())
        .spawn(|| {
            if let Some(procs) = own_procs_file() {
                // A failure only means no head start.
                let _ = std::fs::write(procs, std::process::id().to_string());
            }
            IN_FLIGHT.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        IN_FLIGHT.store(false, Ordering::Release);
    }
}

/// The `cgroup.procs` of this process's own cgroup in one hierarchy: the
/// cgroup2 one when mounted (no controllers needed), else a v1 controller
/// hierarchy (not a named one such as systemd's).
fn own_procs_file() -> Option<PathBuf> {
    let host = HostCgroups::get();
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    own_procs_file_in(host, &text)
}

fn own_procs_file_in(host: &HostCgroups, proc_self_cgroup: &str) -> Option<PathBuf> {
    let entries: Vec<(&str, &str)> = proc_self_cgroup
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            Some((parts.next()?, parts.next()?))
        })
        .collect();
    let unified = entries
        .iter()
        .filter(|(controllers, _)| controllers.is_empty())
        .filter_map(|(_, path)| Some((host.unified.clone()?, *path)));
    let v1 = entries.iter().filter_map(|(controllers, path)| {
        let mount = controllers
            .split(',')
            .filter(|c| !c.is_empty() && !c.starts_with("name="))
            .find_map(|c| host.v1.get(c).cloned())?;
        Some((mount, *path))
    });
    unified
        .chain(v1)
        .map(|(mount, path)| {
            mount
                .join(path.trim_start_matches('/'))
                .join("cgroup.procs")
        })
        .find(|file| file.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_unified_or_a_v1_hierarchy() {
        let hybrid = HostCgroups {
            mode: super::super::cgroups::CgroupMode::Hybrid,
            v1: [("pids".to_string(), PathBuf::from("/nonexistent/pids"))].into(),
            unified: Some(PathBuf::from("/nonexistent/unified")),
        };
        // Nothing exists under /nonexistent: no file.
        assert_eq!(own_procs_file_in(&hybrid, "5:pids:/a\n0::/a\n"), None);
        // This process's own cgroup exists wherever the test runs.
        let host = HostCgroups::get();
        if let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") {
            if let Some(f) = own_procs_file_in(host, &text) {
                assert!(f.ends_with("cgroup.procs"), "{}", f.display());
            }
        }
    }
}
