//! Checks of one service's fields.

use std::collections::{BTreeMap, HashSet};

use super::Findings;
use crate::path::YamlPath;
use crate::{
    parse_signal, ByteSize, DurationSpec, HealthCheck, Isolation, NetworkMode, ScaleSpec,
    ServiceSpec, StorageSpec, ISOLATION_LABEL,
};

pub(super) fn check(svc: &ServiceSpec, path: &YamlPath, f: &mut Findings) {
    image(svc, path, f);
    command(svc, path, f);
    env_and_labels(svc, path, f);
    endpoints(svc, path, f);
    resources(svc, path, f);
    storage(svc, path, f);
    if let ScaleSpec::Fixed { replicas: 0 } = svc.scale {
        f.push(
            path.key("scale").key("replicas"),
            "replicas must be at least 1 (use mode: manual to scale by hand)",
        );
    }
    health(svc, path, f);
    for (i, dep) in svc.depends.iter().enumerate() {
        if let Some(timeout) = &dep.timeout {
            duration(
                timeout,
                &path.key("depends").index(i).key("timeout"),
                false,
                f,
            );
        }
    }
    if let Some(delay) = &svc.restart_policy.delay {
        duration(delay, &path.key("restart_policy").key("delay"), true, f);
    }
    if let Some(signal) = &svc.stop_signal {
        if parse_signal(signal).is_none() {
            f.push(
                path.key("stop_signal"),
                format!("\"{signal}\" is not a signal; use a name such as SIGTERM, TERM or a number 1-31"),
            );
        }
    }
    if let Some(grace) = &svc.stop_grace_period {
        duration(grace, &path.key("stop_grace_period"), true, f);
    }
    if let Some(user) = &svc.user {
        let parts: Vec<&str> = user.split(':').collect();
        if parts.len() > 2
            || parts
                .iter()
                .any(|p| p.is_empty() || p.contains(char::is_whitespace))
        {
            f.push(
                path.key("user"),
                format!(
                    "\"{user}\" is not a user; use a name, a uid, or uid:gid such as 1000:1000"
                ),
            );
        }
    }
}

fn image(svc: &ServiceSpec, path: &YamlPath, f: &mut Findings) {
    let name = svc.image.name.trim();
    let at = path.key("image").key("name");
    if name.is_empty() {
        f.push(
            at,
            "image name is empty; use e.g. docker.io/library/alpine:3.19",
        );
    } else if name.contains(char::is_whitespace) {
        f.push(
            at,
            format!("image name \"{name}\" contains spaces; use e.g. localhost:5000/web:1.2"),
        );
    }
}

fn command(svc: &ServiceSpec, path: &YamlPath, f: &mut Findings) {
    if let Some(dir) = &svc.command.workdir {
        if !dir.starts_with('/') {
            f.push(
                path.key("command").key("workdir"),
                format!("workdir \"{dir}\" must be an absolute path such as /app"),
            );
        }
    }
}

fn env_and_labels(svc: &ServiceSpec, path: &YamlPath, f: &mut Findings) {
    for key in svc.env.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            f.push(
                path.key("env").key(key.as_str()),
                format!("\"{key}\" is not an environment variable name; it must be non-empty without '='"),
            );
        }
    }
    if let Some(value) = svc.labels.get(ISOLATION_LABEL) {
        if let Err(e) = value.parse::<Isolation>() {
            f.push(path.key("labels").key(ISOLATION_LABEL), e.to_string());
        }
    }
}

fn endpoints(svc: &ServiceSpec, path: &YamlPath, f: &mut Findings) {
    let mut names = HashSet::new();
    for (i, ep) in svc.endpoints.iter().enumerate() {
        let at = path.key("endpoints").index(i);
        if ep.name.trim().is_empty() {
            f.push(at.key("name"), "endpoint name is empty; use e.g. http");
        } else if !names.insert(ep.name.as_str()) {
            f.push(
                at.key("name"),
                format!(
                    "endpoint name \"{}\" is used twice in this service; names must be unique",
                    ep.name
                ),
            );
        }
        if ep.port == 0 {
            f.push(at.key("port"), "0 is not a port number; use 1-65535");
        }
    }
    if !svc.port_mappings.is_empty()
        && matches!(svc.network_mode, NetworkMode::Host | NetworkMode::None)
    {
        f.push(
            path.key("port_mappings"),
            format!(
                "port_mappings need a bridge network, but network_mode is {}; remove them or use bridge",
                svc.network_mode
            ),
        );
    }
}

