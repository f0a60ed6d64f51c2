//! Turns `run`/`create` flags into a [`ServiceSpec`], docker's way.

use crate::cli::ContainerOptions;
use anyhow::{bail, Context};
use zlayer_spec::{
    ByteSize, NetworkMode, PortMapping, Protocol, PullPolicy, RestartPolicy, ServiceSpec,
    StorageSpec, ISOLATION_LABEL,
};

/// Builds the spec of a single container from command-line flags.
pub fn service_spec(opts: &ContainerOptions) -> anyhow::Result<ServiceSpec> {
    let name = opts.name.clone().unwrap_or_default();
    let mut spec = ServiceSpec::minimal(name, opts.image.clone());
    spec.image.pull_policy = parse_pull_policy(&opts.pull)?;
    if let Some(ep) = &opts.entrypoint {
        spec.command.entrypoint = Some(if ep.is_empty() {
            Vec::new()
        } else {
            vec![ep.clone()]
        });
    }
    if !opts.command.is_empty() {
        spec.command.args = Some(opts.command.clone());
    }
    spec.command.workdir = opts.workdir.clone();
    spec.user = opts.user.clone();
    spec.stop_signal = opts.stop_signal.clone();
    if let Some(r) = &opts.restart {
        spec.restart_policy =
            RestartPolicy::parse_docker_flag(r).map_err(|e| anyhow::anyhow!("--restart: {e}"))?;
    }
    for kv in &opts.env {
        let (k, v) = split_kv(kv, "-e")?;
        let v = match v {
            Some(v) => v,
            // `-e NAME` passes the caller's value, as docker does.
            None => std::env::var(&k).unwrap_or_default(),
        };
        spec.env.insert(k, v);
    }
    for kv in &opts.label {
        let (k, v) = split_kv(kv, "--label")?;
        spec.labels.insert(k, v.unwrap_or_default());
    }
    if let Some(iso) = &opts.isolation {
        spec.labels.insert(ISOLATION_LABEL.into(), iso.clone());
    }
    if let Some(net) = &opts.network {
        spec.network_mode = parse_network(net)?;
    }
    if let Some(mem) = &opts.memory {
        spec.resources.memory = Some(parse_memory(mem)?);
    }
    if let Some(cpus) = opts.cpus {
        if cpus <= 0.0 || !cpus.is_finite() {
            bail!("--cpus {cpus}: must be a positive number of CPUs, e.g. 0.5 or 2");
        }
        spec.resources.cpu = Some(cpus);
    }
    spec.resources.pids_limit = opts.pids_limit;
    for p in &opts.publish {
        spec.port_mappings.push(parse_publish(p)?);
    }
    for v in &opts.volume {
        spec.storage.push(parse_volume(v)?);
    }
    for t in &opts.tmpfs {
        let (target, size) = match t.split_once(':') {
            Some((target, o)) => (
                target,
                o.strip_prefix("size=").map(parse_memory).transpose()?,
            ),
            None => (t.as_str(), None),
        };
        require_absolute(target, "--tmpfs")?;
        spec.storage.push(StorageSpec::Tmpfs {
            target: target.to_string(),
            size,
        });
    }
    Ok(spec)
}

/// `none`, `host`, `bridge`, `bridge:NAME` or a network's bare `NAME`.
fn parse_network(net: &str) -> anyhow::Result<NetworkMode> {
    net.parse::<NetworkMode>()
        .or_else(|_| format!("bridge:{net}").parse::<NetworkMode>())
        .map_err(|e| {
            anyhow::anyhow!(
                "--network {net}: {e}; use none, host, bridge or the name of a network \
                 (`zlayer network ls`)"
            )
        })
}

/// `always`, `if_not_present` (or docker's `missing`), `never`, `newer`.
pub fn parse_pull_policy(s: &str) -> anyhow::Result<PullPolicy> {
    let normalized = match s {
        "missing" | "if-not-present" => "if_not_present",
        other => other,
    };
    normalized.parse::<PullPolicy>().map_err(|_| {
        anyhow::anyhow!("unknown pull policy {s:?}; use always, if_not_present, never or newer")
    })
}

fn split_kv(kv: &str, flag: &str) -> anyhow::Result<(String, Option<String>)> {
    let (k, v) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (kv, None),
    };
    if k.is_empty() {
        bail!("{flag} {kv:?}: expected KEY=VALUE");
    }
    Ok((k.to_string(), v))
}

/// Docker memory strings (`512m`, `1g`, `1024k`, bytes) and zlayer sizes (`512Mi`).
fn parse_memory(s: &str) -> anyhow::Result<ByteSize> {
    let lower = s.to_ascii_lowercase();
    let docker = [
        ("b", ""),
        ("k", "Ki"),
        ("m", "Mi"),
        ("g", "Gi"),
        ("t", "Ti"),
    ];
    let converted = docker
        .iter()
        .find_map(|(suffix, unit)| {
            lower
                .strip_suffix(suffix)
                .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
                .map(|n| format!("{n}{unit}"))
        })
        .unwrap_or_else(|| s.to_string());
    let size = ByteSize::parse(&converted).map_err(|e| anyhow::anyhow!("--memory {s}: {e}"))?;
    size.bytes().with_context(|| format!("--memory {s}"))?;
    Ok(size)
}

