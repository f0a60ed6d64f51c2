//! Cross-process and in-process locks.
//!
//! [`PathLock`] is an exclusive lock on a lock file: first an in-process
//! wait (so threads of one process queue up without each holding a file
//! descriptor), then `flock(LOCK_EX)` on the file so other processes are
//! excluded too. [`SharedLock`] is a plain `flock` that can be shared or
//! exclusive; it backs the garbage-collection guard.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};

use rustix::fs::{flock, FlockOperation};

use crate::error::{IoContext, Result};

struct Table {
    held: Mutex<HashSet<PathBuf>>,
    released: Condvar,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table {
        held: Mutex::new(HashSet::new()),
        released: Condvar::new(),
    })
}

/// An exclusive lock on a lock file, held until dropped.
#[derive(Debug)]
pub(crate) struct PathLock {
    path: PathBuf,
    _file: File,
}

impl PathLock {
    /// Blocks until this process and every other process has released `path`.
    pub(crate) fn acquire(path: &Path) -> Result<Self> {
        let t = table();
        {
            let mut held = t.held.lock().unwrap_or_else(|p| p.into_inner());
            while held.contains(path) {
                held = t.released.wait(held).unwrap_or_else(|p| p.into_inner());
            }
            held.insert(path.to_path_buf());
        }
        match open_and_flock(path, FlockOperation::LockExclusive) {
            Ok(file) => Ok(PathLock {
                path: path.to_path_buf(),
                _file: file,
            }),
            Err(e) => {
                release_in_process(path);
                Err(e)
            }
        }
    }
}

fn release_in_process(path: &Path) {
    let t = table();
    let mut held = t.held.lock().unwrap_or_else(|p| p.into_inner());
    held.remove(path);
    t.released.notify_all();
}

impl Drop for PathLock {
    fn drop(&mut self) {
        // The flock is released when `_file` closes, after this runs; another
        // thread of this process that wakes up first simply waits in flock.
        release_in_process(&self.path);
    }
}

fn open_and_flock(path: &Path, op: FlockOperation) -> Result<File> {
    if let Some(parent) = path.parent() {
        crate::fsutil::ensure_dir(parent).ctx("create lock directory", parent)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .ctx("open lock file", path)?;
    loop {
        match flock(&file, op) {
            Ok(()) => return Ok(file),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).ctx("flock", path),
        }
    }
}

/// A shared or exclusive `flock` on a file, held until dropped.
#[derive(Debug)]
pub struct SharedLock {
    _file: File,
}

impl SharedLock {
    /// Takes a shared lock (many holders at once), blocking while an exclusive holder exists.
    pub(crate) fn shared(path: &Path) -> Result<Self> {
        Ok(SharedLock {
            _file: open_and_flock(path, FlockOperation::LockShared)?,
        })
    }

    /// Takes an exclusive lock, blocking while any other holder exists.
    pub(crate) fn exclusive(path: &Path) -> Result<Self> {
        Ok(SharedLock {
            _file: open_and_flock(path, FlockOperation::LockExclusive)?,
        })
    }
}
