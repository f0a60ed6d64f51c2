//! The containers resource of the Docker API.

pub mod create;
pub mod lifecycle;
pub mod logs;
pub mod stats;
pub mod view;

use super::error::{ApiError, ApiResult};
use super::params::{filters, json_body, Query};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use hyper::StatusCode;
use zlayer_engine::{ContainerRecord, EngineError};

/// The container routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/json", get(list))
        .route("/containers/create", post(create))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(lifecycle::start))
        .route("/containers/{id}/stop", post(lifecycle::stop))
        .route("/containers/{id}/restart", post(lifecycle::restart))
        .route("/containers/{id}/kill", post(lifecycle::kill))
        .route("/containers/{id}/pause", post(lifecycle::pause))
        .route("/containers/{id}/unpause", post(lifecycle::unpause))
        .route("/containers/{id}/wait", post(lifecycle::wait))
        .route("/containers/{id}/resize", post(lifecycle::resize))
        .route("/containers/{id}/attach", post(logs::attach))
        .route("/containers/{id}/logs", get(logs::logs))
        .route("/containers/{id}/stats", get(stats::stats))
        .route("/containers/{id}/top", get(stats::top))
        .route("/containers/{id}", delete(lifecycle::remove))
}

/// Finds a container by name (with or without docker's leading `/`), id or
/// unique id prefix.
pub fn resolve(s: &AppState, name_or_id: &str) -> ApiResult<ContainerRecord> {
    let key = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
    s.engine.resolve(key).map_err(|e| match e {
        EngineError::NoSuchContainer(_) => ApiError::no_such_container(name_or_id),
        other => other.into(),
    })
}

/// `GET /containers/json?all=1&filters=...`.
async fn list(State(s): State<AppState>, q: Query) -> ApiResult<Json<Vec<serde_json::Value>>> {
    let all = q.flag("all", false)?;
    let f = filters(&q)?;
    let limit = q.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let mut out: Vec<serde_json::Value> = view::list(
        &s,
        all || f.contains_key("status") || f.contains_key("exited"),
    )
    .await?
    .iter()
    .filter(|snap| view::matches_filters(snap, &f))
    .map(view::Snapshot::list_entry)
    .collect();
    if let Some(l) = limit {
        out.truncate(l);
    }
    Ok(Json(out))
}

/// `GET /containers/{id}/json`.
async fn inspect(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let record = resolve(&s, &id)?;
    let state = match s.engine.state(&record).await {
        Ok(st) => st,
        Err(EngineError::Runtime(a)) if a.is_not_found() => {
            return Err(ApiError::no_such_container(&id))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Json(
        view::Snapshot::gather(&s, record, state).await.inspect(),
    ))
}

/// `POST /containers/create?name=N`.
async fn create(State(s): State<AppState>, q: Query, body: Bytes) -> ApiResult<Response> {
    let b: create::CreateBody = json_body(&body)?;
    let image =
        b.image.clone().filter(|i| !i.is_empty()).ok_or_else(|| {
            ApiError::bad_request("Config.Image is required: name the image to run")
        })?;
    let stored =
        super::images::resolve_image(&s, &image)?.ok_or_else(|| ApiError::no_such_image(&image))?;
    // An image given by id runs under its stored reference.
    let image_ref =
        if super::images::image_id(&stored).contains(image.trim_start_matches("sha256:")) {
            stored.reference.clone()
        } else {
            image
        };
    let name = q
        .get("name")
        .map(|n| n.trim_start_matches('/').to_string())
        .filter(|n| !n.is_empty());
    let auto_remove = b.host_config.as_ref().is_some_and(|h| h.auto_remove);
    let req = create::to_request(&b, name, &image_ref)?;
    let mut record = s.engine.create(req).await?;
    if auto_remove {
        // The daemon removes it once it exited and attached clients have
        // read its output (not the runtime: the exit code must be kept
        // until `wait` has reported it).
        record = s.engine.update_record(&record, |r| r.auto_remove = true)?;
    }
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"Id": record.id, "Warnings": []})),
    )
        .into_response())
}
