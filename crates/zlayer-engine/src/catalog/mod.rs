//! The container catalog: ids, names and specs on disk under
//! `<root>/engine/containers/<id>.json`, shared by every CLI and daemon on
//! the same root.

mod names;
mod record;

pub use names::{generated_name, new_container_id, validate_name};
pub use record::ContainerRecord;

use crate::error::{EngineError, Result};
use crate::fsutil::{write_json_atomic, write_json_atomic_with, FileLock};
use std::path::{Path, PathBuf};
use zlayer_sys::atomic::remove_keeping_spare;

/// Containers known to the engine, persisted one file per container.
#[derive(Debug, Clone)]
pub struct Catalog {
    dir: PathBuf,
    lock_path: PathBuf,
}

impl Catalog {
    /// Opens (creating if needed) the catalog under `root`.
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("engine").join("containers");
        zlayer_image::ensure_dir(&dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        Ok(Catalog {
            lock_path: root.join("engine").join("catalog.lock"),
            dir,
        })
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// The inode of the last removed record, kept for the next insert (not
    /// a `.json` file: `list` does not see it).
    fn spare(&self) -> PathBuf {
        self.dir.join(".spare")
    }

    /// Adds a record; fails if its name is taken. The record is flushed to
    /// disk unless `durable` is false (a container its creator removes as
    /// soon as it exits, `run --rm`, need not survive a power loss).
    pub fn insert(&self, record: &ContainerRecord, durable: bool) -> Result<()> {
        validate_name(&record.name)?;
        let _guard = FileLock::exclusive(&self.lock_path)?;
        if let Some(other) = self.list()?.into_iter().find(|r| r.name == record.name) {
            return Err(EngineError::NameInUse {
                name: record.name.clone(),
                id: other.id,
            });
        }
        let spare = self.spare();
        write_json_atomic_with(&self.path_of(&record.id), record, durable, Some(&spare))
    }

    /// Rewrites an existing record (restart count, ...).
    pub fn update(&self, record: &ContainerRecord) -> Result<()> {
        let _guard = FileLock::exclusive(&self.lock_path)?;
        write_json_atomic(&self.path_of(&record.id), record)
    }

    /// Forgets a container; unknown ids are fine.
    pub fn remove(&self, id: &str) -> Result<()> {
        remove_keeping_spare(&self.path_of(id), &self.spare())
            .map_err(|e| EngineError::io(format!("removing record of {id}"), e))
    }

    /// Every record, oldest first.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| EngineError::io(format!("listing {}", self.dir.display()), e))?;
        let mut records = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| EngineError::io(format!("listing {}", self.dir.display()), e))?
                .path();
            if path.extension().is_some_and(|x| x == "json") {
                match read_record(&path) {
                    Ok(Some(r)) => records.push(r),
                    Ok(None) => {}
                    Err(e) => tracing::warn!("skipping {}: {e}", path.display()),
                }
            }
        }
        records.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        Ok(records)
    }

    /// Finds a container by exact name, full id, or unique id prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<ContainerRecord> {
        let all = self.list()?;
        if let Some(r) = all
            .iter()
            .find(|r| r.name == name_or_id || r.id == name_or_id)
        {
            return Ok(r.clone());
        }
        let is_hex = !name_or_id.is_empty() && name_or_id.chars().all(|c| c.is_ascii_hexdigit());
        let matches: Vec<_> = if is_hex {
            all.into_iter()
                .filter(|r| r.id.starts_with(&name_or_id.to_ascii_lowercase()))
                .collect()
        } else {
            Vec::new()
        };
        match matches.len() {
            0 => Err(EngineError::NoSuchContainer(name_or_id.to_string())),
            1 => Ok(matches
                .into_iter()
                .next()
                .ok_or_else(|| EngineError::NoSuchContainer(name_or_id.to_string()))?),
            count => Err(EngineError::AmbiguousId {
                prefix: name_or_id.to_string(),
                count,
            }),
        }
    }
}

fn read_record(path: &Path) -> Result<Option<ContainerRecord>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::io(format!("reading {}", path.display()), e)),
    };
    serde_json::from_slice::<ContainerRecord>(&bytes)
        .map(|mut r| {
            // The spec's name is not serialized (it is the map key in YAML).
            r.spec.name = r.container.service.clone();
            Some(r)
        })
        .map_err(|e| EngineError::CorruptState {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;
    use zlayer_runtime::ContainerId;
    use zlayer_spec::ServiceSpec;

    fn record(id: &str, name: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.to_string(),
            name: name.to_string(),
            container: ContainerId::new(name, 0),
            isolation: "container".into(),
            image: "busybox".into(),
            spec: ServiceSpec::minimal(name, "busybox"),
            created: SystemTime::now(),
            deployment: None,
            spec_hash: String::new(),
            auto_remove: false,
            labels: Default::default(),
            interactive: false,
            tty: false,
            restart_count: 0,
        }
    }

    #[test]
    fn resolve_by_name_id_and_unique_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path()).unwrap();
        let a = format!("abc1{}", "0".repeat(60));
        let b = format!("abc2{}", "0".repeat(60));
        cat.insert(&record(&a, "web"), true).unwrap();
        cat.insert(&record(&b, "db"), false).unwrap();
        assert_eq!(cat.resolve("web").unwrap().id, a);
        assert_eq!(cat.resolve(&b).unwrap().name, "db");
        assert_eq!(cat.resolve("abc2").unwrap().name, "db");
        assert!(matches!(
            cat.resolve("abc").unwrap_err(),
            EngineError::AmbiguousId { count: 2, .. }
        ));
        assert!(matches!(
            cat.resolve("nope").unwrap_err(),
            EngineError::NoSuchContainer(_)
        ));
    }

    #[test]
    fn names_are_unique_and_remove_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(dir.path()).unwrap();
        let a = new_container_id().unwrap();
        cat.insert(&record(&a, "web"), true).unwrap();
        let err = cat
            .insert(&record(&new_container_id().unwrap(), "web"), true)
            .unwrap_err();
        assert!(err.to_string().contains("already in use"), "{err}");
        cat.remove(&a).unwrap();
        cat.remove(&a).unwrap();
        assert!(cat.list().unwrap().is_empty());
        // A fresh handle on the same root sees the same data.
        cat.insert(&record(&a, "web"), true).unwrap();
        assert_eq!(Catalog::open(dir.path()).unwrap().list().unwrap().len(), 1);
    }
}
