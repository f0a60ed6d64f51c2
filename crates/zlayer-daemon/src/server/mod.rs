//! Listening on the unix sockets and serving connections until shutdown.

mod limits;
mod socket;

pub use limits::{raise_open_files_limit, OpenFilesLimit};
pub use socket::{bind_socket, socket_gid};

use crate::api;
use crate::config::DaemonConfig;
use crate::error::{DaemonError, Result};
use crate::state::AppState;
use hyper_util::rt::TokioIo;
use rustix::fs::{flock, FlockOperation};
use std::fs::File;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use zlayer_engine::Engine;

/// How long requests in flight may finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A daemon holding its data-root lock, ready to serve.
pub struct Daemon {
    state: AppState,
    config: DaemonConfig,
    _lock: File,
}

impl Daemon {
    /// Takes the data root's daemon lock (one daemon per root) and prepares
    /// the shared state.
    pub fn new(engine: Arc<Engine>, config: DaemonConfig) -> Result<Self> {
        let dir = engine.root().join("engine");
        std::fs::create_dir_all(&dir)
            .map_err(|e| DaemonError::io(format!("creating {}", dir.display()), e))?;
        let lock_path = dir.join("daemon.lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| DaemonError::io(format!("opening {}", lock_path.display()), e))?;
        flock(&lock, FlockOperation::NonBlockingLockExclusive).map_err(|_| {
            DaemonError::AlreadyRunning {
                root: engine.root().display().to_string(),
                lock: lock_path.display().to_string(),
            }
        })?;
        Ok(Daemon {
            state: AppState::new(engine),
            config,
            _lock: lock,
        })
    }

    /// The shared state (for tests and embedding).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Binds the sockets, re-adopts containers, supervises them and serves
    /// the API until `shutdown` resolves. Containers keep running after it
    /// returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let gid = self.config.group.as_deref().map(socket_gid).transpose()?;
        let mut paths: Vec<PathBuf> = vec![self.config.socket.clone()];
        paths.extend(self.config.docker_socket.iter().cloned());
        let mut listeners = Vec::new();
        for p in &paths {
            listeners.push(bind_socket(p, gid)?);
        }
        tracing::info!(
            "zlayer daemon serving {} on {}",
            self.state.engine.root().display(),
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let (stop_tx, stop_rx) = watch::channel(false);
        let supervisor = {
            let sup = self.state.supervisor.clone();
            let mut rx = stop_rx.clone();
            tokio::spawn(sup.run(async move {
                let _ = rx.wait_for(|s| *s).await;
            }))
        };
        let router = api::router(self.state.clone());
        let mut accepts = JoinSet::new();
        for l in listeners {
            accepts.spawn(accept_loop(l, router.clone(), stop_rx.clone()));
        }
        shutdown.await;
        tracing::info!("shutting down; containers keep running");
        let _ = stop_tx.send(true);
        for p in &paths {
            let _ = std::fs::remove_file(p);
        }
        while accepts.join_next().await.is_some() {}
        let _ = supervisor.await;
        self.state.supervisor.shutdown();
        Ok(())
    }
}

async fn accept_loop(
    listener: UnixListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let router = router.clone();
                    conns.spawn(async move {
                        let svc = hyper::service::service_fn(move |req| api::handle(router.clone(), req));
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .with_upgrades();
                        if let Err(e) = conn.await {
                            tracing::debug!("connection: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stopped(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs a daemon on `engine` until SIGTERM or SIGINT, with its soft limit
/// on open files raised to the hard one ([`raise_open_files_limit`]).
pub async fn run(engine: Arc<Engine>, config: DaemonConfig) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    match raise_open_files_limit() {
        Ok(l) if l.now > l.before => {
            tracing::info!("open files limit raised from {} to {}", l.before, l.now)
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
    let daemon = Daemon::new(engine, config)?;
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| DaemonError::io("installing the SIGTERM handler", e))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| DaemonError::io("installing the SIGINT handler", e))?;
    daemon
        .serve(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
        .await
}
