//! Where a node's containers live on disk.
//!
//! ```text
//! <root>/containers/<service>-<replica>/   one container ("state dir")
//!     record.json    ContainerRecord: written at the start of create
//!     launch.json    the launcher's plan: written at the end of create
//!                    (its absence means "being created" or "interrupted")
//!     monitor.json   MonitorRecord: monitor and workload, written at start
//!     exit.json      ExitRecord: how the workload ended, by the monitor
//!     log            stdout/stderr/system, one JSON record per line
//!     paused         present while paused
//!     monitor.log    the monitor's own diagnostics, when it has any
//!     run/           a small private tmpfs: the control socket and what
//!                    only matters while the container exists
//!     ...            the launcher's own files (rootfs, config...)
//! <root>/containers/.trash/   removed containers being deleted
//! <root>/containers/.free/    emptied directories kept for reuse
//! <root>/volumes/<name>/_data named volumes, shared by every isolation
//! ```

use std::path::{Path, PathBuf};
use zlayer_runtime::{ContainerId, Result, RuntimeError};

/// Unix socket paths are limited to 108 bytes including the NUL; longer
/// ones are reached through `/proc/self/fd` (see [`crate::control`]).
pub const MAX_SOCKET_PATH: usize = 107;

/// The cgroup (relative to each hierarchy root) of the container whose
/// state dir is named `name` (`<service>-<replica>`) under data root `root`.
///
/// Under the default data root it is `/zlayer/<name>` (one `zlayer`
/// parent, like docker's `/docker`). Other roots (tests, a second daemon)
/// get a flat `/zlayer-<hash of root>-<name>`, so they never clash and
/// leave no parent cgroup behind when their containers are removed.
pub fn cgroup_path(root: &Path, name: &str) -> String {
    if root == Path::new(zlayer_image::DEFAULT_ROOT) {
        format!("/zlayer/{name}")
    } else {
        format!(
            "/zlayer-{:08x}-{name}",
            zlayer_sys::hash::fnv1a(root.as_os_str().as_encoded_bytes()) as u32
        )
    }
}

/// The prefix of every cgroup [`cgroup_path`] names under data root
/// `root` (what a leak check looks for).
pub fn cgroup_prefix(root: &Path) -> String {
    cgroup_path(root, "")
}

/// Paths under one data root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory holding one state dir per container.
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// Directory holding the named volumes.
    pub fn volumes_dir(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// The state dir of container `id` (the id checked to be a safe
    /// directory name).
    pub fn state_dir(&self, id: &ContainerId) -> Result<StateDir> {
        Ok(StateDir::new(
            self.containers_dir().join(container_dir_name(id)?),
        ))
    }
}

/// The files of one container's state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    /// The directory.
    pub dir: PathBuf,
}

impl StateDir {
    /// The state dir at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StateDir { dir: dir.into() }
    }
    /// `record.json`.
    pub fn record(&self) -> PathBuf {
        self.dir.join("record.json")
    }
    /// `launch.json`, the launcher's plan.
    pub fn launch(&self) -> PathBuf {
        self.dir.join("launch.json")
    }
    /// `monitor.json`.
    pub fn monitor(&self) -> PathBuf {
        self.dir.join("monitor.json")
    }
    /// `exit.json`.
    pub fn exit(&self) -> PathBuf {
        self.dir.join("exit.json")
    }
    /// The log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("log")
    }
    /// Present while paused.
    pub fn paused(&self) -> PathBuf {
        self.dir.join("paused")
    }
    /// The monitor's own diagnostics.
    pub fn monitor_log(&self) -> PathBuf {
        self.dir.join("monitor.log")
    }
    /// The private tmpfs for runtime-only files.
    pub fn run(&self) -> PathBuf {
        self.dir.join("run")
    }
    /// The monitor's control socket.
    pub fn socket(&self) -> PathBuf {
        self.run().join("control.sock")
    }
    /// A file of the launcher's own, `name` in the state dir.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    /// The data root (two levels above the state dir).
    pub fn data_root(&self) -> Option<&Path> {
        self.dir.parent().and_then(Path::parent)
    }
    /// The directory name (`<service>-<replica>`).
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The state files whose inodes an emptied state directory keeps as spares
/// for the next container (see `zlayer_sys::atomic::spare_path`): the
/// hosting layer's and the launchers' small files written at every create
/// and start.
pub const SPARED_FILES: &[&str] = &[
    "record.json",
    "launch.json",
    "monitor.json",
    "exit.json",
    "config.json",
    "sandbox.policy",
];

/// `<service>-<replica>`, checked to be a safe single path component.
pub fn container_dir_name(id: &ContainerId) -> Result<String> {
    let s = &id.service;
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !s.starts_with(['.', '-']);
    if !ok {
        return Err(RuntimeError::InvalidSpec(format!(
            "container name {s:?} is invalid; use 1 to 63 letters, digits, '-', '_' or '.', \
             starting with a letter or digit"
        )));
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let l = Layout::new("/var/lib/zlayer");
        let d = l.state_dir(&ContainerId::new("web", 2)).unwrap();
        assert_eq!(d.dir, Path::new("/var/lib/zlayer/containers/web-2"));
        assert_eq!(d.data_root(), Some(Path::new("/var/lib/zlayer")));
        assert_eq!(d.name(), "web-2");
        for bad in ["", "../x", "a/b", ".hidden", "-x", "a b"] {
            assert!(l.state_dir(&ContainerId::new(bad, 0)).is_err(), "{bad}");
        }
    }
}
