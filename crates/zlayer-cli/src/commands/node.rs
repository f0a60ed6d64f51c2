//! Opens the engine on the data root: image store, runtimes, composite.

use crate::cli::GlobalArgs;
use std::collections::BTreeMap;
use std::sync::Arc;
use zlayer_agent::{CompositeRuntime, Runtime};
use zlayer_engine::Engine;
use zlayer_image::ImageStore;

/// The engine for this invocation.
pub fn open_engine(global: &GlobalArgs) -> anyhow::Result<Engine> {
    let root = &global.root;
    std::fs::create_dir_all(root).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data root {}: {e}; run as root or pass --root DIR",
            root.display()
        )
    })?;
    let images = ImageStore::open(root)?;
    let runtimes: BTreeMap<String, Arc<dyn Runtime>> = BTreeMap::new();
    let composite = CompositeRuntime::new(runtimes, "container")?;
    Ok(Engine::new(root, images, Arc::new(composite))?)
}
