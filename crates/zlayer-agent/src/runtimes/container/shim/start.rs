//! `zlayer-shim start DIR LC_ROOT`: runs in its own session (detached from
//! the agent), creates and starts the container with libcontainer (so its
//! init becomes our child), then re-executes itself as the small monitor
//! (see [`super::monitor`]).
//!
//! fd 3 is the readiness pipe: the monitor writes one [`Ready`] line on it
//! once the workload runs; a failure before that is written from here.

use super::errors::{error_chain, user_message};
use super::executor::{seccomp_program, CleanSignalsExecutor};
use super::protocol::Ready;
use crate::runtimes::common::procfs;
use crate::runtimes::container::netns;
use crate::runtimes::container::paths::ContainerPaths;
use crate::runtimes::container::state_dir::{self, ContainerRecord, ShimRecord};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

/// The fd the agent passes the readiness pipe on.
pub const READY_FD: RawFd = 3;

/// Entry point of `zlayer-shim start`. Returns the process exit code.
pub fn run(paths: &ContainerPaths) -> i32 {
    // SAFETY: fd 3 was set up by the agent for us; we own it from now on.
    let ready = unsafe { File::from_raw_fd(READY_FD) };
    // Keep it out of the container's processes; the monitor gets it back
    // explicitly when exec'd.
    // SAFETY: fcntl on our own fd.
    unsafe {
        libc::fcntl(READY_FD, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    // Detached from the agent: its own session (the agent already called
    // setsid between fork and exec; this covers a shim started by hand).
    // Nothing ties its life to the agent's, which may exit or be killed.
    let _ = nix::unistd::setsid();
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        return fail(ready, &format!("PR_SET_CHILD_SUBREAPER failed: {e}"));
    }
    match create_and_start(paths) {
        Ok(handoff) => exec_monitor(paths, ready, handoff),
        Err(msg) => fail(ready, &msg),
    }
}

/// What the monitor inherits.
struct Handoff {
    init_pid: i32,
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    listener: OwnedFd,
}

fn fail(mut ready: File, msg: &str) -> i32 {
    let line = serde_json::to_string(&Ready::Failed {
        error: msg.to_string(),
    })
    .unwrap_or_default();
    let _ = writeln!(ready, "{line}");
    1
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("creating a pipe failed: {e}"))
}

fn create_and_start(paths: &ContainerPaths) -> Result<Handoff, String> {
    let record: ContainerRecord = state_dir::read_json(&paths.record())
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} is missing", paths.record().display()))?;
    let (stdin_r, stdin_w) = pipe()?;
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;

    let sock = paths.socket();
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock)
        .map_err(|e| format!("binding the control socket {} failed: {e}", sock.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("control socket: {e}"))?;

    let seccomp = seccomp_program(paths)?;
    let builder = ContainerBuilder::new(paths.lc_id.clone(), SyscallType::default())
        .with_root_path(&paths.lc_root)
        .map_err(|e| error_chain(&e))?
        .with_executor(CleanSignalsExecutor { seccomp })
        .with_stdin(stdin_r)
        .with_stdout(stdout_w)
        .with_stderr(stderr_w)
        .as_init(&paths.dir)
        .with_systemd(false)
        .with_detach(true);
    let mut container = builder
        .build()
        .map_err(|e| user_message(&error_chain(&e)))?;
    let init_pid = container
        .pid()
        .map(|p| p.as_raw())
        .ok_or_else(|| "libcontainer did not report the init pid".to_string())?;

    let abort = |msg: String| -> String {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(init_pid, libc::SIGKILL);
        }
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(init_pid), None);
        msg
    };
    if !record.host_network {
        netns::bring_up_loopback(init_pid)
            .map_err(|e| abort(format!("bringing up lo in the container failed: {e}")))?;
    }
    let me = procfs::stat(std::process::id() as i32);
    let init = procfs::stat(init_pid);
    let shim = ShimRecord {
        shim_pid: std::process::id() as i32,
        shim_starttime: me.map(|s| s.starttime).unwrap_or(0),
        init_pid,
        init_starttime: init.map(|s| s.starttime).unwrap_or(0),
        started_at_ms: state_dir::now_ms(),
    };
    state_dir::write_json(&paths.shim(), &shim).map_err(|e| abort(e.to_string()))?;
    container.start().map_err(|e| {
        abort(format!(
            "starting the container failed: {}",
            error_chain(&e)
        ))
    })?;
    Ok(Handoff {
        init_pid,
        stdin: stdin_w,
        stdout: stdout_r,
        stderr: stderr_r,
        listener: listener.into(),
    })
}

fn clear_cloexec(fd: RawFd) {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
        }
    }
}

/// Re-executes this binary as `zlayer-shim monitor ...`: a fresh process
/// image that touches no libcontainer code keeps the idle RSS small.
fn exec_monitor(paths: &ContainerPaths, ready: File, h: Handoff) -> i32 {
    let fds: Vec<RawFd> = vec![
        ready.into_raw_fd(),
        h.stdin.into_raw_fd(),
        h.stdout.into_raw_fd(),
        h.stderr.into_raw_fd(),
        h.listener.into_raw_fd(),
    ];
    for fd in &fds {
        clear_cloexec(*fd);
    }
    let arg = |s: &[u8]| CString::new(s).unwrap_or_default();
    let mut argv = vec![
        arg(b"zlayer-shim"),
        arg(b"monitor"),
        arg(paths.dir.as_os_str().as_bytes()),
        arg(paths.lc_root.as_os_str().as_bytes()),
        arg(h.init_pid.to_string().as_bytes()),
    ];
    argv.extend(fds.iter().map(|fd| arg(fd.to_string().as_bytes())));
    let exe = arg(b"/proc/self/exe");
    let err = nix::unistd::execv(&exe, &argv).err();
    // Only reached when exec failed: stop the container we cannot monitor.
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(h.init_pid, libc::SIGKILL);
    }
    // SAFETY: fds[0] is the readiness pipe, still ours.
    let ready = unsafe { File::from_raw_fd(fds[0]) };
    fail(
        ready,
        &format!(
            "re-executing the monitor failed: {}",
            err.map(|e| e.to_string()).unwrap_or_default()
        ),
    )
}

/// Whether `path` looks like a container state dir the shim may act on.
pub fn is_state_dir(path: &Path) -> bool {
    path.is_absolute() && path.join("container.json").is_file()
}
