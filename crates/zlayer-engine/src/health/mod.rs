//! Health checks: one probe ([`probe_once`]: tcp connect, http GET or a
//! command run with exec), the persisted status next to the container's
//! record ([`HealthStore`]), and the loops that run probes on the spec's
//! interval with its start grace, timeout and retries ([`run_health_loop`]
//! for the daemon, [`wait_healthy`] for deployments waiting on a dependency).

mod monitor;
mod probe;
mod status;

pub use monitor::{run_health_loop, wait_healthy, HealthTiming, STARTING_INTERVAL};
pub use probe::{probe_once, ProbeOutcome};
pub use status::{HealthLogEntry, HealthState, HealthStatus, HealthStore};
