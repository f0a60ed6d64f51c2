//! Agent side of `zlayer-shim start`: launch it, wait for its readiness line.

use super::protocol::Ready;
use crate::runtimes::container::paths::ContainerPaths;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long a container may take to be created and started.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Launches `shim start` for `paths` and blocks until the monitor reports.
/// `Ok(init_pid)` once the workload runs; `Err(reason)` otherwise.
pub fn start_shim(shim: &Path, paths: &ContainerPaths) -> Result<i32, String> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("creating the readiness pipe failed: {e}"))?;
    let w_raw = w.as_raw_fd();
    let mut cmd = Command::new(shim);
    cmd.arg("start")
        .arg(&paths.dir)
        .arg(&paths.lc_root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if w_raw == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(w_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let t0 = std::time::Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "launching the container monitor {} failed: {e}; check the shim path",
            shim.display()
        )
    })?;
    drop(w);
    // The first shim process forks the monitor and exits at once.
    let _ = child.wait();
    if std::env::var_os("ZL_TIMING").is_some() { eprintln!("spawn: S0 done {:?}", t0.elapsed()); }
    let r = read_ready(r);
    if std::env::var_os("ZL_TIMING").is_some() { eprintln!("spawn: ready {:?}", t0.elapsed()); }
    r
}

fn read_ready(r: OwnedFd) -> Result<i32, String> {
    let mut pfd = libc::pollfd {
        fd: r.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, START_TIMEOUT.as_millis() as i32) };
    if n == 0 {
        return Err(format!(
            "the container did not start within {}s",
            START_TIMEOUT.as_secs()
        ));
    }
    let mut text = String::new();
    File::from(r)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading the monitor's readiness failed: {e}"))?;
    let line = text.lines().next().unwrap_or("");
    match serde_json::from_str::<Ready>(line) {
        Ok(Ready::Started { init_pid }) => Ok(init_pid),
        Ok(Ready::Failed { error }) => Err(error),
        Err(_) => Err(format!(
            "the container monitor exited without reporting (output {line:?}); run the shim by hand to see why"
        )),
    }
}
