//! `index.json` of the content store, so OCI tools can read it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::Result;
use crate::fsutil;

/// One manifest listed in `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest digest.
    pub digest: Digest,
    /// The manifest size in bytes.
    pub size: u64,
    /// The image reference, written as `org.opencontainers.image.ref.name`.
    pub reference: String,
}

pub(super) fn write(path: &Path, entries: &[IndexEntry]) -> Result<()> {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            let mut annotations = BTreeMap::new();
            annotations.insert("org.opencontainers.image.ref.name", e.reference.as_str());
            annotations.insert("io.containerd.image.name", e.reference.as_str());
            serde_json::json!({
                "mediaType": e.media_type,
                "digest": e.digest.to_string(),
                "size": e.size,
                "annotations": annotations,
            })
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    fsutil::write_json_atomic(path, &index)
}
