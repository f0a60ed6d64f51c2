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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Blobs deleted.
    pub blobs_removed: Vec<Digest>,
    /// Snapshots (diff_ids) deleted.
    pub snapshots_removed: Vec<Digest>,
    /// Leases dropped because their holder no longer exists.
    pub stale_leases_removed: usize,
    /// Bytes freed (blobs plus snapshot files).
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

/// Implements [`ImageStore::prune`]: under the exclusive GC lock, keeps every
/// blob and snapshot reachable from an image record or a live lease and
/// deletes the rest, plus stale leases and leftovers of interrupted work.
pub(super) fn prune(store: &ImageStore) -> Result<PruneReport> {
    let content = store.content();
    let _gc = content.gc_exclusive()?;
    let mut report = PruneReport::default();
    let mut keep_blobs: HashSet<Digest> = HashSet::new();
    let mut keep_snaps: HashSet<Digest> = HashSet::new();
    for rec in records::list(&store.records_dir())? {
        keep_blobs.extend(rec.blobs());
        keep_snaps.extend(rec.layers.iter().map(|l| l.diff_id.clone()));
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
                keep_blobs.extend(lease.blobs);
                keep_snaps.extend(lease.diff_ids);
            }
            Ok(_) | Err(_) => {
                fsutil::remove_any(&path)?;
                report.stale_leases_removed += 1;
            }
        }
    }
    for d in content.list_blobs()? {
        if !keep_blobs.contains(&d) {
            report.bytes_freed += content.blob_size(&d).unwrap_or(0);
            content.delete_blob(&d)?;
            report.blobs_removed.push(d);
        }
    }
    let snaps = store.snapshots();
    for d in snaps.list()? {
        if !keep_snaps.contains(&d) {
            report.bytes_freed += snaps.delete(&d)?;
            report.snapshots_removed.push(d);
        }
    }
    snaps.clean_tmp()?;
    clean_ingest(content.dir())?;
    Ok(report)
}

/// Drops partial downloads older than a day and lock files of absent blobs.
fn clean_ingest(content_dir: &Path) -> Result<()> {
    let dir = content_dir.join("ingest");
    let day = std::time::Duration::from_secs(24 * 3600);
    for entry in fs::read_dir(&dir).ctx("read directory", &dir)? {
        let entry = entry.ctx("read directory", &dir)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if name.ends_with(".partial") {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > day);
            if old || name.starts_with("stream-") {
                fsutil::remove_any(&path)?;
            }
        }
    }
    Ok(())
}
