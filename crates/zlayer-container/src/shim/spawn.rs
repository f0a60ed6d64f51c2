//! Agent side of `zlayer-shim start`: launch it in its own session, wait
//! for its readiness line.

use super::protocol::Ready;
use crate::paths::ContainerPaths;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// How long a container may take to be created and started.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Launches `shim start` for `paths` and waits until the monitor reports.
/// `Ok(init_pid)` once the workload runs; `Err(reason)` otherwise.
///
/// The shim is a direct child in a new session; the agent does not wait
/// for it (tokio reaps it in the background when it eventually exits), so
/// the agent may exit or die at any time without affecting it.
pub async fn start_shim(shim: &Path, paths: &ContainerPaths) -> Result<i32, String> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("creating the readiness pipe failed: {e}"))?;
    let w_raw = w.as_raw_fd();
    let mut cmd = tokio::process::Command::new(shim);
    cmd.arg("start")
        .arg(&paths.dir)
        .arg(&paths.lc_root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(false);
    // SAFETY: only async-signal-safe calls (setsid, dup2, fcntl) between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if w_raw == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(w_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| {
        format!(
            "launching the container monitor {} failed: {e}; check the shim path",
            shim.display()
        )
    })?;
    drop(w);
    // Not awaited: the child is the long-lived monitor. Dropping the handle
    // lets tokio reap it in the background once it exits.
    drop(child);
    let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(r)
        .map_err(|e| format!("reading the monitor's readiness: {e}"))?;
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(receiver);
    match tokio::time::timeout(START_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => Err(format!(
            "the container did not start within {}s",
            START_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(format!("reading the monitor's readiness failed: {e}")),
        Ok(Ok(_)) => parse_ready(&line),
    }
}

fn parse_ready(line: &str) -> Result<i32, String> {
    match serde_json::from_str::<Ready>(line.trim()) {
        Ok(Ready::Started { init_pid }) => Ok(init_pid),
        Ok(Ready::Failed { error }) => Err(error),
        Err(_) => Err(format!(
            "the container monitor exited without reporting (output {:?}); run the shim by hand to see why",
            line.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines() {
        assert_eq!(
            parse_ready("{\"status\":\"started\",\"init_pid\":42}\n"),
            Ok(42)
        );
        assert_eq!(
            parse_ready("{\"status\":\"failed\",\"error\":\"boom\"}"),
            Err("boom".into())
        );
        assert!(parse_ready("").unwrap_err().contains("without reporting"));
    }
}
