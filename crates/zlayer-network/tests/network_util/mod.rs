//! Shared helpers of the networking tests: network namespaces created for
//! the test, and a guard that tears everything down even when a test fails.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use zlayer_network::{NetworkManager, NetworkOptions};
use zlayer_runtime::ContainerId;

/// A network namespace made with `ip netns add`, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Netns {
        let _ = Command::new("ip")
            .args(["netns", "del", name])
            .stderr(std::process::Stdio::null())
            .status();
        let ok = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip netns add {name} failed");
        Netns { name: name.into() }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.name))
    }

    /// Runs `f` on a thread that joined this namespace.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path();
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .unwrap()
    }

    /// Spawns `f` on a thread that joined this namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = self.path();
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
    }

    /// `ip -br addr` inside the namespace.
    pub fn addrs(&self) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-br", "addr"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn enter(path: &Path) {
    let f = File::open(path).unwrap();
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {}", path.display());
}

/// A manager on a private state dir, bridge `bridge` and `subnet`; on drop
/// it detaches `containers`, removes created networks and deletes bridges.
pub struct Env {
    pub mgr: NetworkManager,
    pub dir: tempfile::TempDir,
    pub bridge: String,
    pub containers: Vec<ContainerId>,
    pub networks: Vec<String>,
}

impl Env {
    pub fn new(bridge: &str, subnet: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let opts = NetworkOptions {
            default_bridge: bridge.into(),
            default_subnet: subnet.parse().unwrap(),
            bridge_prefix: format!("{bridge}n"),
            subnet_pool: "10.214.0.0/16".parse().unwrap(),
            dns_binary: None,
            dns_upstreams: Vec::new(),
            mtu: 1500,
        };
        Env::with_options(bridge, dir, opts)
    }

    /// An env whose manager runs the embedded DNS with `upstreams`.
    pub fn with_dns(bridge: &str, subnet: &str, upstreams: Vec<std::net::SocketAddr>) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let opts = NetworkOptions {
            default_bridge: bridge.into(),
            default_subnet: subnet.parse().unwrap(),
            bridge_prefix: format!("{bridge}n"),
            subnet_pool: "10.214.0.0/16".parse().unwrap(),
            dns_binary: Some(env!("CARGO_BIN_EXE_zlayer-dns").into()),
            dns_upstreams: upstreams,
            mtu: 1500,
        };
        Env::with_options(bridge, dir, opts)
    }

    fn with_options(bridge: &str, dir: tempfile::TempDir, opts: NetworkOptions) -> Env {
        let mgr = NetworkManager::with_options(dir.path(), opts).unwrap();
        Env {
            mgr,
            dir,
            bridge: bridge.into(),
            containers: Vec::new(),
            networks: Vec::new(),
        }
    }

    pub fn id(&mut self, name: &str) -> ContainerId {
        let id = ContainerId::new(name, 0);
        self.containers.push(id.clone());
        id
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = self.mgr.detach(c);
        }
        for n in &self.networks {
            let _ = self.mgr.remove_network(n);
        }
        let _ = self.mgr.prune();
        // The link and its nftables table.
        zlayer_network::host::delete_bridge(&self.bridge);
    }
}

/// Whether host interface `name` exists.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The nftables table names currently loaded.
pub fn nft_tables() -> String {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A TCP echo-once server on `port` inside `ns`; returns when listening.
pub fn tcp_server(ns: &Netns, port: u16, reply: &'static str) -> std::thread::JoinHandle<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = ns.spawn(move || {
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        l.set_nonblocking(false).unwrap();
        if let Ok((mut s, _)) = l.accept() {
            let _ = s.write_all(reply.as_bytes());
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    h
}

/// A UDP server on `port` inside `ns` answering one datagram.
pub fn udp_server(ns: &Netns, port: u16, reply: &'static str) -> std::thread::JoinHandle<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = ns.spawn(move || {
        let s = UdpSocket::bind(("0.0.0.0", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 64];
        if let Ok((_, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(reply.as_bytes(), from);
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    h
}

/// Connects to `addr` and reads what the server sends.
pub fn tcp_read(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Sends a datagram to `addr` and returns the answer.
pub fn udp_ask(addr: SocketAddr) -> std::io::Result<String> {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.send_to(b"ping", addr)?;
    let mut buf = [0u8; 64];
    let (n, _) = s.recv_from(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// A host port that is free right now.
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
