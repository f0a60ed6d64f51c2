//! The monitor: what `zlayer-shim start` becomes once the container runs,
//! the per-container process that outlives the agent.
//!
//! A plain blocking `poll(2)` loop, no async runtime, so an idle monitor
//! costs about a megabyte. It owns the container's stdio pipes and writes
//! the logs, relays stdin from the control socket, reaps the init (it is
//! our child thanks to `PR_SET_CHILD_SUBREAPER`), records the exit in
//! `exit.json` (temp + rename), answers waiters, and removes the container
//! when the spec asks for `delete_on_exit`.

use super::protocol::{
    parse_resize, AckReply, ExitReply, Ready, REQ_CLOSE_STDIN, REQ_STDIN, REQ_WAIT,
};
use crate::cgroups::{keyed_value, ContainerCgroup};
use crate::network;
use crate::paths::ContainerPaths;
use crate::state_dir::{self, ContainerRecord, ExitRecord};
use crate::teardown::{self, Deletion};
use serde::Serialize;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};
use zlayer_hosting::logs::LogWriter;
use zlayer_runtime::types::LogStream;

/// How long to keep reading output after the init ended (other processes
/// of the container die with it, so EOF normally comes at once).
const DRAIN: Duration = Duration::from_secs(2);
/// Idle time after which the monitor sheds its start-up memory.
const IDLE_TRIM: Duration = Duration::from_millis(500);
/// Most stdin bytes buffered in the monitor before it stops reading clients.
const STDIN_BUFFER: usize = 64 * 1024;
/// Longest request line.
const MAX_HEADER: usize = 64;

/// What `zlayer-shim start` hands over to the monitor.
pub struct MonitorIo {
    /// Readiness pipe to the agent.
    pub ready: File,
    /// Write end of the container's stdin (or the terminal).
    pub stdin: OwnedFd,
    /// Read end of the container's stdout (or the terminal).
    pub stdout: OwnedFd,
    /// Read end of the container's stderr.
    pub stderr: OwnedFd,
    /// The control socket.
    pub listener: UnixListener,
}

enum ClientKind {
    /// Reading the request line.
    Header,
    /// Waiting for the exit.
    Wait,
    /// Streaming stdin; `eof` once the client shut down its write half.
    Stdin { eof: bool },
    /// Waiting for stdin to be closed.
    CloseStdin,
}

struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
    kind: ClientKind,
    done: bool,
}

impl Client {
    fn reply<T: Serialize>(&mut self, msg: &T) {
        if let Ok(mut line) = serde_json::to_vec(msg) {
            line.push(b'\n');
            let _ = self.stream.set_nonblocking(false);
            let _ = self.stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = self.stream.write_all(&line);
        }
        self.done = true;
    }
}

struct Monitor {
    paths: ContainerPaths,
    record: ContainerRecord,
    init_pid: i32,
    sigfd: OwnedFd,
    listener: UnixListener,
    stdout: Option<File>,
    stderr: Option<File>,
    stdin: Option<File>,
    stdin_pending: Vec<u8>,
    stdin_close_requested: bool,
    clients: Vec<Client>,
    log: LogWriter,
    status: Option<(i32, Option<i32>)>,
    exited_at: Option<Instant>,
}

