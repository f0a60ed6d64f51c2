//! Test helper: small and big images (via `zlayer_image::fixtures`) written as
//! OCI layouts ready for `skopeo copy`, a multi-arch index builder, and a
//! progress recorder.
//!
//! Include with `#[path = "common/images.rs"] mod images;`.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Mutex;

use zlayer_image::fixtures::{
    EntryMeta, FixtureConfig, FixtureImage, ImageBuilder, LayerBuilder, LayerCompression,
};
use zlayer_image::{Digest, PullProgress};

/// Writes an image whose layer `i` holds the files `layers[i]` as an OCI
/// layout at `dir`, tagged `tag`.
pub fn layout(dir: &Path, tag: &str, layers: &[&[(&str, &[u8])]]) -> FixtureImage {
    let mut b = ImageBuilder::new(&format!("fixture/test:{tag}"), FixtureConfig::standard(tag))
        .expect("builder");
    for files in layers {
        let mut l = LayerBuilder::new();
        for (path, data) in *files {
            l.file(path, data, &EntryMeta::mode(0o644)).expect("file");
        }
        b.layer(&l.finish().expect("tar"), LayerCompression::Gzip)
            .expect("layer");
    }
    b.write_layout(dir).expect("write layout")
}

/// Deterministic incompressible bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An image of `layers` uncompressed layers, each one file of `layer_bytes`
/// random bytes, as an OCI layout at `dir` tagged `tag`.
pub fn big_layout(dir: &Path, tag: &str, layers: usize, layer_bytes: usize) -> FixtureImage {
    let mut b = ImageBuilder::new(&format!("fixture/big:{tag}"), FixtureConfig::standard(tag))
        .expect("builder");
    for i in 0..layers {
        let mut l = LayerBuilder::new();
        l.file(
            &format!("data/blob{i}"),
            &random_bytes(layer_bytes, i as u64 + 1),
            &EntryMeta::mode(0o644),
        )
        .expect("file");
        b.layer(&l.finish().expect("tar"), LayerCompression::None)
            .expect("layer");
    }
    b.write_layout(dir).expect("write layout")
}

/// Combines two single-image layouts into one layout at `dir` whose tag
/// `tag` is an OCI index listing `amd64` as linux/amd64 and `arm64` as
/// linux/arm64/v8. Returns the index digest.
pub fn index_layout(dir: &Path, tag: &str, amd64: &FixtureImage, arm64: &FixtureImage) -> Digest {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("write");
    for img in [amd64, arm64] {
        for entry in std::fs::read_dir(img.path.join("blobs/sha256")).expect("read blobs") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), blobs.join(entry.file_name())).expect("copy blob");
        }
    }
    let size = |img: &FixtureImage| {
        std::fs::metadata(
            img.path
                .join("blobs/sha256")
                .join(img.manifest_digest.hex()),
        )
        .expect("manifest blob")
        .len()
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": arm64.manifest_digest.to_string(), "size": size(arm64),
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": amd64.manifest_digest.to_string(), "size": size(amd64),
             "platform": {"architecture": "amd64", "os": "linux"}},
        ]
    });
    let bytes = serde_json::to_vec(&index).expect("json");
    let digest = Digest::of(&bytes);
    std::fs::write(blobs.join(digest.hex()), &bytes).expect("write index");
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest.to_string(),
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }]
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&top).expect("json"),
    )
    .expect("write index.json");
    digest
}

/// One recorded progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `layer_started(digest, size, offset)`.
    Started(Digest, u64, u64),
    /// `layer_retrying(digest, offset)`.
    Retrying(Digest, u64),
    /// `layer_finished(digest, cached)`.
    Finished(Digest, bool),
    /// `layer_extracted(digest)`.
    Extracted(Digest),
    /// `finished(manifest)`.
    Done(Digest),
}

/// Records progress events; optionally runs a hook on every byte count.
#[derive(Default)]
pub struct Recorder {
    /// Events in arrival order (byte counts excluded).
    pub events: Mutex<Vec<Event>>,
    /// Total bytes reported.
    pub bytes: Mutex<u64>,
    /// Called with the running byte total after each `layer_bytes`.
    pub on_bytes: Option<Box<dyn Fn(u64) + Send + Sync>>,
}

impl Recorder {
    /// A copy of the events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Total bytes reported so far.
    pub fn total_bytes(&self) -> u64 {
        *self.bytes.lock().unwrap()
    }
}

impl PullProgress for Recorder {
    fn layer_started(&self, layer: &Digest, size: u64, offset: u64) {
        self.events
            .lock()
            .unwrap()
            .push(Event::Started(layer.clone(), size, offset));
    }
    fn layer_bytes(&self, _layer: &Digest, bytes: u64) {
        let total = {
            let mut b = self.bytes.lock().unwrap();
            *b += bytes;
            *b
        };
        if let Some(hook) = &self.on_bytes {
            hook(total);
        }
    }
    fn layer_retrying(&self, layer: &Digest, offset: u64, _reason: &str) {
        self.events
            .lock()
            .unwrap()
            .push(Event::Retrying(layer.clone(), offset));
    }
    fn layer_finished(&self, layer: &Digest, cached: bool) {
        self.events
            .lock()
            .unwrap()
            .push(Event::Finished(layer.clone(), cached));
    }
    fn layer_extracted(&self, layer: &Digest) {
        self.events
            .lock()
            .unwrap()
            .push(Event::Extracted(layer.clone()));
    }
    fn finished(&self, manifest: &Digest) {
        self.events
            .lock()
            .unwrap()
            .push(Event::Done(manifest.clone()));
    }
}
