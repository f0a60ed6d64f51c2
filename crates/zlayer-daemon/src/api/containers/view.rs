//! `GET /containers/json` and `GET /containers/{id}/json`: containers in
//! docker's shapes.

use crate::api::error::ApiResult;
use crate::api::images::image_id;
use crate::api::time::{human_duration, rfc3339, unix, ZERO_TIME};
use crate::state::AppState;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::time::SystemTime;
use zlayer_engine::health::{HealthState, HealthStore};
use zlayer_engine::supervise::{SupervisionState, SupervisionStore};
use zlayer_engine::ContainerRecord;
use zlayer_image::{ImageConfig, ImageRecord};
use zlayer_runtime::{ContainerState, PortMappingEntry};
use zlayer_spec::{NetworkMode, RestartKind, StorageSpec};

/// Everything known about one container right now.
pub struct Snapshot {
    /// The catalog record.
    pub record: ContainerRecord,
    /// Its state.
    pub state: ContainerState,
    /// Host pid of its init, while it runs.
    pub pid: Option<u32>,
    /// Its own IP, if any.
    pub ip: Option<IpAddr>,
    /// Bound ports.
    pub ports: Vec<PortMappingEntry>,
    /// Health check status.
    pub health: Option<HealthState>,
    /// Supervision facts.
    pub sup: SupervisionState,
    /// The image and its config, when still stored.
    pub image: Option<(ImageRecord, ImageConfig)>,
}

impl Snapshot {
    /// Gathers the snapshot of `record` whose state is `state`.
    pub async fn gather(s: &AppState, record: ContainerRecord, state: ContainerState) -> Self {
        let e = &s.engine;
        let alive = state.is_alive();
        let (pid, ip, ports) = if alive {
            (
                e.pid(&record).await.ok().flatten(),
                e.ip(&record).await.ok().flatten(),
                e.ports(&record).await.unwrap_or_default(),
            )
        } else {
            (None, None, Vec::new())
        };
        let health = if record.spec.health.is_some() {
            HealthStore::open(s.engine.root())
                .load(&record.id)
                .ok()
                .flatten()
        } else {
            None
        };
        let sup = SupervisionStore::open(s.engine.root())
            .load(&record.id)
            .unwrap_or_default();
        let image = s
            .engine
            .images()
            .lookup(&record.image)
            .ok()
            .flatten()
            .and_then(|r| {
                let cfg = s.engine.images().image_config(&r).ok()?;
                Some((r, cfg))
            });
        Snapshot {
            record,
            state,
            pid,
            ip,
            ports,
            health,
            sup,
            image,
        }
    }

    fn config(&self) -> Option<&ImageConfig> {
        self.image.as_ref().map(|(_, c)| c)
    }

    /// The command the container runs: entrypoint + args, image defaults
    /// applied docker's way (an entrypoint override drops the image's Cmd).
    pub fn argv(&self) -> (Vec<String>, Vec<String>) {
        let c = &self.record.spec.command;
        let entrypoint = c
            .entrypoint
            .clone()
            .or_else(|| self.config().and_then(|i| i.entrypoint.clone()))
            .unwrap_or_default();
        let args = c
            .args
            .clone()
            .or_else(|| {
                if c.entrypoint.is_some() {
                    None
                } else {
                    self.config().and_then(|i| i.cmd.clone())
                }
            })
            .unwrap_or_default();
        (entrypoint, args)
    }

