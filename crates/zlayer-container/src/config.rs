//! [`ContainerRuntimeConfig`]: where the container runtime keeps its state
//! and where it finds its monitor binary.

use std::path::PathBuf;
use zlayer_network::NetworkOptions;

/// File name of the monitor binary, looked up next to the current executable
/// by [`ContainerRuntimeConfig::default`].
pub const SHIM_BINARY: &str = "zlayer-shim";

/// Configuration of a [`super::ContainerRuntime`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRuntimeConfig {
    /// The data root (default `/var/lib/zlayer`, or `$ZLAYER_ROOT`): images
    /// live in it (see `zlayer-image`), containers under `containers/`,
    /// named volumes under `volumes/`, libcontainer state under
    /// `run/libcontainer/`.
    pub root: PathBuf,
    /// The `zlayer-shim` binary that monitors each container. Tests pass
    /// `env!("CARGO_BIN_EXE_zlayer-shim")`; the CLI passes the path next to
    /// its own executable.
    pub shim_path: PathBuf,
    /// Bridge networking: bridge names, subnets, the `zlayer-dns` binary
    /// (by default next to the current executable, else next to the shim).
    pub network: NetworkOptions,
}

impl ContainerRuntimeConfig {
    /// A configuration with an explicit data root and shim binary.
    pub fn new(root: impl Into<PathBuf>, shim_path: impl Into<PathBuf>) -> Self {
        let shim_path = shim_path.into();
        let root = root.into();
        let mut network = NetworkOptions::for_root(&root);
        if network.dns_binary.is_none() {
            network.dns_binary = shim_path
                .parent()
                .map(|d| d.join("zlayer-dns"))
                .filter(|p| p.is_file());
        }
        ContainerRuntimeConfig {
            root,
            shim_path,
            network,
        }
    }

    /// `zlayer-shim` in the directory of the running executable (falls back
    /// to the bare name, resolved through `$PATH`).
    pub fn shim_next_to_current_exe() -> PathBuf {
        zlayer_sys::exe::sibling(SHIM_BINARY)
    }
}

impl Default for ContainerRuntimeConfig {
    fn default() -> Self {
        Self::new(
            zlayer_image::default_root(),
            Self::shim_next_to_current_exe(),
        )
    }
}
