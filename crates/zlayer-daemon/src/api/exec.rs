//! Exec instances: `POST /containers/{id}/exec`, `POST /exec/{id}/start`
//! (hijacked), `GET /exec/{id}/json`.
//!
//! The runtime interface runs an exec with its whole stdin given up front,
//! so with `AttachStdin` the daemon reads the client's input until it closes
//! its side (`docker exec -i c cat < file` works; an interactive shell
//! session does not).

use super::containers::resolve;
use super::error::{ApiError, ApiResult};
use super::hijack::hijack_or_stream;
use super::mux::{encode, StreamKind, MULTIPLEXED, RAW};
use super::params::json_body;
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use zlayer_runtime::{ExecOptions, LogStream};

/// Finished exec instances are forgotten after this long.
const KEEP_FINISHED: Duration = Duration::from_secs(600);

/// One exec instance.
#[derive(Debug, Clone)]
pub struct ExecEntry {
    /// The container's 64-hex id.
    pub container: String,
    /// What to run.
    pub opts: ExecOptions,
    /// Pass the client's stdin.
    pub attach_stdin: bool,
    /// Send stdout.
    pub attach_stdout: bool,
    /// Send stderr.
    pub attach_stderr: bool,
    /// Started and not finished.
    pub running: bool,
    /// Set once it finished.
    pub exit_code: Option<i32>,
    /// When it finished.
    pub finished: Option<Instant>,
}

/// The daemon's exec instances by id.
#[derive(Clone, Default)]
pub struct ExecRegistry {
    inner: Arc<Mutex<HashMap<String, ExecEntry>>>,
}

impl ExecRegistry {
    fn insert(&self, id: String, e: ExecEntry) {
        if let Ok(mut m) = self.inner.lock() {
            m.retain(|_, v| v.finished.is_none_or(|f| f.elapsed() < KEEP_FINISHED));
            m.insert(id, e);
        }
    }

    fn get(&self, id: &str) -> Option<ExecEntry> {
        self.inner.lock().ok()?.get(id).cloned()
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut ExecEntry)) {
        if let Ok(mut m) = self.inner.lock() {
            if let Some(e) = m.get_mut(id) {
                f(e);
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    tty: bool,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    user: Option<String>,
    working_dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
}

/// `POST /containers/{id}/exec`.
pub async fn create(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: bytes::Bytes,
) -> ApiResult<Response> {
    let b: CreateBody = json_body(&body)?;
    let record = resolve(&s, &id)?;
    if b.tty {
        return Err(ApiError::not_implemented(
            "exec with a terminal (-t) is not supported: exec runs on pipes (a container started with -t has a terminal); run exec without -t, e.g. `docker exec -i`",
        ));
    }
    let cmd = b.cmd.unwrap_or_default();
    if cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    if !s.engine.state(&record).await?.is_alive() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            record.id
        )));
    }
    let mut opts = ExecOptions::command(cmd);
    for kv in b.env.iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            opts.env.insert(k.into(), v.into());
        }
    }
    opts.user = b.user.filter(|u| !u.is_empty());
    opts.working_dir = b.working_dir.filter(|w| !w.is_empty());
    opts.tty = b.tty;
    let exec_id = zlayer_runtime::new_container_id();
    s.execs.insert(
        exec_id.clone(),
        ExecEntry {
            container: record.id.clone(),
            opts,
            attach_stdin: b.attach_stdin,
            attach_stdout: b.attach_stdout,
            attach_stderr: b.attach_stderr,
            running: false,
            exit_code: None,
            finished: None,
        },
    );
    Ok((StatusCode::CREATED, Json(json!({"Id": exec_id}))).into_response())
}

fn no_such_exec(id: &str) -> ApiError {
    ApiError::not_found(format!("No such exec instance: {id}"))
}

