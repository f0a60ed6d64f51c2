//! `GET /containers/{id}/logs` and `POST /containers/{id}/attach`.

use super::resolve;
use crate::api::error::{ApiError, ApiResult};
use crate::api::hijack::{channel_body, hijack_or_stream, ClientInput};
use crate::api::mux::{encode, StreamKind, MULTIPLEXED, RAW};
use crate::api::params::Query;
use crate::api::time::{parse_unix, rfc3339};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use hyper::StatusCode;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::sync::broadcast;
use tokio::sync::mpsc;
use zlayer_engine::supervise::{Event, EventKind};
use zlayer_engine::ContainerRecord;
use zlayer_engine::Engine;
use zlayer_runtime::{ContainerState, LogEntry, LogStream, LogsStreamOptions};

/// One log record as the client wants it: framed, one line per record; for
/// a container with a terminal, the raw bytes as they were read.
pub fn encode_entry(tty: bool, timestamps: bool, e: &LogEntry) -> Option<Bytes> {
    let kind = match e.stream {
        LogStream::Stdout => StreamKind::Stdout,
        LogStream::Stderr => StreamKind::Stderr,
        LogStream::System => return None,
    };
    let mut line = BytesMut::with_capacity(e.message.len() + 40);
    if timestamps {
        line.extend_from_slice(rfc3339(e.timestamp).as_bytes());
        line.extend_from_slice(b" ");
    }
    line.extend_from_slice(e.message.as_bytes());
    // A terminal's records are raw bytes (line ends included).
    if !tty {
        line.extend_from_slice(b"\n");
    }
    Some(encode(tty, kind, &line))
}

/// `GET /containers/{id}/logs?stdout=1&stderr=1&follow=1&tail=N&timestamps=1&since=T&until=T`.
pub async fn logs(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Response> {
    let record = resolve(&s, &id)?;
    let stdout = q.flag("stdout", false)?;
    let stderr = q.flag("stderr", false)?;
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.get("tail").unwrap_or("all") {
        "all" | "" => None,
        n => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid tail {n:?}; give a number of lines or \"all\""
                )))
            }
        },
    };
    let bad_time =
        |k: &str, v: &str| ApiError::bad_request(format!("invalid {k} {v:?}; give Unix seconds"));
    let since = match q.get("since").filter(|v| !v.is_empty() && *v != "0") {
        Some(v) => Some(parse_unix(v).ok_or_else(|| bad_time("since", v))?),
        None => None,
    };
    let until = match q.get("until").filter(|v| !v.is_empty() && *v != "0") {
        Some(v) => Some(parse_unix(v).ok_or_else(|| bad_time("until", v))?),
        None => None,
    };
    let timestamps = q.flag("timestamps", false)?;
    let opts = LogsStreamOptions {
        follow: q.flag("follow", false)?,
        tail,
        stdout,
        stderr,
        timestamps,
        since,
    };
    let mut stream = s.engine.logs(&record, opts).await?;
    let tty = record.tty;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(entry) = stream.next().await {
            let Ok(entry) = entry else { break };
            if until.is_some_and(|u| entry.timestamp > u) {
                break;
            }
            if let Some(b) = encode_entry(tty, timestamps, &entry) {
                if tx.send(b).await.is_err() {
                    break;
                }
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", if tty { RAW } else { MULTIPLEXED })
        .body(channel_body(rx))
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

/// Waits until the workload runs (docker clients attach, and may send
/// input, before they start the container); false if it ended first.
async fn until_running(engine: &Engine, record: &ContainerRecord) -> bool {
    loop {
        match engine.state(record).await {
            Ok(zlayer_runtime::ContainerState::Pending) => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await
            }
            Ok(s) => return s.is_alive(),
            Err(_) => return false,
        }
    }
}

/// Copies the client's stdin into the workload until EOF, then closes it.
async fn relay_stdin(engine: Arc<Engine>, record: ContainerRecord, mut input: ClientInput) {
    let id = &record.name;
    let mut buf = vec![0u8; 32 * 1024];
    let mut started = false;
    loop {
        match input.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !started {
                    if !until_running(&engine, &record).await {
                        return;
                    }
                    started = true;
                }
                if let Err(e) = engine.write_stdin(&record, &buf[..n]).await {
                    tracing::debug!("stdin of {id}: {e}");
                    break;
                }
            }
        }
    }
    if !started && !until_running(&engine, &record).await {
        return;
    }
    if let Err(e) = engine.close_stdin(&record).await {
        tracing::debug!("closing stdin of {id}: {e}");
    }
}

