//! Supervision facts persisted per container, so a restarted daemon (or a
//! CLI working without one) knows what the user asked for.

use crate::error::{EngineError, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use zlayer_sys::atomic::write_json_atomic_synced as write_json_atomic;
use zlayer_sys::lock::FileLock;

/// What the supervisor remembers about one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisionState {
    /// The user stopped or killed it: no restart by policy.
    #[serde(default)]
    pub user_stopped: bool,
    /// Restarts by policy since the user last started it.
    #[serde(default)]
    pub attempts: u32,
    /// The backoff step for the next restart.
    #[serde(default)]
    pub backoff_step: u32,
    /// When it was last started (by the user or by policy).
    #[serde(default)]
    pub last_started: Option<SystemTime>,
    /// The code of its last exit seen by a supervisor.
    #[serde(default)]
    pub last_exit_code: Option<i32>,
    /// When a pending restart is due (set during the backoff delay).
    #[serde(default)]
    pub restart_due: Option<SystemTime>,
    /// Why the supervisor stopped restarting it, if it did.
    #[serde(default)]
    pub gave_up: Option<String>,
}

/// Supervision states on disk, one file per container id.
#[derive(Debug, Clone)]
pub struct SupervisionStore {
    dir: PathBuf,
}

impl SupervisionStore {
    /// The store under `root` (created on first write).
    pub fn open(root: &Path) -> Self {
        SupervisionStore {
            dir: root.join("engine").join("supervise"),
        }
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Claims the supervision of container `id` for this process: at most
    /// one supervisor (the daemon, or the per-container supervisor a CLI
    /// starts when no daemon runs) applies its restart policy. `None` while
    /// another process holds it; the claim ends when the lock is dropped.
    pub fn claim(&self, id: &str) -> Result<Option<FileLock>> {
        Ok(FileLock::try_exclusive(
            &self.dir.join(format!("{id}.lock")),
        )?)
    }

    /// The state of container `id` (default when none was written).
    pub fn load(&self, id: &str) -> Result<SupervisionState> {
        let path = self.path_of(id);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| EngineError::CorruptState {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SupervisionState::default()),
            Err(e) => Err(EngineError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Reads, changes and writes back the state of `id` under a lock, so
    /// the CLI and the daemon never lose each other's updates.
    pub fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut SupervisionState),
    ) -> Result<SupervisionState> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| EngineError::io(format!("creating {}", self.dir.display()), e))?;
        let _lock = FileLock::exclusive(&self.dir.join(".lock"))?;
        let mut state = self.load(id)?;
        change(&mut state);
        write_json_atomic(&self.path_of(id), &state)?;
        Ok(state)
    }

    /// Forgets container `id`; unknown ids are fine.
    pub fn remove(&self, id: &str) -> Result<()> {
        // The claim file goes too (a supervisor still holding it keeps its
        // open file; it ends once it sees the container gone).
        let _ = std::fs::remove_file(self.dir.join(format!("{id}.lock")));
        match std::fs::remove_file(self.path_of(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EngineError::io(format!("removing supervision of {id}"), e)),
        }
    }

    /// Marks a user start: clears the stop mark, the attempts and the
    /// backoff. A container with no state yet (a first start) has nothing
    /// to clear, so nothing is written (keeps `run` fast).
    pub fn note_user_start(&self, id: &str) -> Result<()> {
        if !self.path_of(id).exists() {
            return Ok(());
        }
        self.update(id, |s| {
            *s = SupervisionState {
                last_started: Some(SystemTime::now()),
                last_exit_code: s.last_exit_code,
                ..Default::default()
            };
        })
        .map(|_| ())
    }

    /// Marks a user stop or kill: no restart by policy.
    pub fn note_user_stop(&self, id: &str) -> Result<()> {
        self.update(id, |s| {
            s.user_stopped = true;
            s.restart_due = None;
        })
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = SupervisionStore::open(dir.path());
        assert_eq!(store.load("a").unwrap(), SupervisionState::default());
        store
            .update("a", |s| {
                s.attempts = 3;
                s.backoff_step = 2;
                s.last_exit_code = Some(4);
            })
            .unwrap();
        store.note_user_stop("a").unwrap();
        let s = SupervisionStore::open(dir.path()).load("a").unwrap();
        assert!(s.user_stopped);
        assert_eq!(s.attempts, 3);
        store.note_user_start("a").unwrap();
        let s = store.load("a").unwrap();
        assert!(!s.user_stopped);
        assert_eq!(
            (s.attempts, s.backoff_step, s.last_exit_code),
            (0, 0, Some(4))
        );
        assert!(s.last_started.is_some());
        store.remove("a").unwrap();
        store.remove("a").unwrap();
        // A first start writes nothing.
        store.note_user_start("a").unwrap();
        assert!(!dir.path().join("engine/supervise/a.json").exists());
    }
}
