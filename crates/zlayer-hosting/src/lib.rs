//! zlayer-hosting: the hosting layer every isolation shares.
//!
//! An isolation is a [`Launcher`] (prepare the files, spawn the workload,
//! exec, tear down); everything else about hosting a workload lives here,
//! once:
//! - [`layout`] / [`records`] / [`phase`]: one state directory per
//!   container, one record type, the monitor and exit records, and the
//!   phase derived from them (the one source of truth of which containers
//!   exist);
//! - [`monitor`]: the per-container monitor process loop (reap, pump stdio
//!   into the log, serve the control socket, record the exit, auto-remove);
//! - [`control`]: its one control protocol (wait, stdin, resize, exec with
//!   typed failures, signal, stats);
//! - [`logs`]: the JSON-lines log and its follow;
//! - [`removal`]: teardown and the trash;
//! - [`standby`]: starting monitors, ahead of time when possible;
//! - [`volumes`]: named volumes, shared by every isolation;
//! - [`runtime`]: [`HostedRuntime`], the `Runtime` implemented once over
//!   every launcher.

pub mod control;
pub mod dir_watch;
pub mod exit;
pub mod launcher;
pub mod layout;
pub mod logs;
pub mod monitor;
pub mod monitor_binary;
pub mod monitor_record;
pub mod mounts;
pub mod phase;
pub mod records;
pub mod removal;
pub mod run_tmpfs;
pub mod runtime;
pub mod standby;
pub mod volumes;

pub use launcher::{
    ExecHandle, ExecRequest, Launcher, NetworkView, PrepareContext, SpawnError, Workload,
    WorkloadExit, WorkloadStdio,
};
pub use layout::{Layout, StateDir};
pub use monitor_binary::MonitorBinary;
pub use monitor_record::MonitorRecord;
pub use runtime::{AnnotationLookup, HostedRuntime};
pub use volumes::VolumeStore;
