//! [`SandboxConfig`] and the spec labels the sandbox runtime reads.

use std::path::{Path, PathBuf};

pub use zlayer_spec::labels::{
    SANDBOX_ALLOW_SYSCALLS_LABEL as ALLOW_SYSCALLS_LABEL,
    SANDBOX_CONNECT_PORTS_LABEL as CONNECT_PORTS_LABEL, SANDBOX_DEGRADED_LABEL as DEGRADED_LABEL,
    SANDBOX_NETWORK_LABEL as NETWORK_LABEL, SANDBOX_READ_PATHS_LABEL as READ_PATHS_LABEL,
    TTY_LABEL,
};

/// How the sandbox launcher works on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// The node's data root.
    pub root: PathBuf,
    /// Whether this node lets sandboxes that ask for a GPU open the GPU
    /// device nodes (`/dev/nvidia*`, `/dev/dri`).
    pub gpu_access: bool,
    /// The monitor binary; `None`: `$ZLAYER_SANDBOX_SHIM`, next to this
    /// executable (or one directory up), or on `PATH`.
    pub monitor: Option<PathBuf>,
}

impl SandboxConfig {
    /// The configuration of a node with data root `root`, GPU access off.
    pub fn new(root: &Path) -> Self {
        SandboxConfig {
            root: root.to_path_buf(),
            gpu_access: false,
            monitor: None,
        }
    }

    /// Where images' layers are flattened once for the overlay rootfs of
    /// every sandbox that runs them (`<root>/sandbox/flat`).
    pub fn flat_dir(&self) -> PathBuf {
        self.root.join("sandbox").join("flat")
    }
}
