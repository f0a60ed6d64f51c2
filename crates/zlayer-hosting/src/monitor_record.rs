//! `monitor.json`: who supervises a running container.

use serde::{Deserialize, Serialize};
use zlayer_sys::procfs::ProcessRef;

/// Written by the monitor once the workload runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorRecord {
    /// The monitor process.
    pub monitor: ProcessRef,
    /// The workload's main process (container init, sandbox main, QEMU).
    pub workload: ProcessRef,
    /// When the workload started, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// What the launcher wants shown about this run (degraded
    /// enforcement, the accelerator, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl MonitorRecord {
    /// Whether the monitor still runs.
    pub fn monitor_alive(&self) -> bool {
        self.monitor.is_alive()
    }
}
