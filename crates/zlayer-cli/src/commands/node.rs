//! Opens the engine on the data root: image store, runtimes, composite.

use crate::cli::GlobalArgs;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use zlayer_container::{ContainerRuntime, ContainerRuntimeConfig};
use zlayer_engine::Engine;
use zlayer_image::ImageStore;
use zlayer_runtime::{AnnotationLookup, CompositeRuntime, Runtime};
use zlayer_sandbox::{SandboxConfig, SandboxRuntime, StoreImages};
use zlayer_vm::{VmConfig, VmRuntime};

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
    let composite = build_composite(root, &images)?;
    Ok(Engine::new(root, images, Arc::new(composite))?)
}

/// Every runtime this node offers, behind the composite (default `container`).
fn build_composite(root: &Path, images: &ImageStore) -> anyhow::Result<CompositeRuntime> {
    let mut runtimes: BTreeMap<String, Arc<dyn Runtime>> = BTreeMap::new();
    let container = ContainerRuntime::with_image_store(
        ContainerRuntimeConfig::new(root, ContainerRuntimeConfig::shim_next_to_current_exe()),
        images.clone(),
    )?;
    runtimes.insert("container".into(), Arc::new(container));
    let sandbox = SandboxRuntime::new(SandboxConfig::under(&root.join("sandbox")))?
        .with_image_resolver(Arc::new(StoreImages::new(images.clone())));
    runtimes.insert("sandbox".into(), Arc::new(sandbox));
    let vm = VmRuntime::new(VmConfig::new(root.join("vm")), Arc::new(images.clone()))?;
    runtimes.insert("vm".into(), Arc::new(vm));
    let store = images.clone();
    let lookup: AnnotationLookup = Arc::new(move |image: &str| {
        let rec = store.lookup(image).ok().flatten()?;
        let cfg = store.image_config(&rec).ok()?;
        let mut all = cfg.labels;
        all.extend(cfg.annotations);
        Some(all)
    });
    Ok(CompositeRuntime::new(runtimes, "container")?.with_annotation_lookup(lookup))
}
