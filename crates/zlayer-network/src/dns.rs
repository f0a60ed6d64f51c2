//! The embedded DNS responder of a bridge network.
//!
//! One `zlayer-dns` process per network listens on the bridge address,
//! port 53 (UDP). It answers A queries for the names of containers on that
//! network (container id, service name and other aliases; a service name
//! returns every replica) from the state file, refuses clients outside the
//! network's subnet, and relays every other query to the host's resolvers
//! (or the configured upstreams). It runs detached from the CLI and exits
//! by itself once no container is attached to its network.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::dns_wire::{self, Question};
use super::state::{self, Locked};
use zlayer_runtime::error::{Result, RuntimeError};

fn pid_file(dir: &Path, network: &str) -> PathBuf {
    dir.join(format!("dns-{network}.pid"))
}

/// The pid of the running responder of `network`, if any.
pub fn running(dir: &Path, network: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file(dir, network))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let zombie = stat
        .rsplit(')')
        .next()
        .is_some_and(|s| s.trim_start().starts_with('Z'));
    (!zombie && String::from_utf8_lossy(&cmdline).contains("zlayer-dns")).then_some(pid)
}

/// Starts the responder of `network` with `binary` unless it runs; waits
/// until it listens. Call with the state lock held.
pub fn ensure(dir: &Path, network: &str, binary: &Path, upstreams: &[SocketAddr]) -> Result<()> {
    if running(dir, network).is_some() {
        return Ok(());
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("dns-{network}.log")))
        .map_err(|e| RuntimeError::Network(format!("cannot open the DNS log: {e}")))?;
    let mut cmd = Command::new(binary);
    cmd.arg(dir).arg(network);
    for u in upstreams {
        cmd.arg(u.to_string());
    }
    use std::os::unix::process::CommandExt;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| {
            RuntimeError::Network(format!(
                "cannot start the DNS responder {}: {e}",
                binary.display()
            ))
        })?;
    let deadline = Instant::now() + BIND_RETRY + Duration::from_secs(1);
    while Instant::now() < deadline {
        if running(dir, network) == Some(child.id()) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(RuntimeError::Network(format!(
        "the DNS responder of network {network} did not start; see {}",
        dir.join(format!("dns-{network}.log")).display()
    )))
}

/// The host's IPv4 resolvers from `/etc/resolv.conf`, port 53.
pub fn host_resolvers() -> Vec<SocketAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<Ipv4Addr>().ok())
        .map(|ip| SocketAddr::from((ip, 53)))
        .collect()
}

/// Runs the responder of `network` (state in `dir`) until the network has
/// no containers; `upstreams` empty means the host's resolvers.
pub fn serve(dir: &Path, network: &str, upstreams: &[SocketAddr]) -> Result<()> {
    let st = state::read_unlocked(dir)?;
    let rec = st
        .networks
        .get(network)
        .cloned()
        .ok_or_else(|| RuntimeError::NotFound {
            kind: "network",
            id: network.into(),
            hint: None,
        })?;
    let sock = bind_retrying(rec.gateway)?;
    sock.set_read_timeout(Some(IDLE_CHECK))
        .map_err(|e| RuntimeError::Network(e.to_string()))?;
    let pid = pid_file(dir, network);
    zlayer_sys::atomic::write_atomic(&pid, std::process::id().to_string().as_bytes())
        .map_err(|e| RuntimeError::Network(e.to_string()))?;
    let upstreams: Vec<SocketAddr> = if upstreams.is_empty() {
        host_resolvers()
    } else {
        upstreams.to_vec()
    };
    let mut buf = [0u8; 1500];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                // A responder whose data root was deleted must not answer
                // for a network of the same address created since.
                if !dir.join("networks.json").exists() {
                    let _ = std::fs::remove_file(&pid);
                    return Ok(());
                }
                let packet = buf[..n].to_vec();
                let in_net = matches!(from.ip(), IpAddr::V4(ip) if rec.subnet.contains(&ip));
                let Some(q) = dns_wire::parse_query(&packet) else {
                    continue;
                };
                if !in_net {
                    let _ = sock.send_to(
                        &dns_wire::answer(&packet, &q, &[], dns_wire::RCODE_REFUSED),
                        from,
                    );
                    continue;
                }
                if let Some(ips) = lookup(dir, network, &q) {
                    let _ = sock.send_to(&dns_wire::answer(&packet, &q, &ips, 0), from);
                } else if let Ok(reply_sock) = sock.try_clone() {
                    let ups = upstreams.clone();
                    std::thread::spawn(move || forward(&reply_sock, &packet, &q, from, &ups));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // Idle: exit once the network has no containers. The decision
                // is made under the lock, so an attach either sees our pid
                // file gone or we see its lease. A state dir that vanished
                // (its data root was deleted) is not recreated by locking.
                if !dir.join("networks.json").exists() {
                    let _ = std::fs::remove_file(&pid);
                    return Ok(());
                }
                let lock = Locked::acquire(dir)?;
                let st = lock.load()?;
                if !st.leases.values().any(|l| l.network == network) {
                    let _ = std::fs::remove_file(&pid);
                    return Ok(());
                }
            }
            Err(e) => return Err(RuntimeError::Network(format!("DNS socket failed: {e}"))),
        }
    }
}

/// How often an idle responder checks whether its network still has
/// containers (and exits when not).
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// How long a new responder waits for the address to be free: the
/// responder of a network deleted just before (same gateway) may still be
/// exiting.
const BIND_RETRY: Duration = Duration::from_secs(5);

/// Binds `gateway:53`, retrying while another socket holds it.
fn bind_retrying(gateway: Ipv4Addr) -> Result<UdpSocket> {
    let deadline = Instant::now() + BIND_RETRY;
    loop {
        match UdpSocket::bind((gateway, 53)) {
            Ok(sock) => return Ok(sock),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                return Err(RuntimeError::Network(format!(
                    "cannot listen on {gateway}:53 for DNS: {e}"
                )))
            }
        }
    }
}

/// The addresses for `q` on `network`, `None` when the name is not ours.
fn lookup(dir: &Path, network: &str, q: &Question) -> Option<Vec<Ipv4Addr>> {
    let st = state::read_unlocked(dir).ok()?;
    let ips: Vec<Ipv4Addr> = st
        .leases
        .values()
        .filter(|l| {
            l.network == network && l.aliases.iter().any(|a| a.eq_ignore_ascii_case(&q.name))
        })
        .map(|l| l.ip)
        .collect();
    if ips.is_empty() {
        return None;
    }
    // Our names have only A records; other types get an empty answer.
    Some(if q.qtype == dns_wire::TYPE_A {
        ips
    } else {
        Vec::new()
    })
}

/// Relays `packet` to the first upstream that answers.
fn forward(sock: &UdpSocket, packet: &[u8], q: &Question, client: SocketAddr, ups: &[SocketAddr]) {
    let relay = || -> Option<Vec<u8>> {
        let out = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
        out.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        for up in ups {
            if out.send_to(packet, up).is_err() {
                continue;
            }
            let mut buf = [0u8; 4096];
            if let Ok((n, from)) = out.recv_from(&mut buf) {
                if from == *up {
                    return Some(buf[..n].to_vec());
                }
            }
        }
        None
    };
    let reply =
        relay().unwrap_or_else(|| dns_wire::answer(packet, q, &[], dns_wire::RCODE_SERVFAIL));
    let _ = sock.send_to(&reply, client);
}
