//! Named volumes: one store under the data root, shared by every
//! isolation (a volume written by a container is read by a sandbox or a VM).

use std::path::{Path, PathBuf};
use zlayer_runtime::{Result, RuntimeError};

/// The named volumes of a node: `<root>/volumes/<name>/_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeStore {
    dir: PathBuf,
}

impl VolumeStore {
    /// The store in `dir` (`<root>/volumes`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        VolumeStore { dir: dir.into() }
    }

    /// Where the volumes live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data directory of volume `name`, without creating it.
    pub fn path(&self, name: &str) -> Result<PathBuf> {
        validate_volume_name(name)?;
        Ok(self.dir.join(name).join("_data"))
    }

    /// The data directory of volume `name`, created (mode 0755) when it
    /// does not exist yet.
    pub fn ensure(&self, name: &str) -> Result<PathBuf> {
        let path = self.path(name)?;
        zlayer_image::ensure_dir(&path).map_err(|e| {
            RuntimeError::Configuration(format!(
                "creating volume {name} at {} failed: {e}",
                path.display()
            ))
        })?;
        Ok(path)
    }

    /// The names of the existing volumes, sorted.
    pub fn list(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().join("_data").is_dir())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// Checks a volume name: 1 to 64 letters, digits, `-`, `_` or `.`, not
/// starting with `.`.
pub fn validate_volume_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidSpec(format!(
            "volume name {name:?} is invalid; use 1 to 64 letters, digits, '-', '_' or '.', \
             not starting with '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_names() {
        let d = tempfile::tempdir().unwrap();
        let v = VolumeStore::new(d.path().join("volumes"));
        assert!(v.path("../etc").is_err());
        assert!(v.path(".x").is_err());
        let p = v.ensure("data").unwrap();
        assert!(p.is_dir());
        assert_eq!(p, d.path().join("volumes/data/_data"));
        assert_eq!(v.list(), ["data"]);
    }
}
