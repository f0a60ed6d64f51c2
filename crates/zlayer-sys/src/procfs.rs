//! Process-tree accounting from `/proc`: who descends from a monitor, how
//! much CPU and memory they use, and whether a recorded pid is still the
//! same process (start-time check against pid reuse).

use std::collections::HashMap;

/// The fields of `/proc/<pid>/stat` the runtimes use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// Process id.
    pub pid: i32,
    /// State letter (`R`, `S`, `T`, `Z`, ...).
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// Process group.
    pub pgrp: i32,
    /// Session id.
    pub session: i32,
    /// User CPU time in clock ticks.
    pub utime: u64,
    /// System CPU time in clock ticks.
    pub stime: u64,
    /// Number of threads.
    pub num_threads: u64,
    /// Start time in clock ticks after boot (identifies the process).
    pub starttime: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
}

/// Parses the text of a `/proc/<pid>/stat` file.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let rest: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<i64>().ok());
    Some(ProcStat {
        pid,
        state: rest.first()?.chars().next()?,
        ppid: field(4)? as i32,
        pgrp: field(5)? as i32,
        session: field(6)? as i32,
        utime: field(14)? as u64,
        stime: field(15)? as u64,
        num_threads: field(20)? as u64,
        starttime: field(22)? as u64,
        rss_pages: field(24)?.max(0) as u64,
    })
}

/// `/proc/<pid>/stat` of one process, `None` when it does not exist.
pub fn stat(pid: i32) -> Option<ProcStat> {
    use std::io::Read;
    // One read: the line is well under 1 KiB (the name is at most 64
    // bytes), where `read_to_string` would take five growing reads.
    let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 1024];
    let n = file.read(&mut buf).ok()?;
    parse_stat(std::str::from_utf8(&buf[..n]).ok()?)
}

/// Every process of the host.
pub fn all_processes() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// The processes descending from `root` (not `root` itself), parents first.
pub fn descendants(root: i32) -> Vec<ProcStat> {
    descendants_in(root, all_processes())
}

/// [`descendants`] over a given process list.
pub fn descendants_in(root: i32, procs: Vec<ProcStat>) -> Vec<ProcStat> {
    let mut children: HashMap<i32, Vec<ProcStat>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        if let Some(kids) = children.remove(&pid) {
            for k in kids {
                queue.push(k.pid);
                out.push(k);
            }
        }
    }
    out
}

/// Direct children of `pid` (all its threads), from
/// `/proc/<pid>/task/<tid>/children`; `None` when the kernel lacks that file.
pub fn children(pid: i32) -> Option<Vec<i32>> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut out = Vec::new();
    let mut any = false;
    for t in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
            any = true;
            out.extend(
                text.split_whitespace()
                    .filter_map(|v| v.parse::<i32>().ok()),
            );
        }
    }
    any.then_some(out)
}

/// The processes descending from `root`, found by walking children lists
/// (cheap), or by scanning all of `/proc` when those lists are unavailable.
pub fn descendants_fast(root: i32) -> Vec<ProcStat> {
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        match children(pid) {
            Some(kids) => {
                for k in kids {
                    if let Some(s) = stat(k) {
                        out.push(s);
                    }
                    queue.push(k);
                }
            }
            None if pid == root => return descendants(root),
            None => {}
        }
    }
    out
}

/// Whether `pid` runs and (when given) started at `starttime`; zombies count
/// as ended.
pub fn is_alive(pid: i32, starttime: Option<u64>) -> bool {
    match stat(pid) {
        Some(s) => s.state != 'Z' && starttime.is_none_or(|t| t == s.starttime),
        None => false,
    }
}

/// A process named by its pid and its start time, so a later check is
/// not fooled by pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessRef {
    /// The pid.
    pub pid: i32,
    /// Its start time (clock ticks after boot, `/proc/<pid>/stat` field 22).
    pub starttime: u64,
}

