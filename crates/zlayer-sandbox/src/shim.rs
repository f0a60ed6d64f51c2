//! The per-container monitor (`zlayer-sandbox-shim [<container-dir>]`; without
//! the argument it reads the directory from stdin, see `lifecycle::Standby`).
//!
//! Started by `start_container` in its own process group (so the agent, CLI
//! or daemon, can be killed without losing anything; init adopts the
//! monitor), it:
//! - prepares the policy (Landlock ruleset, seccomp BPF) and spawns the
//!   workload confined, with stdout/stderr on pipes and stdin on the
//!   container's FIFO; writes `pid` and `monitor.json`; reports `ok <pid>`
//!   (or `err <reason>`) on the ready pipe;
//! - appends the output to the JSON-lines log;
//! - is the subreaper of everything the workload starts, kills it all when
//!   the main process ends, and enforces the memory limit (watchdog);
//! - serves `exec` and `close_stdin` on `control.sock`;
//! - finally flushes the log and writes `exit.json` atomically.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zlayer_hosting::exit::{now_ms, ExitRecord};
use zlayer_hosting::logs::LogWriter;
use zlayer_runtime::types::LogStream;
use zlayer_sys::atomic::{read_json, write_json_atomic};
use zlayer_sys::procfs;

use super::control::{self, Reply, Request};
use super::launch::Prepared;
use super::layout;
use super::policy::Policy;
use super::record::{ContainerRecord, MonitorInfo};

/// Watchdog period when a memory limit is set.
pub const WATCHDOG_INTERVAL: Duration = Duration::from_millis(100);

/// How long output may still drain after the main process ended.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Entry point of the `zlayer-sandbox-shim` binary; returns the exit code.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().skip(1).collect();
    let mut dir: Option<PathBuf> = None;
    let mut ready: Option<OwnedFd> = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--ready-fd" {
            let fd = it.next().and_then(|v| v.to_str()?.parse::<i32>().ok());
            match fd {
                Some(1) => match take_stdout() {
                    Ok(fd) => ready = Some(fd),
                    Err(e) => {
                        eprintln!("zlayer-sandbox-shim: moving the ready pipe off stdout: {e}");
                        return 2;
                    }
                },
                // SAFETY: the agent passed this fd to us for our exclusive use.
                Some(fd) if fd > 2 => ready = Some(unsafe { OwnedFd::from_raw_fd(fd) }),
                _ => {
                    eprintln!(
                        "zlayer-sandbox-shim: --ready-fd needs 1 (stdout) or a file descriptor number above 2"
                    );
                    return 2;
                }
            }
        } else if dir.is_none() {
            dir = Some(PathBuf::from(a));
        } else {
            eprintln!("zlayer-sandbox-shim: unexpected argument {a:?}");
            return 2;
        }
    }
    // Standby: without a directory argument the monitor was started ahead
    // of its container and reads the directory from stdin (see
    // `lifecycle::Standby`); no line means it is not needed.
    let dir = match dir {
        Some(d) => d,
        None => match standby_job() {
            Ok(Some(d)) => d,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("usage: zlayer-sandbox-shim [<container-dir>] [--ready-fd N]: {e}");
                return 2;
            }
        },
    };
    let _ = DIAG_LOG.set(dir.join("monitor.log"));
    std::panic::set_hook(Box::new(|info| diag(&format!("panic: {info}"))));
    if let Some(fd) = &ready {
        // The workload must not inherit the ready pipe.
        let _ = nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    let mut ready = Ready(ready);
    match Monitor::start(&dir, &mut ready) {
        Ok(mut m) => {
            ready.ok(m.main_pid);
            m.run();
            0
        }
        Err(msg) => {
            ready.err(&msg);
            1
        }
    }
}

/// Reads the container directory from stdin (the whole input, one line),
/// then puts `/dev/null` on stdin. `None` when the input is empty.
fn standby_job() -> std::io::Result<Option<PathBuf>> {
    use std::os::unix::ffi::OsStringExt;
    let mut job = Vec::new();
    std::io::stdin().lock().read_to_end(&mut job)?;
    // SAFETY: open and dup2 on descriptors of this process.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::close(null);
        }
    }
    while job.last().is_some_and(|b| *b == b'\n') {
        job.pop();
    }
    if job.is_empty() {
        return Ok(None);
    }
    Ok(Some(PathBuf::from(OsString::from_vec(job))))
}

/// Moves the spare log inode of a recycled container directory to `log`
/// unless a log is there already (a restart appends to it).
fn reuse_log_spare(dir: &Path, log: &Path) {
    let _ = zlayer_sys::atomic::rename_noreplace(&dir.join(layout::LOG_SPARE), log);
}

