//! Small file-system helpers: atomic writes and advisory locks.

use crate::error::{EngineError, Result};
use rustix::fs::{flock, FlockOperation};
use serde::Serialize;
use std::fs::File;
use std::path::Path;
use zlayer_sys::atomic::write_file_atomic;

/// Writes `value` as JSON to `path` atomically: temp file, fsync, rename.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    write_json_atomic_with(path, value, true, None)
}

/// [`write_json_atomic`], flushed to disk only when `durable`, with the
/// temporary file taken from `spare` when that file exists (see
/// `zlayer_runtime`'s `atomic::remove_keeping_spare`).
pub fn write_json_atomic_with<T: Serialize>(
    path: &Path,
    value: &T,
    durable: bool,
    spare: Option<&Path>,
) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| {
        EngineError::io(
            format!("encoding {}", path.display()),
            std::io::Error::other(e),
        )
    })?;
    write_file_atomic(path, &bytes, durable, spare)
        .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))
}

/// An exclusive `flock` held until dropped.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    /// Blocks until the lock on `path` (created if missing) is ours.
    pub fn exclusive(path: &Path) -> Result<Self> {
        let file = open_lock_file(path)?;
        flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| EngineError::io(format!("locking {}", path.display()), e.into()))?;
        Ok(FileLock { _file: file })
    }

    /// The lock on `path` (created if missing, with its directory) when no
    /// other process holds it; `Ok(None)` when one does.
    pub fn try_exclusive(path: &Path) -> Result<Option<Self>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        }
        let file = open_lock_file(path)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(FileLock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(EngineError::io(
                format!("locking {}", path.display()),
                e.into(),
            )),
        }
    }
}

/// Opens (creating if missing) the lock file at `path`.
fn open_lock_file(path: &Path) -> Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| EngineError::io(format!("opening lock {}", path.display()), e))
}
