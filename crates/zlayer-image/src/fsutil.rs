//! The image store's filesystem helpers: the shared ones of `zlayer-sys`
//! with the store's error context, and the durable (synced) writes.

use std::fs;
use std::path::Path;

use crate::error::{IoContext, Result};

/// Writes `bytes` to `path` atomically and durably: the shared writer
/// ([`zlayer_sys::atomic::write_file_atomic`]) with the data synced, then
/// an `fsync` of the directory so the rename survives a power loss.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    ensure_dir(dir).ctx("create directory", dir)?;
    zlayer_sys::atomic::write_file_atomic(path, bytes, true, None).ctx("write", path)?;
    fsync_dir(dir)
}

/// Serialises `value` as pretty JSON and writes it atomically to `path`.
pub(crate) fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| crate::error::Error::json(path.display().to_string(), e))?;
    write_atomic(path, &bytes)
}

/// Reads and parses a JSON file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).ctx("read", path)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| crate::error::Error::json(path.display().to_string(), e))
}

/// `fsync`s a directory so a rename inside it is durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    zlayer_sys::fs::fsync_dir(dir).ctx("fsync directory", dir)
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    zlayer_sys::fs::now_ms() / 1000
}

/// Removes `path` whatever it is (file, symlink, directory tree); missing is fine.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    zlayer_sys::fs::remove_any(path).ctx("remove", path)
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

pub use zlayer_sys::fs::ensure_dir;