fn resources(svc: &ServiceSpec, path: &YamlPath, f: &mut Findings) {
    let at = path.key("resources");
    let r = &svc.resources;
    if let Some(cpu) = r.cpu {
        if !(cpu.is_finite() && cpu > 0.0) {
            f.push(
                at.key("cpu"),
                format!("cpu {cpu} must be more than 0, e.g. 0.5 or 2"),
            );
        }
    }
    if let Some(memory) = &r.memory {
        size(memory, &at.key("memory"), f);
    }
    if let Some(pids) = r.pids_limit {
        if pids == 0 || pids < -1 {
            f.push(
                at.key("pids_limit"),
                format!("pids_limit {pids} must be at least 1 (or -1 for no limit)"),
            );
        }
    }
    if let Some(gpu) = &r.gpu {
        if gpu.vendor.trim().is_empty() {
            f.push(
                at.key("gpu").key("vendor"),
                "gpu vendor is empty; use e.g. nvidia",
            );
        }
        if gpu.count == 0 {
            f.push(
                at.key("gpu").key("count"),
                "gpu count must be at least 1; remove gpu for none",
            );
        }
    }
}

/// Reports a size that cannot be read, or a zero size (never a usable limit).
fn size(value: &ByteSize, at: &YamlPath, f: &mut Findings) {
    match value.bytes() {
        Err(e) => f.push(at.clone(), e.to_string()),
        Ok(0) => f.push(
            at.clone(),
            "size 0 is not a usable limit; use e.g. 64Mi, or remove it",
        ),
        Ok(_) => {}
    }
}

/// Reports a duration that cannot be read (or is zero where `zero_ok` is false).
fn duration(value: &DurationSpec, at: &YamlPath, zero_ok: bool, f: &mut Findings) {
    match value.duration() {
        Err(e) => f.push(at.clone(), e.to_string()),
        Ok(d) if d.is_zero() && !zero_ok => {
            f.push(at.clone(), "must be more than 0; use e.g. 10s");
        }
        Ok(_) => {}
    }
}

fn storage(svc: &ServiceSpec, path: &YamlPath, f: &mut Findings) {
    let mut targets: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, st) in svc.storage.iter().enumerate() {
        let at = path.key("storage").index(i);
        let target = st.target();
        if !target.starts_with('/') {
            f.push(
                at.key("target"),
                format!("target \"{target}\" must be an absolute path such as /data"),
            );
        } else if let Some(first) = targets.insert(target, i) {
            f.push(
                at.key("target"),
                format!(
                    "target \"{target}\" is already mounted by storage[{first}]; each target once"
                ),
            );
        }
        match st {
            StorageSpec::Bind { source, .. } if !source.starts_with('/') => f.push(
                at.key("source"),
                format!("bind source \"{source}\" must be an absolute host path such as /srv/data"),
            ),
            StorageSpec::Named { name, .. } => {
                if let Err(why) = super::check_name(name) {
                    f.push(at.key("name"), format!("volume name {why}"));
                }
            }
            StorageSpec::Tmpfs { size: Some(s), .. } => size(s, &at.key("size"), f),
            _ => {}
        }
    }
}

fn health(svc: &ServiceSpec, path: &YamlPath, f: &mut Findings) {
    let Some(h) = &svc.health else {
        return;
    };
    let at = path.key("health");
    if let Some(d) = &h.start_grace {
        duration(d, &at.key("start_grace"), true, f);
    }
    if let Some(d) = &h.interval {
        duration(d, &at.key("interval"), false, f);
    }
    if let Some(d) = &h.timeout {
        duration(d, &at.key("timeout"), false, f);
    }
    let check = at.key("check");
    match &h.check {
        HealthCheck::Tcp { port: 0 } => {
            f.push(check.key("port"), "0 is not a port number; use 1-65535");
        }
        HealthCheck::Tcp { .. } => {}
        HealthCheck::Http { url, expect_status } => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                f.push(
                    check.key("url"),
                    format!(
                        "\"{url}\" is not an http(s) URL; use e.g. http://localhost:8080/health"
                    ),
                );
            }
            if let Some(status) = expect_status {
                if !(100..=599).contains(status) {
                    f.push(
                        check.key("expect_status"),
                        format!("{status} is not an HTTP status; use 100-599, e.g. 200"),
                    );
                }
            }
        }
        HealthCheck::Command { command } => {
            if command.first().is_none_or(|c| c.trim().is_empty()) {
                f.push(
                    check.key("command"),
                    "command is empty; use e.g. [\"pg_isready\"]",
                );
            }
        }
    }
}
