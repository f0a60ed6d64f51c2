//! Small filesystem helpers: atomic writes, directory fsync, timestamps.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{IoContext, Result};

/// Writes `bytes` to `path` atomically: a temp file in the same directory,
/// `fsync`, `rename` over `path`, then `fsync` of the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    ensure_dir(dir).ctx("create directory", dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .ctx("create temp file in", dir)?;
    tmp.write_all(bytes).ctx("write", tmp.path())?;
    tmp.as_file().sync_all().ctx("fsync", tmp.path())?;
    tmp.persist(path)
        .map_err(|e| crate::error::Error::io("rename temp file to", path, e.error))?;
    fsync_dir(dir)
}

/// Serialises `value` as pretty JSON and writes it atomically to `path`.
pub(crate) fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| crate::error::Error::json(path.display().to_string(), e))?;
    write_atomic(path, &bytes)
}

/// Like [`write_json_atomic`] but without `fsync`: atomic against a killed
/// process (temp + rename), not durable across a power loss. For records
/// whose loss after a crash is harmless (container leases: the containers
/// are gone after a reboot too), where an fsync would cost ~5-20 ms.
pub(crate) fn write_json_atomic_unsynced<T: serde::Serialize>(
    path: &Path,
    value: &T,
) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| crate::error::Error::json(path.display().to_string(), e))?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    ensure_dir(dir).ctx("create directory", dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .ctx("create temp file in", dir)?;
    tmp.write_all(&bytes).ctx("write", tmp.path())?;
    tmp.persist(path)
        .map_err(|e| crate::error::Error::io("rename temp file to", path, e.error))?;
    Ok(())
}

/// Reads and parses a JSON file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).ctx("read", path)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| crate::error::Error::json(path.display().to_string(), e))
}

/// `fsync`s a directory so a rename inside it is durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .ctx("fsync directory", dir)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Removes `path` whatever it is (file, symlink, directory tree); missing is fine.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).ctx("remove directory", path),
        Ok(_) => fs::remove_file(path).ctx("remove", path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::error::Error::io("stat", path, e)),
    }
}

/// Total apparent size of the regular files under `dir` (hardlinks counted once).
pub(crate) fn tree_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))))
        .map(|m| m.len())
        .sum()
}

/// Creates `dir` and its parents unless it is a directory already. The
/// common case at every start is that it exists: one `statx` then, where
/// `create_dir_all` spends a failing `mkdir` and a `statx`.
pub fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    if std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_dir_creates_keeps_and_refuses_files() {
        let tmp = tempfile::tempdir().unwrap();
        let nested = tmp.path().join("a/b/c");
        ensure_dir(&nested).unwrap();
        assert!(nested.is_dir());
        // Existing: fine, and nothing inside is touched.
        std::fs::write(nested.join("keep"), b"x").unwrap();
        ensure_dir(&nested).unwrap();
        assert!(nested.join("keep").is_file());
        // A file in the way is an error, not a silent success.
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(ensure_dir(&file).is_err());
    }
}