/// `monitor.log` in the container directory, once known.
static DIAG_LOG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Records a diagnostic of the monitor itself in `monitor.log`, created on
/// first use (a start without trouble writes no file), or on stderr.
fn diag(msg: &str) {
    let line = format!("zlayer-sandbox-shim: {msg}\n");
    let written = DIAG_LOG.get().is_some_and(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .is_ok()
    });
    if !written {
        eprint!("{line}");
    }
}

/// Takes the ready pipe the agent passed as stdout: a close-on-exec
/// duplicate of fd 1, with `/dev/null` on fd 1 from then on.
fn take_stdout() -> std::io::Result<OwnedFd> {
    // SAFETY: fcntl, open and dup2 on descriptors of this process; the
    // duplicate is owned by the returned OwnedFd alone.
    unsafe {
        let fd = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let owned = OwnedFd::from_raw_fd(fd);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let r = libc::dup2(null, 1);
        libc::close(null);
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(owned)
    }
}

/// The pipe on which the monitor reports its start to the agent.
struct Ready(Option<OwnedFd>);

impl Ready {
    fn send(&mut self, line: &str) {
        if let Some(fd) = self.0.take() {
            let mut f = File::from(fd);
            let _ = f.write_all(line.as_bytes());
        }
    }
    fn ok(&mut self, pid: i32) {
        self.send(&format!("ok {pid}\n"));
    }
    fn err(&mut self, msg: &str) {
        diag(msg);
        self.send(&format!("err {}\n", msg.replace('\n', " ")));
    }
}

struct Output {
    file: Option<File>,
    stream: LogStream,
}

struct Monitor {
    dir: PathBuf,
    record: ContainerRecord,
    prepared: Prepared,
    log: LogWriter,
    signals: SignalFd,
    outputs: [Output; 2],
    listener: Option<UnixListener>,
    stdin_holder: Option<File>,
    /// The pty master (write side), in terminal mode.
    pty_master: Option<File>,
    me: i32,
    main_pid: i32,
    main_status: Option<WaitStatus>,
    execs: HashMap<i32, UnixStream>,
    kill_reason: Option<String>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("creating a pipe: {e}"))
}

fn set_nonblocking(fd: &impl AsRawFd, on: bool) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(flags) = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL) {
        let mut f = OFlag::from_bits_truncate(flags);
        f.set(OFlag::O_NONBLOCK, on);
        let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(f));
    }
}

fn code_of(status: &WaitStatus) -> (i32, Option<i32>) {
    match status {
        WaitStatus::Exited(_, code) => (*code, None),
        WaitStatus::Signaled(_, sig, _) => (128 + *sig as i32, Some(*sig as i32)),
        _ => (255, None),
    }
}

