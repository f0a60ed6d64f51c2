//! The on-disk records of a container and the state derived from them.
//!
//! Three files, each written once by one writer with temp + rename, so a
//! reader (any agent, at any time) sees a whole file or none:
//! - `container.json` ([`ContainerRecord`]): by `create`.
//! - `shim.json` ([`ShimRecord`]): by the monitor once the init runs.
//! - `exit.json` ([`ExitRecord`]): by the monitor once the init ended and
//!   the logs are flushed.
//!
//! The files are not fsynced: they must survive the agent or the monitor
//! being killed (rename is atomic), not a power loss (which ends the
//! container anyway); an fsync costs ~5 ms per file on a typical disk.

use super::cgroups::ContainerCgroup;
use super::freezer;
use super::paths::ContainerPaths;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::{ContainerId, ContainerState};
use zlayer_sys::procfs;

pub use zlayer_hosting::exit::ExitRecord;

/// What `create` recorded about a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The container.
    pub id: ContainerId,
    /// The image reference as given in the spec.
    pub image: String,
    /// The image's digest, when known.
    pub image_digest: Option<String>,
    /// Signal number sent by `stop`.
    pub stop_signal: i32,
    /// Grace period of `stop` from the spec, in milliseconds, if set.
    pub stop_grace_ms: Option<u64>,
    /// Remove the container once it exits.
    pub delete_on_exit: bool,
    /// The cgroup path (relative to each hierarchy root).
    pub cgroup_path: String,
    /// Memory limit in bytes, if any (for the OOM message).
    pub memory_limit: Option<u64>,
    /// The cgroup file with the `oom_kill` counter (found once at create,
    /// so the monitor need not parse the host's mounts).
    #[serde(default)]
    pub oom_events: Option<std::path::PathBuf>,
    /// Whether the container shares the host's network namespace.
    pub host_network: bool,
    /// Whether the init runs on a pseudo-terminal (label `com.zlayer.tty`).
    #[serde(default)]
    pub tty: bool,
    /// The seccomp profile: `docker-default` (generated from code, see
    /// `seccomp_profile`), or `None` for none. A `seccomp.json` in the state
    /// dir takes precedence.
    #[serde(default)]
    pub seccomp: Option<String>,
    /// The default user of execs: uid.
    pub uid: u32,
    /// The default user of execs: gid.
    pub gid: u32,
    /// The default user of execs: supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The service spec as given (for inspection; not read back by the runtime).
    pub spec: serde_json::Value,
    /// How the monitor connects the container to its network (`None` in
    /// records of older versions: loopback only).
    #[serde(default)]
    pub network: Option<super::network::NetworkPlan>,
}

/// What the monitor recorded once the container's init started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimRecord {
    /// The monitor's pid.
    pub shim_pid: i32,
    /// Its start time (clock ticks after boot), against pid reuse.
    pub shim_starttime: u64,
    /// The host pid of the container's init.
    pub init_pid: i32,
    /// Its start time (clock ticks after boot).
    pub init_starttime: u64,
    /// When the init was started, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
}

impl ShimRecord {
    /// Whether the init process still runs.
    pub fn init_alive(&self) -> bool {
        procfs::is_alive(self.init_pid, Some(self.init_starttime))
    }
    /// Whether the monitor still runs.
    pub fn shim_alive(&self) -> bool {
        procfs::is_alive(self.shim_pid, Some(self.shim_starttime))
    }
}

/// Writes `bytes` to `path` through a temporary sibling and a rename, without
/// fsync (see the module docs).
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| RuntimeError::Internal(format!("{} has no parent", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        RuntimeError::Internal(format!("writing {} failed: {e}", path.display()))
    })
}

/// Serializes `value` as JSON and writes it with [`write_file_atomic`].
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| RuntimeError::Internal(format!("encoding {}: {e}", path.display())))?;
    bytes.push(b'\n');
    write_file_atomic(path, &bytes)
}

/// Reads a JSON record; `Ok(None)` when absent.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    Ok(zlayer_sys::atomic::read_json(path)?)
}

/// Everything known about a container from its state dir.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `container.json`.
    pub record: ContainerRecord,
    /// `shim.json`, once started.
    pub shim: Option<ShimRecord>,
    /// `exit.json`, once ended.
    pub exit: Option<ExitRecord>,
    /// Whether the init ran when the snapshot was taken.
    pub init_alive: bool,
    /// Whether the monitor ran when the snapshot was taken.
    pub shim_alive: bool,
}