/// Runs the monitor; returns the process exit code.
pub fn run(paths: ContainerPaths, init_pid: i32, io: MonitorIo) -> i32 {
    let MonitorIo {
        ready,
        stdin,
        stdout,
        stderr,
        listener,
    } = io;
    let (stdin, stdout, stderr) = (File::from(stdin), File::from(stdout), File::from(stderr));
    for f in [stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()] {
        set_nonblocking_cloexec(f);
    }
    let _ = listener.set_nonblocking(true);
    ignore_termination_signals();
    let sigfd = match sigchld_fd() {
        Ok(fd) => fd,
        Err(e) => return report_and_abort(ready, init_pid, &format!("signalfd failed: {e}")),
    };
    let record: ContainerRecord = match state_dir::read_json(&paths.record()) {
        Ok(Some(r)) => r,
        Ok(None) => return report_and_abort(ready, init_pid, "container.json is missing"),
        Err(e) => return report_and_abort(ready, init_pid, &e.to_string()),
    };
    let log = match LogWriter::open(&paths.logs()) {
        Ok(l) => l,
        Err(e) => {
            return report_and_abort(
                ready,
                init_pid,
                &format!("opening {} failed: {e}", paths.logs().display()),
            )
        }
    };
    send_ready(ready, &Ready::Started { init_pid });

    let mut m = Monitor {
        paths,
        record,
        init_pid,
        sigfd,
        listener,
        stdout: Some(stdout),
        stderr: Some(stderr),
        stdin: Some(stdin),
        stdin_pending: Vec::new(),
        stdin_close_requested: false,
        clients: Vec::new(),
        log,
        status: None,
        exited_at: None,
    };
    m.reap();
    m.run_loop();
    m.finish()
}

fn send_ready(mut ready: File, msg: &Ready) {
    if let Ok(line) = serde_json::to_string(msg) {
        let _ = writeln!(ready, "{line}");
    }
}

fn report_and_abort(ready: File, init_pid: i32, msg: &str) -> i32 {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(init_pid, libc::SIGKILL);
    }
    send_ready(
        ready,
        &Ready::Failed {
            error: msg.to_string(),
        },
    );
    1
}

