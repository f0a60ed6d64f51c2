//! zlayer-runtime: the [`Runtime`] trait every isolation implements, its
//! data types, the typed errors, and the [`CompositeRuntime`] that routes a
//! container to the runtime of its isolation.
//!
//! Layout (after youki's libcontainer/libcgroups split): `types/` holds
//! plain data, `runtime.rs` the trait, `composite.rs` the router.

pub mod composite;
pub mod error;
pub mod runtime;
pub mod signal;
pub mod types;

pub use composite::{AnnotationLookup, CompositeRuntime};
pub use error::{Result, RuntimeError};
pub use runtime::{
    collect_logs, exec_output_as_stream, require_command, ExecStream, LogsStream, RegistryAuth,
    Runtime, StatsStream, STATS_INTERVAL,
};
pub use signal::validate_signal;
pub use types::*;
pub use zlayer_spec::PullPolicy;
