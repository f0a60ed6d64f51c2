//! Crash-safe state files: write to a temporary sibling, fsync, rename.

use crate::error::{AgentError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a reader sees the old content or the
/// new one, never a torn file, even if the writer is killed half-way.
///
/// Not fsynced: the file survives the writer (or the whole agent) being
/// killed, which is what the runtimes need; use [`write_atomic_synced`] for
/// data that must also survive a power loss.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_impl(path, bytes, false)
}

/// [`write_atomic`], with the data flushed to disk before the rename.
pub fn write_atomic_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    write_impl(path, bytes, true)
}

fn write_impl(path: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    let dir = path.parent().ok_or_else(|| {
        AgentError::Internal(format!("{} has no parent directory", path.display()))
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_data()?;
        }
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        AgentError::Internal(format!("writing {} failed: {e}", path.display()))
    })
}

/// Serializes `value` as pretty JSON and writes it with [`write_atomic`].
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| AgentError::Internal(format!("encoding {}: {e}", path.display())))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Reads a JSON file written by [`write_json_atomic`]; `Ok(None)` when it
/// does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            AgentError::Internal(format!(
                "{} is corrupt ({e}); remove the container and create it again",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AgentError::Internal(format!(
            "reading {} failed: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        assert_eq!(read_json::<Vec<u32>>(&p).unwrap(), None);
        write_json_atomic(&p, &vec![1u32, 2]).unwrap();
        write_json_atomic(&p, &vec![3u32]).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&p).unwrap(), Some(vec![3]));
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        std::fs::write(&p, b"{not json").unwrap();
        assert!(read_json::<Vec<u32>>(&p)
            .unwrap_err()
            .to_string()
            .contains("corrupt"));
    }
}
