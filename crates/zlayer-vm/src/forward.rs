//! Published TCP ports: a listener on the host per mapping, each accepted
//! connection tunnelled to the guest port over a `Forward` channel.

use super::control::Control;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::PortMappingEntry;
use zlayer_spec::{PortMapping, Protocol};
use zlayer_vm_proto::Msg;

/// Rejects mappings the VM runtime cannot serve (UDP).
pub fn check_mappings(mappings: &[PortMapping]) -> Result<()> {
    if let Some(m) = mappings.iter().find(|m| m.protocol != Protocol::Tcp) {
        return Err(RuntimeError::unsupported(
            "vm",
            format!("publishing {:?} port {}", m.protocol, m.container_port),
            "the vm isolation tunnels TCP only; use the container isolation for UDP",
        ));
    }
    Ok(())
}

/// Binds one listener per mapping (`host_port` 0/None: any free port;
/// `host_ip` default 127.0.0.1). `previous` gives ports bound by an
/// earlier process, reused on re-adoption.
pub async fn bind_all(
    mappings: &[PortMapping],
    previous: &[PortMappingEntry],
) -> Result<Vec<(PortMappingEntry, TcpListener)>> {
    let mut out = Vec::new();
    for m in mappings {
        let ip: IpAddr = match &m.host_ip {
            Some(s) if !s.is_empty() => s.parse().map_err(|_| {
                RuntimeError::InvalidSpec(format!("host_ip {s:?} is not an IP address"))
            })?,
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let port = m.fixed_host_port().unwrap_or_else(|| {
            previous
                .iter()
                .find(|p| p.container_port == m.container_port && p.host_ip == ip.to_string())
                .map(|p| p.host_port)
                .unwrap_or(0)
        });
        let listener = TcpListener::bind(SocketAddr::new(ip, port))
            .await
            .map_err(|e| {
                RuntimeError::Network(format!(
                    "cannot publish {ip}:{port} for container port {}: {e}",
                    m.container_port
                ))
            })?;
        let bound = listener
            .local_addr()
            .map_err(|e| RuntimeError::Network(format!("local_addr: {e}")))?;
        out.push((
            PortMappingEntry {
                host_ip: ip.to_string(),
                host_port: bound.port(),
                container_port: m.container_port,
                protocol: Protocol::Tcp,
            },
            listener,
        ));
    }
    Ok(out)
}

/// Serves `listener`: every connection becomes a `Forward` channel.
pub fn serve(listener: TcpListener, guest_port: u16, control: Arc<Control>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let conn = match listener.accept().await {
                Ok((conn, _)) => conn,
                Err(e) => {
                    // Out of descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, guest_port, "vm: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            if control.is_closed() {
                return;
            }
            let control = Arc::clone(&control);
            tokio::spawn(async move {
                if let Err(e) = tunnel(conn, guest_port, &control).await {
                    tracing::debug!(error = %e, guest_port, "vm: forwarded connection ended with an error");
                }
            });
        }
    })
}

async fn tunnel(conn: TcpStream, guest_port: u16, control: &Arc<Control>) -> Result<()> {
    let (ch, mut rx) = control.open_channel();
    control.send(ch, Msg::Forward { port: guest_port }).await?;
    let (r, mut w) = conn.into_split();
    let up_control = Arc::clone(control);
    let up = tokio::spawn(async move { up_control.pump_input(ch, r, 32 * 1024).await });
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Stdout(data) if w.write_all(&data).await.is_err() => {
                let _ = control.send(ch, Msg::Close).await;
                break;
            }
            Msg::Exited { .. } | Msg::Error { .. } => break,
            _ => {}
        }
    }
    let _ = w.shutdown().await;
    up.abort();
    control.close_channel(ch);
    Ok(())
}
