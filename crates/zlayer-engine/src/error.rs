//! The one error enum of `zlayer-engine`.

use thiserror::Error;
use zlayer_runtime::RuntimeError;

/// What an engine operation can fail with.
#[derive(Debug, Error)]
pub enum EngineError {
    /// No container matches the name or id prefix.
    #[error("no such container: {0}; run `zlayer ps -a` to list containers")]
    NoSuchContainer(String),
    /// An id prefix matches more than one container.
    #[error("container id prefix {prefix:?} is ambiguous (matches {count}); give more characters or the name")]
    AmbiguousId {
        /// The prefix given.
        prefix: String,
        /// How many containers it matches.
        count: usize,
    },
    /// The name is taken by another container.
    #[error("the container name {name:?} is already in use by container {id}; remove it (`zlayer rm -f {name}`) or choose another name")]
    NameInUse {
        /// The name asked for.
        name: String,
        /// The container that has it.
        id: String,
    },
    /// A name with characters docker would refuse.
    #[error("invalid container name {0:?}: use 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit")]
    InvalidName(String),
    /// A request that makes no sense (conflicting flags, ...).
    #[error("{0}")]
    InvalidRequest(String),
    /// A runtime failed.
    #[error(transparent)]
    Runtime(RuntimeError),
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] zlayer_image::Error),
    /// Reading or writing the engine's state on disk failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A state file could not be decoded.
    #[error("corrupt state file {path}: {reason}; remove it if the container is gone")]
    CorruptState {
        /// The file.
        path: String,
        /// The decoder's complaint.
        reason: String,
    },
}

impl From<zlayer_sys::atomic::StateFileError> for EngineError {
    fn from(e: zlayer_sys::atomic::StateFileError) -> Self {
        EngineError::Runtime(e.into())
    }
}

impl From<std::io::Error> for EngineError {
    fn from(e: std::io::Error) -> Self {
        EngineError::Io {
            context: "file system".into(),
            source: e,
        }
    }
}

impl From<RuntimeError> for EngineError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::NameInUse { name, id } => EngineError::NameInUse { name, id },
            other => EngineError::Runtime(other),
        }
    }
}

impl EngineError {
    /// Docker's exit code for a command that failed with this error (see
    /// [`RuntimeError::exit_code`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Runtime(e) => e.exit_code(),
            _ => zlayer_runtime::EXIT_ENGINE_ERROR,
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Shorthand result type of this crate.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
