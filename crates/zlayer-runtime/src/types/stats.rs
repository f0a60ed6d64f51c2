//! Resource usage figures.

use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// One sample of a container's resource usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsSample {
    /// When it was taken.
    pub timestamp: SystemTime,
    /// CPU time used by the container, in nanoseconds.
    pub cpu_total_ns: u64,
    /// CPU time of the whole host, in nanoseconds (for percentages).
    pub cpu_system_ns: u64,
    /// Number of CPUs the host has online.
    pub online_cpus: u32,
    /// Memory in use, in bytes.
    pub memory_used_bytes: u64,
    /// Memory limit in bytes (host memory when unlimited).
    pub memory_limit_bytes: u64,
    /// Bytes received on the container's network interfaces.
    pub net_rx_bytes: u64,
    /// Bytes sent on the container's network interfaces.
    pub net_tx_bytes: u64,
    /// Bytes read from block devices.
    pub blkio_read_bytes: u64,
    /// Bytes written to block devices.
    pub blkio_write_bytes: u64,
    /// Number of processes and threads.
    pub pids_current: u64,
    /// Their limit (None: unlimited).
    pub pids_limit: Option<u64>,
}

/// The one-shot stats answer (the same figures as a stream sample).
pub type ContainerStats = StatsSample;
