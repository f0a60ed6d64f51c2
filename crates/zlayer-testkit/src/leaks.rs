//! What a removed container must not leave behind, and a cleaner for what
//! a failed test left.

use std::path::Path;

fn pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

/// Pids of the processes holding a file under `dir` open (a monitor holds
/// its log and control socket).
pub fn pids_holding_files_under(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().to_string();
    pids()
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| {
                    fds.flatten().any(|fd| {
                        std::fs::read_link(fd.path())
                            .is_ok_and(|t| t.to_string_lossy().starts_with(&needle))
                    })
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Pids of the processes whose command line contains every one of `words`.
pub fn pids_with_cmdline(words: &[&str]) -> Vec<i32> {
    pids()
        .filter(|&pid| {
            let c = cmdline(pid);
            !c.is_empty() && words.iter().all(|w| c.contains(w))
        })
        .collect()
}

/// The mount points at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&needle))
        .map(str::to_string)
        .collect()
}

/// The processes of data root `root`: those holding a file under it open
/// (monitors hold their log and control socket; their command line does
/// not name the root) and those naming it on their command line (QEMU).
pub fn pids_of_root(root: &Path) -> Vec<i32> {
    let needle = root.to_string_lossy().to_string();
    let mut pids = pids_holding_files_under(root);
    pids.extend(pids_with_cmdline(&[&needle]));
    pids.sort_unstable();
    pids.dedup();
    pids.retain(|&p| p != std::process::id() as i32);
    pids
}

/// Deletes the bridges (and their nftables tables) the data root `root`
/// made: zlayer marks each bridge with its root's network directory, and
/// would collect them itself only the next time a network is created after
/// the root is gone.
pub fn remove_bridges_of(root: &Path) {
    use zlayer_network::host;
    let Ok(root) = root.canonicalize() else {
        return;
    };
    for bridge in host::bridges_owned_by(&root.join("network")) {
        host::delete_bridge(&bridge);
    }
}

/// Kills what a failed test of data root `root` may have left (monitors,
/// QEMU, DNS responders, see [`pids_of_root`]), unmounts what is mounted
/// under it and deletes its bridges.
pub fn clean_up_root(root: &Path) {
    for pid in pids_of_root(root) {
        // SAFETY: kill has no memory preconditions.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    let mut mounts = mounts_under(root);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let Ok(c) = std::ffi::CString::new(m) else {
            continue;
        };
        // SAFETY: a valid C string.
        unsafe {
            libc::umount2(c.as_ptr(), libc::MNT_DETACH);
        }
    }
    remove_bridges_of(root);
}

/// The cgroup hierarchies' mount points (each v1 controller, the v2 or
/// hybrid unified one).
pub fn cgroup_roots() -> Vec<std::path::PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" - cgroup ") || l.contains(" - cgroup2 "))
        .filter_map(|l| l.split(' ').nth(4).map(std::path::PathBuf::from))
        .collect()
}

/// The cgroups of data root `root`'s containers that exist, in any
/// hierarchy.
pub fn cgroups_of_root(root: &Path) -> Vec<std::path::PathBuf> {
    let prefix = zlayer_hosting::layout::cgroup_prefix(root);
    let (parent, stem) = prefix.rsplit_once('/').unwrap_or(("", &prefix));
    let mut left = Vec::new();
    for hierarchy in cgroup_roots() {
        let dir = hierarchy.join(parent.trim_start_matches('/'));
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(stem) && e.path().is_dir() {
                left.push(e.path());
            }
        }
    }
    left
}

/// Files under `dir` (recursively, not following links) whose name ends
/// with `suffix`.
fn files_ending_with(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if e.file_name().to_string_lossy().ends_with(suffix) {
                out.push(e.path());
            }
        }
    }
    out
}

/// The entries of `dir` whose names do not start with a dot.
fn visible_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

/// Everything a removed container may leave behind under data root `root`
/// or on the host, as one list of findings (empty: nothing left). Checked:
/// state dirs and name reservations, mounts under the root, processes of
/// the root (monitors, QEMU, workloads holding its files), cgroups in
/// every hierarchy, veths on the root's bridges, address leases and their
/// port rules, image leases, and partial blobs in the content store.
pub fn root_leaks(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let containers = root.join("containers");
    for d in visible_entries(&containers) {
        found.push(format!("state dir {}", containers.join(d).display()));
    }
    for n in visible_entries(&containers.join(".names")) {
        found.push(format!("name reservation {n}"));
    }
    for m in mounts_under(root) {
        found.push(format!("mount {m}"));
    }
    for pid in pids_of_root(root) {
        found.push(format!("process {pid}: {}", cmdline(pid)));
    }
    for c in cgroups_of_root(root) {
        found.push(format!("cgroup {}", c.display()));
    }
    let network = root
        .canonicalize()
        .unwrap_or_else(|_| root.to_path_buf())
        .join("network");
    for bridge in zlayer_network::host::bridges_owned_by(&network) {
        for port in visible_entries(Path::new(&format!("/sys/class/net/{bridge}/brif"))) {
            found.push(format!("veth {port} on bridge {bridge}"));
        }
    }
    if network.join("networks.json").exists() {
        if let Ok(state) = zlayer_network::state::read_unlocked(&network) {
            for (holder, lease) in state.leases {
                found.push(format!("address lease {} of {holder}", lease.ip));
            }
        }
    }
    for l in files_ending_with(&root.join("leases"), ".json") {
        found.push(format!("image lease {}", l.display()));
    }
    for p in files_ending_with(&root.join("content"), ".partial") {
        found.push(format!("partial blob {}", p.display()));
    }
    found
}

/// Panics listing what [`root_leaks`] finds, after giving asynchronous
/// clean-up (a monitor's auto-remove, the trash's deletions) `grace` to
/// finish.
pub fn assert_root_clean(root: &Path, grace: std::time::Duration) {
    let deadline = std::time::Instant::now() + grace;
    loop {
        let found = root_leaks(root);
        if found.is_empty() {
            return;
        }
        if std::time::Instant::now() >= deadline {
            panic!(
                "left behind under {}:\n  {}",
                root.display(),
                found.join("\n  ")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
