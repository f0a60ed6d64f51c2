//! Starting the monitor and signalling a running sandbox.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::ContainerId;
use zlayer_sys::procfs;

use super::layout::ContainerPaths;
use super::record::MonitorInfo;

/// How long `start` waits for the monitor's report.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The name of the monitor binary.
pub const SHIM_NAME: &str = "zlayer-sandbox-shim";

/// Finds the monitor binary: `$ZLAYER_SANDBOX_SHIM`, next to the current
/// executable (or one directory up, for test and example binaries), or on
/// `PATH`.
pub fn find_shim() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ZLAYER_SANDBOX_SHIM") {
        return Ok(PathBuf::from(p));
    }
    let exe_dir = zlayer_sys::exe::dir();
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = exe_dir {
        dirs.push(dir.to_path_buf());
        if let Some(up) = dir.parent() {
            dirs.push(up.to_path_buf());
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join(SHIM_NAME))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            RuntimeError::Configuration(format!(
                "the sandbox monitor `{SHIM_NAME}` was not found next to {} or on PATH; build it with `cargo build -p zlayer-sandbox --bins` or set ZLAYER_SANDBOX_SHIM",
                exe_dir.map_or_else(|| "this program".into(), |d| d.display().to_string())
            ))
        })
}

/// How long a standby monitor is kept for a later start; an older one is
/// replaced (the binary may have been upgraded meanwhile).
pub const STANDBY_MAX_AGE: Duration = Duration::from_secs(60);

/// A monitor started ahead of its container: `zlayer-sandbox-shim` without
/// a directory argument. It execs and initialises while the agent is still
/// creating the container, then reads the container directory from its
/// stdin (the `job` pipe) and starts it. Dropping an unused standby closes
/// that pipe and the monitor exits without doing anything.
///
/// The monitor runs in its own process group; it is this process's child
/// only until this process exits (then init adopts it). Its exit is reaped by
/// tokio's orphan queue, so no thread waits for it.
#[derive(Debug)]
pub struct Standby {
    job: OwnedFd,
    report: OwnedFd,
    spawned: Instant,
}

