//! What every request handler shares.

use crate::api::exec::ExecRegistry;
use std::sync::Arc;
use std::time::SystemTime;
use zlayer_engine::supervise::{EventHub, Supervisor};
use zlayer_engine::Engine;

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct AppState {
    /// The engine (catalog, images, runtimes).
    pub engine: Arc<Engine>,
    /// The supervisor (watchers, events).
    pub supervisor: Arc<Supervisor>,
    /// Exec instances created through the Docker API.
    pub execs: ExecRegistry,
    /// When the daemon started.
    pub started: SystemTime,
}

impl AppState {
    /// State over `engine` with a fresh supervisor.
    pub fn new(engine: Arc<Engine>) -> Self {
        let supervisor = Supervisor::new(engine.clone(), EventHub::new());
        AppState {
            engine,
            supervisor,
            execs: ExecRegistry::default(),
            started: SystemTime::now(),
        }
    }

    /// The event hub of the supervisor.
    pub fn events(&self) -> &EventHub {
        self.supervisor.events()
    }
}
