//! Choosing and checking host ports for published ports.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};

use zlayer_spec::{PortMapping, Protocol};

use super::state::State;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::PortMappingEntry;

/// Parses the host address of a mapping (`None`/empty → `0.0.0.0`).
fn host_ip(m: &PortMapping) -> Result<Ipv4Addr> {
    match m.host_ip.as_deref().map(str::trim) {
        None | Some("") | Some("0.0.0.0") => Ok(Ipv4Addr::UNSPECIFIED),
        Some(s) => s.parse::<Ipv4Addr>().map_err(|_| {
            RuntimeError::InvalidSpec(format!(
                "host address {s:?} of published port {} is not an IPv4 address \
                 (IPv6 publishing is not supported); use e.g. 127.0.0.1 or 0.0.0.0",
                m.container_port
            ))
        }),
    }
}

fn proto_name(p: Protocol) -> &'static str {
    match p.transport() {
        Protocol::Udp => "udp",
        _ => "tcp",
    }
}

/// Whether two bindings of the same protocol and port collide.
fn overlaps(a: &str, b: &str) -> bool {
    a == b || a == "0.0.0.0" || b == "0.0.0.0"
}

/// Binds `ip:port` on the host to see whether it is free; port 0 picks one.
fn probe(ip: Ipv4Addr, port: u16, proto: Protocol) -> std::io::Result<u16> {
    let addr = SocketAddrV4::new(ip, port);
    match proto.transport() {
        Protocol::Udp => Ok(UdpSocket::bind(addr)?.local_addr()?.port()),
        _ => Ok(TcpListener::bind(addr)?.local_addr()?.port()),
    }
}

/// Resolves `mappings` for `container` into host bindings, checking that
/// no other container (in `state`), no other mapping of the request and no
/// host process uses them; `host_port` 0/None picks a free port.
pub fn resolve(
    container: &str,
    mappings: &[PortMapping],
    state: &State,
) -> Result<Vec<PortMappingEntry>> {
    let mut out: Vec<PortMappingEntry> = Vec::new();
    for m in mappings {
        if m.container_port == 0 {
            return Err(RuntimeError::InvalidSpec(
                "container port 0 cannot be published; give a port 1-65535".into(),
            ));
        }
        let ip = host_ip(m)?;
        let proto = m.protocol.transport();
        let taken = |port: u16, out: &[PortMappingEntry]| -> Option<String> {
            let ip_s = ip.to_string();
            let clash = |e: &PortMappingEntry| {
                e.host_port == port
                    && e.protocol.transport() == proto
                    && overlaps(&e.host_ip, &ip_s)
            };
            if out.iter().any(clash) {
                return Some("another mapping of the same container".into());
            }
            state
                .leases
                .iter()
                .find(|(id, l)| id.as_str() != container && l.ports.iter().any(clash))
                .map(|(id, _)| format!("container {id}"))
        };
        let port = match m.fixed_host_port() {
            Some(port) => {
                if let Some(who) = taken(port, &out) {
                    return Err(RuntimeError::InvalidSpec(format!(
                        "host port {ip}:{port}/{} is already published by {who}; pick another \
                         host port (`-p OTHER:{}`) or remove that container",
                        proto_name(proto),
                        m.container_port
                    )));
                }
                probe(ip, port, proto).map_err(|e| {
                    RuntimeError::InvalidSpec(format!(
                        "host port {ip}:{port}/{} is not available ({e}); another program \
                         on the host uses it: pick another host port (`-p OTHER:{}`) or \
                         `-p {}` for a random one",
                        proto_name(proto),
                        m.container_port,
                        m.container_port
                    ))
                })?
            }
            None => {
                let mut found = None;
                for _ in 0..64 {
                    let port = probe(ip, 0, proto).map_err(|e| {
                        RuntimeError::Network(format!(
                            "cannot find a free {} port on {ip}: {e}",
                            proto_name(proto)
                        ))
                    })?;
                    if taken(port, &out).is_none() {
                        found = Some(port);
                        break;
                    }
                }
                found.ok_or_else(|| {
                    RuntimeError::Network(format!(
                        "no free {} port found on {ip} after 64 tries",
                        proto_name(proto)
                    ))
                })?
            }
        };
        out.push(PortMappingEntry {
            host_ip: ip.to_string(),
            host_port: port,
            container_port: m.container_port,
            protocol: proto,
        });
    }
    Ok(out)
}
