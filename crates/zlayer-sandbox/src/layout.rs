//! The files of one sandbox container.

use std::path::{Path, PathBuf};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::ContainerId;

use super::config::SandboxConfig;

/// Paths of a container's state, all under `containers/<service>-<replica>`
/// except its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPaths {
    /// The container directory.
    pub dir: PathBuf,
    /// Its log file (`log_dir/<service>-<replica>.log`).
    pub log: PathBuf,
}

impl ContainerPaths {
    /// The paths of `id`; rejects ids that would escape the state directory.
    pub fn new(config: &SandboxConfig, id: &ContainerId) -> Result<Self> {
        let name = id.to_string();
        let bad = id.service.is_empty()
            || id.service.starts_with('.')
            || id
                .service
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')));
        if bad {
            return Err(RuntimeError::InvalidSpec(format!(
                "service name {:?} cannot name a sandbox; use letters, digits, '-', '_' and '.' (not leading)",
                id.service
            )));
        }
        Ok(ContainerPaths {
            dir: config.containers_dir().join(&name),
            log: config.log_dir.join(format!("{name}.log")),
        })
    }

    /// The paths of an existing container directory.
    pub fn from_dir(config: &SandboxConfig, dir: &Path) -> Self {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        ContainerPaths {
            dir: dir.to_path_buf(),
            log: config.log_dir.join(format!("{name}.log")),
        }
    }

    /// The cloned root filesystem.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    /// The private writable temporary directory (`TMPDIR`).
    pub fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }
    /// Anonymous and tmpfs volumes.
    pub fn volumes(&self) -> PathBuf {
        self.dir.join("volumes")
    }
    /// The machine-readable record (`config.json`).
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    /// The human-readable policy (`sandbox.policy`).
    pub fn policy(&self) -> PathBuf {
        self.dir.join("sandbox.policy")
    }
    /// The main process id, as plain text.
    pub fn pid(&self) -> PathBuf {
        self.dir.join("pid")
    }
    /// The monitor's identity (`monitor.json`).
    pub fn monitor(&self) -> PathBuf {
        self.dir.join("monitor.json")
    }
    /// The exit record (`exit.json`).
    pub fn exit(&self) -> PathBuf {
        self.dir.join("exit.json")
    }
    /// The runtime directory (`run/`, see [`run_dir`]).
    pub fn run(&self) -> PathBuf {
        run_dir(&self.dir)
    }
    /// The monitor's control socket.
    pub fn socket(&self) -> PathBuf {
        socket_path(&self.dir)
    }
    /// The workload's standard input (a FIFO).
    pub fn stdin(&self) -> PathBuf {
        stdin_path(&self.dir)
    }
    /// Present while the container is paused.
    pub fn paused(&self) -> PathBuf {
        self.dir.join("paused")
    }
    /// The monitor's own diagnostics (created when it has any).
    pub fn monitor_log(&self) -> PathBuf {
        self.dir.join("monitor.log")
    }
}

/// The state files whose inodes a recycled container directory keeps as
/// spares for the next container (see `common::atomic::spare_path`).
pub const SPARED_FILES: &[&str] = &[
    "config.json",
    "sandbox.policy",
    "pid",
    "monitor.json",
    "exit.json",
];

/// The log of a removed container, moved into its directory by `remove`
/// (on the same filesystem, that is one rename instead of an unlink).
pub const REMOVED_LOG: &str = "removed.log";

/// The spare log inode of a recycled container directory: an empty
/// [`REMOVED_LOG`] kept for the next container's log.
pub const LOG_SPARE: &str = ".log.spare";

/// The runtime directory of the container in `dir`: a private tmpfs mounted
/// at create when the agent is root (else a plain directory), holding what
/// only matters while the host runs: the rootfs overlay's upper and work
/// directories, the control socket and the stdin FIFO. Files there cost no
/// disk inode allocations (milliseconds each on a busy ext4 without a
/// journal, see `docs/sandbox.md`).
pub fn run_dir(dir: &Path) -> PathBuf {
    dir.join("run")
}

/// The monitor's control socket of the container in `dir`.
pub fn socket_path(dir: &Path) -> PathBuf {
    run_dir(dir).join("control.sock")
}

/// The stdin FIFO of the container in `dir`.
pub fn stdin_path(dir: &Path) -> PathBuf {
    run_dir(dir).join("stdin")
}