    /// Docker's `State.Status`.
    pub fn status(&self) -> &'static str {
        match &self.state {
            ContainerState::Pending => "created",
            ContainerState::Running | ContainerState::Stopping => "running",
            ContainerState::Paused => "paused",
            ContainerState::Exited { .. } | ContainerState::Failed { .. } => "exited",
        }
    }

    /// The exit code docker reports (0 while running).
    pub fn exit_code(&self) -> i32 {
        match &self.state {
            ContainerState::Exited { code } => *code,
            ContainerState::Failed { code, .. } => code.or(self.sup.last_exit_code).unwrap_or(127),
            _ => 0,
        }
    }

    fn started_at(&self) -> SystemTime {
        self.sup.last_started.unwrap_or(self.record.created)
    }

    /// `Up 3 seconds (healthy)`, `Exited (3)`, `Created`.
    pub fn status_text(&self) -> String {
        let up = || {
            human_duration(
                SystemTime::now()
                    .duration_since(self.started_at())
                    .unwrap_or_default(),
            )
        };
        let health = self
            .health
            .as_ref()
            .map(|h| match h.status {
                zlayer_engine::health::HealthStatus::Starting => " (health: starting)".to_string(),
                other => format!(" ({other})"),
            })
            .unwrap_or_default();
        match &self.state {
            ContainerState::Pending => "Created".into(),
            ContainerState::Running | ContainerState::Stopping => format!("Up {}{health}", up()),
            ContainerState::Paused => format!("Up {} (Paused)", up()),
            ContainerState::Exited { code } => format!("Exited ({code})"),
            ContainerState::Failed { reason, .. } => {
                format!("Exited ({}): {reason}", self.exit_code())
            }
        }
    }

    fn network_mode(&self) -> String {
        match &self.record.spec.network_mode {
            NetworkMode::Bridge => "bridge".into(),
            NetworkMode::Host => "host".into(),
            NetworkMode::None => "none".into(),
            NetworkMode::BridgeNamed(n) => n.clone(),
        }
    }

    fn image_id(&self) -> String {
        self.image
            .as_ref()
            .map(|(r, _)| image_id(r))
            .unwrap_or_default()
    }

    /// One entry of `GET /containers/json`.
    pub fn list_entry(&self) -> Value {
        let (ep, args) = self.argv();
        let command = ep.into_iter().chain(args).collect::<Vec<_>>().join(" ");
        let ports: Vec<Value> = self
            .ports
            .iter()
            .map(|p| {
                json!({"IP": p.host_ip, "PrivatePort": p.container_port,
                       "PublicPort": p.host_port, "Type": p.protocol.transport().to_string()})
            })
            .collect();
        json!({
            "Id": self.record.id,
            "Names": [format!("/{}", self.record.name)],
            "Image": self.record.image,
            "ImageID": self.image_id(),
            "Command": command,
            "Created": unix(self.record.created),
            "Ports": ports,
            "Labels": self.record.labels,
            "State": self.status(),
            "Status": self.status_text(),
            "HostConfig": {"NetworkMode": self.network_mode()},
            "NetworkSettings": {"Networks": self.networks()},
            "Mounts": self.mounts(),
        })
    }

    fn networks(&self) -> Value {
        let ip = self.ip.map(|i| i.to_string()).unwrap_or_default();
        let mut m = Map::new();
        m.insert(
            self.network_mode(),
            json!({"IPAddress": ip, "IPPrefixLen": 0, "Gateway": "", "MacAddress": "",
                   "NetworkID": "", "EndpointID": ""}),
        );
        Value::Object(m)
    }

    fn mounts(&self) -> Vec<Value> {
        self.record
            .spec
            .storage
            .iter()
            .map(|s| match s {
                StorageSpec::Bind {
                    source,
                    target,
                    readonly,
                } => json!({
                    "Type": "bind", "Source": source, "Destination": target, "RW": !readonly,
                    "Mode": if *readonly { "ro" } else { "" }, "Propagation": "rprivate"}),
                StorageSpec::Named {
                    name,
                    target,
                    readonly,
                } => json!({
                    "Type": "volume", "Name": name, "Source": "", "Destination": target,
                    "RW": !readonly, "Driver": "local", "Mode": ""}),
                StorageSpec::Anonymous { target } => json!({
                    "Type": "volume", "Name": "", "Source": "", "Destination": target,
                    "RW": true, "Driver": "local", "Mode": ""}),
                StorageSpec::Tmpfs { target, .. } => json!({
                    "Type": "tmpfs", "Source": "", "Destination": target, "RW": true, "Mode": ""}),
            })
            .collect()
    }

    fn port_map(&self) -> Value {
        let mut m = Map::new();
        for p in &self.ports {
            let key = format!("{}/{}", p.container_port, p.protocol.transport());
            let entry = m.entry(key).or_insert_with(|| json!([]));
            if let Some(a) = entry.as_array_mut() {
                a.push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
            }
        }
        Value::Object(m)
    }

    fn port_bindings(&self) -> Value {
        let mut m = Map::new();
        for p in &self.record.spec.port_mappings {
            let key = format!("{}/{}", p.container_port, p.protocol.transport());
            let entry = m.entry(key).or_insert_with(|| json!([]));
            if let Some(a) = entry.as_array_mut() {
                a.push(json!({
                    "HostIp": p.host_ip.clone().unwrap_or_default(),
                    "HostPort": p.host_port.map(|h| h.to_string()).unwrap_or_default()
                }));
            }
        }
        Value::Object(m)
    }

    fn env(&self) -> Vec<String> {
        let mut env: Vec<String> = self
            .config()
            .map(|c| c.env.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|kv| {
                let k = kv.split('=').next().unwrap_or_default();
                !self.record.spec.env.contains_key(k)
            })
            .collect();
        env.extend(self.record.spec.env.iter().map(|(k, v)| format!("{k}={v}")));
        env
    }

    fn health_json(&self) -> Option<Value> {
        let h = self.health.as_ref()?;
        let log: Vec<Value> = h
            .log
            .iter()
            .map(|e| {
                json!({"Start": rfc3339(e.start), "End": rfc3339(e.end),
                            "ExitCode": e.exit_code, "Output": e.output})
            })
            .collect();
        Some(json!({"Status": h.status.to_string(), "FailingStreak": h.failing_streak, "Log": log}))
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self) -> Value {
        let (ep, args) = self.argv();
        let mut argv = ep.iter().chain(args.iter());
        let path = argv.next().cloned().unwrap_or_default();
        let rest: Vec<String> = argv.cloned().collect();
        let alive = self.state.is_alive();
        let error = match &self.state {
            ContainerState::Failed { reason, .. } => reason.clone(),
            _ => String::new(),
        };
        let r = &self.record;
        let spec = &r.spec;
        let restart_name = match spec.restart_policy.kind {
            RestartKind::No => "no",
            RestartKind::Always => "always",
            RestartKind::OnFailure => "on-failure",
            RestartKind::UnlessStopped => "unless-stopped",
        };
        let mut state = json!({
            "Status": self.status(),
            "Running": alive,
            "Paused": matches!(self.state, ContainerState::Paused),
            "Restarting": self.sup.restart_due.is_some() && !alive,
            "OOMKilled": error.contains("OOM") || error.contains("out of memory"),
            "Dead": false,
            "Pid": self.pid.unwrap_or(0),
            "ExitCode": self.exit_code(),
            "Error": error,
            "StartedAt": if matches!(self.state, ContainerState::Pending) { ZERO_TIME.to_string() } else { rfc3339(self.started_at()) },
            "FinishedAt": ZERO_TIME,
        });
        if let Some(h) = self.health_json() {
            state["Health"] = h;
        }
        let ip = self.ip.map(|i| i.to_string()).unwrap_or_default();
        let isolation = spec
            .labels
            .get(zlayer_spec::ISOLATION_LABEL)
            .cloned()
            .unwrap_or_else(|| r.isolation.to_string());
        json!({
            "Id": r.id,
            "Created": rfc3339(r.created),
            "Path": path,
            "Args": rest,
            "State": state,
            "Image": self.image_id(),
            "ResolvConfPath": "",
            "HostnamePath": "",
            "HostsPath": "",
            "LogPath": "",
            "Name": format!("/{}", r.name),
            "RestartCount": r.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": null,
            "HostConfig": {
                "Binds": null,
                "NetworkMode": self.network_mode(),
                "PortBindings": self.port_bindings(),
                "RestartPolicy": {"Name": restart_name, "MaximumRetryCount": spec.restart_policy.max_attempts.unwrap_or(0)},
                "AutoRemove": r.auto_remove,
                "Isolation": isolation,
                "Memory": spec.resources.memory.as_ref().and_then(|m| m.bytes().ok()).unwrap_or(0),
                "NanoCpus": spec.resources.cpu.map(|c| (c * 1e9) as i64).unwrap_or(0),
                "PidsLimit": spec.resources.pids_limit,
                "LogConfig": {"Type": "json-file", "Config": {}},
                "Runtime": r.isolation,
            },
            "GraphDriver": {"Name": "overlay2", "Data": null},
            "Mounts": self.mounts(),
            "Config": {
                "Hostname": r.short_id(),
                "Domainname": "",
                "User": spec.user.clone().or_else(|| self.config().and_then(|c| c.user.clone())).unwrap_or_default(),
                "AttachStdin": false,
                "AttachStdout": true,
                "AttachStderr": true,
                "Tty": r.tty,
                "OpenStdin": r.interactive,
                "StdinOnce": r.interactive,
                "Env": self.env(),
                "Cmd": if args.is_empty() { Value::Null } else { json!(args) },
                "Image": r.image,
                "Volumes": null,
                "WorkingDir": spec.command.workdir.clone().or_else(|| self.config().and_then(|c| c.working_dir.clone())).unwrap_or_default(),
                "Entrypoint": if ep.is_empty() { Value::Null } else { json!(ep) },
                "OnBuild": null,
                "Labels": r.labels,
                "StopSignal": spec.stop_signal.clone().or_else(|| self.config().and_then(|c| c.stop_signal.clone())),
            },
            "NetworkSettings": {
                "Bridge": "",
                "SandboxID": "",
                "Ports": self.port_map(),
                "IPAddress": ip,
                "Gateway": "",
                "MacAddress": "",
                "Networks": self.networks(),
            },
        })
    }
}

