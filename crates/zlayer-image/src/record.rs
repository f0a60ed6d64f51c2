//! Image and layer records kept under `<root>/images`.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the (possibly compressed) blob in the content store.
    pub digest: Digest,
    /// Digest of the uncompressed tar (from the config's `rootfs.diff_ids`);
    /// the layer's snapshot is keyed by it.
    pub diff_id: Digest,
    /// The layer's media type from the manifest.
    pub media_type: String,
    /// Blob size in bytes.
    pub size: u64,
}

/// A stored image: what a reference points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The reference exactly as the user wrote it when storing the image.
    pub reference: String,
    /// Digest of the single-platform manifest.
    pub manifest_digest: Digest,
    /// Media type of that manifest.
    pub manifest_media_type: String,
    /// Digest of the multi-platform index it was selected from, if any.
    #[serde(default)]
    pub index_digest: Option<Digest>,
    /// Digest of the config blob.
    pub config_digest: Digest,
    /// Layers, lowest first.
    pub layers: Vec<LayerRecord>,
    /// Manifest + config + layer blob sizes in bytes.
    pub size: u64,
    /// The config's creation time (RFC 3339), if any.
    pub created: Option<String>,
    /// When the record was written, seconds since the Unix epoch.
    pub stored_at: u64,
}

impl ImageRecord {
    /// The digest users refer to the image by: the index digest when the
    /// image came from a multi-platform index, else the manifest digest.
    pub fn digest(&self) -> &Digest {
        self.index_digest.as_ref().unwrap_or(&self.manifest_digest)
    }

    /// Every blob this image needs (index, manifest, config, layers).
    pub fn blobs(&self) -> Vec<Digest> {
        let mut v = vec![self.manifest_digest.clone(), self.config_digest.clone()];
        v.extend(self.index_digest.iter().cloned());
        v.extend(self.layers.iter().map(|l| l.digest.clone()));
        v
    }
}
