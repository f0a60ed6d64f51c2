//! Advisory file locks (`flock`) held until dropped.

use std::fs::File;
use std::path::Path;

/// An exclusive `flock` held until dropped.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

fn flock(file: &File, op: nix::fcntl::FlockArg) -> nix::Result<()> {
    #[allow(deprecated)]
    nix::fcntl::flock(std::os::fd::AsRawFd::as_raw_fd(file), op)
}

impl FileLock {
    /// Blocks until the lock on `path` (created if missing) is ours.
    pub fn exclusive(path: &Path) -> std::io::Result<Self> {
        let file = open_lock_file(path)?;
        flock(&file, nix::fcntl::FlockArg::LockExclusive)?;
        Ok(FileLock { _file: file })
    }

    /// The lock on `path` (created if missing, with its directory) when no
    /// other process holds it; `Ok(None)` when one does.
    pub fn try_exclusive(path: &Path) -> std::io::Result<Option<Self>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_lock_file(path)?;
        match flock(&file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(()) => Ok(Some(FileLock { _file: file })),
            Err(nix::errno::Errno::EWOULDBLOCK) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_and_try() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x/lock");
        let held = FileLock::try_exclusive(&p).unwrap().unwrap();
        assert!(FileLock::try_exclusive(&p).unwrap().is_none());
        drop(held);
        let _again = FileLock::exclusive(&p).unwrap();
    }
}
