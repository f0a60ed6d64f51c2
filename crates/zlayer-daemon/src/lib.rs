#![recursion_limit = "256"]
//! zlayer-daemon: the long-running side of zlayer.
//!
//! - Supervises containers ([`zlayer_engine::supervise::Supervisor`]):
//!   re-adopts them from disk on start, enforces restart policies, removes
//!   `--rm` containers, runs health checks.
//! - Serves, on unix sockets, one router with the Docker Engine API (enough
//!   for the stock `docker` CLI: containers, exec, images, system) and
//!   zlayer's own endpoints under `/zlayer/v1/` (create from a full
//!   `ServiceSpec`, deploy, down).
//! - [`DaemonClient`]: how the `zlayer` CLI talks to it.
//!
//! Everything the daemon knows is on disk under the data root, so it can be
//! killed at any time: containers keep running (their shims own them) and
//! a restarted daemon picks them up again.

pub mod api;
pub mod client;
pub mod config;
pub mod error;
pub mod server;
pub mod state;

pub use client::DaemonClient;
pub use config::{DaemonConfig, DEFAULT_DOCKER_SOCKET, DEFAULT_SOCKET};
pub use error::{DaemonError, Result};
pub use server::{run, Daemon};
pub use state::AppState;
