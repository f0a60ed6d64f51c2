//! [`ContainerRuntimeConfig`]: where the container runtime keeps its state
//! and where it finds its monitor binary.

use std::path::PathBuf;

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
}

impl ContainerRuntimeConfig {
    /// A configuration with an explicit data root and shim binary.
    pub fn new(root: impl Into<PathBuf>, shim_path: impl Into<PathBuf>) -> Self {
        ContainerRuntimeConfig {
            root: root.into(),
            shim_path: shim_path.into(),
        }
    }

    /// `zlayer-shim` in the directory of the running executable (falls back
    /// to the bare name, resolved through `$PATH`).
    pub fn shim_next_to_current_exe() -> PathBuf {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join(SHIM_BINARY)))
            .unwrap_or_else(|| PathBuf::from(SHIM_BINARY))
    }
}

impl Default for ContainerRuntimeConfig {
    fn default() -> Self {
        ContainerRuntimeConfig {
            root: zlayer_image::default_root(),
            shim_path: Self::shim_next_to_current_exe(),
        }
    }
}
