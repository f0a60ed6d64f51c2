//! [`Launcher`]: what an isolation must provide to be hosted, and
//! [`Workload`]: a running workload as its monitor drives it.
//!
//! One launcher value lives in two kinds of process:
//! - the process that creates and removes containers (CLI, daemon, shim):
//!   [`Launcher::prepare`], [`Launcher::teardown`] and the host-side
//!   queries;
//! - the container's monitor (the isolation's monitor binary, built on
//!   [`crate::monitor::main`]): [`Launcher::spawn`], then the returned
//!   [`Workload`].
//!
//! Everything else (state files, the monitor loop, logs, the control
//! protocol, stop/kill/wait/remove, auto-remove, standby monitors) is the
//! hosting layer's, the same for every isolation.

use crate::layout::StateDir;
use crate::monitor_record::MonitorRecord;
use crate::volumes::VolumeStore;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;
use zlayer_image::{ImageConfig, ImageRecord, ImageStore};
use zlayer_runtime::{
    ContainerRecord, InvokeFailure, PortMappingEntry, Result, RuntimeError, StatsSample,
};
use zlayer_spec::{Isolation, ServiceSpec};

/// Everything [`Launcher::prepare`] may use.
pub struct PrepareContext<'a> {
    /// The container's state directory (exists, holds `record.json`).
    pub dir: &'a StateDir,
    /// The container's record.
    pub record: &'a ContainerRecord,
    /// The image, present in the store.
    pub image: &'a ImageRecord,
    /// Its configuration (entrypoint, env, user...).
    pub image_config: &'a ImageConfig,
    /// The node's image store.
    pub store: &'a ImageStore,
    /// The node's named volumes.
    pub volumes: &'a VolumeStore,
}

/// The address and published ports of a container, as `inspect` and
/// `port` show them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkView {
    /// Its own address, when it has one.
    pub ip: Option<std::net::IpAddr>,
    /// Published ports with the host ports actually bound.
    pub ports: Vec<PortMappingEntry>,
}

/// One isolation technology, as the hosting layer drives it.
///
/// Conventions: every method that allocates releases what it allocated
/// when it fails; [`Launcher::teardown`] is idempotent and works from the
/// files alone (a crashed create, a killed monitor).
pub trait Launcher: Send + Sync + 'static {
    /// The isolation this launcher serves.
    fn isolation(&self) -> Isolation;

    /// The monitor binary of this isolation (built on
    /// [`crate::monitor::main`]), or a configuration error saying how to
    /// get it.
    fn monitor_binary(&self) -> Result<PathBuf>;

    /// Refuses a spec this isolation cannot run, before anything is pulled
    /// or made, with a message saying what to do instead.
    fn check(&self, spec: &ServiceSpec, tty: bool) -> Result<()> {
        let _ = (spec, tty);
        Ok(())
    }

    /// Host side, during create: makes what the workload needs (root
    /// filesystem, configuration, network plan) in the state directory and
    /// returns the launch plan the monitor's [`Launcher::spawn`] gets back
    /// (stored as `launch.json`).
    fn prepare(&self, ctx: &PrepareContext<'_>) -> Result<serde_json::Value>;

    /// Host side, before a start: makes sure what a reboot or an earlier
    /// run took away is back (the `run/` tmpfs, a rootfs mount) and what an
    /// earlier run left is gone (its runtime state).
    fn before_start(&self, dir: &StateDir, record: &ContainerRecord) -> Result<()> {
        let _ = (dir, record);
        Ok(())
    }

    /// Monitor side: starts the workload as a child of the calling process
    /// (a child subreaper, with SIGCHLD blocked). The workload must die
    /// with the monitor: its main process gets a parent-death signal
    /// (SIGKILL), so a killed monitor does not leave it unsupervised.
    fn spawn(
        &self,
        dir: &StateDir,
        record: &ContainerRecord,
        plan: &serde_json::Value,
    ) -> std::result::Result<Box<dyn Workload>, SpawnError>;

    /// Either side: releases everything [`Launcher::prepare`] and a run
    /// allocated (mounts, cgroups, network, image leases). No workload
    /// process runs any more. Idempotent; works without a plan (a create
    /// that was interrupted).
    fn teardown(&self, dir: &StateDir, record: &ContainerRecord) -> Result<()>;

    /// Host side: kills what remains of a workload whose monitor died
    /// (processes the parent-death signal did not reach) and releases what
    /// the monitor would have released at its exit (network).
    fn kill_orphans(&self, dir: &StateDir, record: &ContainerRecord, monitor: &MonitorRecord);

    /// Host side: after a start whose monitor died before it recorded a
    /// workload (`monitor.json`): kills what its [`Launcher::spawn`] had
    /// made so far (processes in the workload's cgroup, the network
    /// attach). Idempotent. The default does nothing, for launchers whose
    /// spawned processes all die with the monitor (parent-death signal).
    fn release_failed_start(&self, dir: &StateDir, record: &ContainerRecord) {
        let _ = (dir, record);
    }

    /// Host side: freezes every process of a running workload.
    fn pause(
        &self,
        dir: &StateDir,
        record: &ContainerRecord,
        monitor: &MonitorRecord,
    ) -> Result<()>;

    /// Host side: thaws a paused workload.
    fn unpause(
        &self,
        dir: &StateDir,
        record: &ContainerRecord,
        monitor: &MonitorRecord,
    ) -> Result<()>;

    /// Host side: the address and published ports of a running workload.
    fn network(&self, dir: &StateDir, record: &ContainerRecord) -> Result<NetworkView>;
}

