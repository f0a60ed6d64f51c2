//! The one error enum of `zlayer-daemon`.

use thiserror::Error;

/// What starting the daemon or talking to it can fail with.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// A socket could not be set up.
    #[error("cannot listen on {path}: {reason}")]
    Socket {
        /// The socket path.
        path: String,
        /// What went wrong and what to do.
        reason: String,
    },
    /// Another daemon already serves this data root.
    #[error("another zlayer daemon already runs on data root {root} (lock {lock}); stop it first (systemctl stop zlayer) or use another --root")]
    AlreadyRunning {
        /// The data root.
        root: String,
        /// The lock file held.
        lock: String,
    },
    /// `--group` names no group.
    #[error(
        "group {0:?} does not exist; create it (groupadd {0}) or pass an existing group to --group"
    )]
    NoSuchGroup(String),
    /// The daemon could not be reached.
    #[error("cannot reach the zlayer daemon at {path}: {reason}")]
    Unreachable {
        /// The socket path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The daemon answered with an error.
    #[error("{message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The daemon's message.
        message: String,
        /// Set when a command could not be invoked (docker's 126/127).
        failure: Option<zlayer_runtime::InvokeFailure>,
    },
    /// The daemon answered something that is not what was expected.
    #[error("unexpected answer from the zlayer daemon: {0}")]
    Protocol(String),
    /// An engine operation failed.
    #[error(transparent)]
    Engine(#[from] zlayer_engine::EngineError),
    /// An I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl DaemonError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DaemonError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Shorthand result type of this crate.
pub type Result<T, E = DaemonError> = std::result::Result<T, E>;
