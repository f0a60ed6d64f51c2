//! What bridge networking adds to a container's start and exit: times
//! [`NetworkManager::attach_with`] and [`NetworkManager::release`] exactly
//! as the container monitor calls them (attach before the workload runs;
//! release after its namespace died), on network namespaces of
//! `unshare -n sleep` processes, on a private bridge (`zlbench1`,
//! 10.213.201.0/24). Only local namespaces are used.
//!
//! ```text
//! attach_bench [N]     # default 100 rounds per variant
//! ```
//! Prints the median and mean milliseconds of attach and release, without
//! and with one published port (an nftables table per container).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zlayer_network::{NetworkManager, NetworkOptions};
use zlayer_runtime::ContainerId;
use zlayer_spec::{NetworkMode, PortMapping, Protocol};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const BRIDGE: &str = "zlbench1";

fn namespace() -> Res<Child> {
    let child = Command::new("unshare")
        .args(["-n", "sleep", "60"])
        .stdin(Stdio::null())
        .spawn()?;
    // unshare has switched namespaces once /proc/PID/ns/net differs from ours.
    let ours = std::fs::read_link("/proc/self/ns/net")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_link(format!("/proc/{}/ns/net", child.id()))? == ours {
        if Instant::now() > deadline {
            return Err("unshare did not switch namespaces".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(child)
}

fn stats(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.total_cmp(b));
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "{name} median_ms={:.2} mean_ms={mean:.2}",
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    );
}

fn rounds(mgr: &NetworkManager, n: usize, ports: &[PortMapping], tag: &str) -> Res<()> {
    let (mut attach, mut release) = (Vec::new(), Vec::new());
    for i in 0..n {
        let id = ContainerId::new(format!("bench{tag}"), i as u32);
        let mut ns = namespace()?;
        let path = std::path::PathBuf::from(format!("/proc/{}/ns/net", ns.id()));
        let t = Instant::now();
        let att = mgr.attach_with(&id, &path, &NetworkMode::Bridge, ports, &[], false);
        attach.push(t.elapsed().as_secs_f64() * 1e3);
        let _ = ns.kill();
        let _ = ns.wait();
        att?;
        let t = Instant::now();
        mgr.release(&id)?;
        release.push(t.elapsed().as_secs_f64() * 1e3);
    }
    stats(&format!("attach{tag}"), attach);
    stats(&format!("release{tag}"), release);
    Ok(())
}

fn main() -> Res<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100);
    let dir = tempfile::tempdir()?;
    let opts = NetworkOptions {
        default_bridge: BRIDGE.into(),
        default_subnet: "10.213.201.0/24".parse()?,
        bridge_prefix: "zlbench1n".into(),
        subnet_pool: "10.213.202.0/24".parse()?,
        dns_binary: None,
        dns_upstreams: Vec::new(),
        mtu: 65535,
    };
    let mgr = NetworkManager::with_options(dir.path(), opts)?;
    let port = PortMapping {
        host_port: None,
        container_port: 80,
        protocol: Protocol::Tcp,
        host_ip: Some("127.0.0.1".into()),
    };
    let result = rounds(&mgr, 3, &[], "_warmup")
        .and_then(|_| rounds(&mgr, n, &[], ""))
        .and_then(|_| rounds(&mgr, n, std::slice::from_ref(&port), "_port"));
    // prune deletes the bridge and its table; this covers a failed prune.
    let _ = mgr.prune();
    let _ = Command::new("ip")
        .args(["link", "del", BRIDGE])
        .stderr(Stdio::null())
        .status();
    result
}
