//! `POST /containers/create`: docker's container config → a zlayer
//! [`CreateRequest`].

use crate::api::error::ApiError;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::time::Duration;
use zlayer_engine::CreateRequest;
use zlayer_spec::{
    ByteSize, DurationSpec, HealthCheck, HealthSpec, NetworkMode, PortMapping, Protocol,
    PullPolicy, RestartKind, RestartPolicy, ServiceSpec, StorageSpec, ISOLATION_LABEL,
};

/// The label that keeps the workload's stdin open (`docker run -i`).
pub use zlayer_spec::labels::STDIN_LABEL;

/// Docker's `StrSlice`: a string or a list of strings (or null).
fn str_slice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<S>::deserialize(d)? {
        None => None,
        Some(S::One(s)) => Some(vec![s]),
        Some(S::Many(v)) => Some(v),
    })
}

/// The parts of docker's container config zlayer uses; the rest is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateBody {
    /// `--user`.
    pub user: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub open_stdin: bool,
    /// `KEY=value` pairs.
    pub env: Option<Vec<String>>,
    /// Arguments (replace the image's Cmd).
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    /// Entrypoint override.
    #[serde(deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    /// The image.
    pub image: Option<String>,
    /// Labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// `-w`.
    pub working_dir: Option<String>,
    /// `--stop-signal`.
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds.
    pub stop_timeout: Option<i64>,
    /// `--health-*`.
    pub healthcheck: Option<HealthConfig>,
    /// Host-side settings.
    pub host_config: Option<HostConfig>,
}

/// Docker's health check config (durations in nanoseconds).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Option<Vec<String>>,
    /// Between probes.
    pub interval: Option<i64>,
    /// Per probe.
    pub timeout: Option<i64>,
    /// Start grace.
    pub start_period: Option<i64>,
    /// Failures before unhealthy.
    pub retries: Option<i64>,
}

/// Docker's `HostConfig` (the parts zlayer maps).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `-v SRC:DST[:ro]`.
    pub binds: Option<Vec<String>>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--restart`.
    pub restart_policy: Option<RestartPolicyBody>,
    /// `-p`: `"80/tcp": [{"HostIp": "", "HostPort": "8080"}]`.
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    /// `--network`.
    pub network_mode: Option<String>,
    /// `--memory` in bytes.
    pub memory: Option<i64>,
    /// `--cpus` in billionths of a CPU.
    pub nano_cpus: Option<i64>,
    /// `--cpu-quota`.
    pub cpu_quota: Option<i64>,
    /// `--cpu-period`.
    pub cpu_period: Option<i64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--tmpfs PATH[:size=N]`.
    pub tmpfs: Option<BTreeMap<String, String>>,
    /// `--isolation`: `container`, `sandbox` or `vm` (`default`/empty: unset).
    pub isolation: Option<String>,
}

/// Docker's restart policy.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicyBody {
    /// `no`, `always`, `on-failure`, `unless-stopped`.
    pub name: Option<String>,
    /// For `on-failure`: at most this many restarts (0: unlimited).
    pub maximum_retry_count: Option<i64>,
}

/// One host binding of a port.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    /// Host address (empty: all).
    pub host_ip: Option<String>,
    /// Host port (empty: pick one).
    pub host_port: Option<String>,
}

fn bad(msg: String) -> ApiError {
    ApiError::bad_request(msg)
}

fn parse_restart(p: &RestartPolicyBody) -> Result<RestartPolicy, ApiError> {
    RestartPolicy::from_docker(
        p.name.as_deref().unwrap_or(""),
        p.maximum_retry_count.unwrap_or(0),
    )
    .map_err(bad)
}

