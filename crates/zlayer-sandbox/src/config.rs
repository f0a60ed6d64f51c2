//! [`SandboxConfig`] and the spec labels the sandbox runtime reads.

use std::path::{Path, PathBuf};

/// Label choosing the sandbox's network: `full` (default), `localhost` or
/// `none`. `network_mode: none` in the spec also means `none`.
pub const NETWORK_LABEL: &str = "com.zlayer.sandbox.network";

/// Label listing extra TCP ports (comma separated) a `localhost` sandbox may
/// connect to, besides its own endpoints.
pub const CONNECT_PORTS_LABEL: &str = "com.zlayer.sandbox.connect-ports";

/// Label listing syscalls (comma separated, from the default deny list) the
/// sandbox may use after all, e.g. `ptrace` for a debugger.
pub const ALLOW_SYSCALLS_LABEL: &str = "com.zlayer.sandbox.allow-syscalls";

/// Label (`true`) allowing a start without Landlock (or with a Landlock too
/// old for the network rules), enforced by seccomp and capabilities only.
pub const DEGRADED_LABEL: &str = "com.zlayer.sandbox.allow-degraded";

/// Label listing extra host paths (colon separated) the sandbox may read and
/// execute, e.g. `/usr/share/perl:/usr/bin`.
pub const READ_PATHS_LABEL: &str = "com.zlayer.sandbox.read-paths";

/// Label (`true`) giving the workload a terminal: a pty on stdin, stdout
/// and stderr; `write_stdin` types into it, `close_stdin` sends EOF (^D),
/// and output is logged raw as it comes (a prompt without a newline
/// included).
pub use zlayer_spec::TTY_LABEL;

/// Where the sandbox runtime keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// Root of the runtime's state: `containers/` (one directory per
    /// container) and `images/` (registered root filesystems).
    pub data_dir: PathBuf,
    /// Where container logs are written (`<service>-<replica>.log`).
    pub log_dir: PathBuf,
    /// Whether this node lets sandboxes that ask for a GPU open the GPU
    /// device nodes (`/dev/nvidia*`, `/dev/dri`).
    pub gpu_access: bool,
}

impl SandboxConfig {
    /// A configuration with everything under `root` (`root/data`,
    /// `root/logs`), GPU access off.
    pub fn under(root: &Path) -> Self {
        SandboxConfig {
            data_dir: root.join("data"),
            log_dir: root.join("logs"),
            gpu_access: false,
        }
    }

    /// `data_dir/containers`.
    pub fn containers_dir(&self) -> PathBuf {
        self.data_dir.join("containers")
    }

    /// `data_dir/images`.
    pub fn images_dir(&self) -> PathBuf {
        self.data_dir.join("images")
    }

    /// `data_dir/volumes` (named volumes).
    pub fn volumes_dir(&self) -> PathBuf {
        self.data_dir.join("volumes")
    }
}
