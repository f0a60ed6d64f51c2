//! Networking benchmark (issue 6), driven by `bench/net.sh`.
//!
//! Attaches a network namespace made here to a private bridge (`zlbench0`,
//! 10.213.200.0/24) with a port published on 127.0.0.1, runs a TCP sink in
//! the namespace and measures, from the host:
//! - throughput through the published port vs a sink on host loopback;
//! - TCP connection setup rate (connect + accept + close) on both.
//!
//! Only loopback and the namespace are used. Prints one `key value` line
//! per figure. `NET_BENCH_SECS` sets the length of each measurement.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use zlayer_network::{NetworkManager, NetworkOptions};
use zlayer_runtime::ContainerId;
use zlayer_spec::{NetworkMode, PortMapping};

const NS: &str = "zlbench";
const BRIDGE: &str = "zlbench0";

struct Cleanup {
    mgr: NetworkManager,
    id: ContainerId,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.mgr.detach(&self.id);
        let _ = self.mgr.prune();
        let _ = Command::new("ip").args(["netns", "del", NS]).status();
        let _ = Command::new("ip").args(["link", "del", BRIDGE]).status();
    }
}

/// Accepts connections forever, reading each to EOF on its own thread.
fn sink(listener: TcpListener) {
    for s in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let mut s = s;
            let mut buf = vec![0u8; 1 << 18];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        });
    }
}

/// Bytes per second written to `addr` over `secs`.
fn throughput(addr: SocketAddr, secs: f64) -> f64 {
    let mut s = TcpStream::connect(addr).expect("connect");
    let buf = vec![0x5au8; 1 << 18];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        s.write_all(&buf).expect("write");
        sent += buf.len() as u64;
    }
    sent as f64 / start.elapsed().as_secs_f64()
}

/// Connections per second (connect, then close) to `addr` over `secs`.
fn conn_rate(addr: SocketAddr, secs: f64) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
        drop(s);
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn main() {
    let secs: f64 = std::env::var("NET_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = NetworkOptions {
        default_bridge: BRIDGE.into(),
        default_subnet: "10.213.200.0/24".parse().expect("subnet"),
        bridge_prefix: "zlbench".into(),
        dns_binary: None,
        ..NetworkOptions::default()
    };
    let mgr = NetworkManager::with_options(dir.path(), opts).expect("manager");
    let _ = Command::new("ip").args(["netns", "del", NS]).status();
    assert!(Command::new("ip")
        .args(["netns", "add", NS])
        .status()
        .expect("ip")
        .success());
    let id = ContainerId::new("netbench", 0);
    let guard = Cleanup {
        mgr: mgr.clone(),
        id: id.clone(),
    };
    let host_port = free_port();
    let mapping = PortMapping {
        host_port: Some(host_port),
        container_port: 5201,
        protocol: Default::default(),
        host_ip: Some("127.0.0.1".into()),
    };
    let t0 = Instant::now();
    mgr.attach(
        &id,
        format!("/run/netns/{NS}").as_ref(),
        &NetworkMode::Bridge,
        &[mapping],
        &[],
    )
    .expect("attach");
    let attach_ms = t0.elapsed().as_secs_f64() * 1e3;

    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{NS}")).expect("netns");
        // SAFETY: setns on this thread only, with an open namespace fd.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        let l = TcpListener::bind(("0.0.0.0", 5201)).expect("bind in netns");
        tx.send(()).expect("ready");
        sink(l);
    });
    rx.recv().expect("server");
    let host = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let host_addr = host.local_addr().expect("addr");
    std::thread::spawn(move || sink(host));
    let published = SocketAddr::from((Ipv4Addr::LOCALHOST, host_port));

    let loop_bps = throughput(host_addr, secs);
    let pub_bps = throughput(published, secs);
    let loop_cps = conn_rate(host_addr, secs.min(1.0));
    let pub_cps = conn_rate(published, secs.min(1.0));
    println!("attach_ms {attach_ms:.1}");
    println!("loopback_gbit {:.2}", loop_bps * 8.0 / 1e9);
    println!("published_gbit {:.2}", pub_bps * 8.0 / 1e9);
    println!("ratio {:.2}", pub_bps / loop_bps);
    println!("loopback_conn_per_s {loop_cps:.0}");
    println!("published_conn_per_s {pub_cps:.0}");
    let t0 = Instant::now();
    mgr.detach(&id).expect("detach");
    println!("detach_ms {:.1}", t0.elapsed().as_secs_f64() * 1e3);
    drop(guard);
}