fn parse_ports(
    bindings: &BTreeMap<String, Option<Vec<PortBinding>>>,
) -> Result<Vec<PortMapping>, ApiError> {
    let mut out = Vec::new();
    for (key, hosts) in bindings {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let container_port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(format!("invalid container port {key:?} in PortBindings")))?;
        let protocol = match proto {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => {
                return Err(bad(format!(
                    "unsupported protocol {other:?} in PortBindings; use tcp or udp"
                )))
            }
        };
        let hosts = hosts.as_deref().unwrap_or_default();
        let defaults = [PortBinding::default()];
        let hosts = if hosts.is_empty() {
            &defaults[..]
        } else {
            hosts
        };
        for h in hosts {
            let host_port = match h.host_port.as_deref().unwrap_or("") {
                "" => None,
                p => Some(p.parse::<u16>().map_err(|_| {
                    bad(format!("invalid host port {p:?} for {key} in PortBindings"))
                })?),
            };
            out.push(PortMapping {
                host_port,
                container_port,
                protocol,
                host_ip: h.host_ip.clone().filter(|s| !s.is_empty()),
            });
        }
    }
    Ok(out)
}

fn parse_bind(b: &str) -> Result<StorageSpec, ApiError> {
    let parts: Vec<&str> = b.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => return Err(bad(format!("invalid bind {b:?}; expected SRC:DST[:ro]"))),
    };
    if !dst.starts_with('/') {
        return Err(bad(format!(
            "invalid bind {b:?}: the container path must be absolute"
        )));
    }
    let mut readonly = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" => readonly = false,
            "z" | "Z" | "rprivate" | "private" | "rslave" | "slave" | "nocopy" => {}
            other => {
                return Err(bad(format!(
                    "invalid bind option {other:?} in {b:?}; use ro or rw"
                )))
            }
        }
    }
    Ok(if src.starts_with('/') {
        StorageSpec::Bind {
            source: src.into(),
            target: dst.into(),
            readonly,
        }
    } else {
        StorageSpec::Named {
            name: src.into(),
            target: dst.into(),
            readonly,
        }
    })
}

fn nanos(v: Option<i64>) -> Option<DurationSpec> {
    v.filter(|n| *n > 0)
        .map(|n| DurationSpec::from_duration(Duration::from_nanos(n as u64)))
}

fn parse_health(h: &HealthConfig) -> Result<Option<HealthSpec>, ApiError> {
    let test = h.test.clone().unwrap_or_default();
    let command = match test.split_first() {
        None => return Ok(None),
        Some((kind, _)) if kind == "NONE" => return Ok(None),
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => rest.to_vec(),
        Some((kind, rest)) if kind == "CMD-SHELL" && rest.len() == 1 => {
            vec!["/bin/sh".into(), "-c".into(), rest[0].clone()]
        }
        _ => {
            return Err(bad(format!(
                "invalid Healthcheck.Test {test:?}; use [\"CMD\", ...] or [\"CMD-SHELL\", \"...\"]"
            )))
        }
    };
    Ok(Some(HealthSpec {
        start_grace: nanos(h.start_period),
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        retries: h.retries.filter(|r| *r > 0).map(|r| r as u32).unwrap_or(3),
        check: HealthCheck::Command { command },
    }))
}

