//! zlayer-agent: the [`Runtime`] trait, its data types, the runtimes that
//! implement it, and the [`CompositeRuntime`] that routes between them.
//!
//! Layout (after youki's libcontainer/libcgroups split): `types/` holds plain
//! data, `runtime.rs` the trait, `composite.rs` the router, `runtimes/` one
//! module per isolation.

pub mod composite;
pub mod error;
pub mod exe;
pub mod hash;
pub mod network;
pub mod runtime;
pub mod runtimes;
pub mod signal;
pub mod types;

pub use composite::{AnnotationLookup, CompositeRuntime};
pub use error::{AgentError, Result};
pub use runtime::{
    collect_logs, exec_output_as_stream, require_command, ExecStream, LogsStream, RegistryAuth,
    Runtime, StatsStream, STATS_INTERVAL,
};
pub use signal::validate_signal;
pub use types::*;
pub use zlayer_spec::PullPolicy;
