//! Importing images from an OCI layout directory, an oci-archive or a docker-archive.
//!
//! The format is detected: a directory with `index.json` is an OCI layout,
//! one with `manifest.json` an extracted `docker save`; a file is read as a
//! tar (optionally gzip/zstd-compressed) and treated as a docker-archive when
//! it holds `manifest.json`, else as an oci-archive. Archive member names are
//! only used as lookup keys, never as paths on disk, and every blob is
//! verified against its digest as it is stored.

mod docker;
mod oci;
mod source;

use std::path::Path;

use crate::error::{Error, Result};
use crate::record::ImageRecord;
use crate::reference::Reference;
use crate::store::ImageStore;

use source::Source;

pub(crate) fn load(store: &ImageStore, path: &Path, tag: Option<&str>) -> Result<Vec<ImageRecord>> {
    if let Some(t) = tag {
        Reference::parse(t)?;
    }
    let meta = std::fs::metadata(path).map_err(|e| Error::Load {
        path: path.to_path_buf(),
        reason: format!("cannot stat: {e}"),
    })?;
    let mut src = if meta.is_dir() {
        Source::dir(path)
    } else {
        Source::scan_tar(store.content(), path)?
    };
    let images = if src.has("manifest.json") {
        docker::images(store, &mut src, path)?
    } else if src.has("index.json") {
        oci::images(store, &mut src, path)?
    } else {
        return Err(Error::Load {
            path: path.to_path_buf(),
            reason: "neither an OCI image layout (index.json) nor a docker-archive (manifest.json)"
                .into(),
        });
    };
    if images.is_empty() {
        return Err(Error::Load {
            path: path.to_path_buf(),
            reason: "it contains no images".into(),
        });
    }
    let distinct: std::collections::HashSet<_> = images.iter().map(|(_, d)| d.clone()).collect();
    if tag.is_some() && distinct.len() > 1 {
        return Err(Error::Load {
            path: path.to_path_buf(),
            reason: format!(
                "it contains {} images, so a single --tag is ambiguous; load without a tag",
                distinct.len()
            ),
        });
    }
    zlayer_failpoints::hit("load.before-record");
    let mut out = Vec::new();
    if let Some(t) = tag {
        out.push(store.record_image(t, &images[0].1)?);
        return Ok(out);
    }
    for (names, digest) in images {
        if names.is_empty() {
            return Err(Error::Load {
                path: path.to_path_buf(),
                reason: format!("image {digest} has no name in the archive; pass a tag (zlayer load --tag NAME)"),
            });
        }
        for n in names {
            out.push(store.record_image(&n, &digest)?);
        }
    }
    Ok(out)
}
