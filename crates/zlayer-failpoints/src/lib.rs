//! Failpoints: named steps at which a fault-injection test crashes a zlayer
//! process (CLI, daemon, monitor, guest agent), to check that whatever the
//! crash interrupts is either wholly there or wholly gone afterwards.
//!
//! A test names the points in the environment variable
//! [`ENV`] (`ZLAYER_FAILPOINTS=create.after-record,start.after-spawn`); the
//! list is read once per process. A process that reaches a listed point
//! dies at once by SIGKILL: no destructor, no flush, no exit record, as a
//! power cut or the OOM killer would leave it. A guest agent (PID 1 of its
//! VM, which SIGKILL cannot reach) exits instead, and its VM dies with it.
//! The VM's monitor hands the `guest.` points to its guest on the kernel
//! command line (the kernel passes it to init's environment).
//!
//! Debug builds always have them; release builds only with the feature
//! `enabled`: otherwise [`hit`] is an empty inline function, free at run
//! time. The points are listed in [`POINTS`] and in docs/hosting.md.

/// The environment variable naming the active failpoints (comma-separated).
pub const ENV: &str = "ZLAYER_FAILPOINTS";

/// Every failpoint, with where it sits. Tests iterate over this list, so a
/// new point is covered by the fault matrix as soon as it is listed.
pub const POINTS: &[Point] = &[
    Point::host(
        "create.after-record",
        "create: the record is written, nothing else",
    ),
    Point::host(
        "create.after-rootfs",
        "create: the launcher made the root filesystem",
    ),
    Point::host(
        "create.after-plan",
        "create: the launch plan is written (create is done)",
    ),
    Point::monitor("start.after-cgroup", "start: the workload's cgroup exists"),
    Point::monitor(
        "start.after-network",
        "start: the workload is attached to its network",
    ),
    Point::monitor(
        "start.after-spawn",
        "start: the workload runs, the monitor serves",
    ),
    Point::monitor(
        "exit.before-record",
        "the workload ended; its exit is not recorded",
    ),
    Point::host("stop.after-kill", "stop/rm -f: the workload was killed"),
    Point::host(
        "remove.after-teardown",
        "rm: mounts, cgroups, network released",
    ),
    Point::host(
        "remove.before-discard",
        "rm: the log is moved, the directory remains",
    ),
    Point::host("ingest.mid-blob", "pull/load: half of a blob is in ingest"),
    Point::host(
        "load.before-record",
        "load: blobs stored, the image record not written",
    ),
    Point::guest(
        "guest.after-spawn",
        "vm: the guest agent started the workload",
    ),
];

/// Which process reaches a failpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// The process driving the engine: the CLI (embedded) or the daemon.
    Host,
    /// The container's monitor.
    Monitor,
    /// The guest agent of a VM.
    Guest,
}

/// One failpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Its name, as [`ENV`] lists it.
    pub name: &'static str,
    /// The process that reaches it.
    pub process: Process,
    /// What is done when it is reached.
    pub when: &'static str,
}

impl Point {
    const fn host(name: &'static str, when: &'static str) -> Point {
        Point {
            name,
            process: Process::Host,
            when,
        }
    }
    const fn monitor(name: &'static str, when: &'static str) -> Point {
        Point {
            name,
            process: Process::Monitor,
            when,
        }
    }
    const fn guest(name: &'static str, when: &'static str) -> Point {
        Point {
            name,
            process: Process::Guest,
            when,
        }
    }
}

/// Crashes this process when `name` is an active failpoint (see the crate
/// docs). Free in release builds without the `enabled` feature.
#[inline(always)]
pub fn hit(name: &str) {
    #[cfg(any(debug_assertions, feature = "enabled"))]
    active::hit(name);
    #[cfg(not(any(debug_assertions, feature = "enabled")))]
    let _ = name;
}

/// The active failpoints whose name starts with `prefix`, comma-separated
/// as [`ENV`] takes them (empty when none, and always in release builds
/// without `enabled`): what a monitor hands its guest.
pub fn active_with_prefix(prefix: &str) -> String {
    #[cfg(any(debug_assertions, feature = "enabled"))]
    {
        active::list()
            .iter()
            .filter(|p| p.starts_with(prefix))
            .cloned()
            .collect::<Vec<_>>()
            .join(",")
    }
    #[cfg(not(any(debug_assertions, feature = "enabled")))]
    {
        let _ = prefix;
        String::new()
    }
}

#[cfg(any(debug_assertions, feature = "enabled"))]
mod active {
    use std::sync::OnceLock;

    pub(super) fn list() -> &'static [String] {
        static LIST: OnceLock<Vec<String>> = OnceLock::new();
        LIST.get_or_init(|| {
            std::env::var(super::ENV)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
    }

    pub(super) fn hit(name: &str) {
        if list().iter().any(|p| p == name) {
            eprintln!(
                "zlayer: failpoint {name} reached: crashing (pid {})",
                std::process::id()
            );
            // SAFETY: kill(2) and _exit(2) have no memory preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
                // PID 1 of a namespace (the guest agent) ignores its own
                // SIGKILL.
                libc::_exit(137);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed_by_their_process() {
        let mut seen = std::collections::HashSet::new();
        for p in POINTS {
            assert!(seen.insert(p.name), "{} twice", p.name);
            assert_eq!(p.process == Process::Guest, p.name.starts_with("guest."));
        }
    }

    #[test]
    fn an_inactive_point_is_passed() {
        // The test process has no failpoints set: this returns.
        hit("create.after-record");
        assert_eq!(active_with_prefix("guest."), "");
    }
}
