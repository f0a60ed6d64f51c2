//! Starting the monitor and signalling a running sandbox.

use crate::error::{AgentError, Result};
use crate::runtimes::common::procfs;
use crate::types::ContainerId;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

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
    let exe = std::env::current_exe().ok();
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = exe.as_ref().and_then(|e| e.parent()) {
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
            AgentError::Configuration(format!(
                "the sandbox monitor `{SHIM_NAME}` was not found next to {} or on PATH; build it with `cargo build -p zlayer-agent --bins` or set ZLAYER_SANDBOX_SHIM",
                exe.map(|e| e.display().to_string()).unwrap_or_else(|| "this program".into())
            ))
        })
}

/// Starts the monitor of a created container and waits for its report;
/// returns the workload's pid.
///
/// The monitor runs in its own process group; it is this process's child
/// only until this process exits (then init adopts it). Its exit is reaped by
/// tokio's orphan queue, so no thread waits for it.
pub async fn spawn_monitor(shim: &Path, paths: &ContainerPaths, id: &ContainerId) -> Result<i32> {
    let fail = |reason: String| AgentError::StartFailed {
        id: id.to_string(),
        reason,
    };
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| fail(format!("creating the ready pipe: {e}")))?;
    // The monitor writes its own diagnostics (and panics) to monitor.log,
    // creating it only when it has something to say.
    let _ = std::fs::remove_file(paths.monitor_log());
    // The ready pipe is the monitor's stdout (it moves it off fd 1 at once):
    // no pre_exec hook, so the spawn is a posix_spawn (vfork, no copy of
    // this process's page tables) rather than a fork.
    let mut cmd = tokio::process::Command::new(shim);
    cmd.arg(&paths.dir)
        .arg("--ready-fd")
        .arg("1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(w))
        .stderr(Stdio::null())
        .kill_on_drop(false);
    // Its own process group keeps the monitor out of the agent's job
    // control (Ctrl-C, `kill -- -PGID`). Not setsid: a new session also
    // means a new scheduler autogroup, which measurably delays the start on
    // a loaded host (the workload itself still gets its own session).
    cmd.process_group(0);
    let child = cmd.spawn().map_err(|e| {
        fail(format!(
            "running the sandbox monitor {}: {e}",
            shim.display()
        ))
    })?;
    // Dropping the command closes this process's end of the pipe.
    drop(cmd);
    drop(child);
    let line = tokio::time::timeout(START_TIMEOUT, read_report(r))
        .await
        .map_err(|_| {
            fail(format!(
                "the sandbox monitor did not report within {START_TIMEOUT:?}"
            ))
        })?
        .map_err(|e| fail(format!("waiting for the sandbox monitor: {e}")))?;
    let line = line.trim();
    if let Some(pid) = line.strip_prefix("ok ") {
        return pid
            .trim()
            .parse()
            .map_err(|_| fail(format!("the sandbox monitor reported a bad pid {pid:?}")));
    }
    if let Some(msg) = line.strip_prefix("err ") {
        return Err(fail(msg.to_string()));
    }
    let diag = std::fs::read_to_string(paths.monitor_log()).unwrap_or_default();
    Err(fail(format!(
        "the sandbox monitor exited without reporting ({}); {}",
        if line.is_empty() { "no output" } else { line },
        diag.trim()
    )))
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
    let sig =
        Signal::try_from(sig).map_err(|e| AgentError::InvalidSpec(format!("signal {sig}: {e}")))?;
    match kill(Pid::from_raw(-info.pid), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(AgentError::Internal(format!(
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
