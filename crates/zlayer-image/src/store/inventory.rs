//! Leases (which containers use which layers) and garbage collection.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{records, ImageStore};
use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::record::ImageRecord;

/// A container's registration of the layers it uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    holder: PathBuf,
    reference: String,
    manifest_digest: Digest,
    diff_ids: Vec<Digest>,
    blobs: Vec<Digest>,
    created: u64,
}

/// What [`ImageStore::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Blobs deleted.
    pub blobs_removed: Vec<Digest>,
    /// Snapshots (diff_ids) deleted.
    pub snapshots_removed: Vec<Digest>,
    /// Partial downloads and imports deleted from `content/ingest/`.
    pub partials_removed: Vec<Partial>,
    /// Leases dropped because their holder no longer exists.
    pub stale_leases_removed: usize,
    /// Bytes freed (blobs, snapshot files, extractions in progress and partials).
    pub bytes_freed: u64,
}

fn lease_path(store: &ImageStore, holder: &Path) -> PathBuf {
    let abs = std::path::absolute(holder).unwrap_or_else(|_| holder.to_path_buf());
    let key = Digest::of(abs.as_os_str().as_encoded_bytes());
    store.leases_dir().join(format!("{}.json", key.hex()))
}

pub(super) fn write_lease(store: &ImageStore, holder: &Path, rec: &ImageRecord) -> Result<()> {
    let lease = Lease {
        holder: std::path::absolute(holder).unwrap_or_else(|_| holder.to_path_buf()),
        reference: rec.reference.clone(),
        manifest_digest: rec.manifest_digest.clone(),
        diff_ids: rec.layers.iter().map(|l| l.diff_id.clone()).collect(),
        blobs: rec.blobs(),
        created: fsutil::unix_now(),
    };
    // Not fsynced: a lease only matters while its container lives, and no
    // container outlives a power loss. The file takes the inode a removed
    // lease left (`leases/.spare`): allocating a fresh inode on ext4 scans
    // past every recently freed one, at every container create.
    let path = lease_path(store, holder);
    let bytes = serde_json::to_vec_pretty(&lease)
        .map_err(|e| crate::Error::json(path.display().to_string(), e))?;
    let dir = store.leases_dir();
    fsutil::ensure_dir(&dir).ctx("create directory", &dir)?;
    zlayer_sys::atomic::write_file_atomic(&path, &bytes, false, Some(&lease_spare(store)))
        .ctx("write lease", &path)
}

/// Where a removed lease leaves its inode for the next one.
fn lease_spare(store: &ImageStore) -> PathBuf {
    store.leases_dir().join(".spare")
}

pub(super) fn remove_lease(store: &ImageStore, holder: &Path) -> Result<()> {
    let p = lease_path(store, holder);
    zlayer_sys::atomic::remove_keeping_spare(&p, &lease_spare(store))
        .map_err(|e| crate::Error::io("remove lease", &p, e))
}

/// What the records and leases keep: blobs, snapshots (diff_ids), and the
/// leases whose holder is gone (stale).
struct References {
    blobs: HashSet<Digest>,
    snapshots: HashSet<Digest>,
    stale_leases: Vec<PathBuf>,
}

fn references(store: &ImageStore) -> Result<References> {
    let mut refs = References {
        blobs: HashSet::new(),
        snapshots: HashSet::new(),
        stale_leases: Vec::new(),
    };
    for rec in records::list(&store.records_dir())? {
        refs.blobs.extend(rec.blobs());
        refs.snapshots
            .extend(rec.layers.iter().map(|l| l.diff_id.clone()));
    }
    let leases = store.leases_dir();
    for entry in fs::read_dir(&leases).ctx("read directory", &leases)? {
        let entry = entry.ctx("read directory", &leases)?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        match fsutil::read_json::<Lease>(&path) {
            Ok(lease) if lease.holder.exists() => {
                refs.blobs.extend(lease.blobs);
                refs.snapshots.extend(lease.diff_ids);
            }
            Ok(_) | Err(_) => refs.stale_leases.push(path),
        }
    }
    Ok(refs)
}

/// Implements [`ImageStore::prune`]: under the exclusive GC lock, keeps every
/// blob and snapshot reachable from an image record or a live lease and
/// deletes the rest, plus stale leases and leftovers of interrupted work
/// (every partial download: no writer runs while the lock is held).
pub(super) fn prune(store: &ImageStore) -> Result<PruneReport> {
    let content = store.content();
    let _gc = content.gc_exclusive()?;
    let mut report = PruneReport::default();
    let refs = references(store)?;
    for path in &refs.stale_leases {
        fsutil::remove_any(path)?;
        report.stale_leases_removed += 1;
    }
    for d in content.list_blobs()? {
        if !refs.blobs.contains(&d) {
            report.bytes_freed += content.blob_size(&d).unwrap_or(0);
            content.delete_blob(&d)?;
            report.blobs_removed.push(d);
        }
    }
    let snaps = store.snapshots();
    for d in snaps.list()? {
        if !refs.snapshots.contains(&d) {
            report.bytes_freed += snaps.delete(&d)?;
            report.snapshots_removed.push(d);
        }
    }
    report.bytes_freed += snaps.clean_tmp()?;
    for p in partials(content.dir())? {
        fsutil::remove_any(&p.path)?;
        report.bytes_freed += p.size;
        report.partials_removed.push(p);
    }
    Ok(report)
}

/// Deletes the blobs a failed import stored (`written`) unless an image
/// record or a live lease uses them meanwhile. Returns the bytes freed.
pub(super) fn undo_import(store: &ImageStore, written: &[Digest]) -> Result<u64> {
    if written.is_empty() {
        return Ok(0);
    }
    let refs = references(store)?;
    let content = store.content();
    let mut freed = 0;
    for d in written.iter().filter(|d| !refs.blobs.contains(d)) {
        freed += content.blob_size(d).unwrap_or(0);
        content.delete_blob(d)?;
    }
    Ok(freed)
}

/// A partial download (or a partial blob of an interrupted import) in
/// `content/ingest/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partial {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// Every `*.partial` file in the content store's ingest directory.
pub(super) fn partials(content_dir: &Path) -> Result<Vec<Partial>> {
    let dir = content_dir.join("ingest");
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).ctx("read directory", &dir)? {
        let entry = entry.ctx("read directory", &dir)?;
        if !entry.file_name().to_string_lossy().ends_with(".partial") {
            continue;
        }
        let size = entry.metadata().map_or(0, |m| m.len());
        out.push(Partial {
            path: entry.path(),
            size,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