/// `[IP:]HOST:CONTAINER[/proto]` or `CONTAINER[/proto]`.
fn parse_publish(p: &str) -> anyhow::Result<PortMapping> {
    let bad = || {
        anyhow::anyhow!(
            "-p {p:?}: expected [IP:]HOST_PORT:CONTAINER_PORT[/udp] or CONTAINER_PORT, e.g. 127.0.0.1:8080:80"
        )
    };
    let (ports, proto) = match p.rsplit_once('/') {
        Some((ports, proto)) => (ports, proto.parse::<Protocol>().map_err(|_| bad())?),
        None => (p, Protocol::Tcp),
    };
    let parts: Vec<&str> = ports.rsplitn(3, ':').collect();
    let port = |s: &str| s.parse::<u16>().map_err(|_| bad());
    let (host_ip, host_port, container_port) = match parts.as_slice() {
        [c] => (None, None, port(c)?),
        [c, h] => (None, Some(port(h)?), port(c)?),
        [c, h, ip] => (
            Some(
                ip.trim_matches(|ch| ch == '[' || ch == ']')
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| bad())?
                    .to_string(),
            ),
            if h.is_empty() { None } else { Some(port(h)?) },
            port(c)?,
        ),
        _ => return Err(bad()),
    };
    if container_port == 0 {
        return Err(bad());
    }
    Ok(PortMapping {
        host_port,
        container_port,
        protocol: proto,
        host_ip,
    })
}

/// `SRC:DST[:ro|rw]`: SRC absolute → bind, else a named volume; `DST` alone → anonymous.
fn parse_volume(v: &str) -> anyhow::Result<StorageSpec> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [dst] => {
            require_absolute(dst, "-v")?;
            return Ok(StorageSpec::Anonymous {
                target: dst.to_string(),
            });
        }
        [src, dst] => (*src, *dst, "rw"),
        [src, dst, mode] => (*src, *dst, *mode),
        _ => bail!("-v {v:?}: expected SRC:DST[:ro]"),
    };
    let readonly = match mode {
        "ro" => true,
        "rw" | "" => false,
        other => bail!("-v {v:?}: unknown mode {other:?}; use ro or rw"),
    };
    require_absolute(dst, "-v")?;
    if src.starts_with('/') {
        Ok(StorageSpec::Bind {
            source: src.to_string(),
            target: dst.to_string(),
            readonly,
        })
    } else {
        Ok(StorageSpec::Named {
            name: src.to_string(),
            target: dst.to_string(),
            readonly,
        })
    }
}

fn require_absolute(path: &str, flag: &str) -> anyhow::Result<()> {
    if path.starts_with('/') {
        Ok(())
    } else {
        bail!("{flag}: container path {path:?} must be absolute, e.g. /data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_forms() {
        let p = parse_publish("127.0.0.1:18080:80").unwrap();
        assert_eq!(
            (p.host_ip.as_deref(), p.host_port, p.container_port),
            (Some("127.0.0.1"), Some(18080), 80)
        );
        let p = parse_publish("18080:80/udp").unwrap();
        assert_eq!((p.host_port, p.protocol), (Some(18080), Protocol::Udp));
        let p = parse_publish("80").unwrap();
        assert_eq!((p.host_port, p.container_port), (None, 80));
        for bad in ["", "x:80", "80/sctp", "1:2:3:4", "0", "70000"] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn network_forms() {
        assert_eq!(parse_network("none").unwrap(), NetworkMode::None);
        assert_eq!(parse_network("bridge").unwrap(), NetworkMode::Bridge);
        assert_eq!(
            parse_network("backend").unwrap(),
            NetworkMode::BridgeNamed("backend".into())
        );
        assert_eq!(
            parse_network("bridge:backend").unwrap(),
            NetworkMode::BridgeNamed("backend".into())
        );
        assert!(parse_network("no/such").is_err());
    }

    #[test]
    fn volume_forms() {
        assert!(matches!(
            parse_volume("/srv:/www:ro").unwrap(),
            StorageSpec::Bind { readonly: true, .. }
        ));
        assert!(matches!(
            parse_volume("data:/data").unwrap(),
            StorageSpec::Named {
                readonly: false,
                ..
            }
        ));
        assert!(matches!(
            parse_volume("/cache").unwrap(),
            StorageSpec::Anonymous { .. }
        ));
        assert!(parse_volume("data:rel").is_err());
        assert!(parse_volume("/a:/b:xx").is_err());
    }

    #[test]
    fn memory_forms() {
        assert_eq!(parse_memory("512m").unwrap().bytes().unwrap(), 512 << 20);
        assert_eq!(parse_memory("1g").unwrap().bytes().unwrap(), 1 << 30);
        assert_eq!(parse_memory("64Mi").unwrap().bytes().unwrap(), 64 << 20);
        assert_eq!(parse_memory("1000").unwrap().bytes().unwrap(), 1000);
        assert!(parse_memory("lots").is_err());
    }
}
