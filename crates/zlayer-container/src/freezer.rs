//! Pause and unpause through the cgroup freezer (v1 `freezer.state`, v2
//! `cgroup.freeze`).

use super::cgroups::ContainerCgroup;
use std::time::{Duration, Instant};
use zlayer_runtime::error::{Result, RuntimeError};

/// How long to wait for the kernel to finish freezing or thawing.
const SETTLE: Duration = Duration::from_secs(5);

/// Freezes every process of the cgroup and waits until they are frozen.
pub fn freeze(cg: &ContainerCgroup) -> Result<()> {
    set(cg, true)
}

/// Thaws the cgroup and waits until it runs again.
pub fn thaw(cg: &ContainerCgroup) -> Result<()> {
    set(cg, false)
}

/// Thaws the cgroup if it exists, ignoring errors (used before killing).
pub fn thaw_quietly(cg: &ContainerCgroup) {
    if is_frozen(cg) {
        let _ = set(cg, false);
    }
}

/// Whether the cgroup is frozen (or freezing).
pub fn is_frozen(cg: &ContainerCgroup) -> bool {
    if let Some(dir) = cg.v2_dir() {
        return std::fs::read_to_string(dir.join("cgroup.freeze"))
            .map(|t| t.trim() == "1")
            .unwrap_or(false);
    }
    match cg.v1_dir("freezer") {
        Some(dir) => std::fs::read_to_string(dir.join("freezer.state"))
            .map(|t| matches!(t.trim(), "FROZEN" | "FREEZING"))
            .unwrap_or(false),
        None => false,
    }
}

fn set(cg: &ContainerCgroup, frozen: bool) -> Result<()> {
    let (file, value, done): (std::path::PathBuf, &str, Box<dyn Fn() -> bool>) =
        if let Some(dir) = cg.v2_dir() {
            let events = dir.join("cgroup.events");
            let want = if frozen { "frozen 1" } else { "frozen 0" };
            (
                dir.join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
                Box::new(move || {
                    std::fs::read_to_string(&events)
                        .map(|t| t.lines().any(|l| l.trim() == want))
                        .unwrap_or(false)
                }),
            )
        } else if let Some(dir) = cg.v1_dir("freezer") {
            let state = dir.join("freezer.state");
            let want = if frozen { "FROZEN" } else { "THAWED" };
            let st = state.clone();
            (
                state,
                want,
                Box::new(move || {
                    std::fs::read_to_string(&st)
                        .map(|t| t.trim() == want)
                        .unwrap_or(false)
                }),
            )
        } else {
            return Err(RuntimeError::Configuration(
                "no cgroup freezer is mounted on this host (need cgroup v2 or the v1 freezer \
                 controller at /sys/fs/cgroup/freezer)"
                    .into(),
            ));
        };
    let deadline = Instant::now() + SETTLE;
    loop {
        std::fs::write(&file, value).map_err(|e| {
            RuntimeError::Internal(format!("writing {value} to {} failed: {e}", file.display()))
        })?;
        if done() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(RuntimeError::Internal(format!(
                "the cgroup did not become {} within {SETTLE:?} ({})",
                if frozen { "frozen" } else { "thawed" },
                file.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
