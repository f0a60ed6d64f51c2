//! Where a container's cgroups are, on cgroup v1, hybrid and v2 hosts.
//!
//! libcontainer creates and configures the cgroups; this module finds them
//! again (from `/proc/self/mountinfo`) to read statistics, freeze, count OOM
//! kills, list processes and remove leftovers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// cgroup v1 only.
    Legacy,
    /// cgroup v1 controllers plus a (controller-less) cgroup2 hierarchy.
    Hybrid,
    /// cgroup v2 only (`/sys/fs/cgroup` is cgroup2).
    Unified,
}

/// The host's cgroup mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCgroups {
    /// The mode.
    pub mode: CgroupMode,
    /// v1 controller (`memory`, `cpuacct`, `name=systemd`, ...) → mountpoint.
    pub v1: BTreeMap<String, PathBuf>,
    /// The cgroup2 mountpoint, if any.
    pub unified: Option<PathBuf>,
}

impl HostCgroups {
    /// The host's layout, read once per process.
    pub fn get() -> &'static HostCgroups {
        static HOST: OnceLock<HostCgroups> = OnceLock::new();
        HOST.get_or_init(|| {
            let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            HostCgroups::from_mountinfo(&text)
        })
    }

    /// Parses the text of a `mountinfo` file.
    pub fn from_mountinfo(text: &str) -> HostCgroups {
        let mut v1 = BTreeMap::new();
        let mut unified = None;
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mountpoint) = left.split_whitespace().nth(4) else {
                continue;
            };
            let mut r = right.split_whitespace();
            let (Some(fstype), _, Some(opts)) = (r.next(), r.next(), r.next()) else {
                continue;
            };
            let mountpoint = PathBuf::from(mountpoint.replace("\\040", " "));
            match fstype {
                "cgroup2" => unified = Some(mountpoint),
                "cgroup" => {
                    for opt in opts.split(',') {
                        if is_v1_controller(opt) {
                            v1.entry(opt.to_string())
                                .or_insert_with(|| mountpoint.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        let mode = match (&unified, v1.is_empty()) {
            (Some(u), _) if u == Path::new("/sys/fs/cgroup") => CgroupMode::Unified,
            (_, true) if unified.is_some() => CgroupMode::Unified,
            (Some(_), false) => CgroupMode::Hybrid,
            _ => CgroupMode::Legacy,
        };
        HostCgroups { mode, v1, unified }
    }
}

fn is_v1_controller(opt: &str) -> bool {
    matches!(
        opt,
        "cpu"
            | "cpuacct"
            | "cpuset"
            | "memory"
            | "devices"
            | "freezer"
            | "blkio"
            | "pids"
            | "net_cls"
            | "net_prio"
            | "perf_event"
            | "hugetlb"
            | "rdma"
            | "misc"
    ) || opt.starts_with("name=")
}

/// One container's cgroup, by its path relative to each hierarchy root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    path: String,
    host: &'static HostCgroups,
}

impl ContainerCgroup {
    /// The cgroup at `path` (e.g. `/zlayer/web-1`) on this host.
    pub fn new(path: &str) -> Self {
        ContainerCgroup {
            path: path.trim_start_matches('/').to_string(),
            host: HostCgroups::get(),
        }
    }

    /// The host mode.
    pub fn mode(&self) -> CgroupMode {
        self.host.mode
    }

    /// The directory of v1 `controller` (None on a unified host).
    pub fn v1_dir(&self, controller: &str) -> Option<PathBuf> {
        if self.host.mode == CgroupMode::Unified {
            return None;
        }
        self.host.v1.get(controller).map(|m| m.join(&self.path))
    }

    /// The cgroup2 directory that holds controllers (unified hosts only).
    pub fn v2_dir(&self) -> Option<PathBuf> {
        match self.host.mode {
            CgroupMode::Unified => self.host.unified.as_ref().map(|m| m.join(&self.path)),
            _ => None,
        }
    }

    /// Every directory this cgroup could have, in every hierarchy.
    pub fn all_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.host.v1.values().map(|m| m.join(&self.path)).collect();
        if let Some(u) = &self.host.unified {
            dirs.push(u.join(&self.path));
        }
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// The directories that exist now.
    pub fn existing_dirs(&self) -> Vec<PathBuf> {
        self.all_dirs().into_iter().filter(|d| d.is_dir()).collect()
    }

    /// Pids of the processes in the cgroup.
    pub fn procs(&self) -> Vec<i32> {
        let dir = self
            .v2_dir()
            .or_else(|| self.v1_dir("pids"))
            .or_else(|| self.v1_dir("freezer"))
            .or_else(|| self.v1_dir("memory"));
        let Some(dir) = dir else {
            return Vec::new();
        };
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// The file holding the cgroup's `oom_kill` counter (v2
    /// `memory.events`, v1 `memory.oom_control`).
    pub fn oom_events_file(&self) -> Option<PathBuf> {
        match self.v2_dir() {
            Some(dir) => Some(dir.join("memory.events")),
            None => Some(self.v1_dir("memory")?.join("memory.oom_control")),
        }
    }

    /// How many times the kernel OOM killer killed a process of this cgroup
    /// (None when unknown).
    pub fn oom_kills(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.oom_events_file()?).ok()?;
        keyed_value(&text, "oom_kill")
    }

    /// Sends SIGKILL to every process of the cgroup (thawing it first).
    pub fn kill_all(&self) {
        super::freezer::thaw_quietly(self);
        for _ in 0..3 {
            let pids = self.procs();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Removes every directory of this cgroup (retrying while the kernel
    /// still accounts exiting processes). Returns the ones that remain.
    pub fn remove(&self) -> Vec<PathBuf> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let left: Vec<PathBuf> = self
                .existing_dirs()
                .into_iter()
                .filter(|d| remove_tree(d).is_err())
                .collect();
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            self.kill_all();
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Removes a cgroup directory and its child cgroups (deepest first).
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The value of `key` in a `key value` per line file.
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next()? == key).then(|| it.next()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const COMOUNTED: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";
    const UNIFIED: &str = "\
30 23 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn modes() {
        let h = HostCgroups::from_mountinfo(HYBRID);
        assert_eq!(h.mode, CgroupMode::Hybrid);
        assert_eq!(h.v1["memory"], Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(h.v1["name=systemd"], Path::new("/sys/fs/cgroup/systemd"));
        assert_eq!(
            h.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        let c = HostCgroups::from_mountinfo(COMOUNTED);
        assert_eq!(c.mode, CgroupMode::Legacy);
        assert_eq!(c.v1["cpu"], c.v1["cpuacct"]);
        let u = HostCgroups::from_mountinfo(UNIFIED);
        assert_eq!(u.mode, CgroupMode::Unified);
        assert!(u.v1.is_empty());
    }

    #[test]
    fn keyed() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(text, "oom_kill"), Some(3));
        assert_eq!(keyed_value(text, "under_oom"), Some(0));
        assert_eq!(keyed_value(text, "missing"), None);
    }
}