fn set_nonblocking_cloexec(fd: RawFd) {
    // SAFETY: fcntl on fds we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

/// The monitor must survive the agent's terminal going away and stray
/// SIGTERMs; only SIGKILL ends it early.
fn ignore_termination_signals() {
    for sig in [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGQUIT,
        libc::SIGPIPE,
    ] {
        // SAFETY: setting SIG_IGN has no memory-safety preconditions.
        unsafe {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
}

fn sigchld_fd() -> std::io::Result<OwnedFd> {
    // SAFETY: sigset manipulation on a local, then signalfd(2) on it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

fn pollfd(fd: RawFd, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// What a slot of the poll set stands for.
#[derive(Clone, Copy)]
enum Slot {
    Signal,
    Listener,
    Stdout,
    Stderr,
    StdinOut,
    Client(usize),
}

impl Monitor {
    fn run_loop(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut trimmed = false;
        loop {
            if self.status.is_some() && self.stdout.is_none() && self.stderr.is_none() {
                return;
            }
            let timeout = match self.exited_at {
                Some(t) => {
                    let left = DRAIN.saturating_sub(t.elapsed());
                    if left.is_zero() {
                        return;
                    }
                    left.as_millis() as i32 + 1
                }
                None if !trimmed => IDLE_TRIM.as_millis() as i32,
                None => -1,
            };
            let (mut fds, slots) = self.poll_set();
            // SAFETY: fds is a valid array of pollfd of the given length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            if n == 0 && !trimmed && self.exited_at.is_none() {
                // Idle for a while: shed start-up memory once. Short-lived
                // containers never pay for it.
                trimmed = true;
                // SAFETY: malloc_trim only hands free heap memory
                // (libcontainer's start-up garbage) back to the kernel.
                unsafe {
                    libc::malloc_trim(0);
                }
                super::trim::trim_startup_pages();
                continue;
            }
            for (pfd, slot) in fds.iter().zip(slots) {
                if pfd.revents == 0 {
                    continue;
                }
                match slot {
                    Slot::Signal => self.reap(),
                    Slot::Listener => self.accept(),
                    Slot::Stdout => self.pump(LogStream::Stdout, &mut buf),
                    Slot::Stderr => self.pump(LogStream::Stderr, &mut buf),
                    Slot::StdinOut => self.flush_stdin(),
                    Slot::Client(i) => self.serve(i, &mut buf),
                }
            }
            self.flush_stdin();
            self.clients.retain(|c| !c.done);
        }
    }

    fn poll_set(&self) -> (Vec<libc::pollfd>, Vec<Slot>) {
        let mut fds = vec![pollfd(self.sigfd.as_raw_fd(), libc::POLLIN)];
        let mut slots = vec![Slot::Signal];
        fds.push(pollfd(self.listener.as_raw_fd(), libc::POLLIN));
        slots.push(Slot::Listener);
        if let Some(f) = &self.stdout {
            fds.push(pollfd(f.as_raw_fd(), libc::POLLIN));
            slots.push(Slot::Stdout);
        }
        if let Some(f) = &self.stderr {
            fds.push(pollfd(f.as_raw_fd(), libc::POLLIN));
            slots.push(Slot::Stderr);
        }
        if let (Some(f), false) = (&self.stdin, self.stdin_pending.is_empty()) {
            fds.push(pollfd(f.as_raw_fd(), libc::POLLOUT));
            slots.push(Slot::StdinOut);
        }
        let active_stdin = self.active_stdin_client();
        for (i, c) in self.clients.iter().enumerate() {
            let wants_read = match c.kind {
                ClientKind::Header | ClientKind::Wait => true,
                ClientKind::CloseStdin => false,
                ClientKind::Stdin { eof } => {
                    !eof && active_stdin == Some(i) && self.stdin_pending.len() < STDIN_BUFFER
                }
            };
            if wants_read {
                fds.push(pollfd(c.stream.as_raw_fd(), libc::POLLIN));
                slots.push(Slot::Client(i));
            }
        }
        (fds, slots)
    }

    /// The stdin client whose bytes are relayed now (one at a time, so
    /// concurrent writers are not interleaved).
    fn active_stdin_client(&self) -> Option<usize> {
        self.clients
            .iter()
            .position(|c| matches!(c.kind, ClientKind::Stdin { .. }) && !c.done)
    }

    fn reap(&mut self) {
        // Drain the signalfd; the waitpid loop below does the real work.
        let mut info = [0u8; 128];
        // SAFETY: reading into a local buffer of the given size.
        while unsafe { libc::read(self.sigfd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) }
            > 0
        {}
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            if pid == self.init_pid {
                let decoded = if libc::WIFEXITED(status) {
                    (libc::WEXITSTATUS(status), None)
                } else if libc::WIFSIGNALED(status) {
                    let sig = libc::WTERMSIG(status);
                    (128 + sig, Some(sig))
                } else {
                    continue;
                };
                self.status = Some(decoded);
                self.exited_at = Some(Instant::now());
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(true);
                    self.clients.push(Client {
                        stream,
                        buf: Vec::new(),
                        kind: ClientKind::Header,
                        done: false,
                    });
                }
                Err(_) => return,
            }
        }
    }

    fn pump(&mut self, stream: LogStream, buf: &mut [u8]) {
        let file = match stream {
            LogStream::Stdout => &mut self.stdout,
            _ => &mut self.stderr,
        };
        let Some(f) = file else {
            return;
        };
        match f.read(buf) {
            Ok(0) => {
                *file = None;
                let _ = self.log.flush_stream(stream);
            }
            Ok(n) if self.record.tty => {
                // A terminal: every read is one raw record, so prompts
                // without a newline show up at once and readers replay
                // the bytes as they are.
                let _ = self.log.write_raw(stream, &buf[..n]);
            }
            Ok(n) => {
                let _ = self.log.write_chunk(stream, &buf[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(_) => {
                // EIO on a terminal whose last user closed it: the end.
                *file = None;
                let _ = self.log.flush_stream(stream);
            }
        }
    }

    fn serve(&mut self, i: usize, buf: &mut [u8]) {
        let room = STDIN_BUFFER.saturating_sub(self.stdin_pending.len()).max(1);
        let mut take_stdin = false;
        let mut close_stdin = false;
        {
            let c = &mut self.clients[i];
            let limit = match c.kind {
                ClientKind::Stdin { .. } => room.min(buf.len()),
                _ => buf.len(),
            };
            let n = match c.stream.read(&mut buf[..limit]) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    return
                }
                Err(_) => 0,
            };
            match c.kind {
                ClientKind::Header => {
                    if n == 0 {
                        c.done = true;
                        return;
                    }
                    c.buf.extend_from_slice(&buf[..n]);
                    let Some(pos) = c.buf.iter().position(|b| *b == b'\n') else {
                        if c.buf.len() > MAX_HEADER {
                            c.reply(&AckReply {
                                ok: false,
                                error: Some("request line too long".into()),
                            });
                        }
                        return;
                    };
                    let header = String::from_utf8_lossy(&c.buf[..pos]).trim().to_string();
                    let rest = c.buf.split_off(pos + 1);
                    c.buf.clear();
                    match header.as_str() {
                        REQ_WAIT => c.kind = ClientKind::Wait,
                        REQ_STDIN => {
                            c.kind = ClientKind::Stdin { eof: false };
                            c.buf = rest;
                            take_stdin = true;
                        }
                        REQ_CLOSE_STDIN if self.record.tty => {
                            // A terminal is not closed: it gets ^D (EOF for
                            // a reader in canonical mode), acked once written.
                            c.kind = ClientKind::Stdin { eof: true };
                            c.buf = vec![0x04];
                            take_stdin = true;
                        }
                        REQ_CLOSE_STDIN => {
                            c.kind = ClientKind::CloseStdin;
                            close_stdin = true;
                        }
                        other => match parse_resize(other) {
                            Some((rows, cols)) => {
                                let terminal = self
                                    .record
                                    .tty
                                    .then_some(())
                                    .and(self.stdout.as_ref().or(self.stdin.as_ref()));
                                c.reply(&match terminal {
                                    Some(t) => {
                                        super::tty::set_window_size(t, rows, cols);
                                        AckReply {
                                            ok: true,
                                            error: None,
                                        }
                                    }
                                    None => AckReply {
                                        ok: false,
                                        error: Some(if self.record.tty {
                                            "the container's terminal is closed".into()
                                        } else {
                                            "the container has no terminal; create it with -t"
                                                .into()
                                        }),
                                    },
                                });
                            }
                            None => c.reply(&AckReply {
                                ok: false,
                                error: Some(format!("unknown request {other:?}")),
                            }),
                        },
                    }
                }
                ClientKind::Wait => {
                    if n == 0 {
                        // The waiter went away: forget it.
                        c.done = true;
                    }
                }
                ClientKind::CloseStdin => {}
                ClientKind::Stdin { .. } => {
                    if n == 0 {
                        c.kind = ClientKind::Stdin { eof: true };
                    } else {
                        c.buf.extend_from_slice(&buf[..n]);
                    }
                    take_stdin = true;
                }
            }
        }
        if close_stdin {
            self.stdin_close_requested = true;
        }
        if take_stdin {
            self.take_stdin_bytes(i);
        }
    }

    /// Moves the bytes a stdin client sent into the pending buffer.
    fn take_stdin_bytes(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if self.stdin.is_none() {
            c.reply(&AckReply {
                ok: false,
                error: Some("the container's stdin is closed".into()),
            });
            return;
        }
        self.stdin_pending.append(&mut c.buf);
    }

    fn flush_stdin(&mut self) {
        if let Some(f) = &mut self.stdin {
            while !self.stdin_pending.is_empty() {
                match f.write(&self.stdin_pending) {
                    Ok(n) => {
                        self.stdin_pending.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        // EPIPE: nobody reads the container's stdin any more.
                        self.stdin = None;
                        break;
                    }
                }
            }
        }
        if self.stdin.is_none() {
            self.stdin_pending.clear();
        }
        let drained = self.stdin_pending.is_empty();
        if drained && self.stdin_close_requested {
            self.stdin = None;
        }
        let stdin_open = self.stdin.is_some();
        for c in &mut self.clients {
            match c.kind {
                ClientKind::Stdin { eof: true } if drained && !c.done => c.reply(&AckReply {
                    ok: stdin_open,
                    error: (!stdin_open).then(|| "the container's stdin is closed".to_string()),
                }),
                ClientKind::Stdin { .. } if !stdin_open && !c.done => c.reply(&AckReply {
                    ok: false,
                    error: Some("the container's stdin is closed".into()),
                }),
                ClientKind::CloseStdin if !stdin_open && !c.done => c.reply(&AckReply {
                    ok: true,
                    error: None,
                }),
                _ => {}
            }
        }
    }

    /// Records the exit, answers everyone, cleans up if asked to.
    fn finish(mut self) -> i32 {
        // Free the address and the published ports before anyone learns of
        // the exit, so a restart or a new container may take them at once.
        if let Err(e) = network::detach_exited(&self.paths, &self.record) {
            let _ = self.log.write_message(
                LogStream::System,
                &format!("releasing the container's network failed: {e}"),
            );
        }
        for s in [LogStream::Stdout, LogStream::Stderr, LogStream::System] {
            let _ = self.log.flush_stream(s);
        }
        let (code, signal) = self.status.unwrap_or((255, None));
        let reason = if self.status.is_none() {
            Some("the container monitor lost track of the init process".to_string())
        } else {
            oom_reason(&self.record, code)
        };
        let exit = ExitRecord {
            code,
            signal,
            reason: reason.clone(),
            finished_at_ms: state_dir::now_ms(),
        };
        let _ = state_dir::write_json(&self.paths.exit(), &exit);
        self.accept();
        let reply = ExitReply { code, reason };
        let nothing_pending = self.stdin_pending.is_empty();
        for c in self.clients.iter_mut().filter(|c| !c.done) {
            match c.kind {
                ClientKind::Wait => c.reply(&reply),
                ClientKind::Stdin { eof } => {
                    // Its bytes may all have reached the container, which
                    // read them and exited before the client's end of
                    // input was seen: that write succeeded.
                    let mut probe = [0u8; 1];
                    let more = !eof && matches!(c.stream.read(&mut probe), Ok(n) if n > 0);
                    let delivered = c.buf.is_empty() && nothing_pending && !more;
                    c.reply(&AckReply {
                        ok: delivered,
                        error: (!delivered).then(|| "the container has exited".to_string()),
                    });
                }
                ClientKind::Header => {
                    // A request not read yet: if it is a wait, answer it.
                    let mut tmp = [0u8; MAX_HEADER];
                    if let Ok(n) = c.stream.read(&mut tmp) {
                        c.buf.extend_from_slice(&tmp[..n]);
                    }
                    if c.buf.starts_with(REQ_WAIT.as_bytes()) {
                        c.reply(&reply);
                    } else {
                        c.reply(&AckReply {
                            ok: false,
                            error: Some("the container has exited".into()),
                        });
                    }
                }
                _ => c.reply(&AckReply {
                    ok: false,
                    error: Some("the container has exited".into()),
                }),
            }
        }
        let _ = std::fs::remove_file(self.paths.socket());
        if self.record.delete_on_exit {
            drop(self.clients);
            drop(self.listener);
            if let Err(e) =
                teardown::remove_container(&self.paths, Some(&self.record), None, Deletion::Now)
            {
                let _ = self
                    .log
                    .write_message(LogStream::System, &format!("delete_on_exit failed: {e}"));
            }
        }
        0
    }
}

/// The failure reason when the kernel OOM-killed a process of the container.
fn oom_reason(record: &ContainerRecord, code: i32) -> Option<String> {
    let kills = match &record.oom_events {
        Some(file) => std::fs::read_to_string(file)
            .ok()
            .and_then(|t| keyed_value(&t, "oom_kill")),
        None => ContainerCgroup::new(&record.cgroup_path).oom_kills(),
    }
    .unwrap_or(0);
    if kills == 0 {
        return None;
    }
    let limit = record
        .memory_limit
        .map(|b| format!(" of {:.1} MiB", b as f64 / (1024.0 * 1024.0)))
        .unwrap_or_default();
    Some(format!(
        "OOM-killed: the container exceeded its memory limit{limit} and the kernel killed it \
         (exit code {code}); raise resources.memory"
    ))
}