impl ProcessRef {
    /// `pid`, with its start time read now; `None` when it does not run.
    pub fn of(pid: i32) -> Option<ProcessRef> {
        stat(pid).map(|s| ProcessRef {
            pid,
            starttime: s.starttime,
        })
    }

    /// The calling process.
    pub fn current() -> ProcessRef {
        let pid = std::process::id() as i32;
        ProcessRef::of(pid).unwrap_or(ProcessRef { pid, starttime: 0 })
    }

    /// Whether this very process still runs (zombies count as ended).
    pub fn is_alive(&self) -> bool {
        is_alive(self.pid, Some(self.starttime))
    }
}

/// Summed usage of a set of processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time in nanoseconds.
    pub cpu_ns: u64,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
    /// Threads.
    pub threads: u64,
    /// Processes.
    pub processes: u64,
    /// Bytes read from storage (`/proc/<pid>/io` read_bytes).
    pub read_bytes: u64,
    /// Bytes written to storage (`/proc/<pid>/io` write_bytes).
    pub write_bytes: u64,
}

/// Adds up CPU, memory, threads and I/O of `procs`.
pub fn usage(procs: &[ProcStat]) -> Usage {
    let tick_ns = 1_000_000_000 / clock_ticks();
    let page = page_size();
    let mut u = Usage::default();
    for p in procs.iter().filter(|p| p.state != 'Z') {
        u.cpu_ns += (p.utime + p.stime) * tick_ns;
        u.rss_bytes += p.rss_pages * page;
        u.threads += p.num_threads;
        u.processes += 1;
        if let Ok(io) = std::fs::read_to_string(format!("/proc/{}/io", p.pid)) {
            for line in io.lines() {
                let mut it = line.split(':');
                let (Some(k), Some(v)) = (it.next(), it.next()) else {
                    continue;
                };
                let v: u64 = v.trim().parse().unwrap_or(0);
                match k {
                    "read_bytes" => u.read_bytes += v,
                    "write_bytes" => u.write_bytes += v,
                    _ => {}
                }
            }
        }
    }
    u
}

/// Resident memory of `procs` in bytes (cheap: no I/O files read).
pub fn rss_bytes(procs: &[ProcStat]) -> u64 {
    let page = page_size();
    procs
        .iter()
        .filter(|p| p.state != 'Z')
        .map(|p| p.rss_pages * page)
        .sum()
}

/// Clock ticks per second (`_SC_CLK_TCK`).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// The memory page size in bytes.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// CPU time of the whole host in nanoseconds (first line of `/proc/stat`).
pub fn host_cpu_ns() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let ticks: u64 = text
        .lines()
        .next()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    ticks * (1_000_000_000 / clock_ticks())
}

/// Online CPUs.
pub fn online_cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// Total host memory in bytes (`MemTotal`).
pub fn host_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let line = "1234 (we (ird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 2 0 5555 1000000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 1234);
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.utime, 7);
        assert_eq!(s.stime, 3);
        assert_eq!(s.num_threads, 2);
        assert_eq!(s.starttime, 5555);
        assert_eq!(s.rss_pages, 250);
    }

    #[test]
    fn own_process_and_children() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(is_alive(me, Some(s.starttime)));
        assert!(!is_alive(me, Some(s.starttime + 1)));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let kids = descendants(me);
        assert!(kids.iter().any(|k| k.pid == child.id() as i32));
        assert!(descendants_fast(me)
            .iter()
            .any(|k| k.pid == child.id() as i32));
        // A just-exec'd process's RSS counters are per-CPU and may read 0
        // for a moment; they must become visible.
        let rss_seen = (0..100).any(|_| {
            if usage(&descendants(me)).rss_bytes > 0 {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            false
        });
        assert!(rss_seen, "children's RSS never read above 0");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(host_cpu_ns() > 0);
        assert!(host_memory_bytes() > 0);
    }
}
