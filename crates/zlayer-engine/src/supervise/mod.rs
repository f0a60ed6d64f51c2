//! Restart policies and the supervisor that enforces them.
//!
//! - [`policy`]: the pure decision "restart after this delay, or not" from
//!   the policy, the exit code and the history (exponential backoff from the
//!   policy's `delay`, capped at [`MAX_RESTART_DELAY`]).
//! - [`SupervisionStore`]: per-container facts that must survive the daemon
//!   (user stopped it, restarts since the last user start, backoff step),
//!   under `<root>/engine/supervise/<id>.json`. [`crate::Engine`]'s `start`,
//!   `stop` and `kill` keep it up to date, whoever calls them.
//! - [`Supervisor`]: run by the daemon — one watcher task per running
//!   container that waits for its exit, removes `--rm` containers, applies the
//!   restart policy and runs health checks; re-adopts everything on start.
//! - [`EventHub`]: what the watchers saw (start, exit with code, removal,
//!   health), for `wait` conditions and the API.

mod events;
pub mod policy;
mod state;
mod supervisor;

pub use events::{AttachGuard, Event, EventHub, EventKind};
pub use policy::{
    backoff, decide, restart_on_daemon_start, Decision, ExitFacts, DEFAULT_RESTART_DELAY,
    MAX_RESTART_DELAY, RESET_BACKOFF_AFTER,
};
pub use state::{SupervisionState, SupervisionStore};
pub use supervisor::{Supervisor, RECONCILE_INTERVAL};