/// `POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1&logs=0`:
/// a hijacked connection carrying the container's output (from now, or
/// from the beginning with `logs=1`) until it exits, and the client's input
/// to its stdin.
pub async fn attach(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Query,
    req: Request,
) -> ApiResult<Response> {
    let record = resolve(&s, &id)?;
    let stream = q.flag("stream", false)?;
    let with_logs = q.flag("logs", false)?;
    let stdin = q.flag("stdin", false)?;
    let opts = LogsStreamOptions {
        follow: stream,
        tail: if with_logs { None } else { Some(0) },
        stdout: q.flag("stdout", false)?,
        stderr: q.flag("stderr", false)?,
        ..Default::default()
    };
    let tty = record.tty;
    // Attached before its start (`docker run`): the whole output is ours, so
    // when the supervisor sees the exit we can read the rest at once instead
    // of waiting for the follow stream's next poll.
    let fresh = stream && s.engine.state(&record).await? == ContainerState::Pending;
    let exits = s.events().subscribe();
    // Open the log stream before answering, so nothing written after the
    // client's next request (`start`) can be missed.
    let filter = opts.clone();
    let logs = if opts.stdout || opts.stderr {
        Some(s.engine.logs(&record, opts).await?)
    } else {
        None
    };
    let guard = s.events().attach(&record.id);
    let engine = s.engine.clone();
    Ok(hijack_or_stream(
        req,
        if tty { RAW } else { MULTIPLEXED },
        move |session| async move {
            let _guard = guard;
            let relay = match (stdin, session.input) {
                (true, Some(input)) => Some(tokio::spawn(relay_stdin(
                    engine.clone(),
                    record.clone(),
                    input,
                ))),
                _ => None,
            };
            if let Some(logs) = logs {
                let exits = fresh.then_some(exits);
                pump_output(&engine, &record, logs, exits, filter, tty, &session.output).await;
            } else if let Some(relay) = relay {
                // Input only: keep the session while the client writes.
                let _ = relay.await;
                return;
            }
            if let Some(r) = relay {
                r.abort();
            }
        },
    ))
}

/// Sends `logs` to the client until it ends. With `exits` (the container
/// was attached before it started, so `logs` holds its whole output), the
/// container's exit ends the follow at once: what was written but not yet
/// sent is read from a snapshot of the log, skipping what was sent.
async fn pump_output(
    engine: &Engine,
    record: &ContainerRecord,
    mut logs: zlayer_runtime::LogsStream,
    exits: Option<broadcast::Receiver<Event>>,
    filter: LogsStreamOptions,
    tty: bool,
    out: &mpsc::Sender<Bytes>,
) {
    let mut sent = 0usize;
    let send = |e: &LogEntry| encode_entry(tty, false, e);
    let Some(mut exits) = exits else {
        while let Some(Ok(entry)) = logs.next().await {
            if let Some(b) = send(&entry) {
                if out.send(b).await.is_err() {
                    return;
                }
            }
        }
        return;
    };
    loop {
        tokio::select! {
            entry = logs.next() => match entry {
                Some(Ok(entry)) => {
                    sent += 1;
                    if let Some(b) = send(&entry) {
                        if out.send(b).await.is_err() {
                            return;
                        }
                    }
                }
                _ => return,
            },
            ev = exits.recv() => match ev {
                Ok(ev) if ev.id == record.id && matches!(ev.kind, EventKind::Exited(_)) => break,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
    drop(logs);
    let rest = LogsStreamOptions {
        follow: false,
        tail: None,
        since: None,
        ..filter
    };
    let Ok(mut snapshot) = engine.logs(record, rest).await else {
        return;
    };
    let mut index = 0usize;
    while let Some(Ok(entry)) = snapshot.next().await {
        index += 1;
        if index <= sent {
            continue;
        }
        if let Some(b) = send(&entry) {
            if out.send(b).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn entries_are_framed_with_newlines_and_timestamps() {
        let e = LogEntry {
            timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(1),
            stream: LogStream::Stderr,
            message: "oops".into(),
        };
        let b = encode_entry(false, false, &e).unwrap();
        assert_eq!(&b[..], b"\x02\x00\x00\x00\x00\x00\x00\x05oops\n");
        // A terminal's records are raw: no frame, no added newline.
        let b = encode_entry(true, true, &e).unwrap();
        assert_eq!(&b[..], b"1970-01-01T00:00:01.000000000Z oops");
        let sys = LogEntry {
            stream: LogStream::System,
            ..e
        };
        assert!(encode_entry(false, false, &sys).is_none());
    }
}
