//! The lifecycle state of a container.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a container is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ContainerState {
    /// Created, not started yet.
    Pending,
    /// Its init process runs.
    Running,
    /// Frozen (cgroup freezer, QMP `stop`, SIGSTOP).
    Paused,
    /// A graceful stop is in progress.
    Stopping,
    /// Its init process ended with `code` (128+N when killed by signal N).
    Exited {
        /// The exit code, docker style.
        code: i32,
    },
    /// It could not run, or was killed by the engine (OOM, watchdog...).
    Failed {
        /// Why, for the user.
        reason: String,
        /// The exit code docker reports, when the workload ran and was
        /// ended (137 after a kill); `None` when it never ran.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
    },
}

impl ContainerState {
    /// True while the workload runs or is frozen.
    pub fn is_alive(&self) -> bool {
        matches!(
            self,
            ContainerState::Running | ContainerState::Paused | ContainerState::Stopping
        )
    }

    /// True once the workload has ended for good.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ContainerState::Exited { .. } | ContainerState::Failed { .. }
        )
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContainerState::Pending => f.write_str("created"),
            ContainerState::Running => f.write_str("running"),
            ContainerState::Paused => f.write_str("paused"),
            ContainerState::Stopping => f.write_str("stopping"),
            ContainerState::Exited { code } => write!(f, "exited ({code})"),
            ContainerState::Failed { reason, .. } => write!(f, "failed: {reason}"),
        }
    }
}
