//! start, stop, restart, kill, pause, unpause, remove, wait, resize.

use super::resolve;
use crate::api::error::{ApiError, ApiResult};
use crate::api::hijack::channel_body;
use crate::api::params::Query;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use hyper::StatusCode;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use zlayer_engine::supervise::{EventKind, SupervisionStore};
use zlayer_engine::ContainerRecord;
use zlayer_runtime::ContainerState;

fn status(code: StatusCode) -> Response {
    Response::builder()
        .status(code)
        .body(Body::empty())
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn stop_timeout(q: &Query) -> ApiResult<Option<Duration>> {
    Ok(q.int("t")?
        .or(q.int("timeout")?)
        .filter(|t| *t >= 0)
        .map(|t| Duration::from_secs(t as u64)))
}

/// `POST /containers/{id}/start`: 204, or 304 when already running. An
/// `AutoRemove` container that fails to start is removed, as docker does:
/// `docker run --rm` waits for the removal after reporting the error.
pub async fn start(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let record = resolve(&s, &id)?;
    if s.engine.state(&record).await?.is_alive() {
        return Ok(status(StatusCode::NOT_MODIFIED));
    }
    if let Err(e) = s.supervisor.user_start(&record).await {
        if record.auto_remove && !s.engine.state(&record).await.is_ok_and(|st| st.is_alive()) {
            if let Err(rm) = s.engine.remove(&record, true).await {
                tracing::warn!("removing {} after its failed start: {rm}", record.name);
            }
            s.events().publish(&record.id, EventKind::Removed);
        }
        return Err(e.into());
    }
    Ok(status(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/stop?t=N`: 204, or 304 when not running.
pub async fn stop(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Response> {
    let record = resolve(&s, &id)?;
    if !s.engine.state(&record).await?.is_alive() {
        return Ok(status(StatusCode::NOT_MODIFIED));
    }
    s.engine.stop(&record, stop_timeout(&q)?).await?;
    Ok(status(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/restart?t=N`.
pub async fn restart(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Response> {
    let record = resolve(&s, &id)?;
    if s.engine.state(&record).await?.is_alive() {
        s.engine.stop(&record, stop_timeout(&q)?).await?;
    }
    s.supervisor.user_start(&record).await?;
    Ok(status(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/kill?signal=SIG`.
pub async fn kill(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Response> {
    let record = resolve(&s, &id)?;
    let signal = q.get("signal").filter(|v| !v.is_empty()).unwrap_or("KILL");
    zlayer_runtime::validate_signal(signal).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !s.engine.state(&record).await?.is_alive() {
        return Err(ApiError::conflict(format!(
            "Cannot kill container: {id}: container {} is not running",
            record.id
        )));
    }
    s.engine.kill(&record, Some(signal)).await?;
    Ok(status(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/pause` and `/unpause`.
pub async fn pause(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let record = resolve(&s, &id)?;
    match s.engine.state(&record).await? {
        ContainerState::Running => s.engine.pause(&record).await?,
        ContainerState::Paused => {
            return Err(ApiError::conflict(format!(
                "container {} is already paused",
                record.id
            )))
        }
        _ => {
            return Err(ApiError::conflict(format!(
                "container {} is not running",
                record.id
            )))
        }
    }
    Ok(status(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/unpause`.
pub async fn unpause(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let record = resolve(&s, &id)?;
    if s.engine.state(&record).await? != ContainerState::Paused {
        return Err(ApiError::conflict(format!(
            "container {} is not paused",
            record.id
        )));
    }
    s.engine.unpause(&record).await?;
    Ok(status(StatusCode::NO_CONTENT))
}

/// `DELETE /containers/{id}?force=1`.
pub async fn remove(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Response> {
    let record = resolve(&s, &id)?;
    let force = q.flag("force", false)?;
    let alive = match s.engine.state(&record).await {
        Ok(st) => st.is_alive(),
        Err(e) if matches!(&e, zlayer_engine::EngineError::Runtime(a) if a.is_not_found()) => false,
        Err(e) => return Err(e.into()),
    };
    if alive && !force {
        return Err(ApiError::conflict(format!(
            "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
            record.id
        )));
    }
    s.engine.remove(&record, force).await?;
    s.events().publish(&record.id, EventKind::Removed);
    Ok(status(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/resize?h=ROWS&w=COLS`: sets the size of the
/// container's terminal (its foreground process gets SIGWINCH). A container
/// without a terminal, or one that already ended (the client resizes right
/// after start, racing short commands), is left as it is.
pub async fn resize(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Response> {
    let record = resolve(&s, &id)?;
    let dim = |key: &str| -> ApiResult<u16> {
        q.get(key)
            .unwrap_or("0")
            .parse::<u16>()
            .map_err(|_| ApiError::bad_request(format!("{key} must be a number of 0 to 65535")))
    };
    let (rows, cols) = (dim("h")?, dim("w")?);
    if !record.tty || rows == 0 || cols == 0 || !s.engine.state(&record).await?.is_alive() {
        return Ok(status(StatusCode::OK));
    }
    s.engine.resize(&record, rows, cols).await?;
    Ok(status(StatusCode::OK))
}

/// The exit code of an ended container.
async fn code_now(s: &AppState, record: &ContainerRecord, state: &ContainerState) -> i32 {
    match state {
        ContainerState::Exited { code } => *code,
        ContainerState::Failed { .. } => match s.engine.wait(record).await {
            Ok(c) => c,
            Err(_) => SupervisionStore::open(s.engine.root())
                .load(&record.id)
                .ok()
                .and_then(|st| st.last_exit_code)
                .unwrap_or(-1),
        },
        _ => 0,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Condition {
    NotRunning,
    NextExit,
    Removed,
}

/// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`.
/// The headers go out at once (docker clients wait for them before starting
/// the container); the body `{"StatusCode": N}` once the condition holds.
pub async fn wait(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Response> {
    let condition = match q.get("condition").unwrap_or("") {
        "" | "not-running" => Condition::NotRunning,
        "next-exit" => Condition::NextExit,
        "removed" => Condition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition {other:?}; use not-running, next-exit or removed"
            )))
        }
    };
    let record = resolve(&s, &id)?;
    let rx = s.events().subscribe();
    let state = s.engine.state(&record).await?;
    if state.is_alive() {
        s.supervisor.watch(&record);
    }
    let (tx, body_rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let code = wait_for(&s, &record, condition, state, rx).await;
        let body = serde_json::json!({"StatusCode": code, "Error": null}).to_string() + "\n";
        let _ = tx.send(bytes::Bytes::from(body)).await;
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(channel_body(body_rx))
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

async fn wait_for(
    s: &AppState,
    record: &ContainerRecord,
    condition: Condition,
    initial: ContainerState,
    mut rx: tokio::sync::broadcast::Receiver<zlayer_engine::supervise::Event>,
) -> i32 {
    if condition == Condition::NotRunning && !initial.is_alive() {
        return code_now(s, record, &initial).await;
    }
    let mut seen_alive = initial.is_alive();
    let mut last_code: Option<i32> = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            Ok(Ok(ev)) if ev.id == record.id => match ev.kind {
                EventKind::Exited(code) if condition != Condition::Removed => return code,
                EventKind::Exited(code) => last_code = Some(code),
                EventKind::Removed => {
                    return match last_code {
                        Some(c) => c,
                        None => SupervisionStore::open(s.engine.root())
                            .load(&record.id)
                            .ok()
                            .and_then(|st| st.last_exit_code)
                            .unwrap_or(0),
                    }
                }
                EventKind::Started => seen_alive = true,
                EventKind::Health(_) => {}
            },
            Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) => {}
            Ok(Err(RecvError::Closed)) => return -1,
            Err(_) => {
                // No event for a second: look for ourselves (the container
                // may have been started or removed by a CLI without us).
                match s.engine.state(record).await {
                    Ok(st) if st.is_alive() => {
                        seen_alive = true;
                        s.supervisor.watch(record);
                    }
                    Ok(st)
                        if condition != Condition::Removed
                            && (seen_alive || condition == Condition::NotRunning)
                            && st.is_terminal() =>
                    {
                        return code_now(s, record, &st).await;
                    }
                    Ok(st) if st.is_terminal() => last_code = Some(code_now(s, record, &st).await),
                    Ok(_) => {}
                    // Gone from the runtime: removed.
                    Err(_) => return last_code.unwrap_or(0),
                }
            }
        }
    }
}
