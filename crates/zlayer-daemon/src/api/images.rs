//! The images resource: list, pull (`create`), load, inspect, delete.

use super::error::{ApiError, ApiResult};
use super::hijack::channel_body;
use super::params::Query;
use super::time::{parse_rfc3339, unix, ZERO_TIME};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use zlayer_image::{Digest, ImageRecord, PullOptions, PullProgress, Reference};

/// The image routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/create", post(pull))
        .route("/images/load", post(load))
        .route("/images/{*rest}", get(by_name).delete(by_name))
}

/// Docker's image id: the config digest.
pub fn image_id(r: &ImageRecord) -> String {
    r.config_digest.to_string()
}

/// `busybox:latest` for `docker.io/library/busybox:latest`, as docker shows it.
pub fn familiar(reference: &str) -> String {
    let Ok(r) = Reference::parse(reference) else {
        return reference.to_string();
    };
    let repo = match (r.registry(), r.repository().strip_prefix("library/")) {
        ("docker.io", Some(short)) => short.to_string(),
        ("docker.io", None) => r.repository().to_string(),
        (reg, _) => format!("{reg}/{}", r.repository()),
    };
    match (r.tag(), r.digest()) {
        (Some(t), _) => format!("{repo}:{t}"),
        (None, Some(d)) => format!("{repo}@{d}"),
        (None, None) => repo,
    }
}

/// Finds a stored image by reference, config-digest id (`sha256:...`) or a
/// unique id prefix (at least 4 hex characters).
pub fn resolve_image(s: &AppState, name: &str) -> ApiResult<Option<ImageRecord>> {
    let store = s.engine.images();
    if let Ok(Some(r)) = store.lookup(name) {
        return Ok(Some(r));
    }
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    if hex.len() < 4 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let all = store.list()?;
    let mut ids: Vec<&ImageRecord> = all
        .iter()
        .filter(|r| r.config_digest.hex().starts_with(hex))
        .collect();
    ids.dedup_by(|a, b| a.config_digest == b.config_digest);
    match ids.as_slice() {
        [one] => Ok(Some((*one).clone())),
        [] => Ok(None),
        _ => Err(ApiError::bad_request(format!(
            "image id prefix {name:?} is ambiguous; give more characters"
        ))),
    }
}

fn created_unix(r: &ImageRecord) -> i64 {
    r.created
        .as_deref()
        .and_then(parse_rfc3339)
        .map(unix)
        .unwrap_or(r.stored_at as i64)
}

