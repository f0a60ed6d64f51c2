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

/// Kills what a failed test of data root `root` may have left (monitors,
/// QEMU, see [`pids_of_root`]) and unmounts what is mounted under it.
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
}
