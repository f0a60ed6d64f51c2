//! Reading and writing image records and the content store's `index.json`.

use std::fs;
use std::path::{Path, PathBuf};

use super::ImageStore;
use crate::config::ImageConfig;
use crate::content::IndexEntry;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::lock::PathLock;
use crate::manifest::{self, ManifestDoc};
use crate::record::{ImageRecord, LayerRecord};
use crate::reference::Reference;

/// File stem for a literal reference: its SHA-256, so any spelling is a safe file name.
fn key(reference: &str) -> String {
    Digest::of(reference.as_bytes()).hex().to_string()
}

fn record_path(dir: &Path, reference: &str) -> PathBuf {
    dir.join(format!("{}.json", key(reference)))
}

fn config_path(dir: &Path, reference: &str) -> PathBuf {
    dir.join(format!("{}.config.json", key(reference)))
}

/// All records, sorted by reference. Unreadable files are skipped with a warning.
pub(super) fn list(dir: &Path) -> Result<Vec<ImageRecord>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).ctx("read directory", dir)? {
        let entry = entry.ctx("read directory", dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(".json") || name.ends_with(".config.json") || name.starts_with('.') {
            continue;
        }
        match fsutil::read_json::<ImageRecord>(&entry.path()) {
            Ok(rec) => out.push(rec),
            Err(e) => tracing::warn!("skipping unreadable image record: {e}"),
        }
    }
    out.sort_by(|a, b| a.reference.cmp(&b.reference));
    Ok(out)
}

/// Exact literal first, then any record whose reference parses to the same
/// canonical form, then (for `sha256:<hex>`) a record with that digest.
pub(super) fn lookup(dir: &Path, reference: &str) -> Result<Option<ImageRecord>> {
    let exact = record_path(dir, reference);
    if exact.is_file() {
        return fsutil::read_json(&exact).map(Some);
    }
    if let Ok(digest) = reference.parse::<Digest>() {
        return Ok(list(dir)?
            .into_iter()
            .find(|r| r.manifest_digest == digest || r.index_digest.as_ref() == Some(&digest)));
    }
    let wanted = Reference::parse(reference)?;
    for spelling in wanted.equivalent_spellings() {
        let p = record_path(dir, &spelling);
        if p.is_file() {
            return fsutil::read_json(&p).map(Some);
        }
    }
    Ok(list(dir)?
        .into_iter()
        .find(|r| Reference::parse(&r.reference).is_ok_and(|have| have == wanted)))
}

/// Implements [`ImageStore::record_image`].
pub(super) fn record(store: &ImageStore, reference: &str, digest: &Digest) -> Result<ImageRecord> {
    Reference::parse(reference)?;
    let content = store.content();
    let bytes = content.read_blob(digest)?;
    let what = digest.to_string();
    let (index_digest, manifest_digest, manifest_bytes) = match manifest::parse(&bytes, &what)? {
        ManifestDoc::Manifest(_) => (None, digest.clone(), bytes),
        ManifestDoc::Index(entries) => {
            let chosen = manifest::select_platform(&entries, &what)?;
            let d = chosen.descriptor.digest.clone();
            let b = content.read_blob(&d)?;
            (Some(digest.clone()), d, b)
        }
    };
    let m = match manifest::parse(&manifest_bytes, &manifest_digest.to_string())? {
        ManifestDoc::Manifest(m) => m,
        ManifestDoc::Index(_) => {
            return Err(Error::InvalidManifest {
                kind: "index",
                digest: manifest_digest.to_string(),
                reason: "an index entry points at another index; nested indexes are not supported"
                    .into(),
            })
        }
    };
    let config_bytes = content.read_blob(&m.config.digest)?;
    let mut config = ImageConfig::parse(&config_bytes, &m.config.digest.to_string())?;
    config.annotations = m.annotations.clone();
    if config.diff_ids.len() != m.layers.len() {
        return Err(Error::InvalidManifest {
            kind: "manifest",
            digest: manifest_digest.to_string(),
            reason: format!(
                "it lists {} layers but its config has {} rootfs.diff_ids",
                m.layers.len(),
                config.diff_ids.len()
            ),
        });
    }
    let mut layers = Vec::new();
    for (l, diff_id) in m.layers.iter().zip(&config.diff_ids) {
        if !content.has_blob(&l.digest) {
            return Err(Error::BlobNotFound {
                digest: l.digest.to_string(),
                path: content.blob_path(&l.digest),
            });
        }
        layers.push(LayerRecord {
            digest: l.digest.clone(),
            diff_id: diff_id.clone(),
            media_type: l.media_type.clone(),
            size: l.size,
        });
    }
    let size = manifest_bytes.len() as u64
        + config_bytes.len() as u64
        + layers.iter().map(|l| l.size).sum::<u64>();

    let dir = store.records_dir();
    let _lock = PathLock::acquire(&store.records_lock())?;
    // Reuse the key of an equivalent spelling that is already recorded.
    let key_ref = match lookup(&dir, reference)? {
        Some(existing) if !reference.starts_with("sha256:") => existing.reference,
        _ => reference.to_string(),
    };
    let rec = ImageRecord {
        reference: key_ref.clone(),
        manifest_digest,
        manifest_media_type: m.media_type.clone(),
        index_digest,
        config_digest: m.config.digest.clone(),
        layers,
        size,
        created: config.created.clone(),
        stored_at: fsutil::unix_now(),
    };
    fsutil::write_json_atomic(&config_path(&dir, &key_ref), &config)?;
    fsutil::write_json_atomic(&record_path(&dir, &key_ref), &rec)?;
    rebuild_index(store)?;
    Ok(rec)
}

/// Implements [`ImageStore::image_config`].
pub(super) fn image_config(store: &ImageStore, rec: &ImageRecord) -> Result<ImageConfig> {
    let p = config_path(&store.records_dir(), &rec.reference);
    if p.is_file() {
        return fsutil::read_json(&p);
    }
    let bytes = store.content().read_blob(&rec.config_digest)?;
    let mut config = ImageConfig::parse(&bytes, &rec.config_digest.to_string())?;
    if let Ok(mbytes) = store.content().read_blob(&rec.manifest_digest) {
        if let Ok(ManifestDoc::Manifest(m)) = manifest::parse(&mbytes, "") {
            config.annotations = m.annotations;
        }
    }
    Ok(config)
}

/// Implements [`ImageStore::remove`].
pub(super) fn remove(store: &ImageStore, reference: &str) -> Result<()> {
    let dir = store.records_dir();
    let _lock = PathLock::acquire(&store.records_lock())?;
    let rec = lookup(&dir, reference)?.ok_or_else(|| Error::ImageNotFound {
        reference: reference.to_string(),
    })?;
    for p in [
        config_path(&dir, &rec.reference),
        record_path(&dir, &rec.reference),
    ] {
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &p, e)),
        }
    }
    rebuild_index(store)
}

/// Rewrites `content/index.json` from the records. Caller holds the records lock.
fn rebuild_index(store: &ImageStore) -> Result<()> {
    let entries: Vec<IndexEntry> = list(&store.records_dir())?
        .into_iter()
        .map(|r| IndexEntry {
            media_type: r.manifest_media_type.clone(),
            size: store.content().blob_size(&r.manifest_digest).unwrap_or(0),
            digest: r.manifest_digest,
            reference: r.reference,
        })
        .collect();
    store.content().write_index(&entries)
}
