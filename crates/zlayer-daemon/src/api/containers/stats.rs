//! `GET /containers/{id}/stats` (docker's JSON) and `GET /containers/{id}/top`.

use super::resolve;
use crate::api::error::{ApiError, ApiResult};
use crate::api::hijack::channel_body;
use crate::api::params::Query;
use crate::api::time::{rfc3339, ZERO_TIME};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use bytes::Bytes;
use futures_util::StreamExt;
use hyper::StatusCode;
use serde_json::{json, Value};
use zlayer_engine::ContainerRecord;
use zlayer_runtime::ContainerStats;

fn cpu(s: Option<&ContainerStats>) -> Value {
    json!({
        "cpu_usage": {
            "total_usage": s.map_or(0, |s| s.cpu_total_ns),
            "usage_in_kernelmode": 0,
            "usage_in_usermode": 0,
        },
        "system_cpu_usage": s.map_or(0, |s| s.cpu_system_ns),
        "online_cpus": s.map_or(0, |s| s.online_cpus),
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

/// One sample in docker's shape (`prev` fills `precpu_stats`).
pub fn docker_stats(
    r: &ContainerRecord,
    s: Option<&ContainerStats>,
    prev: Option<&ContainerStats>,
) -> Value {
    let io = |op: &str, v: u64| json!({"major": 0, "minor": 0, "op": op, "value": v});
    json!({
        "read": s.map_or(ZERO_TIME.to_string(), |s| rfc3339(s.timestamp)),
        "preread": prev.map_or(ZERO_TIME.to_string(), |p| rfc3339(p.timestamp)),
        "pids_stats": {"current": s.map_or(0, |s| s.pids_current), "limit": s.and_then(|s| s.pids_limit)},
        "blkio_stats": {
            "io_service_bytes_recursive": s.map(|s| vec![io("read", s.blkio_read_bytes), io("write", s.blkio_write_bytes)]),
            "io_serviced_recursive": null, "io_queue_recursive": null, "io_service_time_recursive": null,
            "io_wait_time_recursive": null, "io_merged_recursive": null, "io_time_recursive": null,
            "sectors_recursive": null,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu(s),
        "precpu_stats": cpu(prev),
        "memory_stats": if let Some(s) = s {
            json!({"usage": s.memory_used_bytes, "limit": s.memory_limit_bytes, "stats": {}})
        } else {
            json!({})
        },
        "name": format!("/{}", r.name),
        "id": r.id,
        "networks": {
            "eth0": {
                "rx_bytes": s.map_or(0, |s| s.net_rx_bytes), "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
                "tx_bytes": s.map_or(0, |s| s.net_tx_bytes), "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0,
            }
        },
    })
}

fn line(v: &Value) -> Bytes {
    Bytes::from(v.to_string() + "\n")
}

/// `GET /containers/{id}/stats?stream=1&one-shot=0`.
pub async fn stats(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Response> {
    let record = resolve(&s, &id)?;
    let stream = q.flag("stream", true)?;
    let one_shot = q.flag("one-shot", false)?;
    if one_shot && stream {
        return Err(ApiError::bad_request(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let alive = s.engine.state(&record).await?.is_alive();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    if !alive {
        // docker answers zeros for a stopped container.
        let _ = tx.send(line(&docker_stats(&record, None, None))).await;
    } else if !stream && one_shot {
        let sample = s.engine.stats_once(&record).await?;
        let _ = tx
            .send(line(&docker_stats(&record, Some(&sample), None)))
            .await;
    } else {
        let mut samples = s.engine.stats(&record).await?;
        tokio::spawn(async move {
            let mut prev: Option<ContainerStats> = None;
            while let Some(Ok(sample)) = samples.next().await {
                // Without streaming, docker waits for a second sample so the
                // CPU percentage can be computed.
                if !stream && prev.is_none() {
                    prev = Some(sample);
                    continue;
                }
                let v = docker_stats(&record, Some(&sample), prev.as_ref());
                if tx.send(line(&v)).await.is_err() || !stream {
                    break;
                }
                prev = Some(sample);
            }
        });
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(channel_body(rx))
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

fn read_proc(pid: u32, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()
}

/// pid → parent pid of every process.
fn parents() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = read_proc(pid, "stat")?;
            let after = stat.rsplit_once(')')?.1;
            let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// The process tree under `root` (root first).
fn tree(root: u32) -> Vec<(u32, u32)> {
    let all = parents();
    let mut out = vec![(
        root,
        all.iter()
            .find(|(p, _)| *p == root)
            .map_or(0, |(_, pp)| *pp),
    )];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i].0;
        out.extend(all.iter().filter(|(_, pp)| *pp == parent).copied());
        i += 1;
    }
    out
}

/// `GET /containers/{id}/top`: the container's processes.
pub async fn top(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let record = resolve(&s, &id)?;
    if !s.engine.state(&record).await?.is_alive() {
        return Err(ApiError::conflict(format!(
            "container {} is not running",
            record.id
        )));
    }
    let pid = s.engine.pid(&record).await?.ok_or_else(|| {
        ApiError::conflict(format!(
            "container {} has no host process to list",
            record.id
        ))
    })?;
    let rows: Vec<Vec<String>> = tree(pid)
        .into_iter()
        .filter_map(|(pid, ppid)| {
            let status = read_proc(pid, "status")?;
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next())
                .unwrap_or("0")
                .to_string();
            let cmd = read_proc(pid, "cmdline")
                .map(|c| {
                    c.split('\0')
                        .filter(|a| !a.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .filter(|c| !c.is_empty())
                .or_else(|| read_proc(pid, "comm").map(|c| format!("[{}]", c.trim())))?;
            Some(vec![uid, pid.to_string(), ppid.to_string(), cmd])
        })
        .collect();
    Ok(Json(
        json!({"Titles": ["UID", "PID", "PPID", "CMD"], "Processes": rows}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_tree_includes_us() {
        let me = std::process::id();
        let t = tree(me);
        assert_eq!(t[0].0, me);
    }
}
