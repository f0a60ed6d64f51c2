//! Where a sandbox container is, derived from its files alone (so a new
//! agent process re-adopts containers started by an earlier one).

use zlayer_hosting::exit::ExitRecord;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::{ContainerId, ContainerState};
use zlayer_sys::atomic::read_json;
use zlayer_sys::procfs;

use super::layout::ContainerPaths;
use super::record::{ContainerRecord, MonitorInfo};

/// The lifecycle phase with the data each phase has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Created, never started (or its start failed).
    Created,
    /// The monitor and workload run.
    Running(MonitorInfo),
    /// Running, frozen by `pause`.
    Paused(MonitorInfo),
    /// Ended; the monitor recorded how.
    Ended(ExitRecord),
    /// The monitor died without recording the end (killed with SIGKILL).
    Lost(MonitorInfo),
}

impl Phase {
    /// The public state.
    pub fn state(&self) -> ContainerState {
        match self {
            Phase::Created => ContainerState::Pending,
            Phase::Running(_) => ContainerState::Running,
            Phase::Paused(_) => ContainerState::Paused,
            Phase::Ended(rec) => match &rec.reason {
                Some(reason) => ContainerState::Failed { reason: reason.clone() },
                None => ContainerState::Exited { code: rec.code },
            },
            Phase::Lost(info) => ContainerState::Failed {
                reason: format!(
                    "the sandbox monitor (pid {}) died without recording the exit status; remove the container",
                    info.monitor_pid
                ),
            },
        }
    }

    /// The monitor of a live container.
    pub fn live(&self) -> Option<&MonitorInfo> {
        match self {
            Phase::Running(i) | Phase::Paused(i) => Some(i),
            _ => None,
        }
    }
}

/// Reads `config.json`; NotFound when the container does not exist.
pub fn record(paths: &ContainerPaths, id: &ContainerId) -> Result<ContainerRecord> {
    read_json(&paths.config())?.ok_or_else(|| RuntimeError::container_not_found(id))
}

/// Whether the monitor recorded in `info` still runs.
pub fn monitor_alive(info: &MonitorInfo) -> bool {
    procfs::is_alive(info.monitor_pid, Some(info.monitor_starttime))
}

/// The current phase; NotFound when the container does not exist.
pub fn phase(paths: &ContainerPaths, id: &ContainerId) -> Result<Phase> {
    if !paths.config().exists() {
        return Err(RuntimeError::container_not_found(id));
    }
    if let Some(rec) = read_json::<ExitRecord>(&paths.exit())? {
        return Ok(Phase::Ended(rec));
    }
    let Some(info) = read_json::<MonitorInfo>(&paths.monitor())? else {
        return Ok(Phase::Created);
    };
    if monitor_alive(&info) {
        if paths.paused().exists() {
            return Ok(Phase::Paused(info));
        }
        return Ok(Phase::Running(info));
    }
    // The monitor may have written exit.json just before exiting.
    if let Some(rec) = read_json::<ExitRecord>(&paths.exit())? {
        return Ok(Phase::Ended(rec));
    }
    Ok(Phase::Lost(info))
}

/// Whether a log follower may stop: the container ended or was removed.
/// A created container that has not started yet is not finished (a follower
/// attached before the start sees the whole run).
pub fn finished(paths: &ContainerPaths) -> bool {
    if !paths.config().exists() || paths.exit().exists() {
        return true;
    }
    match read_json::<MonitorInfo>(&paths.monitor()) {
        Ok(Some(info)) => !monitor_alive(&info),
        Ok(None) => false,
        Err(_) => true,
    }
}

/// Waits until the monitor of `info` has exited (pidfd readiness); returns
/// false when that cannot be watched (then the caller polls).
pub async fn monitor_exited(info: &MonitorInfo) -> bool {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, info.monitor_pid, 0) };
    if fd < 0 {
        return !monitor_alive(info);
    }
    // SAFETY: the fd was just returned to us by the kernel.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The pid may have been reused between the record and pidfd_open.
    if !monitor_alive(info) {
        return true;
    }
    // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same
    // for the AsyncFd's whole life.
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    };
    match registered {
        Ok(afd) => afd.readable().await.is_ok(),
        Err(_) => false,
    }
}
