//! `zlayer-shim start DIR LC_ROOT`: runs in its own session (detached from
//! the agent), creates and starts the container with libcontainer (so its
//! init becomes our child), then becomes the container's monitor (see
//! [`super::monitor`]) in the same process.
//!
//! fd 3 is the readiness pipe: the monitor writes one [`Ready`] line on it
//! once the workload runs; a failure before that is written from here.

use super::errors::{error_chain, user_message};
use super::executor::{seccomp_program, CleanSignalsExecutor};
use super::monitor::{self, MonitorIo};
use super::protocol::Ready;
use super::tty;
use crate::network;
use crate::paths::ContainerPaths;
use crate::state_dir::{self, ContainerRecord, ShimRecord};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use zlayer_sys::procfs;

/// The fd the agent passes the readiness pipe on.
pub const READY_FD: RawFd = 3;

/// Entry point of `zlayer-shim start`. Returns the process exit code.
pub fn run(paths: &ContainerPaths) -> i32 {
    // SAFETY: fd 3 was set up by the agent for us; we own it from now on.
    let ready = unsafe { File::from_raw_fd(READY_FD) };
    // Keep it out of the container's processes.
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
        Ok(h) => {
            // The steady state: this very process, whose child the init is.
            let io = MonitorIo {
                ready,
                stdin: h.stdin,
                stdout: h.stdout,
                stderr: h.stderr,
                listener: h.listener,
            };
            monitor::run(paths.clone(), h.init_pid, io)
        }
        Err(msg) => fail(ready, &msg),
    }
}

/// What the monitor inherits.
struct Handoff {
    init_pid: i32,
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    listener: UnixListener,
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
    let sock = paths.socket();
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock)
        .map_err(|e| format!("binding the control socket {} failed: {e}", sock.display()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("control socket: {e}"))?;

    let seccomp = seccomp_program(paths, &record)?;
    let base = ContainerBuilder::new(paths.lc_id.clone(), SyscallType::default())
        .with_root_path(&paths.lc_root)
        .map_err(|e| error_chain(&e))?
        .with_executor(CleanSignalsExecutor { seccomp });
    // The monitor's ends of the container's stdio.
    let (stdin, stdout, stderr, console, builder);
    if record.tty {
        // libcontainer creates the pty inside the container and sends its
        // master side over this socket.
        let path = paths.console_socket();
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path)
            .map_err(|e| format!("binding the console socket {} failed: {e}", path.display()))?;
        builder = base.with_console_socket(Some(&path));
        console = Some(l);
        (stdin, stdout, stderr) = (None, None, None);
    } else {
        let (stdin_r, stdin_w) = pipe()?;
        let (stdout_r, stdout_w) = pipe()?;
        let (stderr_r, stderr_w) = pipe()?;
        builder = base
            .with_stdin(stdin_r)
            .with_stdout(stdout_w)
            .with_stderr(stderr_w);
        console = None;
        (stdin, stdout, stderr) = (Some(stdin_w), Some(stdout_r), Some(stderr_r));
    }
    let mut container = builder
        .as_init(&paths.dir)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| user_message(&error_chain(&e)))?;
    let init_pid = container
        .pid()
        .map(|p| p.as_raw())
        .ok_or_else(|| "libcontainer did not report the init pid".to_string())?;

    // Set once the container is on a bridge: a later failure detaches it.
    let attached = std::cell::Cell::new(false);
    let abort = |msg: String| -> String {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(init_pid, libc::SIGKILL);
        }
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(init_pid), None);
        if attached.get() {
            let _ = network::detach(paths, Some(&record));
        }
        msg
    };
    // The network, before the workload runs (`none`: lo up in-process;
    // bridge modes: veth, address, ports, /etc/hosts, /etc/resolv.conf).
    attached.set(network::attach(paths, &record, init_pid).map_err(abort)?);
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
    let (stdin, stdout, stderr) = match console {
        Some(l) => {
            let master = tty::receive_master(&l)
                .map_err(|e| abort(format!("receiving the container's terminal failed: {e}")))?;
            let _ = std::fs::remove_file(paths.console_socket());
            let input = master
                .try_clone()
                .map_err(|e| abort(format!("duplicating the terminal: {e}")))?;
            // No separate stderr on a terminal: an empty pipe stands in.
            let (none_r, _none_w) = pipe().map_err(abort)?;
            (input, master, none_r)
        }
        None => match (stdin, stdout, stderr) {
            (Some(i), Some(o), Some(e)) => (i, o, e),
            _ => return Err(abort("the container's stdio pipes are missing".into())),
        },
    };
    container.start().map_err(|e| {
        abort(format!(
            "starting the container failed: {}",
            error_chain(&e)
        ))
    })?;
    Ok(Handoff {
        init_pid,
        stdin,
        stdout,
        stderr,
        listener,
    })
}

/// Whether `path` looks like a container state dir the shim may act on.
pub fn is_state_dir(path: &Path) -> bool {
    path.is_absolute() && path.join("container.json").is_file()
}
