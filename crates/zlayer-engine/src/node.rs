//! Assembling a node: its launchers and the hosting layer's runtime over
//! them. The one place that knows every isolation crate.

use crate::error::Result;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zlayer_container::{ContainerConfig, ContainerLauncher};
use zlayer_hosting::{AnnotationLookup, HostedRuntime, Launcher};
use zlayer_image::ImageStore;
use zlayer_sandbox::{SandboxConfig, SandboxLauncher};
use zlayer_spec::Isolation;
use zlayer_vm::{VmConfig, VmLauncher};

/// How a node is set up; [`Default`] is what `zlayer` uses.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The isolation of services and images that do not choose one.
    pub default_isolation: Isolation,
    /// Whether sandboxes that ask for a GPU may open GPU devices.
    pub sandbox_gpu_access: bool,
    /// Where the monitor binaries are (`None`: next to this executable, one
    /// directory up, or on `PATH`).
    pub monitor_dir: Option<PathBuf>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            default_isolation: Isolation::Container,
            sandbox_gpu_access: false,
            monitor_dir: None,
        }
    }
}

/// The runtime of the node at `root`: container (when this process is
/// root), sandbox and vm launchers, routing by label and image annotation.
pub fn assemble(root: &Path, images: ImageStore, config: &NodeConfig) -> Result<HostedRuntime> {
    let monitor = |name: &str| config.monitor_dir.as_ref().map(|d| d.join(name));
    let mut launchers: Vec<Arc<dyn Launcher>> = Vec::new();
    let mut unavailable = Vec::new();
    let mut container = ContainerConfig::new(root);
    container.monitor = monitor(zlayer_container::MONITOR_NAME);
    match ContainerLauncher::new(container) {
        Ok(l) => launchers.push(Arc::new(l)),
        // Not root: the sandbox and vm isolations still work; containers
        // asking for this one are refused with the reason.
        Err(e) => {
            tracing::debug!("no container isolation: {e}");
            unavailable.push((Isolation::Container, e.to_string()));
        }
    }
    let mut sandbox = SandboxConfig::new(root);
    sandbox.gpu_access = config.sandbox_gpu_access;
    sandbox.monitor = monitor(zlayer_sandbox::launcher::MONITOR_NAME);
    launchers.push(Arc::new(SandboxLauncher::new(sandbox)));
    let mut vm = VmConfig::new(root.join("vm"));
    vm.monitor = monitor(zlayer_vm::MONITOR_NAME);
    launchers.push(Arc::new(VmLauncher::new(vm)));
    let store = images.clone();
    let lookup: AnnotationLookup = Arc::new(move |image: &str| {
        let rec = store.lookup(image).ok().flatten()?;
        let cfg = store.image_config(&rec).ok()?;
        let mut all = cfg.labels;
        all.extend(cfg.annotations);
        Some(all)
    });
    let mut runtime = HostedRuntime::new(images, launchers, config.default_isolation)?
        .with_annotation_lookup(lookup);
    for (isolation, why) in unavailable {
        runtime = runtime.with_unavailable(isolation, why);
    }
    Ok(runtime)
}
