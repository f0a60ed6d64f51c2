//! [`ContainerConfig`]: how the container launcher works on a node.

use std::path::{Path, PathBuf};
use zlayer_network::NetworkOptions;

/// File name of the container's monitor binary.
pub const MONITOR_NAME: &str = "zlayer-shim";

/// Configuration of a [`crate::ContainerLauncher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerConfig {
    /// The node's data root.
    pub root: PathBuf,
    /// The monitor binary; `None`: next to this executable (or one
    /// directory up), or on `PATH`.
    pub monitor: Option<PathBuf>,
    /// Bridge networking: bridge names, subnets, the `zlayer-dns` binary.
    pub network: NetworkOptions,
}

impl ContainerConfig {
    /// The configuration of a node with data root `root`.
    pub fn new(root: &Path) -> Self {
        ContainerConfig {
            root: root.to_path_buf(),
            monitor: None,
            network: NetworkOptions::for_root(root),
        }
    }
}
