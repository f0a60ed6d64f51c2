//! Resumable, verified blob writes.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use super::{ContentStore, Journal};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::lock::{PathLock, SharedLock};

/// An in-progress write of one blob; see [`ContentStore::begin_ingest`].
///
/// Bytes go to `<content>/ingest/<hex>.partial`. [`Ingest::commit`] checks
/// size and digest, `fsync`s and renames the file to `blobs/sha256/<hex>`.
/// Dropping an `Ingest` without committing keeps the partial file so a later
/// `begin_ingest` can resume it; [`Ingest::abort`] deletes it. Through a
/// journaled store (a `load`), dropping it deletes the partial too.
#[derive(Debug)]
pub struct Ingest {
    digest: Digest,
    expected_size: Option<u64>,
    partial: PathBuf,
    dest: PathBuf,
    /// `None` once the blob turned out to be already present, or after a failure.
    file: Option<File>,
    /// Set when a write failed verification; commit then fails.
    failed: bool,
    hasher: Hasher,
    /// Set when the store handle is journaled: the partial goes with a
    /// drop that is not a commit, and a commit is noted.
    journal: Option<Arc<Journal>>,
    /// Whether this ingest opened (and so may delete) the partial file.
    owns_partial: bool,
    /// Whether the blob was committed (or found complete).
    done: bool,
    _lock: PathLock,
    _gc: SharedLock,
}

impl Ingest {
    pub(super) fn begin(
        store: &ContentStore,
        d: &Digest,
        expected_size: Option<u64>,
    ) -> Result<Self> {
        let gc = store.gc_shared()?;
        let lock = PathLock::acquire(&store.lock_path(d))?;
        let partial = store.partial_path(d);
        let dest = store.blob_path(d);
        let mut ingest = Ingest {
            digest: d.clone(),
            expected_size,
            partial,
            dest,
            file: None,
            failed: false,
            hasher: Hasher::new(),
            journal: store.journal().cloned(),
            owns_partial: false,
            done: false,
            _lock: lock,
            _gc: gc,
        };
        if ingest.dest.is_file() {
            ingest.done = true;
            return Ok(ingest);
        }
        ingest.owns_partial = true;
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&ingest.partial)
            .ctx("open partial blob", &ingest.partial)?;
        // Re-hash what an earlier, interrupted ingest left behind.
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read partial blob", &ingest.partial, e)),
            };
            ingest.hasher.update(&buf[..n]);
        }
        ingest.file = Some(file);
        if expected_size.is_some_and(|s| ingest.hasher.len() > s) {
            ingest.restart()?;
        }
        Ok(ingest)
    }

    /// The digest being written.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Bytes already present (from an earlier interrupted ingest); resume from here.
    ///
    /// For a blob that is already complete this is its full size.
    pub fn offset(&self) -> u64 {
        if self.file.is_none() {
            return fs::metadata(&self.dest).map_or(0, |m| m.len());
        }
        self.hasher.len()
    }

    /// Whether the blob was already in the store when the ingest began
    /// (another writer finished it); then nothing needs writing and
    /// [`Ingest::commit`] just returns the blob path.
    pub fn is_complete(&self) -> bool {
        self.file.is_none() && !self.failed
    }

    /// Discards the bytes written so far and starts again from offset 0
    /// (e.g. when a server ignores a range request).
    pub fn restart(&mut self) -> Result<()> {
        if let Some(file) = self.file.as_mut() {
            file.set_len(0).ctx("truncate", &self.partial)?;
            file.seek(SeekFrom::Start(0)).ctx("seek", &self.partial)?;
            self.hasher = Hasher::new();
        }
        Ok(())
    }

    /// Appends `buf`. Fails (and discards the partial) if this exceeds the expected size.
    pub fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        let Some(file) = self.file.as_mut() else {
            if self.failed {
                return Err(Error::SizeMismatch {
                    what: format!("blob {} (a write already failed verification)", self.digest),
                    expected: self.expected_size.unwrap_or(0),
                    actual: self.hasher.len(),
                });
            }
            return Ok(());
        };
        if let Some(expected) = self.expected_size {
            let total = self.hasher.len() + buf.len() as u64;
            if total > expected {
                let _ = fs::remove_file(&self.partial);
                self.file = None;
                self.failed = true;
                return Err(Error::SizeMismatch {
                    what: format!("blob {}", self.digest),
                    expected,
                    actual: total,
                });
            }
        }
        file.write_all(buf).ctx("write", &self.partial)?;
        let before = self.hasher.len();
        self.hasher.update(buf);
        if let Some(expected) = self.expected_size {
            if before < expected / 2 && self.hasher.len() >= expected / 2 {
                zlayer_failpoints::hit("ingest.mid-blob");
            }
        }
        Ok(())
    }

    /// Verifies size and digest, makes the blob durable and visible, and returns its path.
    ///
    /// On a mismatch the partial file is deleted and [`Error::DigestMismatch`]
    /// or [`Error::SizeMismatch`] names the expected and actual values.
    pub fn commit(mut self) -> Result<PathBuf> {
        let Some(file) = self.file.take() else {
            if self.failed {
                return Err(Error::SizeMismatch {
                    what: format!("blob {} (a write already failed verification)", self.digest),
                    expected: self.expected_size.unwrap_or(0),
                    actual: self.hasher.len(),
                });
            }
            if self.dest.is_file() {
                self.done = true;
                return Ok(self.dest.clone());
            }
            return Err(Error::BlobNotFound {
                digest: self.digest.to_string(),
                path: self.dest.clone(),
            });
        };
        let size = self.hasher.len();
        if let Some(expected) = self.expected_size {
            if size != expected {
                drop(file);
                let _ = fs::remove_file(&self.partial);
                return Err(Error::SizeMismatch {
                    what: format!("blob {}", self.digest),
                    expected,
                    actual: size,
                });
            }
        }
        let actual = std::mem::take(&mut self.hasher).finish();
        if actual != self.digest {
            drop(file);
            let _ = fs::remove_file(&self.partial);
            return Err(Error::DigestMismatch {
                what: format!("blob {}", self.digest),
                expected: self.digest.to_string(),
                actual: actual.to_string(),
            });
        }
        file.sync_all().ctx("fsync", &self.partial)?;
        drop(file);
        fs::rename(&self.partial, &self.dest).ctx("rename blob into", &self.dest)?;
        self.done = true;
        if let Some(j) = &self.journal {
            j.wrote(&self.digest);
        }
        if let Some(dir) = self.dest.parent() {
            fsutil::fsync_dir(dir)?;
        }
        Ok(self.dest.clone())
    }

    /// Gives up and deletes the partial file.
    pub fn abort(mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.partial);
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // Still under the per-digest lock, so no other writer owns the file.
        if self.journal.is_some() && self.owns_partial && !self.done {
            self.file = None;
            let _ = fs::remove_file(&self.partial);
        }
    }
}