/// `GET /images/json`.
async fn list(State(s): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let mut by_id: BTreeMap<String, (ImageRecord, Vec<String>)> = BTreeMap::new();
    for r in s.engine.images().list()? {
        let entry = by_id
            .entry(image_id(&r))
            .or_insert_with(|| (r.clone(), Vec::new()));
        entry.1.push(familiar(&r.reference));
    }
    let mut out: Vec<(i64, Value)> = by_id
        .into_iter()
        .map(|(id, (r, tags))| {
            let labels = s
                .engine
                .images()
                .image_config(&r)
                .map(|c| c.labels)
                .unwrap_or_default();
            let created = created_unix(&r);
            (
                created,
                json!({
                    "Id": id, "ParentId": "", "RepoTags": tags, "RepoDigests": [],
                    "Created": created, "Size": r.size, "SharedSize": -1,
                    "VirtualSize": r.size, "Labels": labels, "Containers": -1,
                }),
            )
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    Ok(Json(out.into_iter().map(|(_, v)| v).collect()))
}

/// `GET /images/{name}/json` and `DELETE /images/{name}`.
async fn by_name(
    State(s): State<AppState>,
    Path(rest): Path<String>,
    q: Query,
    method: Method,
) -> ApiResult<Response> {
    if method == Method::DELETE {
        return remove(&s, &rest, &q).await.map(IntoResponse::into_response);
    }
    match rest.strip_suffix("/json") {
        Some(name) => inspect(&s, name).map(IntoResponse::into_response),
        None => Err(ApiError::not_found(format!(
            "page not found: GET /images/{rest} is not part of the API this daemon serves"
        ))),
    }
}

fn inspect(s: &AppState, name: &str) -> ApiResult<Json<Value>> {
    let r = resolve_image(s, name)?.ok_or_else(|| ApiError::no_such_image(name))?;
    let c = s.engine.images().image_config(&r)?;
    let tags: Vec<String> = s
        .engine
        .images()
        .list()?
        .iter()
        .filter(|o| o.config_digest == r.config_digest)
        .map(|o| familiar(&o.reference))
        .collect();
    let ports: serde_json::Map<String, Value> = c
        .exposed_ports
        .iter()
        .map(|p| (p.clone(), json!({})))
        .collect();
    let volumes: serde_json::Map<String, Value> =
        c.volumes.iter().map(|v| (v.clone(), json!({}))).collect();
    Ok(Json(json!({
        "Id": image_id(&r),
        "RepoTags": tags,
        "RepoDigests": [],
        "Parent": "",
        "Comment": "",
        "Created": c.created.clone().unwrap_or_else(|| ZERO_TIME.to_string()),
        "DockerVersion": "",
        "Author": "",
        "Config": {
            "Cmd": c.cmd, "Entrypoint": c.entrypoint, "Env": c.env,
            "WorkingDir": c.working_dir.clone().unwrap_or_default(),
            "User": c.user.clone().unwrap_or_default(), "Labels": c.labels,
            "ExposedPorts": if ports.is_empty() { Value::Null } else { Value::Object(ports) },
            "Volumes": if volumes.is_empty() { Value::Null } else { Value::Object(volumes) },
            "StopSignal": c.stop_signal,
        },
        "Architecture": c.architecture,
        "Os": c.os,
        "Size": r.size,
        "VirtualSize": r.size,
        "GraphDriver": {"Name": "overlay2", "Data": null},
        "RootFS": {"Type": "layers", "Layers": c.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "Metadata": {"LastTagTime": ZERO_TIME},
    })))
}

async fn remove(s: &AppState, name: &str, q: &Query) -> ApiResult<Json<Vec<Value>>> {
    let force = q.flag("force", false)?;
    let r = resolve_image(s, name)?.ok_or_else(|| ApiError::no_such_image(name))?;
    let store = s.engine.images();
    let by_id = name.trim_start_matches("sha256:").len() >= 4
        && r.config_digest
            .hex()
            .starts_with(name.trim_start_matches("sha256:"));
    let targets: Vec<ImageRecord> = if by_id {
        store
            .list()?
            .into_iter()
            .filter(|o| o.config_digest == r.config_digest)
            .collect()
    } else {
        vec![r.clone()]
    };
    if !force {
        for c in s.engine.list().await?.into_iter().map(|v| v.record) {
            let uses = store
                .lookup(&c.image)
                .ok()
                .flatten()
                .is_some_and(|i| targets.iter().any(|t| t.reference == i.reference));
            if uses {
                return Err(ApiError::conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    c.short_id(),
                    &image_id(&r)[7..19.min(image_id(&r).len())]
                )));
            }
        }
    }
    let mut out = Vec::new();
    for t in &targets {
        store.remove(&t.reference)?;
        out.push(json!({"Untagged": familiar(&t.reference)}));
    }
    let still_used = store
        .list()?
        .iter()
        .any(|o| o.config_digest == r.config_digest);
    if !still_used {
        out.push(json!({"Deleted": image_id(&r)}));
    }
    Ok(Json(out))
}

/// Streams pull progress as docker's JSON messages.
struct JsonProgress {
    tx: mpsc::UnboundedSender<Value>,
    sizes: Mutex<BTreeMap<String, (u64, u64, SystemTime)>>,
}

fn short(d: &Digest) -> String {
    d.hex().chars().take(12).collect()
}

impl PullProgress for JsonProgress {
    fn resolved(&self, _reference: &str, _manifest: &Digest, _layers: usize) {}

    fn layer_started(&self, layer: &Digest, size: u64, offset: u64) {
        if let Ok(mut m) = self.sizes.lock() {
            m.insert(short(layer), (size, offset, SystemTime::UNIX_EPOCH));
        }
        let _ = self
            .tx
            .send(json!({"status": "Pulling fs layer", "progressDetail": {}, "id": short(layer)}));
    }

    fn layer_bytes(&self, layer: &Digest, bytes: u64) {
        let id = short(layer);
        let Ok(mut m) = self.sizes.lock() else { return };
        let Some(entry) = m.get_mut(&id) else { return };
        entry.1 += bytes;
        // At most ~5 updates a second per layer.
        let now = SystemTime::now();
        if now.duration_since(entry.2).unwrap_or_default() < Duration::from_millis(200) {
            return;
        }
        entry.2 = now;
        let _ = self.tx.send(json!({
            "status": "Downloading",
            "progressDetail": {"current": entry.1, "total": entry.0},
            "id": id,
        }));
    }

    fn layer_finished(&self, layer: &Digest, cached: bool) {
        let status = if cached {
            "Already exists"
        } else {
            "Download complete"
        };
        let _ = self
            .tx
            .send(json!({"status": status, "progressDetail": {}, "id": short(layer)}));
    }

    fn layer_extracted(&self, layer: &Digest) {
        let _ = self
            .tx
            .send(json!({"status": "Pull complete", "progressDetail": {}, "id": short(layer)}));
    }
}

fn registry_auth(headers: &HeaderMap) -> Option<zlayer_image::RegistryAuth> {
    let raw = headers.get("X-Registry-Auth")?.to_str().ok()?;
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(raw.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim()))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw.trim()))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let user = v.get("username")?.as_str()?.to_string();
    let pass = v.get("password")?.as_str()?.to_string();
    (!user.is_empty()).then(|| zlayer_image::RegistryAuth::new(user, pass))
}

