//! Host ports for sandbox endpoints. A sandbox shares the host's network
//! stack, so every endpoint gets its own free host port, passed to the
//! workload as `PORT` (first endpoint) and `ZLAYER_PORT_<NAME>`.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::Mutex;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_spec::{Protocol, ServiceSpec};

/// One endpoint with the host port it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocatedPort {
    /// Endpoint name.
    pub name: String,
    /// Its protocol.
    pub protocol: Protocol,
    /// The port the spec declares.
    pub container_port: u16,
    /// The host port the workload must listen on.
    pub host_port: u16,
}

impl AllocatedPort {
    /// Whether it is a TCP port (every protocol but UDP).
    pub fn is_tcp(&self) -> bool {
        self.protocol.transport() == Protocol::Tcp
    }
}

/// `http-api` → `HTTP_API`, for `ZLAYER_PORT_<NAME>`.
pub fn env_suffix(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Hands out host ports no other sandbox of this runtime holds.
#[derive(Debug, Default)]
pub struct PortAllocator {
    taken: Mutex<HashSet<u16>>,
}

impl PortAllocator {
    /// Marks `ports` as held (containers re-adopted from disk).
    pub fn reserve(&self, ports: impl IntoIterator<Item = u16>) {
        if let Ok(mut t) = self.taken.lock() {
            t.extend(ports);
        }
    }

    /// Frees `ports`.
    pub fn release(&self, ports: impl IntoIterator<Item = u16>) {
        if let Ok(mut t) = self.taken.lock() {
            for p in ports {
                t.remove(&p);
            }
        }
    }

    /// Assigns a host port to every endpoint of `spec`: the fixed host port
    /// of a matching `port_mappings` entry, else a free one from the kernel.
    pub fn allocate(&self, spec: &ServiceSpec) -> Result<Vec<AllocatedPort>> {
        let mut out: Vec<AllocatedPort> = Vec::new();
        for ep in &spec.endpoints {
            let fixed = spec
                .port_mappings
                .iter()
                .find(|m| {
                    m.container_port == ep.port && m.protocol.transport() == ep.protocol.transport()
                })
                .and_then(|m| m.fixed_host_port());
            let host_port = match fixed {
                Some(p) => {
                    self.claim(p).inspect_err(|_| {
                        self.release(out.iter().map(|p| p.host_port));
                    })?;
                    p
                }
                None => match self.pick(ep.protocol) {
                    Ok(p) => p,
                    Err(e) => {
                        self.release(out.iter().map(|p| p.host_port));
                        return Err(e);
                    }
                },
            };
            out.push(AllocatedPort {
                name: ep.name.clone(),
                protocol: ep.protocol,
                container_port: ep.port,
                host_port,
            });
        }
        Ok(out)
    }

    fn claim(&self, port: u16) -> Result<()> {
        let mut t = self
            .taken
            .lock()
            .map_err(|_| RuntimeError::Internal("port allocator lock poisoned".into()))?;
        if !t.insert(port) {
            return Err(RuntimeError::CreateFailed {
                id: String::new(),
                reason: format!(
                    "host port {port} is already used by another sandbox; pick another host_port"
                ),
            });
        }
        Ok(())
    }

    fn pick(&self, protocol: Protocol) -> Result<u16> {
        for _ in 0..64 {
            let port = match protocol.transport() {
                Protocol::Udp => {
                    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|s| s.local_addr())
                }
                _ => TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|s| s.local_addr()),
            }
            .map_err(|e| {
                RuntimeError::Network(format!("no free host port for a sandbox endpoint: {e}"))
            })?
            .port();
            let mut t = self
                .taken
                .lock()
                .map_err(|_| RuntimeError::Internal("port allocator lock poisoned".into()))?;
            if t.insert(port) {
                return Ok(port);
            }
        }
        Err(RuntimeError::Network(
            "could not find a host port not held by another sandbox after 64 tries".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zlayer_spec::EndpointSpec;

    #[test]
    fn unique_ports() {
        let alloc = PortAllocator::default();
        let mut spec = ServiceSpec::minimal("s", "i");
        spec.endpoints.push(EndpointSpec {
            name: "http-api".into(),
            protocol: Protocol::Http,
            port: 8080,
            expose: Default::default(),
        });
        let mut seen = HashSet::new();
        for _ in 0..20 {
            let p = alloc.allocate(&spec).unwrap();
            assert!(p[0].host_port > 1024);
            assert!(seen.insert(p[0].host_port));
        }
        assert_eq!(env_suffix("http-api"), "HTTP_API");
    }
}
