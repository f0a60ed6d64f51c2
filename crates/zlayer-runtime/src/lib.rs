//! zlayer-runtime: the [`Runtime`] trait, the one interface to a node's
//! containers whatever their isolation, its data types and the typed
//! errors (with docker's exit codes).
//!
//! Layout (after youki's libcontainer/libcgroups split): `types/` holds
//! plain data, `runtime.rs` the trait, `error.rs` the error enum.

pub mod error;
pub mod runtime;
pub mod signal;
pub mod types;

pub use error::{Result, RuntimeError};
pub use runtime::{
    collect_logs, exec_output_as_stream, require_command, ExecStream, LogsStream, RegistryAuth,
    Runtime, StatsStream, STATS_INTERVAL,
};
pub use signal::validate_signal;
pub use types::*;
pub use zlayer_spec::PullPolicy;