impl Standby {
    /// Starts `shim` in standby.
    pub fn spawn(shim: &Path) -> std::io::Result<Standby> {
        let (report, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (job_r, job) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        // The ready pipe is the monitor's stdout (it moves it off fd 1 at
        // once), the job pipe its stdin: no pre_exec hook, so the spawn is a
        // posix_spawn (vfork, no copy of this process's page tables) rather
        // than a fork.
        let mut cmd = tokio::process::Command::new(shim);
        cmd.arg("--ready-fd")
            .arg("1")
            .stdin(Stdio::from(job_r))
            .stdout(Stdio::from(report_w))
            .stderr(Stdio::null())
            .kill_on_drop(false);
        // Its own process group keeps the monitor out of the agent's job
        // control (Ctrl-C, `kill -- -PGID`). Not setsid: a new session also
        // means a new scheduler autogroup, which measurably delays the start
        // on a loaded host (the workload itself still gets its own session).
        cmd.process_group(0);
        let child = cmd.spawn()?;
        // Dropping the command closes this process's ends of the pipes.
        drop(cmd);
        drop(child);
        Ok(Standby {
            job,
            report,
            spawned: Instant::now(),
        })
    }

    /// Whether this standby is young enough to be used (see [`STANDBY_MAX_AGE`]).
    pub fn is_fresh(&self) -> bool {
        self.spawned.elapsed() < STANDBY_MAX_AGE
    }

    /// Hands the created container of `paths` to this monitor and waits for
    /// its report; returns the workload's pid. [`StandbyError::Gone`] means
    /// the monitor had exited before it read the job: nothing was started,
    /// and the caller may start another one.
    pub async fn start(self, paths: &ContainerPaths, id: &ContainerId) -> StandbyResult {
        let fail = |reason: String| RuntimeError::StartFailed {
            id: id.to_string(),
            reason,
        };
        // The monitor writes its own diagnostics (and panics) to
        // monitor.log, creating it only when it has something to say.
        let _ = std::fs::remove_file(paths.monitor_log());
        let mut job = std::fs::File::from(self.job);
        let mut line = paths.dir.as_os_str().as_bytes().to_vec();
        line.push(b'\n');
        if let Err(e) = job.write_all(&line) {
            return Err(StandbyError::Gone(e));
        }
        drop(job);
        let line = tokio::time::timeout(START_TIMEOUT, read_report(self.report))
            .await
            .map_err(|_| {
                fail(format!(
                    "the sandbox monitor did not report within {START_TIMEOUT:?}"
                ))
            })?
            .map_err(|e| fail(format!("waiting for the sandbox monitor: {e}")))?;
        let line = line.trim();
        if let Some(pid) = line.strip_prefix("ok ") {
            return pid.trim().parse().map_err(|_| {
                StandbyError::Failed(fail(format!(
                    "the sandbox monitor reported a bad pid {pid:?}"
                )))
            });
        }
        if let Some(msg) = line.strip_prefix("err ") {
            return Err(fail(msg.to_string()).into());
        }
        let diag = std::fs::read_to_string(paths.monitor_log()).unwrap_or_default();
        Err(fail(format!(
            "the sandbox monitor exited without reporting ({}); {}",
            if line.is_empty() { "no output" } else { line },
            diag.trim()
        ))
        .into())
    }
}

/// What [`Standby::start`] returns.
pub type StandbyResult = std::result::Result<i32, StandbyError>;

/// Why [`Standby::start`] failed.
#[derive(Debug)]
pub enum StandbyError {
    /// The standby monitor was gone before it took the job; nothing was
    /// started (another monitor may be tried).
    Gone(std::io::Error),
    /// The start failed.
    Failed(RuntimeError),
}

impl From<RuntimeError> for StandbyError {
    fn from(e: RuntimeError) -> Self {
        StandbyError::Failed(e)
    }
}

/// Starts the monitor of a created container and waits for its report;
/// returns the workload's pid. Uses `standby` when given and fresh, else
/// (or when it has gone) a new monitor.
pub async fn spawn_monitor(
    shim: &Path,
    paths: &ContainerPaths,
    id: &ContainerId,
    standby: Option<Standby>,
) -> Result<i32> {
    if let Some(s) = standby.filter(Standby::is_fresh) {
        match s.start(paths, id).await {
            Ok(pid) => return Ok(pid),
            Err(StandbyError::Failed(e)) => return Err(e),
            Err(StandbyError::Gone(e)) => {
                tracing::debug!("the standby sandbox monitor was gone ({e}); starting another")
            }
        }
    }
    let fresh = Standby::spawn(shim).map_err(|e| RuntimeError::StartFailed {
        id: id.to_string(),
        reason: format!("running the sandbox monitor {}: {e}", shim.display()),
    })?;
    match fresh.start(paths, id).await {
        Ok(pid) => Ok(pid),
        Err(StandbyError::Failed(e)) => Err(e),
        Err(StandbyError::Gone(e)) => Err(RuntimeError::StartFailed {
            id: id.to_string(),
            reason: format!(
                "the sandbox monitor {} exited at once ({e}); see {}",
                shim.display(),
                paths.monitor_log().display()
            ),
        }),
    }
}

/// Reads the monitor's one-line report (up to the newline or EOF).
async fn read_report(r: std::os::fd::OwnedFd) -> std::io::Result<String> {
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

/// Sends `sig` to the workload's process group.
pub fn signal_group(info: &MonitorInfo, sig: i32) -> Result<()> {
    let sig = Signal::try_from(sig)
        .map_err(|e| RuntimeError::InvalidSpec(format!("signal {sig}: {e}")))?;
    match kill(Pid::from_raw(-info.pid), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(RuntimeError::Internal(format!(
            "sending {sig} to process group {}: {e}",
            info.pid
        ))),
    }
}

/// Sends `sig` to every process of the sandbox (all descendants of its
/// monitor, whatever their process group).
pub fn signal_all(info: &MonitorInfo, sig: Signal) {
    for p in procfs::descendants_fast(info.monitor_pid) {
        let _ = kill(Pid::from_raw(p.pid), sig);
    }
    let _ = kill(Pid::from_raw(-info.pid), sig);
}
