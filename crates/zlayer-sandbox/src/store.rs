//! Images of the node's image store ([`zlayer_image::ImageStore`]) for the
//! sandbox: layers unpacked by the store, merged by the sandbox (absolute
//! symlinks made relative), config defaults from the stored image config,
//! and a lease per container so `prune` keeps the layers.

use std::path::Path;
use zlayer_image::ImageStore;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::ImageInfo;

use super::images::{ImageDefaults, ImageResolver, ImageRootfs, ResolvedImage};

/// [`ImageResolver`] over an [`ImageStore`].
#[derive(Debug, Clone)]
pub struct StoreImages {
    store: ImageStore,
}

impl StoreImages {
    /// Serves the images of `store`.
    pub fn new(store: ImageStore) -> Self {
        StoreImages { store }
    }
}

fn store_err(e: zlayer_image::Error) -> RuntimeError {
    RuntimeError::Internal(format!("image store: {e}"))
}

impl ImageResolver for StoreImages {
    fn resolve(&self, name: &str) -> Result<Option<ResolvedImage>> {
        let Some(rec) = self.store.lookup(name).map_err(store_err)? else {
            return Ok(None);
        };
        let layers = self.store.ensure_unpacked(&rec).map_err(store_err)?;
        let cfg = self.store.image_config(&rec).map_err(store_err)?;
        Ok(Some(ResolvedImage {
            rootfs: ImageRootfs::Layers(layers),
            defaults: ImageDefaults {
                entrypoint: cfg.entrypoint.unwrap_or_default(),
                cmd: cfg.cmd.unwrap_or_default(),
                env: cfg.env,
                workdir: cfg.working_dir,
                user: cfg.user,
                stop_signal: cfg.stop_signal,
            },
        }))
    }

    fn list(&self) -> Result<Vec<ImageInfo>> {
        Ok(self
            .store
            .list()
            .map_err(store_err)?
            .into_iter()
            .map(|r| ImageInfo {
                digest: Some(r.digest().to_string()),
                size_bytes: Some(r.size),
                created: r.created.clone(),
                reference: r.reference,
            })
            .collect())
    }

    fn acquire(&self, name: &str, holder: &Path) -> Result<()> {
        match self.store.lookup(name).map_err(store_err)? {
            Some(rec) => self.store.register_use(holder, &rec).map_err(store_err),
            None => Ok(()),
        }
    }

    fn release(&self, holder: &Path) -> Result<()> {
        self.store.unregister_use(holder).map_err(store_err)
    }
}
