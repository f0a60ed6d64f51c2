//! The container's machine-readable state files: `config.json` (written at
//! create) and `monitor.json` (written by the monitor at start).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use zlayer_runtime::types::ContainerId;

use super::policy::Policy;
use super::ports::AllocatedPort;

/// Format version of `config.json`.
pub const RECORD_VERSION: u32 = 1;

/// `config.json`: everything needed to start (and restart) the container,
/// by this process or by a later one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Format version.
    pub version: u32,
    /// The container.
    pub id: ContainerId,
    /// The image reference.
    pub image: String,
    /// Unix time of the create, in milliseconds.
    pub created_at_ms: u64,
    /// argv as the workload sees it (argv[0] as written in the spec).
    pub argv: Vec<String>,
    /// Host path of the executable (inside the rootfs).
    pub program: PathBuf,
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
    /// Signal sent by `stop`.
    pub stop_signal: i32,
    /// `resources.pids_limit`, for stats.
    pub pids_limit: Option<i64>,
    /// The log file.
    pub log_path: PathBuf,
    /// Whether the workload gets a terminal (label `com.zlayer.tty`).
    #[serde(default)]
    pub tty: bool,
    /// The image directory under the overlay rootfs (`None`: the rootfs is
    /// a clone); start remounts it when it is not mounted (after a reboot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_lower: Option<PathBuf>,
}

/// `monitor.json`: who supervises the running container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorInfo {
    /// The monitor's pid.
    pub monitor_pid: i32,
    /// Its start time (clock ticks after boot), against pid reuse.
    pub monitor_starttime: u64,
    /// The workload's main pid (also in the `pid` file).
    pub pid: i32,
    /// Its start time.
    pub pid_starttime: u64,
    /// Unix time of the start, in milliseconds.
    pub started_at_ms: u64,
    /// The kernel's Landlock ABI at start.
    pub landlock_abi: i64,
    /// What could not be enforced (degraded mode).
    pub degraded: Vec<String>,
}
