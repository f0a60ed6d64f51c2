//! A container's networking (issue 6), on top of [`crate::network`]:
//! what `create` records and checks, what the monitor does right before
//! the workload starts ([`attach`]) and once it ended ([`detach`]).
//!
//! - `host`: nothing (the host's namespace).
//! - `none`: `lo` is brought up in-process (no tool runs).
//! - `bridge` / `bridge:NAME`: [`NetworkManager::attach_with`], then the
//!   returned `/etc/hosts` and `/etc/resolv.conf` are written in place into
//!   the files bind-mounted there.
//!
//! Everything lives in `<root>/network/` and in the kernel, and the monitor
//! does attach and detach, so a container's networking never depends on
//! the agent process (it may exit or restart at any time).

use super::netns;
use super::oci_spec_builder::hostname_for;
use super::paths::ContainerPaths;
use super::plan::ContainerPlan;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use zlayer_network::{NetworkManager, NetworkOptions, SERVICE_LABEL};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::ContainerId;
use zlayer_spec::{NetworkMode, PortMapping, ServiceSpec};

/// How a container is connected, recorded at create time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkPlan {
    /// `host`, `none`, `bridge` or `bridge:NAME`.
    pub mode: NetworkMode,
    /// Ports to publish.
    pub ports: Vec<PortMapping>,
    /// Names the container answers to besides its id: its service name
    /// (all replicas of a deployment's service share it) and its name.
    pub aliases: Vec<String>,
    /// Whether it needs the network's DNS responder: deployments and
    /// user-defined networks do; a lone container on the default network
    /// gets the host's resolvers, like docker's default bridge.
    pub dns: bool,
    /// The manager's options of the runtime that created it.
    pub options: NetworkOptions,
}

impl NetworkPlan {
    /// The plan of container `id` running `spec`, with `options`.
    pub fn new(id: &ContainerId, spec: &ServiceSpec, options: &NetworkOptions) -> NetworkPlan {
        let own = id.to_string();
        let mut aliases: Vec<String> = Vec::new();
        for name in [Some(&spec.name), spec.labels.get(SERVICE_LABEL)]
            .into_iter()
            .flatten()
        {
            if !name.is_empty() && *name != own && !aliases.contains(name) {
                aliases.push(name.clone());
            }
        }
        NetworkPlan {
            mode: spec.network_mode.clone(),
            ports: spec.port_mappings.clone(),
            aliases,
            dns: matches!(spec.network_mode, NetworkMode::BridgeNamed(_))
                || spec.labels.contains_key(SERVICE_LABEL),
            options: options.clone(),
        }
    }

    fn is_bridge(&self) -> bool {
        matches!(self.mode, NetworkMode::Bridge | NetworkMode::BridgeNamed(_))
    }
}

/// Fails when the container could not be attached later: a host port
/// already taken, an unknown network, ports with `--network none`. Called
/// by `create`, so such mistakes fail before anything is made.
pub fn check(root: &Path, id: &ContainerId, plan: &NetworkPlan) -> Result<()> {
    let cheap =
        plan.mode == NetworkMode::Host || (plan.mode == NetworkMode::None && plan.ports.is_empty());
    if cheap {
        return Ok(());
    }
    NetworkManager::with_options(root, plan.options.clone())?
        .check(id, &plan.mode, &plan.ports)
        .map(|_| ())
}

/// Connects the namespace of `init_pid` as the record says. True when the
/// container was attached to a bridge (the caller must [`detach`] it if
/// the start fails later); on error nothing is left attached.
pub fn attach(
    paths: &ContainerPaths,
    record: &ContainerPlan,
    init_pid: i32,
) -> std::result::Result<bool, String> {
    let plan = match &record.network {
        p if p.is_bridge() => p,
        p if p.mode == NetworkMode::Host => return Ok(false),
        _ if record.host_network => return Ok(false),
        // `none`: loopback only.
        _ => {
            netns::bring_up_loopback(init_pid)
                .map_err(|e| format!("bringing up lo in the container failed: {e}"))?;
            return Ok(false);
        }
    };
    let root = data_root(paths)?;
    let mgr =
        NetworkManager::with_options(root, plan.options.clone()).map_err(|e| e.to_string())?;
    let ns = PathBuf::from(format!("/proc/{init_pid}/ns/net"));
    let att = mgr
        .attach_with(
            &record.id,
            &ns,
            &plan.mode,
            &plan.ports,
            &plan.aliases,
            plan.dns,
        )
        .map_err(|e| format!("connecting the container to network {}: {e}", plan.mode))?;
    let hostname = hostname_for(&record.id.to_string());
    let write = || -> std::io::Result<()> {
        if let Some(hosts) = &att.hosts_file {
            let mut text = hosts.clone();
            if let Some(ip) = att.ip {
                let listed = text
                    .lines()
                    .any(|l| l.split_whitespace().skip(1).any(|n| n == hostname));
                if !listed {
                    text.push_str(&format!("{ip}\t{hostname}\n"));
                }
            }
            write_in_place(&paths.etc_file("hosts"), &text)?;
        }
        if let Some(resolv) = &att.resolv_conf {
            write_in_place(&paths.etc_file("resolv.conf"), resolv)?;
        }
        Ok(())
    };
    if let Err(e) = write() {
        let _ = mgr.detach(&record.id);
        return Err(format!(
            "writing the container's /etc/hosts and /etc/resolv.conf failed: {e}"
        ));
    }
    Ok(true)
}

