//! The one error enum of the guest agent.

use thiserror::Error;

/// What can fail inside the guest.
#[derive(Debug, Error)]
pub enum GuestError {
    /// A system call failed.
    #[error("{what} failed: {source}")]
    Sys {
        /// The operation, with its arguments.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The request cannot be carried out as given.
    #[error("{0}")]
    Invalid(String),
    /// A process could not be started, and why as a type.
    #[error("{message}")]
    Spawn {
        /// Why.
        kind: zlayer_vm_proto::SpawnFailure,
        /// What was wrong, for the user.
        message: String,
    },
    /// The control protocol failed.
    #[error("control protocol: {0}")]
    Proto(#[from] zlayer_vm_proto::ProtoError),
}

impl GuestError {
    /// The typed spawn failure this error is: itself when it is a
    /// [`GuestError::Spawn`], else [`zlayer_vm_proto::SpawnFailure::Other`].
    pub fn spawn_failure(&self) -> zlayer_vm_proto::SpawnFailure {
        match self {
            GuestError::Spawn { kind, .. } => *kind,
            _ => zlayer_vm_proto::SpawnFailure::Other,
        }
    }

    /// A `Sys` error for `what` from the current `errno`.
    pub fn last_os(what: impl Into<String>) -> Self {
        GuestError::Sys {
            what: what.into(),
            source: std::io::Error::last_os_error(),
        }
    }

    /// A `Sys` error for `what` from an `io::Error`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        GuestError::Sys {
            what: what.into(),
            source,
        }
    }
}

/// Shorthand result type of the guest.
pub type Result<T, E = GuestError> = std::result::Result<T, E>;
