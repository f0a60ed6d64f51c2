//! Resource usage of a container from its cgroup (v1 or v2) and its network
//! namespace (`/proc/<pid>/net/dev`).

use super::cgroups::{keyed_value, ContainerCgroup};
use std::path::Path;
use std::time::SystemTime;
use zlayer_runtime::types::ContainerStats;
use zlayer_sys::procfs;

/// The cgroup part of a sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupSample {
    /// CPU time in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use (without inactive page cache), bytes.
    pub memory_used: u64,
    /// Memory limit in bytes (None: unlimited).
    pub memory_limit: Option<u64>,
    /// Processes and threads.
    pub pids_current: u64,
    /// Their limit (None: unlimited).
    pub pids_limit: Option<u64>,
    /// Bytes read from block devices.
    pub blkio_read: u64,
    /// Bytes written to block devices.
    pub blkio_write: u64,
}

/// Reads one sample of `cg`; `pid` (the init) is used for network counters.
pub fn sample(cg: &ContainerCgroup, pid: i32, host_network: bool) -> ContainerStats {
    let c = if let Some(dir) = cg.v2_dir() {
        read_v2(&dir)
    } else {
        read_v1(cg)
    };
    let host_mem = procfs::host_memory_bytes();
    let (rx, tx) = if host_network {
        (0, 0)
    } else {
        std::fs::read_to_string(format!("/proc/{pid}/net/dev"))
            .map(|t| parse_net_dev(&t))
            .unwrap_or((0, 0))
    };
    ContainerStats {
        timestamp: SystemTime::now(),
        cpu_total_ns: c.cpu_ns,
        cpu_system_ns: procfs::host_cpu_ns(),
        online_cpus: procfs::online_cpus(),
        memory_used_bytes: c.memory_used,
        memory_limit_bytes: c
            .memory_limit
            .filter(|l| host_mem == 0 || *l < host_mem)
            .unwrap_or(host_mem),
        net_rx_bytes: rx,
        net_tx_bytes: tx,
        blkio_read_bytes: c.blkio_read,
        blkio_write_bytes: c.blkio_write,
        pids_current: c.pids_current,
        pids_limit: c.pids_limit,
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_default()
}

fn read_u64(dir: &Path, file: &str) -> Option<u64> {
    read(dir, file).trim().parse().ok()
}

/// A sample from cgroup v1 controller directories.
pub fn read_v1(cg: &ContainerCgroup) -> CgroupSample {
    let mut s = CgroupSample::default();
    if let Some(dir) = cg.v1_dir("cpuacct") {
        s.cpu_ns = read_u64(&dir, "cpuacct.usage").unwrap_or(0);
    }
    if let Some(dir) = cg.v1_dir("memory") {
        let usage = read_u64(&dir, "memory.usage_in_bytes").unwrap_or(0);
        let inactive = keyed_value(&read(&dir, "memory.stat"), "total_inactive_file").unwrap_or(0);
        s.memory_used = used_without_cache(usage, inactive);
        s.memory_limit = read_u64(&dir, "memory.limit_in_bytes").filter(|l| *l < (1 << 62));
    }
    if let Some(dir) = cg.v1_dir("pids") {
        s.pids_current = read_u64(&dir, "pids.current").unwrap_or(0);
        s.pids_limit = parse_max(&read(&dir, "pids.max"));
    }
    if let Some(dir) = cg.v1_dir("blkio") {
        let mut text = read(&dir, "blkio.throttle.io_service_bytes_recursive");
        if text.trim().is_empty() {
            text = read(&dir, "blkio.throttle.io_service_bytes");
        }
        (s.blkio_read, s.blkio_write) = parse_blkio_v1(&text);
    }
    s
}

/// A sample from a cgroup v2 directory.
pub fn read_v2(dir: &Path) -> CgroupSample {
    let usage = read_u64(dir, "memory.current").unwrap_or(0);
    let inactive = keyed_value(&read(dir, "memory.stat"), "inactive_file").unwrap_or(0);
    let (blkio_read, blkio_write) = parse_io_stat_v2(&read(dir, "io.stat"));
    CgroupSample {
        cpu_ns: keyed_value(&read(dir, "cpu.stat"), "usage_usec").unwrap_or(0) * 1000,
        memory_used: used_without_cache(usage, inactive),
        memory_limit: parse_max(&read(dir, "memory.max")),
        pids_current: read_u64(dir, "pids.current").unwrap_or(0),
        pids_limit: parse_max(&read(dir, "pids.max")),
        blkio_read,
        blkio_write,
    }
}

/// Docker's "used" figure: usage minus inactive file cache (never 0 while
/// usage is not).
fn used_without_cache(usage: u64, inactive_file: u64) -> u64 {
    match usage.checked_sub(inactive_file) {
        Some(v) if v > 0 => v,
        _ => usage,
    }
}

/// `max` → None, a number → Some.
pub fn parse_max(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// Sums `Read` and `Write` of a v1 `blkio.throttle.io_service_bytes` file.
pub fn parse_blkio_v1(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0, 0);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_dev, op, value] = f[..] {
            let v: u64 = value.parse().unwrap_or(0);
            match op {
                "Read" => r += v,
                "Write" => w += v,
                _ => {}
            }
        }
    }
    (r, w)
}

/// Sums `rbytes` and `wbytes` of a v2 `io.stat` file.
pub fn parse_io_stat_v2(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0, 0);
    for field in text.split_whitespace() {
        if let Some((k, v)) = field.split_once('=') {
            let v: u64 = v.parse().unwrap_or(0);
            match k {
                "rbytes" => r += v,
                "wbytes" => w += v,
                _ => {}
            }
        }
    }
    (r, w)
}

/// Sums received and sent bytes of every interface but `lo` in a
/// `/proc/<pid>/net/dev` file.
pub fn parse_net_dev(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0, 0);
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        )
        .unwrap();
        std::fs::write(d.join("memory.current"), "4096000\n").unwrap();
        std::fs::write(
            d.join("memory.stat"),
            "anon 100\nfile 200\ninactive_file 96000\nactive_file 5\n",
        )
        .unwrap();
        std::fs::write(d.join("memory.max"), "33554432\n").unwrap();
        std::fs::write(d.join("pids.current"), "3\n").unwrap();
        std::fs::write(d.join("pids.max"), "max\n").unwrap();
        std::fs::write(
            d.join("io.stat"),
            "8:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n259:0 rbytes=1 wbytes=2 rios=0 wios=0\n",
        )
        .unwrap();
        let s = read_v2(d);
        assert_eq!(s.cpu_ns, 1_500_000);
        assert_eq!(s.memory_used, 4_000_000);
        assert_eq!(s.memory_limit, Some(33_554_432));
        assert_eq!(s.pids_current, 3);
        assert_eq!(s.pids_limit, None);
        assert_eq!((s.blkio_read, s.blkio_write), (1025, 2050));
        std::fs::write(d.join("memory.max"), "max\n").unwrap();
        assert_eq!(read_v2(d).memory_limit, None);
    }

    #[test]
    fn v1_blkio_and_net() {
        let blk = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n";
        assert_eq!(parse_blkio_v1(blk), (4096, 8192));
        let net = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    5000      10    0    0    0     0          0         0     7000      12    0    0    0     0       0          0
";
        assert_eq!(parse_net_dev(net), (5000, 7000));
        assert_eq!(used_without_cache(100, 200), 100);
        assert_eq!(used_without_cache(300, 200), 100);
        assert_eq!(parse_max("max"), None);
        assert_eq!(parse_max("12\n"), Some(12));
    }
}
