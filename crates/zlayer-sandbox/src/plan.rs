//! The sandbox's launch plan (`launch.json`): what `prepare` resolved,
//! everything the monitor needs to start (and restart) the workload.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::policy::Policy;
use super::ports::AllocatedPort;

/// Format version of the plan.
pub const PLAN_VERSION: u32 = 2;

/// What a sandbox runs, and under which policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPlan {
    /// Format version.
    pub version: u32,
    /// argv as the workload sees it (argv[0] as written in the spec).
    pub argv: Vec<String>,
    /// Host path of the executable (inside the rootfs).
    pub program: PathBuf,
    /// Why the command could not be resolved at create (the start fails
    /// with it: docker's 126/127).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<zlayer_hosting::SpawnError>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Working directory inside the container.
    pub workdir: String,
    /// Its host path (inside the rootfs).
    pub cwd: PathBuf,
    /// Endpoint ports.
    pub ports: Vec<AllocatedPort>,
    /// The policy.
    pub policy: Policy,
    /// `resources.pids_limit`, for stats.
    pub pids_limit: Option<i64>,
    /// Whether the workload gets a terminal (label `com.zlayer.tty`).
    #[serde(default)]
    pub tty: bool,
    /// The image directory under the overlay rootfs (`None`: the rootfs is
    /// a clone); a start remounts it when it is not mounted (after a reboot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_lower: Option<PathBuf>,
}