impl Monitor {
    fn start(dir: &Path, _ready: &mut Ready) -> Result<Monitor, String> {
        let cfg = dir.join("config.json");
        let record: ContainerRecord = read_json(&cfg)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} is missing; create the container first", cfg.display()))?;
        if let Some(parent) = record.log_path.parent() {
            zlayer_image::ensure_dir(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        reuse_log_spare(dir, &record.log_path);
        let mut log = LogWriter::open(&record.log_path)
            .map_err(|e| format!("opening the log {}: {e}", record.log_path.display()))?;
        let fail = |log: &mut LogWriter, msg: String| -> String {
            let _ = log.write_message(LogStream::System, &format!("sandbox start failed: {msg}"));
            let _ = log.finish();
            msg
        };
        let prepared = match Prepared::new(&record.policy) {
            Ok(p) => p,
            Err(msg) => return Err(fail(&mut log, msg)),
        };
        for d in prepared.degraded() {
            let _ = log.write_message(LogStream::System, &format!("sandbox degraded: {d}"));
        }
        // SAFETY: plain prctl.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGQUIT,
        ] {
            mask.add(s);
        }
        mask.thread_block()
            .map_err(|e| fail(&mut log, format!("blocking signals: {e}")))?;
        // SAFETY: ignoring SIGPIPE (a vanished exec client) is always sound.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| fail(&mut log, format!("signalfd: {e}")))?;

        // stdin: a FIFO the monitor holds open for writing, so the workload
        // sees EOF only after close_stdin.
        let fifo = layout::stdin_path(dir);
        let _ = std::fs::create_dir(layout::run_dir(dir));
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| fail(&mut log, format!("creating the stdin FIFO: {e}")))?;
        let holder = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .map_err(|e| fail(&mut log, format!("opening the stdin FIFO: {e}")))?;
        let mut child_stdin = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .map_err(|e| fail(&mut log, format!("opening the stdin FIFO: {e}")))?
        };
        set_nonblocking(&child_stdin, false);

        let mut pty_master = None;
        let (child_out, child_err, outputs) = if record.tty {
            // A terminal: the slave is the workload's stdin/stdout/stderr,
            // the monitor reads the master and relays the FIFO into it.
            let pty = nix::pty::openpty(None, None)
                .map_err(|e| fail(&mut log, format!("allocating a pty: {e}")))?;
            let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| format!("pty: {e}"));
            let master_w = dup(&pty.master).map_err(|e| fail(&mut log, e))?;
            set_nonblocking(&pty.master, true);
            set_nonblocking(&holder, true);
            pty_master = Some(File::from(master_w));
            let out = dup(&pty.slave).map_err(|e| fail(&mut log, e))?;
            let err = dup(&pty.slave).map_err(|e| fail(&mut log, e))?;
            child_stdin = File::from(pty.slave);
            (
                out,
                err,
                [
                    Output {
                        file: Some(File::from(pty.master)),
                        stream: LogStream::Stdout,
                    },
                    Output {
                        file: None,
                        stream: LogStream::Stderr,
                    },
                ],
            )
        } else {
            let (out_r, out_w) = pipe().map_err(|e| fail(&mut log, e))?;
            let (err_r, err_w) = pipe().map_err(|e| fail(&mut log, e))?;
            set_nonblocking(&out_r, true);
            set_nonblocking(&err_r, true);
            (
                out_w,
                err_w,
                [
                    Output {
                        file: Some(File::from(out_r)),
                        stream: LogStream::Stdout,
                    },
                    Output {
                        file: Some(File::from(err_r)),
                        stream: LogStream::Stderr,
                    },
                ],
            )
        };
        let listener = control::bind(&layout::socket_path(dir))
            .map_err(|e| fail(&mut log, format!("binding the control socket: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| fail(&mut log, format!("control socket: {e}")))?;

        let main_pid = prepared
            .spawn(
                &record.program,
                &record.argv,
                &record.env,
                &record.cwd,
                record.tty,
                [OwnedFd::from(child_stdin), child_out, child_err],
            )
            .map_err(|e| {
                let _ = std::fs::remove_file(layout::socket_path(dir));
                let _ = std::fs::remove_file(&fifo);
                fail(
                    &mut log,
                    format!("executing {} failed: {e}", record.program.display()),
                )
            })?;
        // The child is reaped with waitpid(-1) in the loop.
        let me = std::process::id() as i32;
        let info = MonitorInfo {
            monitor_pid: me,
            monitor_starttime: procfs::stat(me).map(|s| s.starttime).unwrap_or(0),
            pid: main_pid,
            pid_starttime: procfs::stat(main_pid).map(|s| s.starttime).unwrap_or(0),
            started_at_ms: now_ms(),
            landlock_abi: prepared.landlock_abi(),
            degraded: prepared.degraded().to_vec(),
        };
        let _ =
            zlayer_sys::atomic::write_atomic(&dir.join("pid"), format!("{main_pid}\n").as_bytes());
        write_json_atomic(&dir.join("monitor.json"), &info).map_err(|e| e.to_string())?;
        Ok(Monitor {
            dir: dir.to_path_buf(),
            record,
            prepared,
            log,
            signals,
            outputs,
            listener: Some(listener),
            stdin_holder: Some(holder),
            pty_master,
            me,
            main_pid,
            main_status: None,
            execs: HashMap::new(),
            kill_reason: None,
        })
    }

    fn run(&mut self) {
        let limit = self.record.policy.memory_limit;
        let mut next_watch = Instant::now();
        let mut drain_deadline: Option<Instant> = None;
        loop {
            let timeout = if drain_deadline.is_some() {
                Some(Duration::from_millis(50))
            } else if limit.is_some() {
                Some(next_watch.saturating_duration_since(Instant::now()))
            } else {
                None
            };
            let (sig_ready, out_ready, listen_ready, stdin_ready) = self.wait_events(timeout);
            if stdin_ready {
                self.relay_stdin();
            }
            if sig_ready {
                self.handle_signals();
            }
            for (i, ready) in out_ready.iter().enumerate() {
                if *ready {
                    self.pump(i);
                }
            }
            if listen_ready {
                self.accept_clients();
            }
            if let Some(limit) = limit {
                if self.main_status.is_none() && Instant::now() >= next_watch {
                    next_watch = Instant::now() + WATCHDOG_INTERVAL;
                    self.watchdog(limit);
                }
            }
            if self.main_status.is_some() {
                if drain_deadline.is_none() {
                    // The container ends with its main process.
                    self.kill_tree();
                    self.reap();
                    drain_deadline = Some(Instant::now() + DRAIN_TIMEOUT);
                }
                self.reap();
                let drained = self.outputs.iter().all(|o| o.file.is_none());
                if drained || drain_deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
            }
        }
        for i in 0..2 {
            self.pump(i);
        }
        self.finish();
    }

    fn wait_events(&mut self, timeout: Option<Duration>) -> (bool, [bool; 2], bool, bool) {
        let mut fds: Vec<PollFd> = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        let mut idx = [None, None];
        for (i, o) in self.outputs.iter().enumerate() {
            if let Some(f) = &o.file {
                idx[i] = Some(fds.len());
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
        }
        let listen_idx = self.listener.as_ref().map(|l| {
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let stdin_idx = match (&self.pty_master, &self.stdin_holder) {
            (Some(_), Some(h)) => {
                fds.push(PollFd::new(h.as_fd(), PollFlags::POLLIN));
                Some(fds.len() - 1)
            }
            _ => None,
        };
        let t = match timeout {
            None => PollTimeout::NONE,
            Some(d) => {
                PollTimeout::try_from(d.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::NONE)
            }
        };
        if poll(&mut fds, t).is_err() {
            return (false, [false, false], false, false);
        }
        let hit = |i: usize| {
            fds[i].revents().is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        (
            hit(0),
            [idx[0].is_some_and(hit), idx[1].is_some_and(hit)],
            listen_idx.is_some_and(hit),
            stdin_idx.is_some_and(hit),
        )
    }

    /// Terminal mode: copies what was written to the stdin FIFO into the pty.
    fn relay_stdin(&mut self) {
        let (Some(master), Some(holder)) = (self.pty_master.as_mut(), self.stdin_holder.as_mut())
        else {
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            match holder.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    let _ = master.write_all(&buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn handle_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let sig = info.ssi_signo as i32;
            if sig == libc::SIGCHLD {
                self.reap();
            } else if sig == libc::SIGTERM && self.main_status.is_none() {
                // The monitor is asked to end (host shutdown): pass it on
                // to the workload. SIGHUP/SIGINT/SIGQUIT of a terminal the
                // agent ran in are ignored.
                let _ = kill(Pid::from_raw(-self.main_pid), Signal::SIGTERM);
            }
        }
        self.reap();
    }

    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(status) => {
                    let Some(pid) = status.pid() else { continue };
                    let pid = pid.as_raw();
                    if pid == self.main_pid {
                        if matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) {
                            self.main_status = Some(status);
                        }
                    } else if let Some(conn) = self.execs.remove(&pid) {
                        let (code, _) = code_of(&status);
                        let _ = control::send_reply(&conn, &Reply::Exited { code });
                    }
                }
            }
        }
    }

    fn pump(&mut self, i: usize) {
        // 16 KiB: every page of a stack buffer is a page fault the first
        // time the monitor reads (a 64 KiB one cost 16 per start).
        let mut buf = [0u8; 16 * 1024];
        loop {
            let Some(f) = self.outputs[i].file.as_mut() else {
                return;
            };
            match f.read(&mut buf) {
                Ok(0) => {
                    self.outputs[i].file = None;
                    let _ = self.log.flush_stream(self.outputs[i].stream);
                    return;
                }
                Ok(n) => {
                    let stream = self.outputs[i].stream;
                    if self.pty_master.is_some() {
                        // A terminal: raw records, so partial lines
                        // (prompts) show at once and replay byte for byte.
                        let _ = self.log.write_raw(stream, &buf[..n]);
                    } else {
                        let _ = self.log.write_chunk(stream, &buf[..n]);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // EIO: the pty's last slave closed. Any other error ends the
                // stream too, rather than polling a broken fd forever.
                Err(_) => {
                    self.outputs[i].file = None;
                    let _ = self.log.flush_stream(self.outputs[i].stream);
                    return;
                }
            }
        }
    }

    fn accept_clients(&mut self) {
        loop {
            let Some(l) = &self.listener else { return };
            match l.accept() {
                Ok((conn, _)) => self.serve(conn),
                Err(_) => return,
            }
        }
    }

    fn serve(&mut self, mut conn: UnixStream) {
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        // Processes of the sandbox may not drive their own monitor.
        if let Ok(cred) =
            nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials)
        {
            let peer = cred.pid();
            if procfs::descendants_fast(self.me)
                .iter()
                .any(|p| p.pid == peer)
            {
                let _ = control::send_reply(
                    &conn,
                    &Reply::Error {
                        message: "sandboxed processes may not use the control socket".into(),
                    },
                );
                return;
            }
        }
        let (req, fds) = match control::recv_request(&mut conn) {
            Ok(r) => r,
            Err(e) => {
                let _ = control::send_reply(
                    &conn,
                    &Reply::Error {
                        message: format!("bad request: {e}"),
                    },
                );
                return;
            }
        };
        match req {
            Request::CloseStdin => {
                if self.pty_master.is_some() {
                    // A terminal has no end of file: EOF is the VEOF
                    // character at the start of a line.
                    self.relay_stdin();
                    if let Some(master) = self.pty_master.as_mut() {
                        let _ = master_eof(master);
                    }
                } else {
                    self.stdin_holder = None;
                }
                let _ = control::send_reply(&conn, &Reply::Done);
            }
            Request::Exec {
                argv,
                program,
                env,
                cwd,
                user,
            } => {
                let reply = match self.spawn_exec(&argv, &program, &env, &cwd, user, fds) {
                    Ok(pid) => {
                        let _ = control::send_reply(&conn, &Reply::Started { pid });
                        self.execs.insert(pid, conn);
                        return;
                    }
                    Err(message) => Reply::Error { message },
                };
                let _ = control::send_reply(&conn, &reply);
            }
        }
    }

    fn spawn_exec(
        &mut self,
        argv: &[String],
        program: &Path,
        env: &[(String, String)],
        cwd: &Path,
        user: Option<super::options::UserIds>,
        fds: Vec<OwnedFd>,
    ) -> Result<i32, String> {
        if self.main_status.is_some() {
            return Err("the container is not running".into());
        }
        let mut fds = fds.into_iter();
        let (Some(i), Some(o), Some(e)) = (fds.next(), fds.next(), fds.next()) else {
            return Err("exec needs stdin, stdout and stderr descriptors".into());
        };
        let other;
        let prepared = if user.is_some() && user != self.record.policy.user {
            let policy = Policy {
                user,
                root: user.map_or(self.record.policy.root, |u| u.uid == 0),
                ..self.record.policy.clone()
            };
            other = Prepared::new(&policy)?;
            &other
        } else {
            &self.prepared
        };
        prepared
            .spawn(program, argv, env, cwd, false, [i, o, e])
            .map_err(|e| format!("executing {} failed: {e}", program.display()))
    }

    fn watchdog(&mut self, limit: u64) {
        let procs = procfs::descendants_fast(self.me);
        let rss = procfs::rss_bytes(&procs);
        if rss > limit {
            let reason = format!(
                "memory limit {} exceeded (rss {}); the watchdog killed the process tree",
                human(limit),
                human(rss)
            );
            let _ = self.log.write_message(LogStream::System, &reason);
            self.kill_reason = Some(reason);
            self.kill_tree();
        }
    }

    /// SIGKILLs every descendant (repeatedly, to catch forks in flight).
    fn kill_tree(&mut self) {
        for _ in 0..20 {
            let procs: Vec<_> = procfs::descendants_fast(self.me)
                .into_iter()
                .filter(|p| p.state != 'Z')
                .collect();
            if procs.is_empty() {
                return;
            }
            for p in &procs {
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
            }
            self.reap();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn finish(&mut self) {
        self.reap();
        let _ = self.log.finish();
        let (code, signal) = self
            .main_status
            .as_ref()
            .map(code_of)
            .unwrap_or((255, None));
        let rec = ExitRecord {
            code,
            signal,
            reason: self.kill_reason.clone(),
            finished_at_ms: now_ms(),
        };
        if let Err(e) = write_json_atomic(&self.dir.join("exit.json"), &rec) {
            diag(&e.to_string());
        }
        for (_, conn) in self.execs.drain() {
            let _ = control::send_reply(&conn, &Reply::Exited { code: 137 });
        }
        self.listener = None;
        let _ = std::fs::remove_file(layout::socket_path(&self.dir));
        let _ = std::fs::remove_file(layout::stdin_path(&self.dir));
    }
}

fn master_eof(master: &mut File) -> std::io::Result<()> {
    master.write_all(&[0x04])
}

fn human(bytes: u64) -> String {
    const MI: u64 = 1 << 20;
    if bytes >= MI {
        format!("{}Mi", bytes / MI)
    } else {
        format!("{bytes} bytes")
    }
}
