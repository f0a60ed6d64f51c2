//! Per-layer snapshots: each layer extracted once, keyed by its diff_id.
//!
//! A snapshot is `<snapshots>/sha256/<diff_id hex>/fs` (the layer's files in
//! overlay lower-dir format) plus `meta.json`. It is built in
//! `<snapshots>/tmp/` and renamed into place only after the uncompressed
//! stream's digest matched the diff_id, so a present snapshot is complete.
//! Because overlay lower dirs hold only their own layer's changes, one
//! snapshot serves every image that contains the layer, whatever sits below.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::lock::PathLock;
use crate::record::LayerRecord;
use crate::unpack::{self, ExtractOptions};

/// What is recorded about an extracted layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The layer's diff_id (digest of the uncompressed tar).
    pub diff_id: Digest,
    /// The blob it was extracted from.
    pub blob: Digest,
    /// The blob's media type.
    pub media_type: String,
    /// Uncompressed tar size in bytes.
    pub tar_size: u64,
    /// Number of tar entries.
    pub entries: u64,
    /// When it was extracted, seconds since the Unix epoch.
    pub created: u64,
}

/// The snapshot directory tree.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    /// Opens (creating) the snapshot tree at `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        for sub in ["sha256", "tmp", "locks", "empty"] {
            let p = dir.join(sub);
            crate::fsutil::ensure_dir(&p).ctx("create directory", &p)?;
        }
        Ok(Snapshots {
            dir: dir.to_path_buf(),
        })
    }

    fn snapshot_dir(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join("sha256").join(diff_id.hex())
    }

    /// An always-empty directory (overlay needs at least one lower dir).
    pub fn empty_dir(&self) -> Result<PathBuf> {
        let p = self.dir.join("empty");
        crate::fsutil::ensure_dir(&p).ctx("create directory", &p)?;
        Ok(p)
    }

    /// The `fs` directory of a complete snapshot, if present.
    pub fn existing(&self, diff_id: &Digest) -> Option<PathBuf> {
        let fs_dir = self.snapshot_dir(diff_id).join("fs");
        fs_dir.is_dir().then_some(fs_dir)
    }

    /// Extracts `layer` unless its snapshot exists; returns the `fs` directory.
    pub fn ensure(
        &self,
        content: &ContentStore,
        layer: &LayerRecord,
        counter: &AtomicU64,
    ) -> Result<PathBuf> {
        if let Some(p) = self.existing(&layer.diff_id) {
            return Ok(p);
        }
        let _lock = PathLock::acquire(
            &self
                .dir
                .join("locks")
                .join(format!("{}.lock", layer.diff_id.hex())),
        )?;
        if let Some(p) = self.existing(&layer.diff_id) {
            return Ok(p);
        }
        let what = layer.digest.to_string();
        let tmp_parent = self.dir.join("tmp");
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{}-", layer.diff_id.short()))
            .tempdir_in(&tmp_parent)
            .ctx("create temp directory in", &tmp_parent)?;
        let fs_dir = tmp.path().join("fs");
        fs::create_dir(&fs_dir).ctx("create directory", &fs_dir)?;
        let blob = content.open_blob(&layer.digest)?;
        let (diff_id, tar_size, stats) =
            unpack::unpack(blob, &fs_dir, &what, &ExtractOptions::default())?;
        if diff_id != layer.diff_id {
            return Err(Error::DigestMismatch {
                what: format!("uncompressed content (diff_id) of layer {what}"),
                expected: layer.diff_id.to_string(),
                actual: diff_id.to_string(),
            });
        }
        let meta = SnapshotMeta {
            diff_id: diff_id.clone(),
            blob: layer.digest.clone(),
            media_type: layer.media_type.clone(),
            tar_size,
            entries: stats.entries,
            created: fsutil::unix_now(),
        };
        fsutil::write_json_atomic(&tmp.path().join("meta.json"), &meta)?;
        // One syncfs makes every extracted file durable before the rename publishes it.
        let dirfd = fs::File::open(tmp.path()).ctx("open", tmp.path())?;
        rustix::fs::syncfs(&dirfd).ctx("syncfs", tmp.path())?;
        let dest = self.snapshot_dir(&layer.diff_id);
        let tmp_path = tmp.keep();
        if let Err(e) = fs::rename(&tmp_path, &dest) {
            let _ = fs::remove_dir_all(&tmp_path);
            return Err(Error::io("rename snapshot into", &dest, e));
        }
        fsutil::fsync_dir(&self.dir.join("sha256"))?;
        counter.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(layer = %what, entries = stats.entries, bytes = stats.bytes, "layer extracted");
        Ok(dest.join("fs"))
    }

    /// Ensures all `layers` (lowest first), extracting missing ones in parallel.
    pub fn ensure_all(
        &self,
        content: &ContentStore,
        layers: &[LayerRecord],
        counter: &AtomicU64,
    ) -> Result<Vec<PathBuf>> {
        let missing: Vec<&LayerRecord> = {
            let mut seen = std::collections::HashSet::new();
            layers
                .iter()
                .filter(|l| self.existing(&l.diff_id).is_none() && seen.insert(l.diff_id.clone()))
                .collect()
        };
        if missing.len() > 1 {
            let workers = std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(missing.len());
            let next = AtomicUsize::new(0);
            let first_error: Mutex<Option<Error>> = Mutex::new(None);
            std::thread::scope(|s| {
                for _ in 0..workers {
                    s.spawn(|| loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(layer) = missing.get(i) else { break };
                        if let Err(e) = self.ensure(content, layer, counter) {
                            let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                            slot.get_or_insert(e);
                            break;
                        }
                    });
                }
            });
            if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
                return Err(e);
            }
        }
        layers
            .iter()
            .map(|l| self.ensure(content, l, counter))
            .collect()
    }

    /// Diff_ids of all complete snapshots.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.dir.join("sha256");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).ctx("read directory", &dir)? {
            let entry = entry.ctx("read directory", &dir)?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Deletes a snapshot (garbage collection) and returns the bytes freed.
    pub fn delete(&self, diff_id: &Digest) -> Result<u64> {
        let _lock = PathLock::acquire(
            &self
                .dir
                .join("locks")
                .join(format!("{}.lock", diff_id.hex())),
        )?;
        let dir = self.snapshot_dir(diff_id);
        let size = fsutil::tree_size(&dir);
        // Rename first so a half-deleted snapshot never looks complete.
        let doomed = self
            .dir
            .join("tmp")
            .join(format!("deleting-{}", diff_id.hex()));
        match fs::rename(&dir, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io("rename snapshot for deletion", &dir, e)),
        }
        fsutil::remove_any(&doomed)?;
        let _ = fs::remove_file(
            self.dir
                .join("locks")
                .join(format!("{}.lock", diff_id.hex())),
        );
        Ok(size)
    }

    /// Removes leftovers of interrupted extractions (only call under the
    /// exclusive GC lock); returns the bytes freed.
    pub fn clean_tmp(&self) -> Result<u64> {
        let dir = self.dir.join("tmp");
        let mut freed = 0;
        for entry in fs::read_dir(&dir).ctx("read directory", &dir)? {
            let entry = entry.ctx("read directory", &dir)?;
            freed += fsutil::tree_size(&entry.path());
            fsutil::remove_any(&entry.path())?;
        }
        Ok(freed)
    }

    /// Bytes in extractions in progress (or interrupted ones) under `tmp/`.
    pub fn tmp_size(&self) -> u64 {
        fsutil::tree_size(&self.dir.join("tmp"))
    }

    /// Bytes in every extracted snapshot (hardlinks counted once per snapshot).
    pub fn total_size(&self) -> u64 {
        fsutil::tree_size(&self.dir.join("sha256"))
    }
}