/// Whether a snapshot passes docker's `filters` (id, name, label, status, exited).
pub fn matches_filters(
    snap: &Snapshot,
    filters: &std::collections::HashMap<String, Vec<String>>,
) -> bool {
    filters.iter().all(|(key, values)| {
        values.is_empty()
            || values.iter().any(|v| match key.as_str() {
                "id" => snap.record.id.starts_with(v.as_str()),
                "name" => snap.record.name.contains(v.trim_start_matches('/')),
                "label" => match v.split_once('=') {
                    Some((k, val)) => snap.record.labels.get(k).is_some_and(|x| x == val),
                    None => snap.record.labels.contains_key(v),
                },
                "status" => snap.status() == v,
                "exited" => {
                    !snap.state.is_alive() && v.parse::<i32>().ok() == Some(snap.exit_code())
                }
                "ancestor" => snap.record.image == *v,
                _ => true,
            })
    })
}

/// Snapshots of every container (running only unless `all`).
pub async fn list(s: &AppState, all: bool) -> ApiResult<Vec<Snapshot>> {
    let mut out = Vec::new();
    for view in s.engine.list().await? {
        if all || view.state.is_alive() {
            out.push(Snapshot::gather(s, view.record, view.state).await);
        }
    }
    out.reverse();
    Ok(out)
}