/// Builds the create request for `body` (container `name`, if given).
/// The image must already be resolved to a stored reference.
pub fn to_request(
    body: &CreateBody,
    name: Option<String>,
    image: &str,
) -> Result<CreateRequest, ApiError> {
    let mut spec = ServiceSpec::minimal(name.clone().unwrap_or_default(), image);
    // The daemon never pulls on create (docker answers 404 and the client pulls).
    spec.image.pull_policy = PullPolicy::Never;
    spec.command.entrypoint = body.entrypoint.clone().map(|e| {
        if e.len() == 1 && e[0].is_empty() {
            Vec::new()
        } else {
            e
        }
    });
    spec.command.args = body.cmd.clone();
    spec.command.workdir = body.working_dir.clone().filter(|w| !w.is_empty());
    spec.user = body.user.clone().filter(|u| !u.is_empty());
    spec.stop_signal = body.stop_signal.clone().filter(|s| !s.is_empty());
    if let Some(sig) = &spec.stop_signal {
        zlayer_runtime::validate_signal(sig).map_err(|e| bad(e.to_string()))?;
    }
    if let Some(t) = body.stop_timeout.filter(|t| *t >= 0) {
        spec.stop_grace_period = Some(DurationSpec::from_duration(Duration::from_secs(t as u64)));
    }
    for kv in body.env.iter().flatten() {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                spec.env.insert(k.into(), v.into());
            }
            _ => {}
        }
    }
    spec.labels = body.labels.clone().unwrap_or_default();
    if let Some(h) = &body.healthcheck {
        spec.health = parse_health(h)?;
    }
    // The engine adds the terminal label for `req.tty` (and refuses the
    // isolations without terminals).
    if body.open_stdin {
        spec.labels.insert(STDIN_LABEL.into(), "true".into());
    }
    let hc = body.host_config.as_ref();
    if let Some(hc) = hc {
        if let Some(iso) = hc
            .isolation
            .as_deref()
            .filter(|i| !i.is_empty() && *i != "default")
        {
            iso.parse::<zlayer_spec::Isolation>().map_err(|_| {
                bad(format!(
                    "invalid isolation {iso:?}; use container, sandbox or vm"
                ))
            })?;
            spec.labels.insert(ISOLATION_LABEL.into(), iso.into());
        }
        if let Some(p) = &hc.restart_policy {
            spec.restart_policy = parse_restart(p)?;
        }
        if hc.auto_remove && spec.restart_policy.kind != RestartKind::No {
            return Err(ApiError::conflict(
                "conflicting options: cannot specify both --restart and --rm",
            ));
        }
        if let Some(pb) = &hc.port_bindings {
            spec.port_mappings = parse_ports(pb)?;
        }
        match hc.network_mode.as_deref().unwrap_or("") {
            "" | "default" | "bridge" => {}
            mode => {
                spec.network_mode = mode
                    .parse::<NetworkMode>()
                    .or_else(|_| format!("bridge:{mode}").parse::<NetworkMode>())
                    .map_err(|e| bad(format!("invalid network mode {mode:?}: {e}")))?;
            }
        }
        if let Some(m) = hc.memory.filter(|m| *m > 0) {
            spec.resources.memory = Some(ByteSize::from_bytes(m as u64));
        }
        if let Some(n) = hc.nano_cpus.filter(|n| *n > 0) {
            spec.resources.cpu = Some(n as f64 / 1e9);
        } else if let (Some(q), Some(p)) = (
            hc.cpu_quota.filter(|q| *q > 0),
            hc.cpu_period.filter(|p| *p > 0),
        ) {
            spec.resources.cpu = Some(q as f64 / p as f64);
        }
        spec.resources.pids_limit = hc.pids_limit.filter(|p| *p > 0);
        for b in hc.binds.iter().flatten() {
            spec.storage.push(parse_bind(b)?);
        }
        for (target, opts) in hc.tmpfs.iter().flatten() {
            if !target.starts_with('/') {
                return Err(bad(format!(
                    "invalid tmpfs {target:?}: the path must be absolute"
                )));
            }
            let size = opts
                .split(',')
                .find_map(|o| o.strip_prefix("size="))
                .map(|s| {
                    let lower = s.to_ascii_lowercase();
                    let converted = [("k", "Ki"), ("m", "Mi"), ("g", "Gi")]
                        .iter()
                        .find_map(|(suf, unit)| {
                            lower.strip_suffix(suf).map(|n| format!("{n}{unit}"))
                        })
                        .unwrap_or_else(|| s.to_string());
                    ByteSize::parse(&converted)
                        .map_err(|e| bad(format!("invalid tmpfs size {s:?}: {e}")))
                })
                .transpose()?;
            spec.storage.push(StorageSpec::Tmpfs {
                target: target.clone(),
                size,
            });
        }
    }
    let mut req = CreateRequest::new(spec);
    req.name = name;
    req.interactive = body.open_stdin;
    req.tty = body.tty;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: serde_json::Value) -> CreateBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn docker_cli_body_maps_to_a_spec() {
        let b = body(serde_json::json!({
            "Hostname": "", "AttachStdout": true, "Tty": false, "OpenStdin": true,
            "Env": ["A=1", "B=x=y"], "Cmd": ["sh", "-c", "exit 3"], "Image": "busybox",
            "Entrypoint": null, "Labels": {"k": "v", "com.zlayer.isolation": "sandbox"},
            "WorkingDir": "/tmp", "StopTimeout": 2, "UnknownField": {"x": 1},
            "HostConfig": {
                "AutoRemove": false, "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}], "53/udp": null},
                "NetworkMode": "default", "Memory": 268435456, "NanoCpus": 500000000,
                "PidsLimit": 0, "Binds": ["/srv:/www:ro", "data:/data"], "Tmpfs": {"/run": "size=64m"},
                "Isolation": "", "LogConfig": {"Type": "", "Config": {}}
            }
        }));
        let req = to_request(&b, Some("web".into()), "busybox").unwrap();
        let s = &req.spec;
        assert_eq!(req.name.as_deref(), Some("web"));
        assert!(req.interactive && !req.tty);
        assert_eq!(s.command.args.as_ref().unwrap()[2], "exit 3");
        assert_eq!(s.env["B"], "x=y");
        assert_eq!(s.labels[ISOLATION_LABEL], "sandbox");
        assert_eq!(s.labels[STDIN_LABEL], "true");
        assert_eq!(s.restart_policy.kind, RestartKind::OnFailure);
        assert_eq!(s.restart_policy.max_attempts, Some(3));
        assert_eq!(s.port_mappings.len(), 2);
        assert_eq!(s.port_mappings[1].host_port, Some(18080));
        assert_eq!(
            s.resources.memory.as_ref().unwrap().bytes().unwrap(),
            256 << 20
        );
        assert_eq!(s.resources.cpu, Some(0.5));
        assert_eq!(s.resources.pids_limit, None);
        assert_eq!(s.storage.len(), 3);
        assert_eq!(
            s.stop_grace_period.as_ref().unwrap().duration().unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(s.image.pull_policy, PullPolicy::Never);
    }

    #[test]
    fn isolation_tty_and_string_cmd() {
        let b = body(serde_json::json!({
            "Image": "busybox", "Cmd": "echo hi", "Tty": true,
            "HostConfig": {"Isolation": "vm", "NetworkMode": "host"}
        }));
        let req = to_request(&b, None, "busybox").unwrap();
        assert_eq!(req.spec.command.args, Some(vec!["echo hi".to_string()]));
        assert_eq!(req.spec.labels[ISOLATION_LABEL], "vm");
        assert_eq!(req.spec.network_mode, NetworkMode::Host);
        assert!(req.tty);
    }

    #[test]
    fn bad_values_are_400_or_409() {
        for (v, status) in [
            (
                serde_json::json!({"HostConfig": {"Isolation": "hyperv"}}),
                400,
            ),
            (
                serde_json::json!({"HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}),
                400,
            ),
            (
                serde_json::json!({"HostConfig": {"PortBindings": {"x/tcp": []}}}),
                400,
            ),
            (
                serde_json::json!({"HostConfig": {"Binds": ["/a:rel"]}}),
                400,
            ),
            (serde_json::json!({"StopSignal": "SIGNOPE"}), 400),
            (serde_json::json!({"Healthcheck": {"Test": ["BOGUS"]}}), 400),
            (
                serde_json::json!({"HostConfig": {"AutoRemove": true, "RestartPolicy": {"Name": "always"}}}),
                409,
            ),
        ] {
            let err = to_request(&body(v.clone()), None, "busybox").unwrap_err();
            assert_eq!(err.status.as_u16(), status, "{v}: {}", err.message);
        }
    }

    #[test]
    fn healthcheck_maps_to_a_command_check() {
        let b = body(serde_json::json!({
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 1000000000i64, "Retries": 2}
        }));
        let h = to_request(&b, None, "busybox")
            .unwrap()
            .spec
            .health
            .unwrap();
        assert_eq!(h.retries, 2);
        assert_eq!(
            h.interval.unwrap().duration().unwrap(),
            Duration::from_secs(1)
        );
        assert!(matches!(h.check, HealthCheck::Command { ref command } if command[0] == "/bin/sh"));
    }
}
