//! The index of container names: `containers/.names/<name>`, a symlink to
//! the container's state directory name. Creating the link reserves the
//! name atomically (no lock, no scan of every record); a link left by a
//! crash points at a directory that is gone and is taken over.

use std::path::{Path, PathBuf};
use zlayer_runtime::{Result, RuntimeError};

/// The name index of a containers directory.
#[derive(Debug, Clone)]
pub struct NameIndex {
    dir: PathBuf,
}

impl NameIndex {
    /// The index in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        NameIndex { dir: dir.into() }
    }

    /// The index of the containers directory `containers` (its `.names`).
    pub fn in_containers_dir(containers: &Path) -> Self {
        NameIndex::new(containers.join(".names"))
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        let ok = !name.is_empty()
            && name.len() <= 63
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(RuntimeError::InvalidSpec(format!(
                "container name {name:?} is invalid; use letters, digits, '_', '.' and '-', \
                 starting with a letter or digit"
            )));
        }
        Ok(self.dir.join(name))
    }

    /// The state directory name `name` points at.
    pub fn lookup(&self, name: &str) -> Option<String> {
        let link = self.path(name).ok()?;
        std::fs::read_link(link)
            .ok()
            .map(|t| t.to_string_lossy().into_owned())
    }

    /// Reserves `name` for the state directory `target`. A link to a
    /// directory for which `is_live(target)` is false is stale and taken
    /// over; otherwise the name is in use (`holder` names the container).
    pub fn reserve(
        &self,
        name: &str,
        target: &str,
        is_live: impl Fn(&str) -> bool,
        holder: impl Fn(&str) -> String,
    ) -> Result<()> {
        let link = self.path(name)?;
        for _ in 0..3 {
            match std::os::unix::fs::symlink(target, &link) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    zlayer_image::ensure_dir(&self.dir).map_err(|e| {
                        RuntimeError::Internal(format!("creating {}: {e}", self.dir.display()))
                    })?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let current = std::fs::read_link(&link)
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if is_live(&current) {
                        return Err(RuntimeError::NameInUse {
                            name: name.to_string(),
                            id: holder(&current),
                        });
                    }
                    let _ = std::fs::remove_file(&link);
                }
                Err(e) => {
                    return Err(RuntimeError::Internal(format!(
                        "reserving the name {name} ({}): {e}",
                        link.display()
                    )))
                }
            }
        }
        Err(RuntimeError::Internal(format!(
            "the name {name} is being reserved by another process; try again"
        )))
    }

    /// Drops `name` if it still points at `target`.
    pub fn release(&self, name: &str, target: &str) {
        if let Ok(link) = self.path(name) {
            if std::fs::read_link(&link).is_ok_and(|t| t == Path::new(target)) {
                let _ = std::fs::remove_file(link);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_lookup_release() {
        let d = tempfile::tempdir().unwrap();
        let ix = NameIndex::new(d.path().join(".names"));
        ix.reserve("web", "web-0", |_| true, |t| t.into()).unwrap();
        assert_eq!(ix.lookup("web").as_deref(), Some("web-0"));
        let err = ix
            .reserve("web", "web-1", |_| true, |t| format!("id-of-{t}"))
            .unwrap_err();
        assert!(matches!(err, RuntimeError::NameInUse { ref id, .. } if id == "id-of-web-0"));
        // A stale link is taken over.
        ix.reserve("web", "web-1", |_| false, |t| t.into()).unwrap();
        assert_eq!(ix.lookup("web").as_deref(), Some("web-1"));
        ix.release("web", "web-0");
        assert!(ix.lookup("web").is_some(), "not ours to release");
        ix.release("web", "web-1");
        assert!(ix.lookup("web").is_none());
        assert!(ix.reserve("../x", "a", |_| false, |t| t.into()).is_err());
    }
}
