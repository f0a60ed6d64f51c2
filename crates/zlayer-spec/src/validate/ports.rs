//! Host port clashes across all services.

use std::collections::HashMap;
use std::net::IpAddr;

use super::Findings;
use crate::path::YamlPath;
use crate::{DeploymentSpec, Protocol};

/// A fixed host port binding: address (`None` = all addresses), port, transport.
struct Binding {
    ip: Option<IpAddr>,
    path: YamlPath,
}

pub(super) fn check(spec: &DeploymentSpec, f: &mut Findings) {
    let mut bound: HashMap<(u16, Protocol), Vec<Binding>> = HashMap::new();
    for (name, svc) in &spec.services {
        for (i, pm) in svc.port_mappings.iter().enumerate() {
            let at = YamlPath::root()
                .key("services")
                .key(name.as_str())
                .key("port_mappings")
                .index(i);
            if pm.container_port == 0 {
                f.push(
                    at.key("container_port"),
                    "0 is not a port number; use 1-65535",
                );
            }
            let ip = match pm.host_ip.as_deref().map(str::parse::<IpAddr>) {
                None => None,
                Some(Ok(ip)) if ip.is_unspecified() => None,
                Some(Ok(ip)) => Some(ip),
                Some(Err(_)) => {
                    f.push(
                        at.key("host_ip"),
                        format!(
                            "\"{}\" is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0",
                            pm.host_ip.as_deref().unwrap_or_default()
                        ),
                    );
                    continue;
                }
            };
            let Some(port) = pm.fixed_host_port() else {
                continue;
            };
            let transport = pm.protocol.transport();
            let others = bound.entry((port, transport)).or_default();
            // The same address, or a wildcard on either side, clashes.
            if let Some(first) = others
                .iter()
                .find(|b| b.ip.is_none() || ip.is_none() || b.ip == ip)
            {
                f.push(
                    at.key("host_port"),
                    format!(
                        "host port {port}/{transport} is already mapped by {}; pick another host_port",
                        first.path
                    ),
                );
            }
            others.push(Binding { ip, path: at });
        }
    }
}