/// `POST /images/create?fromImage=NAME&tag=TAG`: pulls, streaming progress.
async fn pull(State(s): State<AppState>, q: Query, headers: HeaderMap) -> ApiResult<Response> {
    if q.get("fromSrc").is_some_and(|v| !v.is_empty()) {
        return Err(ApiError::not_implemented(
            "importing a root filesystem (fromSrc) is not supported; use `docker load` with an image archive",
        ));
    }
    let from = q
        .get("fromImage")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request("fromImage is required: name the image to pull"))?;
    let reference = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    Reference::parse(&reference).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let progress = Arc::new(JsonProgress {
        tx: tx.clone(),
        sizes: Mutex::new(BTreeMap::new()),
    });
    let opts = PullOptions {
        policy: zlayer_spec::PullPolicy::Always,
        insecure: false,
        auth: registry_auth(&headers),
        progress: Some(progress),
    };
    let tag = Reference::parse(&reference)
        .ok()
        .and_then(|r| r.tag().map(str::to_string))
        .unwrap_or_else(|| "latest".into());
    let _ = tx.send(json!({"status": format!("Pulling from {}", familiar(&reference).split(':').next().unwrap_or(from)), "id": tag}));
    let store = s.engine.images().clone();
    tokio::spawn(async move {
        match store.pull(&reference, &opts).await {
            Ok(rec) => {
                let _ = tx.send(json!({"status": format!("Digest: {}", rec.digest())}));
                let _ = tx.send(json!({"status": format!("Status: Downloaded newer image for {}", familiar(&reference))}));
            }
            Err(e) => {
                let m = e.to_string();
                let _ = tx.send(json!({"errorDetail": {"message": m}, "error": m}));
            }
        }
    });
    let (btx, brx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            if btx.send(Bytes::from(v.to_string() + "\r\n")).await.is_err() {
                break;
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(channel_body(brx))
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

/// `POST /images/load`: the body is a `docker save` or OCI archive.
async fn load(State(s): State<AppState>, q: Query, req: Request) -> ApiResult<Response> {
    let quiet = q.flag("quiet", false)?;
    let dir = s.engine.root().join("engine").join("tmp");
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| {
        ApiError::internal(format!("creating a temp file in {}: {e}", dir.display()))
    })?;
    let mut body = req.into_body().into_data_stream();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the archive: {e}")))?;
        tmp.write_all(&chunk).map_err(|e| {
            ApiError::internal(format!("writing the archive to {}: {e}", dir.display()))
        })?;
    }
    let store = s.engine.images().clone();
    let path = tmp.path().to_path_buf();
    let recs = tokio::task::spawn_blocking(move || {
        let r = store.load(&path, None);
        drop(tmp);
        r
    })
    .await
    .map_err(|e| ApiError::internal(format!("load task failed: {e}")))??;
    let mut out = String::new();
    for r in &recs {
        let msg = json!({"stream": format!("Loaded image: {}\n", familiar(&r.reference))});
        out.push_str(&msg.to_string());
        out.push('\n');
    }
    let _ = quiet;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .body(Body::from(out))
        .unwrap_or_else(|_| Response::new(Body::empty())))
}

/// The full body of a small request.
pub async fn body_bytes(body: Body) -> ApiResult<Bytes> {
    body.collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiar_names() {
        assert_eq!(familiar("busybox"), "busybox:latest");
        assert_eq!(familiar("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(familiar("docker.io/me/app:2"), "me/app:2");
        assert_eq!(
            familiar("localhost:5000/busybox:latest"),
            "localhost:5000/busybox:latest"
        );
    }
}
