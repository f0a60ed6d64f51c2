//! Crash-safe state files: write to a temporary sibling, fsync, rename.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a state file could not be read or written; the message names the
/// file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// Writing (temp file, data, rename) failed.
    #[error("writing {path} failed: {err}", path = .0.display(), err = .1)]
    Write(PathBuf, #[source] std::io::Error),
    /// Reading failed (other than "not found").
    #[error("reading {path} failed: {err}", path = .0.display(), err = .1)]
    Read(PathBuf, #[source] std::io::Error),
    /// The value could not be encoded.
    #[error("encoding {path} failed: {err}", path = .0.display(), err = .1)]
    Encode(PathBuf, #[source] serde_json::Error),
    /// The file exists but does not parse.
    #[error("{path} is corrupt ({err}); remove the container and create it again", path = .0.display(), err = .1)]
    Corrupt(PathBuf, #[source] serde_json::Error),
}

impl StateFileError {
    /// Whether the disk is full (the write may succeed once space is freed).
    pub fn is_no_space(&self) -> bool {
        matches!(self, StateFileError::Write(_, e) if e.raw_os_error() == Some(libc::ENOSPC))
    }
}

/// Result of the state-file helpers.
pub type Result<T, E = StateFileError> = std::result::Result<T, E>;

/// Writes `bytes` to `path` atomically: a reader sees the old content or the
/// new one, never a torn file, even if the writer is killed half-way.
///
/// Not fsynced: the file survives the writer (or the whole agent) being
/// killed, which is what the runtimes need; use [`write_atomic_synced`] for
/// data that must also survive a power loss.
///
/// The temporary file reuses the inode of a spare (see [`spare_path`]) when
/// the directory has one: a recycled container directory keeps its files'
/// inodes that way, and a write allocates none.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_impl(path, bytes, false)
}

/// [`write_atomic`], with the data flushed to disk before the rename.
pub fn write_atomic_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    write_impl(path, bytes, true)
}

/// Where a recycled directory keeps the inode of its file `path` for the
/// next [`write_atomic`] of that path: `.<name>.spare` beside it.
///
/// Why: on ext4 without a journal, allocating an inode scans past every
/// inode freed in the last minutes (`recently_deleted`), and freeing one
/// costs an inode-table update and, with `discard`, a TRIM. A container
/// lifecycle writes and deletes about a dozen small files; keeping their
/// inodes makes both costs disappear (see `docs/sandbox.md`).
pub fn spare_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    Some(path.with_file_name(format!(".{name}.spare")))
}

/// A fresh hidden name beside `path` to build it under before a rename:
/// unique per call, since threads of one process (the daemon) may build
/// the same file or tree at once and each must rename its own.
pub fn temp_sibling(path: &Path) -> PathBuf {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp{}-{seq}", std::process::id()))
}

/// Renames `from` to `to` unless `to` exists (`RENAME_NOREPLACE`).
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    nix::fcntl::renameat2(
        None,
        from,
        None,
        to,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    )
    .map_err(std::io::Error::from)
}

/// Deletes `file`, or keeps its inode as `spare` when no spare is there
/// yet (a rename: no inode is freed now, and the next write given that
/// spare allocates none). A missing `file` is fine.
pub fn remove_keeping_spare(file: &Path, spare: &Path) -> std::io::Result<()> {
    match rename_noreplace(file, spare) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => match std::fs::remove_file(file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

fn write_impl(path: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    write_file_atomic(path, bytes, sync, spare_path(path).as_deref())
        .map_err(|e| StateFileError::Write(path.to_path_buf(), e))
}

/// The writer behind [`write_atomic`]: `bytes` to a temporary sibling of
/// `path` (the inode of `spare` when that file exists, else a new one),
/// flushed to disk when `sync`, then renamed over `path`.
pub fn write_file_atomic(
    path: &Path,
    bytes: &[u8],
    sync: bool,
    spare: Option<&Path>,
) -> std::io::Result<()> {
    path.parent().ok_or_else(|| {
        std::io::Error::other(format!("{} has no parent directory", path.display()))
    })?;
    let tmp = temp_sibling(path);
    let write = || -> std::io::Result<()> {
        // Claiming the spare by renaming it keeps two writers apart.
        let reused = spare.is_some_and(|s| std::fs::rename(s, &tmp).is_ok());
        let mut f = if reused {
            std::fs::OpenOptions::new().write(true).open(&tmp)?
        } else {
            std::fs::File::create(&tmp)?
        };
        f.write_all(bytes)?;
        if reused {
            f.set_len(bytes.len() as u64)?;
        }
        if sync {
            f.sync_data()?;
        }
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Serializes `value` as pretty JSON and writes it with [`write_atomic`].
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| StateFileError::Encode(path.to_path_buf(), e))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// [`write_json_atomic`], with the data flushed to disk before the rename
/// (state that must survive a power loss: supervision, health, deployments).
pub fn write_json_atomic_synced<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| StateFileError::Encode(path.to_path_buf(), e))?;
    bytes.push(b'\n');
    write_atomic_synced(path, &bytes)
}

/// Reads a JSON file written by [`write_json_atomic`]; `Ok(None)` when it
/// does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateFileError::Corrupt(path.to_path_buf(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateFileError::Read(path.to_path_buf(), e)),
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

    #[test]
    fn concurrent_writers_of_one_file_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("health.json");
        std::thread::scope(|s| {
            for t in 0..8u8 {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_file_atomic(p, &[t; 64], false, None).unwrap();
                    }
                });
            }
        });
        assert_eq!(std::fs::read(&p).unwrap().len(), 64);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "temp files left behind: {left:?}");
    }

    #[test]
    fn a_spare_inode_is_reused_and_trimmed() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("exit.json");
        let spare = spare_path(&p).unwrap();
        assert_eq!(spare, dir.path().join(".exit.json.spare"));
        std::fs::write(&spare, b"old content, longer than the new one").unwrap();
        let ino = std::fs::metadata(&spare).unwrap().ino();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(
            std::fs::metadata(&p).unwrap().ino(),
            ino,
            "the spare's inode"
        );
        assert!(!spare.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
