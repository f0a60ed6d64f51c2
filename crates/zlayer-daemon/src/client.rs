//! [`DaemonClient`]: how the `zlayer` CLI asks a running daemon to do
//! things, so that containers it creates and starts are supervised.

use crate::api::zlayer::{DaemonInfo, DeployRequest, NativeCreate};
use crate::error::{DaemonError, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;
use zlayer_engine::deploy::DeployReport;
use zlayer_engine::{ContainerRecord, CreateRequest};
use zlayer_spec::DeploymentSpec;

/// How long `connect` waits for a daemon to answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A connection target: a daemon known to answer and to serve our root.
#[derive(Debug, Clone)]
pub struct DaemonClient {
    socket: PathBuf,
    info: DaemonInfo,
}

impl DaemonClient {
    /// A client for the daemon on `socket` when one answers there and
    /// serves the data root `root`; `None` otherwise (no socket, nobody
    /// listening, no permission, another root), so the caller works
    /// embedded.
    pub async fn connect(socket: &Path, root: &Path) -> Option<DaemonClient> {
        if !socket.exists() {
            return None;
        }
        let probe = DaemonClient {
            socket: socket.to_path_buf(),
            info: DaemonInfo {
                root: String::new(),
                version: String::new(),
                pid: 0,
            },
        };
        let info: DaemonInfo =
            tokio::time::timeout(CONNECT_TIMEOUT, probe.get_json("/zlayer/v1/info"))
                .await
                .ok()?
                .ok()?;
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        };
        if !same(Path::new(&info.root), root) {
            tracing::debug!(
                "daemon on {} serves {}, not {}; working without it",
                socket.display(),
                info.root,
                root.display()
            );
            return None;
        }
        Some(DaemonClient {
            socket: socket.to_path_buf(),
            info,
        })
    }

    /// What the daemon said about itself.
    pub fn info(&self) -> &DaemonInfo {
        &self.info
    }

    /// The socket it listens on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// One request; returns the status and the whole body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Bytes)> {
        let unreachable = |reason: String| DaemonError::Unreachable {
            path: self.socket.display().to_string(),
            reason,
        };
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("Host", "zlayer")
            .header("Content-Type", "application/json");
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| DaemonError::Protocol(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        Ok((status, bytes))
    }

    async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Bytes> {
        let (status, bytes) = self.request(method, path, body).await?;
        if status >= 400 {
            let body = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
            let message = body
                .as_ref()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()))
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            let failure = body
                .and_then(|mut v| v.get_mut("failure").map(serde_json::Value::take))
                .and_then(|f| serde_json::from_value(f).ok());
            return Err(DaemonError::Api {
                status,
                message,
                failure,
            });
        }
        Ok(bytes)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let bytes = self.call(Method::GET, path, None).await?;
        serde_json::from_slice(&bytes).map_err(|e| DaemonError::Protocol(e.to_string()))
    }

    async fn post_json<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let body = serde_json::to_vec(body).map_err(|e| DaemonError::Protocol(e.to_string()))?;
        let bytes = self.call(Method::POST, path, Some(body)).await?;
        serde_json::from_slice(&bytes).map_err(|e| DaemonError::Protocol(e.to_string()))
    }

    /// Creates a container (the image must be stored, or pullable by the
    /// daemon per the spec's policy).
    pub async fn create(&self, req: &CreateRequest) -> Result<ContainerRecord> {
        let mut record: ContainerRecord = self
            .post_json("/zlayer/v1/containers", &NativeCreate::from(req))
            .await?;
        record.spec.name = record.container.service.clone();
        Ok(record)
    }

    /// Asks the daemon to supervise a container that another process
    /// supervised until now (which released its claim first).
    pub async fn adopt(&self, id: &str) -> Result<()> {
        self.call(
            Method::POST,
            &format!("/zlayer/v1/containers/{id}/adopt"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Starts a container; the daemon supervises it from then on.
    pub async fn start(&self, id: &str) -> Result<()> {
        self.call(Method::POST, &format!("/containers/{id}/start"), None)
            .await
            .map(|_| ())
    }

    /// Stops a container gracefully.
    pub async fn stop(&self, id: &str, timeout: Option<Duration>) -> Result<()> {
        let q = timeout
            .map(|t| format!("?t={}", t.as_secs()))
            .unwrap_or_default();
        self.call(Method::POST, &format!("/containers/{id}/stop{q}"), None)
            .await
            .map(|_| ())
    }

    /// Sends a signal.
    pub async fn kill(&self, id: &str, signal: Option<&str>) -> Result<()> {
        let q = signal.map(|s| format!("?signal={s}")).unwrap_or_default();
        self.call(Method::POST, &format!("/containers/{id}/kill{q}"), None)
            .await
            .map(|_| ())
    }

    /// Removes a container (`force`: kill it first).
    pub async fn remove(&self, id: &str, force: bool) -> Result<()> {
        let q = if force { "?force=1" } else { "" };
        self.call(Method::DELETE, &format!("/containers/{id}{q}"), None)
            .await
            .map(|_| ())
    }

    /// Applies a deployment.
    pub async fn deploy(
        &self,
        spec: &DeploymentSpec,
        dependency_timeout: Option<Duration>,
    ) -> Result<DeployReport> {
        self.post_json(
            "/zlayer/v1/deploy",
            &DeployRequest {
                spec: spec.clone(),
                dependency_timeout_ms: dependency_timeout.map(|d| d.as_millis() as u64),
            },
        )
        .await
    }

    /// Removes a deployment's containers.
    pub async fn down(&self, deployment: &str) -> Result<DeployReport> {
        self.post_json(
            &format!("/zlayer/v1/deployments/{deployment}/down"),
            &serde_json::json!({}),
        )
        .await
    }
}
