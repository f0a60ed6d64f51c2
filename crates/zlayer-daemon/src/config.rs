//! Where and how the daemon listens.

use std::path::PathBuf;

/// The zlayer API socket unless `--socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/zlayer/zlayer.sock";
/// The Docker API socket unless `--docker-socket` says otherwise.
pub const DEFAULT_DOCKER_SOCKET: &str = "/run/zlayer/docker.sock";

/// The daemon's listening configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// The zlayer socket (serves the zlayer and the Docker API).
    pub socket: PathBuf,
    /// The Docker socket (same router), when wanted.
    pub docker_socket: Option<PathBuf>,
    /// Group allowed to use the sockets (mode 0660); `None`: root only (0600).
    pub group: Option<String>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            socket: PathBuf::from(DEFAULT_SOCKET),
            docker_socket: Some(PathBuf::from(DEFAULT_DOCKER_SOCKET)),
            group: None,
        }
    }
}