/// Why [`Launcher::spawn`] failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpawnError {
    /// Set when the command itself could not be started (docker's
    /// 126/127); `None` for an engine failure.
    pub failure: Option<InvokeFailure>,
    /// What was wrong and how to fix it.
    pub message: String,
}

impl SpawnError {
    /// An engine failure (not about the command).
    pub fn engine(message: impl Into<String>) -> Self {
        SpawnError {
            failure: None,
            message: message.into(),
        }
    }

    /// The command could not be started.
    pub fn invoke(failure: InvokeFailure, message: impl Into<String>) -> Self {
        SpawnError {
            failure: Some(failure),
            message: message.into(),
        }
    }

    /// The error a front end sees for a start that failed this way.
    pub fn into_runtime_error(self, id: &str) -> RuntimeError {
        match self.failure {
            Some(failure) => RuntimeError::Invoke {
                failure,
                message: self.message,
            },
            None => RuntimeError::StartFailed {
                id: id.to_string(),
                reason: self.message,
            },
        }
    }
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The monitor's ends of a workload's standard streams.
pub enum WorkloadStdio {
    /// Pipes: the write end of stdin, the read ends of stdout and stderr.
    Pipes {
        /// Write end of the workload's stdin.
        stdin: OwnedFd,
        /// Read end of its stdout.
        stdout: OwnedFd,
        /// Read end of its stderr.
        stderr: OwnedFd,
    },
    /// A terminal: the master side of the workload's pty (stdin, stdout
    /// and stderr at once).
    Terminal {
        /// The pty master.
        master: OwnedFd,
    },
}

/// A command to run in a running workload, as the monitor received it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExecRequest {
    /// argv; not empty.
    pub argv: Vec<String>,
    /// Environment over the container's.
    pub env: Vec<(String, String)>,
    /// `uid`, `uid:gid` or a user name of the container.
    pub user: Option<String>,
    /// Working directory inside the container.
    pub workdir: Option<String>,
}

/// A started exec, from the monitor's point of view.
pub struct ExecHandle {
    /// A child process of the monitor whose wait status is the exec's
    /// result (unless `report` says otherwise).
    pub pid: Option<i32>,
    /// A pipe on which the exec reports how it ended, one
    /// [`crate::control::ExecReport`] JSON line, then EOF (for execs that
    /// are no child process of the monitor, inside a VM, or whose failure
    /// is only known after the fork).
    pub report: Option<File>,
}

/// How the main process ended, as the workload reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadExit {
    /// Docker-style exit code.
    pub code: i32,
    /// The signal that killed it, if any.
    pub signal: Option<i32>,
    /// Set when the engine ended it or it could not run normally (OOM,
    /// memory watchdog, a VM that powered off without an exit code).
    pub reason: Option<String>,
}

/// A running workload, inside its monitor. The monitor calls these from
/// its single thread.
pub trait Workload {
    /// The process whose end is the workload's end (the container's init,
    /// the sandbox's main process, QEMU). A child of the monitor.
    fn pid(&self) -> i32;

    /// The monitor's ends of the workload's stdio; called once, right
    /// after spawn (`None` afterwards).
    fn take_stdio(&mut self) -> Option<WorkloadStdio>;

    /// Notes for `monitor.json` (degraded enforcement, the accelerator...).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Starts a command in the workload with `stdio` (stdin, stdout,
    /// stderr) as its standard streams.
    fn exec(
        &mut self,
        request: &ExecRequest,
        stdio: [OwnedFd; 3],
    ) -> std::result::Result<ExecHandle, SpawnError>;

    /// Sends `signal` to the workload (its main process, or all of it as
    /// the isolation defines it; SIGKILL kills all of it).
    fn signal(&mut self, signal: i32) -> std::io::Result<()>;

    /// One sample of resource usage.
    fn stats(&mut self) -> std::result::Result<StatsSample, String>;

    /// How often [`Workload::watch`] wants to run (None: never).
    fn watch_interval(&self) -> Option<Duration> {
        None
    }

    /// Periodic check while the workload runs (a memory watchdog); returns
    /// the reason when it killed the workload.
    fn watch(&mut self) -> Option<String> {
        None
    }

    /// Turns the main process's wait status into the workload's exit
    /// (a VM reports its guest's code; an OOM kill gets its reason).
    fn exit(&mut self, code: i32, signal: Option<i32>) -> WorkloadExit {
        WorkloadExit {
            code,
            signal,
            reason: None,
        }
    }

    /// After the main process ended: kills what is left of the workload
    /// and releases what only a running workload needs (its network), so
    /// a restart or another container may take it at once.
    fn cleanup(&mut self) {}
}
