//! Where a container is, derived from its state files alone, so any
//! process (a new CLI, a restarted daemon) sees the same containers.

use crate::exit::ExitRecord;
use crate::layout::StateDir;
use crate::monitor_record::MonitorRecord;
use crate::records;
use zlayer_runtime::{ContainerRecord, ContainerState, Result};

/// The lifecycle phase, with the data each phase has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// `create` is still running in a live process.
    Creating,
    /// The process that was creating it died before it finished; `rm`
    /// clears what it made.
    Interrupted,
    /// Created, not started (or its start failed).
    Created,
    /// The monitor and the workload run.
    Running(MonitorRecord),
    /// Running, frozen.
    Paused(MonitorRecord),
    /// Ended; the monitor (or whoever found its monitor dead) recorded how.
    Ended(ExitRecord),
    /// The monitor died without recording the end; [`crate::runtime`]
    /// records it as soon as it sees this.
    Lost(MonitorRecord),
}

impl Phase {
    /// The public state.
    pub fn state(&self, record: &ContainerRecord) -> ContainerState {
        match self {
            Phase::Creating | Phase::Created => ContainerState::Pending,
            Phase::Interrupted => ContainerState::Failed {
                reason: format!(
                    "its creation was interrupted (process {} ended before it finished); \
                     remove it with `zlayer rm {}`",
                    record.created_by.pid, record.name
                ),
                code: None,
            },
            Phase::Running(_) => ContainerState::Running,
            Phase::Paused(_) => ContainerState::Paused,
            Phase::Ended(exit) => exit.state(),
            Phase::Lost(m) => ContainerState::Failed {
                reason: format!(
                    "its monitor (pid {}) ended without recording an exit code",
                    m.monitor.pid
                ),
                code: Some(137),
            },
        }
    }

    /// The monitor of a running or paused container.
    pub fn live(&self) -> Option<&MonitorRecord> {
        match self {
            Phase::Running(m) | Phase::Paused(m) => Some(m),
            _ => None,
        }
    }
}

/// The phase of the container in `dir` whose record is `record`.
pub fn observe(dir: &StateDir, record: &ContainerRecord) -> Result<Phase> {
    if let Some(exit) = records::read_exit(dir)? {
        return Ok(Phase::Ended(exit));
    }
    let Some(monitor) = records::read_monitor(dir)? else {
        if dir.launch().exists() {
            return Ok(Phase::Created);
        }
        // launch.json is written last by create.
        return Ok(if record.created_by.is_alive() {
            Phase::Creating
        } else if dir.launch().exists() {
            Phase::Created
        } else {
            Phase::Interrupted
        });
    };
    if monitor.monitor_alive() {
        return Ok(if dir.paused().exists() {
            Phase::Paused(monitor)
        } else {
            Phase::Running(monitor)
        });
    }
    // The monitor writes exit.json just before it exits.
    if let Some(exit) = records::read_exit(dir)? {
        return Ok(Phase::Ended(exit));
    }
    Ok(Phase::Lost(monitor))
}
