//! OCI image layouts (directories and oci-archives).

use std::path::Path;

use super::source::Source;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, ManifestDoc};
use crate::store::ImageStore;

fn blob_member(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// Imports a descriptor's blob and returns its bytes when it is a manifest/index.
fn import_desc(store: &ImageStore, src: &Source, d: &Descriptor) -> Result<()> {
    src.import(
        store.content(),
        &blob_member(&d.digest),
        Some((&d.digest, d.size)),
    )?;
    Ok(())
}

/// Imports one single-platform manifest and everything it references.
fn import_manifest(store: &ImageStore, src: &Source, d: &Descriptor) -> Result<()> {
    import_desc(store, src, d)?;
    let bytes = store.content().read_blob(&d.digest)?;
    match manifest::parse(&bytes, &d.digest.to_string())? {
        ManifestDoc::Manifest(m) => {
            import_desc(store, src, &m.config)?;
            for l in &m.layers {
                import_desc(store, src, l)?;
            }
            Ok(())
        }
        ManifestDoc::Index(_) => Err(Error::InvalidManifest {
            kind: "index",
            digest: d.digest.to_string(),
            reason: "nested indexes are not supported".into(),
        }),
    }
}

/// Returns (names, digest to record) for every image in the layout's index.json.
pub(super) fn images(
    store: &ImageStore,
    src: &mut Source,
    path: &Path,
) -> Result<Vec<(Vec<String>, Digest)>> {
    let bytes = src.read(store.content(), "index.json")?;
    let entries = match manifest::parse(&bytes, &format!("{}/index.json", path.display()))? {
        ManifestDoc::Index(entries) => entries,
        ManifestDoc::Manifest(_) => {
            return Err(Error::Load {
                path: path.to_path_buf(),
                reason: "index.json is an image manifest, not an index".into(),
            })
        }
    };
    let mut out: Vec<(Vec<String>, Digest)> = Vec::new();
    for e in &entries {
        let d = &e.descriptor;
        let is_index =
            d.media_type == manifest::OCI_INDEX || d.media_type == manifest::DOCKER_MANIFEST_LIST;
        if is_index {
            import_desc(store, src, d)?;
            let bytes = store.content().read_blob(&d.digest)?;
            match manifest::parse(&bytes, &d.digest.to_string())? {
                ManifestDoc::Index(inner) => {
                    let chosen = manifest::select_platform(&inner, &d.digest.to_string())?;
                    import_manifest(store, src, &chosen.descriptor)?;
                }
                ManifestDoc::Manifest(_) => import_manifest(store, src, d)?,
            }
        } else {
            import_manifest(store, src, d)?;
        }
        let name = e
            .annotations
            .get("io.containerd.image.name")
            .or_else(|| e.annotations.get("org.opencontainers.image.ref.name"))
            .cloned();
        match out.iter_mut().find(|(_, dig)| dig == &d.digest) {
            Some((names, _)) => names.extend(name),
            None => out.push((name.into_iter().collect(), d.digest.clone())),
        }
    }
    Ok(out)
}
