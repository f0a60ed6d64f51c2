//! docker-archives (`docker save` output), legacy and Docker 25+ layouts.

use std::path::Path;

use serde::Deserialize;

use super::source::Source;
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest;
use crate::store::ImageStore;
use crate::unpack::Compression;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn layer_media_type(store: &ImageStore, d: &Digest) -> Result<&'static str> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let mut f = store.content().open_blob(d)?;
    let n = f
        .read(&mut head)
        .map_err(|e| Error::io("read blob", store.content().blob_path(d), e))?;
    Ok(match Compression::detect(&head[..n]) {
        Ok(Compression::Gzip) => manifest::OCI_LAYER_GZIP,
        Ok(Compression::Zstd) => manifest::OCI_LAYER_ZSTD,
        _ => manifest::OCI_LAYER_TAR,
    })
}

/// Returns (names, manifest digest) for each image in `manifest.json`,
/// synthesising an OCI manifest for each.
pub(super) fn images(
    store: &ImageStore,
    src: &mut Source,
    path: &Path,
) -> Result<Vec<(Vec<String>, Digest)>> {
    let content = store.content();
    let bytes = src.read(content, "manifest.json")?;
    let entries: Vec<Entry> = serde_json::from_slice(&bytes).map_err(|e| Error::Load {
        path: path.to_path_buf(),
        reason: format!("manifest.json is not a docker-archive manifest: {e}"),
    })?;
    let mut out = Vec::new();
    for e in entries {
        let (config_digest, config_size) = src.import(content, &e.config, None)?;
        let config_bytes = content.read_blob(&config_digest)?;
        let config = ImageConfig::parse(&config_bytes, &e.config)?;
        if config.diff_ids.len() != e.layers.len() {
            return Err(Error::Load {
                path: path.to_path_buf(),
                reason: format!(
                    "image config {} lists {} diff_ids but manifest.json lists {} layers",
                    e.config,
                    config.diff_ids.len(),
                    e.layers.len()
                ),
            });
        }
        let mut layers = Vec::new();
        for l in &e.layers {
            let (d, size) = src.import(content, l, None)?;
            let media_type = layer_media_type(store, &d)?;
            layers.push(serde_json::json!({
                "mediaType": media_type,
                "digest": d.to_string(),
                "size": size,
            }));
        }
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {
                "mediaType": manifest::OCI_CONFIG,
                "digest": config_digest.to_string(),
                "size": config_size,
            },
            "layers": layers,
        });
        let mbytes = serde_json::to_vec(&m).map_err(|e| Error::json("synthesised manifest", e))?;
        let md = Digest::of(&mbytes);
        content.put_blob(&md, &mbytes)?;
        out.push((e.repo_tags.unwrap_or_default(), md));
    }
    Ok(out)
}
