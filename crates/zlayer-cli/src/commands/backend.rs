//! Who carries out container changes: this process (embedded) or the
//! daemon, when one answers on `--socket` and serves the same `--root`.
//!
//! Design: commands open a [`Node`] instead of a bare [`Engine`]. `Node`
//! dereferences to the local engine, so every read (ps, logs, inspect,
//! wait, exec, stats — all state is on disk, shared with the daemon) runs
//! here, while the changes the daemon must know about to supervise
//! containers — `create`, `start`, `stop`, `kill`, `remove` — go through
//! [`Node`]'s own methods to the daemon when it runs. The daemon is looked
//! for on the first such change (one short request), so read-only commands
//! never pay for it. `--embedded` (or `ZLAYER_EMBEDDED=1`) skips the daemon.

use crate::cli::GlobalArgs;
use std::ops::Deref;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::OnceCell;
use zlayer_daemon::{DaemonClient, DaemonError};
use zlayer_engine::{ContainerRecord, CreateRequest, Engine, EngineError};
use zlayer_runtime::RuntimeError;
use zlayer_spec::PullPolicy;

/// Where changes go.
#[derive(Debug, Clone)]
pub enum Backend {
    /// This process does everything (no daemon, or `--embedded`).
    Embedded,
    /// The daemon does the changes and supervises the containers.
    Daemon(DaemonClient),
}

impl Backend {
    /// The daemon when it answers on `socket` and serves `root`, else embedded.
    pub async fn detect(
        socket: &std::path::Path,
        root: &std::path::Path,
        embedded: bool,
    ) -> Backend {
        if embedded {
            return Backend::Embedded;
        }
        match DaemonClient::connect(socket, root).await {
            Some(c) => {
                tracing::debug!("using the zlayer daemon on {}", socket.display());
                Backend::Daemon(c)
            }
            None => Backend::Embedded,
        }
    }
}

/// The local engine plus the backend that carries out changes.
pub struct Node {
    engine: std::sync::Arc<Engine>,
    socket: PathBuf,
    embedded: bool,
    backend: OnceCell<Backend>,
}

/// Opens the engine on `--root`; the daemon is looked for lazily.
pub fn open_node(g: &GlobalArgs) -> anyhow::Result<Node> {
    Ok(Node {
        engine: std::sync::Arc::new(super::node::open_engine(g)?),
        socket: g.socket.clone(),
        embedded: g.embedded,
        backend: OnceCell::new(),
    })
}

impl Deref for Node {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

fn daemon_error(e: DaemonError) -> EngineError {
    match e {
        DaemonError::Engine(e) => e,
        DaemonError::Api {
            message,
            failure: Some(failure),
            ..
        } => EngineError::Runtime(RuntimeError::Invoke { failure, message }),
        other => EngineError::InvalidRequest(other.to_string()),
    }
}

impl Node {
    /// A shared handle on the local engine (for tasks that outlive a borrow).
    pub fn shared(&self) -> std::sync::Arc<Engine> {
        self.engine.clone()
    }

    /// The backend (detected on first use).
    pub async fn backend(&self) -> &Backend {
        self.backend
            .get_or_init(|| Backend::detect(&self.socket, self.engine.root(), self.embedded))
            .await
    }

    /// The daemon client, when a daemon carries out changes.
    pub async fn daemon(&self) -> Option<&DaemonClient> {
        match self.backend().await {
            Backend::Daemon(c) => Some(c),
            Backend::Embedded => None,
        }
    }

    /// Creates a container (via the daemon when it runs; the image is
    /// pulled here first so progress shows on this terminal).
    pub async fn create(&self, mut req: CreateRequest) -> Result<ContainerRecord, EngineError> {
        let Some(client) = self.daemon().await else {
            return self.engine.create(req).await;
        };
        let mut pull = req.pull.clone();
        pull.policy = req.spec.image.pull_policy;
        self.engine
            .images()
            .pull(&req.spec.image.name, &pull)
            .await?;
        if matches!(
            req.spec.image.pull_policy,
            PullPolicy::Always | PullPolicy::Newer
        ) {
            // Just pulled: the daemon need not ask the registry again.
            req.spec.image.pull_policy = PullPolicy::IfNotPresent;
        }
        client.create(&req).await.map_err(daemon_error)
    }

    /// Starts a container (supervised by the daemon when it runs).
    pub async fn start(&self, record: &ContainerRecord) -> Result<(), EngineError> {
        match self.daemon().await {
            None => {
                self.engine.start(record).await?;
                super::supervise::spawn_if_needed(self.engine.root(), &self.socket, record);
                Ok(())
            }
            Some(c) => c.start(&record.id).await.map_err(|e| match e {
                DaemonError::Api {
                    message,
                    failure: None,
                    ..
                } => EngineError::Runtime(RuntimeError::StartFailed {
                    id: record.name.clone(),
                    reason: message,
                }),
                other => daemon_error(other),
            }),
        }
    }

    /// Stops a container gracefully.
    pub async fn stop(
        &self,
        record: &ContainerRecord,
        timeout: Option<Duration>,
    ) -> Result<(), EngineError> {
        match self.daemon().await {
            None => self.engine.stop(record, timeout).await,
            Some(c) => c.stop(&record.id, timeout).await.map_err(daemon_error),
        }
    }

    /// Sends a signal.
    pub async fn kill(
        &self,
        record: &ContainerRecord,
        signal: Option<&str>,
    ) -> Result<(), EngineError> {
        match self.daemon().await {
            None => self.engine.kill(record, signal).await,
            Some(c) => c.kill(&record.id, signal).await.map_err(daemon_error),
        }
    }

    /// Removes a container.
    pub async fn remove(&self, record: &ContainerRecord, force: bool) -> Result<(), EngineError> {
        match self.daemon().await {
            None => self.engine.remove(record, force).await,
            Some(c) => c.remove(&record.id, force).await.map_err(daemon_error),
        }
    }
}
