//! zlayer's own endpoints (`/zlayer/v1/...`), used by the `zlayer` CLI when
//! a daemon runs: create from a full `ServiceSpec`, start (supervised),
//! deploy, down, and the daemon's identity.

use super::error::{ApiError, ApiResult};
use super::params::json_body;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use zlayer_engine::deploy::{apply, down as deploy_down, DeployOptions, DeployReport};
use zlayer_engine::{ContainerRecord, CreateRequest};
use zlayer_runtime::ContainerId;
use zlayer_spec::{DeploymentSpec, ServiceSpec};

/// Body of `POST /zlayer/v1/containers`: a [`CreateRequest`] without the
/// pull progress (the CLI pulls with progress itself first).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NativeCreate {
    /// `--name`.
    pub name: Option<String>,
    /// The full spec.
    pub spec: ServiceSpec,
    /// Runtime key.
    pub container: Option<ContainerId>,
    /// Deployment.
    pub deployment: Option<String>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `-i`.
    pub interactive: bool,
    /// `-t`.
    pub tty: bool,
}

impl Default for NativeCreate {
    fn default() -> Self {
        NativeCreate {
            name: None,
            spec: ServiceSpec::minimal("", ""),
            container: None,
            deployment: None,
            auto_remove: false,
            interactive: false,
            tty: false,
        }
    }
}

impl From<&CreateRequest> for NativeCreate {
    fn from(r: &CreateRequest) -> Self {
        NativeCreate {
            name: r.name.clone(),
            spec: r.spec.clone(),
            container: r.container.clone(),
            deployment: r.deployment.clone(),
            auto_remove: r.auto_remove,
            interactive: r.interactive,
            tty: r.tty,
        }
    }
}

/// Body of `POST /zlayer/v1/deploy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployRequest {
    /// The deployment spec (validated by the client).
    pub spec: DeploymentSpec,
    /// Default dependency timeout, in milliseconds.
    #[serde(default)]
    pub dependency_timeout_ms: Option<u64>,
}

impl Default for DeployRequest {
    fn default() -> Self {
        DeployRequest {
            spec: DeploymentSpec {
                version: String::new(),
                deployment: String::new(),
                services: Default::default(),
            },
            dependency_timeout_ms: None,
        }
    }
}

/// What `GET /zlayer/v1/info` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// The data root the daemon serves.
    pub root: String,
    /// Its version.
    pub version: String,
    /// Its process id.
    pub pid: u32,
}

/// zlayer's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/zlayer/v1/info", get(info))
        .route("/zlayer/v1/containers", post(create))
        .route("/zlayer/v1/deploy", post(deploy))
        .route("/zlayer/v1/deployments/{name}/down", post(down))
        .route("/zlayer/v1/containers/{id}/adopt", post(adopt))
}

/// `POST /zlayer/v1/containers/{id}/adopt`: the daemon supervises container
/// `id` from now on (sent by a per-container supervisor handing over, after
/// it released its claim). An exit that happened meanwhile is handled by
/// the restart policy as usual.
async fn adopt(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let record = super::containers::resolve(&s, &id)?;
    s.supervisor.watch(&record);
    Ok(StatusCode::NO_CONTENT)
}

async fn info(State(s): State<AppState>) -> Json<DaemonInfo> {
    Json(DaemonInfo {
        root: s.engine.root().display().to_string(),
        version: super::system::VERSION.to_string(),
        pid: std::process::id(),
    })
}

async fn create(State(s): State<AppState>, body: bytes::Bytes) -> ApiResult<Response> {
    let b: NativeCreate = json_body(&body)?;
    if b.spec.image.name.is_empty() {
        return Err(ApiError::bad_request("spec.image.name is required"));
    }
    let mut req = CreateRequest::new(b.spec);
    req.name = b.name;
    req.container = b.container;
    req.deployment = b.deployment;
    req.auto_remove = b.auto_remove;
    req.interactive = b.interactive;
    req.tty = b.tty;
    let record: ContainerRecord = s.engine.create(req).await?;
    Ok((StatusCode::CREATED, Json(record)).into_response())
}

fn deploy_options(s: &AppState, timeout_ms: Option<u64>) -> DeployOptions {
    let sup = s.supervisor.clone();
    DeployOptions {
        dependency_timeout: timeout_ms.map(Duration::from_millis),
        stop_timeout: None,
        on_started: Some(Arc::new(move |r: &ContainerRecord| sup.watch(r))),
        progress: None,
    }
}

async fn deploy(State(s): State<AppState>, body: bytes::Bytes) -> ApiResult<Json<DeployReport>> {
    let b: DeployRequest = json_body(&body)?;
    if b.spec.deployment.is_empty() {
        return Err(ApiError::bad_request("spec.deployment is required"));
    }
    let mut spec = b.spec;
    spec.fill_names();
    let opts = deploy_options(&s, b.dependency_timeout_ms);
    Ok(Json(apply(&s.engine, &spec, &opts).await?))
}

async fn down(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<DeployReport>> {
    let opts = deploy_options(&s, None);
    let report = deploy_down(&s.engine, &name, &opts).await?;
    Ok(Json(report))
}