/// `POST /exec/{id}/start`.
pub async fn start(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let entry = s.execs.get(&id).ok_or_else(|| no_such_exec(&id))?;
    if entry.running || entry.exit_code.is_some() {
        return Err(ApiError::conflict(format!(
            "exec instance {id} has already been started"
        )));
    }
    let record = resolve(&s, &entry.container)?;
    // The body says Detach/Tty; read it without consuming the upgrade.
    let (parts, body) = req.into_parts();
    let bytes = super::images::body_bytes(body).await?;
    let b: StartBody = json_body(&bytes)?;
    let req = Request::from_parts(parts, axum::body::Body::empty());
    s.execs.update(&id, |e| e.running = true);
    let engine = s.engine.clone();
    let execs = s.execs.clone();
    let tty = entry.opts.tty;
    let run = move |input: Option<super::hijack::ClientInput>,
                    output: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>| async move {
        let mut opts = entry.opts.clone();
        if let (true, Some(mut input)) = (entry.attach_stdin, input) {
            let mut data = Vec::new();
            let _ = input.read_to_end(&mut data).await;
            opts.stdin = Some(data);
        }
        let code = match engine.exec_stream(&record, &opts).await {
            Ok(stream) => {
                let mut out = stream.output;
                while let Some(chunk) = out.next().await {
                    let Ok(chunk) = chunk else { break };
                    let (kind, wanted) = match chunk.stream {
                        LogStream::Stdout => (StreamKind::Stdout, entry.attach_stdout),
                        LogStream::Stderr => (StreamKind::Stderr, entry.attach_stderr),
                        LogStream::System => continue,
                    };
                    if let (true, Some(tx)) = (wanted, output.as_ref()) {
                        let _ = tx.send(encode(tty, kind, &chunk.data)).await;
                    }
                }
                match stream.exit_code.await {
                    Ok(code) => code,
                    Err(e) => failed(tty, output.as_ref(), &e.into()).await,
                }
            }
            Err(e) => failed(tty, output.as_ref(), &e).await,
        };
        // Record the code before the client sees EOF: it asks for it next.
        execs.update(&id, |e| {
            e.running = false;
            e.exit_code = Some(code);
            e.finished = Some(Instant::now());
        });
    };
    if b.detach {
        tokio::spawn(run(None, None));
        return Ok(StatusCode::OK.into_response());
    }
    Ok(hijack_or_stream(
        req,
        if tty { RAW } else { MULTIPLEXED },
        move |session| async move {
            run(session.input, Some(session.output)).await;
        },
    ))
}

/// `POST /exec/{id}/resize`: accepted, not passed on (no terminal resize
/// in the runtime interface).
pub async fn resize(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.execs.get(&id).ok_or_else(|| no_such_exec(&id))?;
    Ok(StatusCode::OK)
}

/// `GET /exec/{id}/json`.
pub async fn inspect(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let e = s.execs.get(&id).ok_or_else(|| no_such_exec(&id))?;
    let (entrypoint, args) = e
        .opts
        .command
        .split_first()
        .map(|(a, b)| (a.clone(), b.to_vec()))
        .unwrap_or_default();
    Ok(Json(json!({
        "ID": id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ProcessConfig": {
            "tty": e.opts.tty, "entrypoint": entrypoint, "arguments": args,
            "privileged": false, "user": e.opts.user.clone().unwrap_or_default(),
        },
        "OpenStdin": e.attach_stdin,
        "OpenStderr": e.attach_stderr,
        "OpenStdout": e.attach_stdout,
        "CanRemove": false,
        "ContainerID": e.container,
        "DetachKeys": "",
        "Pid": 0,
    })))
}

/// Tells an exec's client why its command did not run; docker's exit code
/// for that (126/127 for the command, 125 for the engine).
async fn failed(
    tty: bool,
    output: Option<&tokio::sync::mpsc::Sender<bytes::Bytes>>,
    e: &zlayer_engine::EngineError,
) -> i32 {
    if let Some(tx) = output {
        let msg = format!("zlayer: exec failed: {e}\n");
        let _ = tx
            .send(encode(tty, StreamKind::Stderr, msg.as_bytes()))
            .await;
    }
    e.exit_code()
}
