//! Starting monitors, ahead of time when possible.
//!
//! A standby monitor is a monitor binary started without a directory
//! argument: it execs and initialises while the caller is still creating
//! the container, then reads the container directory from its stdin (the
//! job pipe) and starts it. Dropping an unused standby closes that pipe
//! and the monitor exits without doing anything.
//!
//! The monitor runs in its own process group; it is the caller's child
//! only until the caller exits (then init adopts it). Its exit is reaped by
//! tokio's orphan queue, so no thread waits for it.

use crate::control::Ready;
use crate::launcher::SpawnError;
use crate::layout::StateDir;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long a start waits for the monitor's report (a VM boots meanwhile).
pub const START_TIMEOUT: Duration = Duration::from_secs(180);

/// How long a standby monitor is kept for a later start; an older one is
/// replaced (the binary may have been upgraded meanwhile).
pub const STANDBY_MAX_AGE: Duration = Duration::from_secs(60);

/// A monitor started ahead of its container.
#[derive(Debug)]
pub struct Standby {
    job: OwnedFd,
    report: OwnedFd,
    /// The monitor's pidfd: readable once it has exited (a monitor that
    /// dies before reporting may leave the report pipe open in a process
    /// it forked, so its end is watched instead of the pipe's EOF).
    pidfd: Option<OwnedFd>,
    spawned: Instant,
}

/// Why [`Standby::start`] failed.
#[derive(Debug)]
pub enum StandbyError {
    /// The monitor was gone before it took the job; nothing was started,
    /// and another monitor may be tried.
    Gone(std::io::Error),
    /// The start failed.
    Failed(SpawnError),
}

impl Standby {
    /// Starts the monitor binary `monitor` in standby.
    pub fn spawn(monitor: &Path) -> std::io::Result<Standby> {
        let (report, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (job_r, job) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        // The ready pipe is the monitor's stdout (it moves it off fd 1 at
        // once), the job pipe its stdin: no pre_exec hook, so the spawn is
        // a posix_spawn (vfork, no copy of this process's page tables)
        // rather than a fork.
        let mut cmd = tokio::process::Command::new(monitor);
        cmd.arg("--ready-fd")
            .arg("1")
            .stdin(Stdio::from(job_r))
            .stdout(Stdio::from(report_w))
            .stderr(Stdio::null())
            .kill_on_drop(false);
        // Its own process group keeps the monitor out of the caller's job
        // control (Ctrl-C, `kill -- -PGID`). Not setsid: a new session also
        // means a new scheduler autogroup, which measurably delays the
        // start on a loaded host.
        cmd.process_group(0);
        let child = cmd.spawn()?;
        // Our unreaped child: its pid is still its own.
        let pidfd = child
            .id()
            .and_then(|pid| zlayer_sys::pidfd::open(pid as i32).ok());
        drop(cmd);
        drop(child);
        Ok(Standby {
            job,
            report,
            pidfd,
            spawned: Instant::now(),
        })
    }

    /// Whether this standby is young enough to be used.
    pub fn is_fresh(&self) -> bool {
        self.spawned.elapsed() < STANDBY_MAX_AGE
    }

    /// Hands the container in `dir` to this monitor and waits for its
    /// report; returns the workload's main pid.
    pub async fn start(self, dir: &StateDir) -> Result<i32, StandbyError> {
        // The monitor writes its own diagnostics (and panics) to
        // monitor.log, creating it only when it has something to say.
        let _ = std::fs::remove_file(dir.monitor_log());
        let mut job = std::fs::File::from(self.job);
        let mut line = dir.dir.as_os_str().as_bytes().to_vec();
        line.push(b'\n');
        if let Err(e) = job.write_all(&line) {
            return Err(StandbyError::Gone(e));
        }
        drop(job);
        let line = tokio::time::timeout(START_TIMEOUT, report_or_exit(self.report, self.pidfd))
            .await
            .map_err(|_| {
                StandbyError::Failed(SpawnError::engine(format!(
                    "the monitor did not report within {}s",
                    START_TIMEOUT.as_secs()
                )))
            })?
            .map_err(|e| {
                StandbyError::Failed(SpawnError::engine(format!("waiting for the monitor: {e}")))
            })?;
        match serde_json::from_str::<Ready>(line.trim()) {
            Ok(Ready::Started { pid }) => Ok(pid),
            Ok(Ready::Failed(e)) => Err(StandbyError::Failed(e)),
            Err(_) if line.trim().is_empty() && !dir.monitor_log().exists() => {
                Err(StandbyError::Gone(std::io::Error::other(
                    "the monitor exited without reading its job",
                )))
            }
            Err(_) => {
                let diag = std::fs::read_to_string(dir.monitor_log()).unwrap_or_default();
                Err(StandbyError::Failed(SpawnError::engine(format!(
                    "the monitor exited without reporting ({}); {}",
                    if line.trim().is_empty() {
                        "no output"
                    } else {
                        line.trim()
                    },
                    diag.trim()
                ))))
            }
        }
    }
}

/// Starts the monitor of the created container in `dir` and waits for its
/// report; returns the workload's main pid. Uses `standby` when given and
/// fresh, else (or when it has gone) a new monitor of `binary`.
pub async fn start_monitor(
    binary: &Path,
    dir: &StateDir,
    standby: Option<Standby>,
) -> Result<i32, SpawnError> {
    if let Some(s) = standby.filter(Standby::is_fresh) {
        match s.start(dir).await {
            Ok(pid) => return Ok(pid),
            Err(StandbyError::Failed(e)) => return Err(e),
            Err(StandbyError::Gone(e)) => {
                tracing::debug!("the standby monitor was gone ({e}); starting another")
            }
        }
    }
    let fresh = Standby::spawn(binary).map_err(|e| {
        SpawnError::engine(format!("running the monitor {}: {e}", binary.display()))
    })?;
    match fresh.start(dir).await {
        Ok(pid) => Ok(pid),
        Err(StandbyError::Failed(e)) => Err(e),
        Err(StandbyError::Gone(e)) => Err(SpawnError::engine(format!(
            "the monitor {} exited at once ({e}); see {}",
            binary.display(),
            dir.monitor_log().display()
        ))),
    }
}

/// How long a report may still take to arrive once the monitor has exited
/// (it is in the pipe already, or never comes).
const REPORT_AFTER_EXIT: Duration = Duration::from_millis(200);

/// The monitor's report, or what it wrote before it exited without one
/// (then quickly, even when a process it forked holds the pipe open).
async fn report_or_exit(report: OwnedFd, pidfd: Option<OwnedFd>) -> std::io::Result<String> {
    let reading = read_report(report);
    tokio::pin!(reading);
    let Some(pidfd) = pidfd else {
        return reading.await;
    };
    let exited = async {
        // SAFETY: the AsyncFd owns the pidfd, which stays open and the
        // same for its whole life.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
        };
        match fd {
            Ok(fd) => {
                let _ = fd.readable().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        r = &mut reading => r,
        () = exited => Ok(tokio::time::timeout(REPORT_AFTER_EXIT, reading)
            .await
            .unwrap_or_else(|_| Ok(String::new()))?),
    }
}

/// Reads the monitor's one-line report (up to the newline or EOF).
async fn read_report(r: OwnedFd) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(r)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = rx.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.contains(&b'\n') {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
