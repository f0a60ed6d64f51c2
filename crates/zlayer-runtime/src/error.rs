//! The one error enum of the runtimes.

use crate::types::{InvokeFailure, EXIT_ENGINE_ERROR};
use thiserror::Error;

/// Everything a [`crate::Runtime`] can fail with.
///
/// Every variant carries enough context to tell the user what went wrong and
/// what to do about it; the `Display` text is meant to be shown as is.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RuntimeError {
    /// The container, image or exec session does not exist.
    #[error("{kind} {id} not found{hint}", hint = hint_suffix(.hint))]
    NotFound {
        /// What was looked up ("container", "image", ...).
        kind: &'static str,
        /// The identifier that was looked up.
        id: String,
        /// Optional extra advice (without the leading separator).
        hint: Option<String>,
    },
    /// Creating the container failed.
    #[error("creating container {id} failed: {reason}")]
    CreateFailed {
        /// The container.
        id: String,
        /// Why, in words a user can act on.
        reason: String,
    },
    /// Starting the container failed.
    #[error("starting container {id} failed: {reason}")]
    StartFailed {
        /// The container.
        id: String,
        /// Why, in words a user can act on.
        reason: String,
    },
    /// Pulling an image failed.
    #[error("pulling image {image} failed: {reason}")]
    PullFailed {
        /// The image reference as given.
        image: String,
        /// Why, in words a user can act on.
        reason: String,
    },
    /// The command of a container or exec could not be started: docker's
    /// 127 or 126 (see [`RuntimeError::exit_code`]).
    #[error("{message}")]
    Invoke {
        /// Why, as a type.
        failure: InvokeFailure,
        /// What was wrong and how to fix it, naming the command.
        message: String,
    },
    /// The name (or the container id) is taken by another container.
    #[error("the container name {name:?} is already in use by container {id}; remove that container or choose another name")]
    NameInUse {
        /// The name.
        name: String,
        /// The id of the container holding it.
        id: String,
    },
    /// The container is not in a state that allows the operation.
    #[error("container {id} is {state}; {hint}")]
    WrongState {
        /// The container.
        id: String,
        /// Its state, as `ps` shows it.
        state: String,
        /// What to do.
        hint: String,
    },
    /// The request needs a running container and it is not (it ended, or
    /// its monitor is gone).
    #[error("{0}")]
    NotRunning(String),
    /// The request or spec is invalid (empty command, bad signal, ...).
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// The runtime or host is misconfigured (missing kernel, no cgroup, ...).
    #[error("configuration error: {0}")]
    Configuration(String),
    /// A network setup or teardown step failed.
    #[error("network error: {0}")]
    Network(String),
    /// The runtime cannot do this at all.
    #[error("{operation} is not supported by the {runtime} runtime: {reason}")]
    Unsupported {
        /// The runtime's name (`container`, `sandbox`, `vm`, ...).
        runtime: String,
        /// The operation that was asked for.
        operation: String,
        /// Why not, and what to use instead.
        reason: String,
    },
    /// A bug or an unexpected host failure.
    #[error("internal error: {0}")]
    Internal(String),
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default()
}

impl RuntimeError {
    /// Docker's exit code for a command that failed with this error: 127
    /// (command not found) or 126 (cannot be invoked) for an
    /// [`RuntimeError::Invoke`], else 125 (the engine failed). The one place
    /// this mapping lives; front ends call it.
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::Invoke { failure, .. } => failure.exit_code(),
            _ => EXIT_ENGINE_ERROR,
        }
    }

    /// An [`RuntimeError::Invoke`].
    pub fn invoke(failure: InvokeFailure, message: impl Into<String>) -> Self {
        RuntimeError::Invoke {
            failure,
            message: message.into(),
        }
    }

    /// A `NotFound` for a container id.
    pub fn container_not_found(id: impl std::fmt::Display) -> Self {
        RuntimeError::NotFound {
            kind: "container",
            id: id.to_string(),
            hint: Some("run `zlayer ps -a` to list containers".into()),
        }
    }

    /// An `Unsupported` error for `operation` on `runtime`.
    pub fn unsupported(
        runtime: impl Into<String>,
        operation: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        RuntimeError::Unsupported {
            runtime: runtime.into(),
            operation: operation.into(),
            reason: reason.into(),
        }
    }

    /// True for [`RuntimeError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, RuntimeError::NotFound { .. })
    }
}

/// Shorthand result type of this crate.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

impl From<zlayer_sys::atomic::StateFileError> for RuntimeError {
    fn from(e: zlayer_sys::atomic::StateFileError) -> Self {
        RuntimeError::Internal(e.to_string())
    }
}