impl Snapshot {
    /// Reads the records of `paths`; `Ok(None)` when the container does not
    /// exist (or is being removed).
    pub fn load(paths: &ContainerPaths) -> Result<Option<Snapshot>> {
        let Some(record) = read_json::<ContainerRecord>(&paths.record())? else {
            return Ok(None);
        };
        let shim = read_json::<ShimRecord>(&paths.shim())?;
        // Liveness first, exit.json second: the monitor writes exit.json
        // before it exits, so "monitor gone and no exit.json" read in this
        // order really means it died without recording.
        let (init_alive, shim_alive) = shim
            .as_ref()
            .map(|s| (s.init_alive(), s.shim_alive()))
            .unwrap_or((false, false));
        let exit = read_json::<ExitRecord>(&paths.exit())?;
        Ok(Some(Snapshot {
            record,
            shim,
            exit,
            init_alive,
            shim_alive,
        }))
    }

    /// The container's state.
    pub fn state(&self) -> ContainerState {
        if let Some(exit) = &self.exit {
            return exit_state(exit);
        }
        if self.shim.is_none() {
            return ContainerState::Pending;
        }
        if self.init_alive {
            let cg = ContainerCgroup::new(&self.record.cgroup_path);
            if freezer::is_frozen(&cg) {
                return ContainerState::Paused;
            }
            return ContainerState::Running;
        }
        if self.shim_alive {
            // The init ended; the monitor is flushing logs and about to
            // write exit.json.
            return ContainerState::Running;
        }
        ContainerState::Failed {
            reason: "the container's monitor process ended without recording an exit code \
                     (was it killed?); remove the container"
                .into(),
        }
    }

    /// The init pid while the container runs.
    pub fn running_pid(&self) -> Option<i32> {
        match (&self.exit, &self.shim) {
            (None, Some(shim)) if self.init_alive => Some(shim.init_pid),
            _ => None,
        }
    }
}

/// The state an exit record stands for.
pub fn exit_state(exit: &ExitRecord) -> ContainerState {
    match &exit.reason {
        Some(reason) => ContainerState::Failed {
            reason: reason.clone(),
        },
        None => ContainerState::Exited { code: exit.code },
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    zlayer_hosting::exit::now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ContainerRecord {
        ContainerRecord {
            id: ContainerId::new("t", 1),
            image: "busybox".into(),
            image_digest: None,
            stop_signal: 15,
            stop_grace_ms: None,
            delete_on_exit: false,
            cgroup_path: "/zlayer-test/none-1".into(),
            memory_limit: None,
            oom_events: None,
            host_network: false,
            tty: false,
            seccomp: None,
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            created_at_ms: 1,
            spec: serde_json::Value::Null,
            network: None,
        }
    }

    #[test]
    fn states_from_records() {
        let dir = tempfile::tempdir().unwrap();
        let paths =
            ContainerPaths::from_dir(dir.path().join("t-1"), dir.path().join("lc")).unwrap();
        assert!(Snapshot::load(&paths).unwrap().is_none());
        std::fs::create_dir_all(&paths.dir).unwrap();
        write_json(&paths.record(), &record()).unwrap();
        let snap = Snapshot::load(&paths).unwrap().unwrap();
        assert_eq!(snap.state(), ContainerState::Pending);

        // A monitor and init that are this test process: running.
        let me = procfs::stat(std::process::id() as i32).unwrap();
        let shim = ShimRecord {
            shim_pid: me.pid,
            shim_starttime: me.starttime,
            init_pid: me.pid,
            init_starttime: me.starttime,
            started_at_ms: 2,
        };
        write_json(&paths.shim(), &shim).unwrap();
        let snap = Snapshot::load(&paths).unwrap().unwrap();
        assert_eq!(snap.state(), ContainerState::Running);
        assert_eq!(snap.running_pid(), Some(me.pid));

        // Same pid, other start time: pid reuse, so the monitor is gone.
        let stale = ShimRecord {
            shim_starttime: me.starttime + 1,
            init_starttime: me.starttime + 1,
            ..shim
        };
        write_json(&paths.shim(), &stale).unwrap();
        let snap = Snapshot::load(&paths).unwrap().unwrap();
        assert!(
            matches!(snap.state(), ContainerState::Failed { reason } if reason.contains("monitor"))
        );

        let exit = ExitRecord {
            code: 7,
            signal: None,
            reason: None,
            finished_at_ms: 3,
        };
        write_json(&paths.exit(), &exit).unwrap();
        let snap = Snapshot::load(&paths).unwrap().unwrap();
        assert_eq!(snap.state(), ContainerState::Exited { code: 7 });
        assert_eq!(snap.running_pid(), None);
        let oom = ExitRecord {
            code: 137,
            signal: Some(9),
            reason: Some("OOM-killed".into()),
            finished_at_ms: 3,
        };
        write_json(&paths.exit(), &oom).unwrap();
        assert!(matches!(
            Snapshot::load(&paths).unwrap().unwrap().state(),
            ContainerState::Failed { .. }
        ));
        // No temp files left.
        let names: Vec<_> = std::fs::read_dir(&paths.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }
}