/// [`detach`] for a container whose processes have all ended (the
/// monitor, at exit): see [`NetworkManager::release`].
pub fn detach_exited(paths: &ContainerPaths, record: &ContainerPlan) -> Result<()> {
    let plan = &record.network;
    if !plan.is_bridge() {
        return Ok(());
    }
    let Some(root) = paths.data_root() else {
        return Ok(());
    };
    NetworkManager::with_options(root, plan.options.clone())?.release(&record.id)
}

/// Undoes [`attach`] (veth, port rules, address lease). Idempotent; does
/// nothing for `host` and `none` containers. `record` may be unreadable
/// (a half-created container): the lease is then looked up by id.
pub fn detach(paths: &ContainerPaths, record: Option<&ContainerPlan>) -> Result<()> {
    if let Some(plan) = record.map(|r| &r.network) {
        if !plan.is_bridge() {
            return Ok(());
        }
    }
    let Some(root) = paths.data_root() else {
        return Ok(());
    };
    // No state file: nothing was ever attached under this root.
    if !root.join("network").join("networks.json").exists() {
        return Ok(());
    }
    let id = match record {
        Some(r) => r.id.clone(),
        None => match id_of(paths) {
            Some(id) => id,
            None => return Ok(()),
        },
    };
    let opts = record
        .map(|r| r.network.options.clone())
        .unwrap_or_default();
    NetworkManager::with_options(root, opts)?.detach(&id)
}

/// The container id a state dir is named after (`<service>-<replica>`).
fn id_of(paths: &ContainerPaths) -> Option<ContainerId> {
    let (service, replica) = paths.lc_id.rsplit_once('-')?;
    Some(ContainerId::new(service, replica.parse().ok()?))
}

fn data_root(paths: &ContainerPaths) -> std::result::Result<&Path, String> {
    paths
        .data_root()
        .ok_or_else(|| format!("{} has no data root", paths.dir.display()))
}

/// Replaces the contents of `path` keeping its inode: the file is
/// bind-mounted into the container, a rename would not show there.
fn write_in_place(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Maps a [`check`] failure to what `create` reports.
pub fn check_error(e: RuntimeError) -> RuntimeError {
    match e {
        RuntimeError::NotFound {
            kind: "network",
            id,
            hint,
        } => RuntimeError::InvalidSpec(format!(
            "network {id} does not exist; {}",
            hint.unwrap_or_else(|| "create it with `zlayer network create`".into())
        )),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_dns_follow_the_spec() {
        let opts = NetworkOptions::default();
        let mut spec = ServiceSpec::minimal("shop-web", "busybox");
        spec.labels.insert(SERVICE_LABEL.into(), "web".into());
        let plan = NetworkPlan::new(&ContainerId::new("shop-web", 1), &spec, &opts);
        assert_eq!(plan.aliases, vec!["shop-web", "web"]);
        assert!(plan.dns);

        let spec = ServiceSpec::minimal("db", "busybox");
        let plan = NetworkPlan::new(&ContainerId::new("db", 0), &spec, &opts);
        assert_eq!(plan.aliases, vec!["db"]);
        assert!(!plan.dns, "a lone container on the default bridge");

        let mut spec = ServiceSpec::minimal("db", "busybox");
        spec.network_mode = NetworkMode::BridgeNamed("backend".into());
        assert!(NetworkPlan::new(&ContainerId::new("db", 0), &spec, &opts).dns);
    }

    #[test]
    fn ids_come_back_from_dir_names() {
        let dir = tempfile::tempdir().unwrap();
        let paths =
            ContainerPaths::from_dir(dir.path().join("my-svc-3"), dir.path().join("lc")).unwrap();
        assert_eq!(id_of(&paths), Some(ContainerId::new("my-svc", 3)));
    }

    #[test]
    fn unknown_networks_are_spec_errors() {
        let e = check_error(RuntimeError::NotFound {
            kind: "network",
            id: "backend".into(),
            hint: None,
        });
        assert!(matches!(e, RuntimeError::InvalidSpec(m) if m.contains("network backend")));
    }
}
