//! The content-addressed blob store, laid out as an OCI image layout.
//!
//! ```text
//! <dir>/oci-layout                 {"imageLayoutVersion":"1.0.0"}
//! <dir>/index.json                 one manifest descriptor per stored image
//! <dir>/blobs/sha256/<hex>         verified blobs, immutable
//! <dir>/ingest/<hex>.partial       resumable downloads in progress
//! <dir>/ingest/<hex>.lock          per-digest lock files
//! <dir>/ingest/gc.lock             shared by writers, exclusive for prune
//! ```
//!
//! A blob only appears under `blobs/` after its size and SHA-256 have been
//! checked, the data `fsync`ed and the file renamed into place, so readers
//! never see partial or corrupt content.

mod index;
mod ingest;
mod journal;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use index::IndexEntry;
pub use ingest::Ingest;
pub(crate) use journal::Journal;

use crate::digest::{Digest, Hasher};
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::lock::{PathLock, SharedLock};

/// The `oci-layout` file contents.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// A directory of verified blobs in OCI image layout format.
#[derive(Debug, Clone)]
pub struct ContentStore {
    dir: PathBuf,
    /// Set on the handle of one import (see [`ContentStore::journaled`]).
    journal: Option<Arc<Journal>>,
}

impl ContentStore {
    /// Opens (creating if needed) the content store at `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        for sub in ["blobs/sha256", "ingest"] {
            let p = dir.join(sub);
            fsutil::ensure_dir(&p).ctx("create directory", &p)?;
        }
        let layout = dir.join("oci-layout");
        if !layout.exists() {
            fsutil::write_atomic(&layout, OCI_LAYOUT)?;
        }
        let store = ContentStore {
            dir: dir.to_path_buf(),
            journal: None,
        };
        if !dir.join("index.json").exists() {
            store.write_index(&[])?;
        }
        Ok(store)
    }

    /// A handle on the same store for one import that must leave nothing
    /// behind when it fails: an ingest through it that ends without a
    /// commit deletes its partial, and every blob it newly stores is noted
    /// in the returned [`Journal`].
    pub(crate) fn journaled(&self) -> (ContentStore, Arc<Journal>) {
        let journal = Arc::new(Journal::default());
        let store = ContentStore {
            dir: self.dir.clone(),
            journal: Some(journal.clone()),
        };
        (store, journal)
    }

    pub(crate) fn journal(&self) -> Option<&Arc<Journal>> {
        self.journal.as_ref()
    }

    /// The store's directory (an OCI image layout).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the blob is present (it is then complete and verified).
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Where the blob lives (whether or not it is present).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs").join(d.algorithm()).join(d.hex())
    }

    /// Size of a present blob.
    pub fn blob_size(&self, d: &Digest) -> Result<u64> {
        let path = self.blob_path(d);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::BlobNotFound {
                digest: d.to_string(),
                path,
            }),
            Err(e) => Err(Error::io("stat", &path, e)),
        }
    }

    /// Reads a whole blob. Blobs were verified on ingest, so this does not re-hash.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(d);
        fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::BlobNotFound {
                    digest: d.to_string(),
                    path: path.clone(),
                }
            } else {
                Error::io("read blob", &path, e)
            }
        })
    }

    /// Opens a blob for streaming reads.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let path = self.blob_path(d);
        File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::BlobNotFound {
                    digest: d.to_string(),
                    path: path.clone(),
                }
            } else {
                Error::io("open blob", &path, e)
            }
        })
    }

    /// Stores `bytes` as blob `d` after verifying they hash to `d`.
    ///
    /// Idempotent: storing a blob that is already present is a no-op.
    pub fn put_blob(&self, d: &Digest, bytes: &[u8]) -> Result<()> {
        if self.has_blob(d) {
            return Ok(());
        }
        let actual = Digest::of(bytes);
        if &actual != d {
            return Err(Error::DigestMismatch {
                what: format!("blob {d}"),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        let mut ingest = self.begin_ingest(d, Some(bytes.len() as u64))?;
        if ingest.is_complete() {
            return Ok(());
        }
        if ingest.offset() > 0 {
            ingest.restart()?;
        }
        ingest.write_all(bytes)?;
        ingest.commit().map(|_| ())
    }

    /// Stores a stream whose digest is not known in advance; returns its digest and size.
    ///
    /// Used when importing archives whose files are named by path, not digest.
    pub fn put_stream(&self, mut reader: impl Read) -> Result<(Digest, u64)> {
        let ingest_dir = self.dir.join("ingest");
        let _gc = self.gc_shared()?;
        let mut tmp = tempfile::Builder::new()
            .prefix("stream-")
            .suffix(".partial")
            .tempfile_in(&ingest_dir)
            .ctx("create temp file in", &ingest_dir)?;
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read stream into", tmp.path(), e)),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n]).ctx("write", tmp.path())?;
        }
        let size = hasher.len();
        let digest = hasher.finish();
        let _lock = PathLock::acquire(&self.lock_path(&digest))?;
        let dest = self.blob_path(&digest);
        if !dest.exists() {
            tmp.as_file().sync_all().ctx("fsync", tmp.path())?;
            tmp.persist(&dest)
                .map_err(|e| Error::io("rename blob into", &dest, e.error))?;
            if let Some(j) = &self.journal {
                j.wrote(&digest);
            }
            fsutil::fsync_dir(dest.parent().unwrap_or(&self.dir))?;
        }
        Ok((digest, size))
    }

    /// Copies a file into the store, verifying it against `expected` (and `size` if given).
    pub fn import_file(&self, path: &Path, expected: &Digest, size: Option<u64>) -> Result<()> {
        if self.has_blob(expected) {
            return Ok(());
        }
        let mut src = File::open(path).ctx("open", path)?;
        let mut ingest = self.begin_ingest(expected, size)?;
        if ingest.is_complete() {
            return Ok(());
        }
        if ingest.offset() > 0 {
            ingest.restart()?;
        }
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read", path, e)),
            };
            ingest.write_all(&buf[..n])?;
        }
        ingest.commit().map(|_| ())
    }

    /// Starts (or resumes) writing blob `d`.
    ///
    /// Holds an exclusive per-digest lock until the returned [`Ingest`] is
    /// committed or aborted, so concurrent downloads of one blob serialise.
    /// A partial file left by an interrupted ingest is re-hashed and
    /// [`Ingest::offset`] reports how many bytes are already there.
    pub fn begin_ingest(&self, d: &Digest, expected_size: Option<u64>) -> Result<Ingest> {
        Ingest::begin(self, d, expected_size)
    }

    /// Lists the digests of all present blobs.
    pub fn list_blobs(&self) -> Result<Vec<Digest>> {
        let dir = self.dir.join("blobs/sha256");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).ctx("read directory", &dir)? {
            let entry = entry.ctx("read directory", &dir)?;
            if let Some(name) = entry.file_name().to_str() {
                if let Ok(d) = Digest::from_hex(name) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes a blob (used by garbage collection).
    pub(crate) fn delete_blob(&self, d: &Digest) -> Result<()> {
        let _lock = PathLock::acquire(&self.lock_path(d))?;
        match fs::remove_file(self.blob_path(d)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove blob", self.blob_path(d), e)),
        }
    }

    /// Rewrites `index.json` to list exactly `entries`.
    pub fn write_index(&self, entries: &[IndexEntry]) -> Result<()> {
        index::write(&self.dir.join("index.json"), entries)
    }

    pub(crate) fn lock_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("ingest").join(format!("{}.lock", d.hex()))
    }

    pub(crate) fn partial_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("ingest").join(format!("{}.partial", d.hex()))
    }

    /// Takes the garbage-collection lock shared: prune waits until it is dropped.
    pub fn gc_shared(&self) -> Result<SharedLock> {
        SharedLock::shared(&self.dir.join("ingest/gc.lock"))
    }

    /// Takes the garbage-collection lock exclusively (prune).
    pub(crate) fn gc_exclusive(&self) -> Result<SharedLock> {
        SharedLock::exclusive(&self.dir.join("ingest/gc.lock"))
    }
}
