//! The health status of a container, persisted under
//! `<root>/engine/health/<id>.json` so every CLI and the daemon see it.

use crate::error::{EngineError, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use zlayer_sys::atomic::write_json_atomic_synced as write_json_atomic;

/// How many probe results are kept (docker keeps 5).
pub const HEALTH_LOG_LEN: usize = 5;

/// Where a container stands with its health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// No probe has passed yet.
    Starting,
    /// The last probe passed.
    Healthy,
    /// `retries` probes in a row failed after the start grace.
    Unhealthy,
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        })
    }
}

/// One probe's result, as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthLogEntry {
    /// When the probe began.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// 0 when it passed, 1 when it failed (the command's code for command checks).
    pub exit_code: i32,
    /// What it printed or why it failed (truncated).
    pub output: String,
}

/// The health of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthState {
    /// The current status.
    pub status: HealthStatus,
    /// Failed probes in a row that counted (outside the start grace).
    pub failing_streak: u32,
    /// The last few probe results, oldest first.
    pub log: Vec<HealthLogEntry>,
}

impl Default for HealthState {
    fn default() -> Self {
        HealthState {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        }
    }
}

impl HealthState {
    /// Folds one probe result in: a pass makes the container healthy; a
    /// failure that `counts` (outside the start grace) adds to the streak,
    /// and `retries` failures in a row make it unhealthy.
    pub fn record(&mut self, entry: HealthLogEntry, counts: bool, retries: u32) {
        if entry.exit_code == 0 {
            self.status = HealthStatus::Healthy;
            self.failing_streak = 0;
        } else if counts {
            self.failing_streak = self.failing_streak.saturating_add(1);
            if self.failing_streak >= retries.max(1) {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.log.push(entry);
        let excess = self.log.len().saturating_sub(HEALTH_LOG_LEN);
        self.log.drain(..excess);
    }
}

/// Health states on disk, one file per container id.
#[derive(Debug, Clone)]
pub struct HealthStore {
    dir: PathBuf,
}

impl HealthStore {
    /// The store under `root` (created on first write).
    pub fn open(root: &Path) -> Self {
        HealthStore {
            dir: root.join("engine").join("health"),
        }
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// The state of container `id`; `None` when it has no health check or
    /// no probe ran yet.
    pub fn load(&self, id: &str) -> Result<Option<HealthState>> {
        let path = self.path_of(id);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| EngineError::CorruptState {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EngineError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Writes the state of container `id` atomically.
    pub fn save(&self, id: &str, state: &HealthState) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| EngineError::io(format!("creating {}", self.dir.display()), e))?;
        Ok(write_json_atomic(&self.path_of(id), state)?)
    }

    /// Forgets container `id`; unknown ids are fine.
    pub fn remove(&self, id: &str) -> Result<()> {
        match std::fs::remove_file(self.path_of(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EngineError::io(format!("removing health of {id}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(code: i32) -> HealthLogEntry {
        HealthLogEntry {
            start: SystemTime::UNIX_EPOCH,
            end: SystemTime::UNIX_EPOCH,
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn transitions_follow_docker() {
        let mut s = HealthState::default();
        // Failures in the start grace do not count.
        for _ in 0..10 {
            s.record(entry(1), false, 3);
        }
        assert_eq!((s.status, s.failing_streak), (HealthStatus::Starting, 0));
        assert_eq!(s.log.len(), HEALTH_LOG_LEN);
        s.record(entry(0), false, 3);
        assert_eq!(s.status, HealthStatus::Healthy);
        s.record(entry(1), true, 3);
        s.record(entry(1), true, 3);
        assert_eq!((s.status, s.failing_streak), (HealthStatus::Healthy, 2));
        s.record(entry(1), true, 3);
        assert_eq!(s.status, HealthStatus::Unhealthy);
        s.record(entry(0), true, 3);
        assert_eq!((s.status, s.failing_streak), (HealthStatus::Healthy, 0));
    }

    #[test]
    fn store_round_trips_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let store = HealthStore::open(dir.path());
        assert_eq!(store.load("abc").unwrap(), None);
        let mut s = HealthState::default();
        s.record(entry(0), true, 3);
        store.save("abc", &s).unwrap();
        assert_eq!(store.load("abc").unwrap(), Some(s));
        store.remove("abc").unwrap();
        store.remove("abc").unwrap();
        assert_eq!(store.load("abc").unwrap(), None);
    }
}
