//! `/_ping`, `/version`, `/info`.

use super::{API_VERSION, MIN_API_VERSION};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// The daemon's version (the workspace's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn ping_response(body: &'static str) -> Response {
    Response::builder()
        .status(200)
        .header("API-Version", API_VERSION)
        .header("Builder-Version", "1")
        .header("Docker-Experimental", "false")
        .header("Ostype", "linux")
        .header("Server", format!("zlayer/{VERSION}"))
        .header("Cache-Control", "no-cache, no-store, must-revalidate")
        .header("Pragma", "no-cache")
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// `GET /_ping`.
pub async fn ping() -> Response {
    ping_response("OK")
}

/// `HEAD /_ping`.
pub async fn ping_head() -> Response {
    ping_response("")
}

fn kernel_version() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// Docker's architecture names (`amd64`, `arm64`).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /version`.
pub async fn version() -> Json<Value> {
    let kernel = kernel_version();
    Json(json!({
        "Platform": {"Name": "zlayer"},
        "Components": [{
            "Name": "Engine",
            "Version": VERSION,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": go_arch(),
                "KernelVersion": kernel,
            }
        }],
        "Version": VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kernel,
        "BuildTime": "",
    }))
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

/// `GET /info`.
pub async fn info(State(state): State<AppState>) -> Response {
    let views = match state.engine.list().await {
        Ok(v) => v,
        Err(e) => return super::error::ApiError::from(e).into_response(),
    };
    let running = views
        .iter()
        .filter(|v| matches!(v.state, zlayer_runtime::ContainerState::Running))
        .count();
    let paused = views
        .iter()
        .filter(|v| matches!(v.state, zlayer_runtime::ContainerState::Paused))
        .count();
    let images = state.engine.images().list().map(|l| l.len()).unwrap_or(0);
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let isolations: Vec<String> = state
        .engine
        .isolations()
        .iter()
        .map(|i| i.to_string())
        .collect();
    let runtimes: serde_json::Map<String, Value> = isolations
        .iter()
        .map(|i| (i.clone(), json!({"path": format!("zlayer-{i}")})))
        .collect();
    Json(json!({
        "ID": "zlayer",
        "Containers": views.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": views.len() - running - paused,
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file"]},
        "MemoryLimit": true,
        "SwapLimit": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "PidsLimit": true,
        "IPv4Forwarding": true,
        "Debug": false,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": super::time::rfc3339(std::time::SystemTime::now()),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version(),
        "NEventsListener": 0,
        "KernelVersion": kernel_version(),
        "OperatingSystem": "zlayer",
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": []},
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem_total(),
        "DockerRootDir": state.engine.root().display().to_string(),
        "Name": host,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": VERSION,
        "Runtimes": runtimes,
        "DefaultRuntime": "container",
        "Isolation": "container",
        "LiveRestoreEnabled": true,
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": [],
    }))
    .into_response()
}
