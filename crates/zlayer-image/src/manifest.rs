//! Parsing OCI and Docker v2 manifests and indexes.

use std::collections::BTreeMap;

use oci_spec::image::{ImageIndex, ImageManifest};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer media type.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer media type.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer media type.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker v2 schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer media type.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A content descriptor (media type, digest, size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// A parsed single-platform manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest's own media type.
    pub media_type: String,
    /// The config blob.
    pub config: Descriptor,
    /// Layers, lowest first.
    pub layers: Vec<Descriptor>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

/// One entry of an index / manifest list.
#[derive(Debug, Clone)]
pub struct IndexManifest {
    /// The per-platform manifest.
    pub descriptor: Descriptor,
    /// `os`, if the entry has a platform.
    pub os: Option<String>,
    /// `architecture`, if the entry has a platform.
    pub architecture: Option<String>,
    /// `variant`, if any.
    pub variant: Option<String>,
    /// Entry annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Either kind of manifest document.
#[derive(Debug, Clone)]
pub enum ManifestDoc {
    /// A single-platform image manifest.
    Manifest(Manifest),
    /// A multi-platform index / manifest list.
    Index(Vec<IndexManifest>),
}

fn bad(kind: &'static str, what: &str, reason: impl Into<String>) -> Error {
    Error::InvalidManifest {
        kind,
        digest: what.to_string(),
        reason: reason.into(),
    }
}

fn descriptor(
    kind: &'static str,
    what: &str,
    d: &oci_spec::image::Descriptor,
) -> Result<Descriptor> {
    Ok(Descriptor {
        media_type: d.media_type().to_string(),
        digest: Digest::try_from(d.digest()).map_err(|e| bad(kind, what, e.to_string()))?,
        size: d.size(),
    })
}

/// Parses a manifest or index; `what` names it in errors (usually its digest).
pub fn parse(bytes: &[u8], what: &str) -> Result<ManifestDoc> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad("manifest", what, e.to_string()))?;
    let schema = value.get("schemaVersion").and_then(|v| v.as_u64());
    if schema == Some(1) {
        return Err(bad(
            "manifest",
            what,
            "Docker schema 1 manifests are not supported; re-push the image with a current Docker or use an OCI manifest",
        ));
    }
    let media_type = value
        .get("mediaType")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    if value.get("manifests").is_some() {
        let index: ImageIndex =
            serde_json::from_value(value).map_err(|e| bad("index", what, e.to_string()))?;
        let mut out = Vec::new();
        for m in index.manifests() {
            let p = m.platform().as_ref();
            out.push(IndexManifest {
                descriptor: descriptor("index", what, m)?,
                os: p.map(|p| p.os().to_string()),
                architecture: p.map(|p| p.architecture().to_string()),
                variant: p.and_then(|p| p.variant().clone()),
                annotations: m
                    .annotations()
                    .clone()
                    .map(|a| a.into_iter().collect())
                    .unwrap_or_default(),
            });
        }
        return Ok(ManifestDoc::Index(out));
    }
    if value.get("layers").is_none() || value.get("config").is_none() {
        return Err(bad(
            "manifest",
            what,
            "the document has neither `manifests` (index) nor `config` and `layers` (image manifest)",
        ));
    }
    let manifest: ImageManifest =
        serde_json::from_value(value).map_err(|e| bad("manifest", what, e.to_string()))?;
    let media_type = if media_type.is_empty() {
        OCI_MANIFEST.to_string()
    } else {
        media_type
    };
    Ok(ManifestDoc::Manifest(Manifest {
        media_type,
        config: descriptor("manifest", what, manifest.config())?,
        layers: manifest
            .layers()
            .iter()
            .map(|l| descriptor("manifest", what, l))
            .collect::<Result<_>>()?,
        annotations: manifest
            .annotations()
            .clone()
            .map(|a| a.into_iter().collect())
            .unwrap_or_default(),
    }))
}

/// The Go-style architecture name of this machine (`amd64`, `arm64`, ...).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "arm" => "arm",
        other => other,
    }
}

/// Picks the manifest for `linux/<host arch>` from an index; falls back to
/// the only entry when there is just one.
pub fn select_platform<'a>(entries: &'a [IndexManifest], what: &str) -> Result<&'a IndexManifest> {
    let arch = host_architecture();
    let matching = entries.iter().find(|m| {
        m.os.as_deref().unwrap_or("linux") == "linux"
            && m.architecture.as_deref() == Some(arch)
            && m.descriptor.media_type != "application/vnd.in-toto+json"
    });
    if let Some(m) = matching {
        return Ok(m);
    }
    let real: Vec<_> = entries
        .iter()
        .filter(|m| {
            m.annotations
                .get("vnd.docker.reference.type")
                .map(String::as_str)
                != Some("attestation-manifest")
        })
        .collect();
    if real.len() == 1 {
        return Ok(real[0]);
    }
    let available: Vec<String> = entries
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m.os.as_deref().unwrap_or("?"),
                m.architecture.as_deref().unwrap_or("?")
            )
        })
        .collect();
    Err(bad(
        "index",
        what,
        format!(
            "no manifest for linux/{arch}; the index offers [{}]",
            available.join(", ")
        ),
    ))
}
