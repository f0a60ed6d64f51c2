//! The monitor's state and its `poll(2)` loop.

use super::clients::Client;
use super::{diag, state_dir};
use crate::launcher::{Launcher, SpawnError, Workload, WorkloadStdio};
use crate::layout::StateDir;
use crate::logs::LogWriter;
use crate::monitor_record::MonitorRecord;
use crate::records;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};
use zlayer_runtime::{ContainerRecord, LogStream};
use zlayer_sys::procfs::ProcessRef;

/// How long output may still drain after the main process ended (other
/// processes of the workload die with it, so EOF normally comes at once).
const DRAIN: Duration = Duration::from_secs(2);
/// Idle time after which the monitor sheds its start-up memory.
const IDLE_TRIM: Duration = Duration::from_millis(500);
/// Most stdin bytes buffered in the monitor before it stops reading clients.
pub(super) const STDIN_BUFFER: usize = 64 * 1024;

/// One of the workload's outputs.
pub(super) struct Output {
    pub(super) file: Option<File>,
    pub(super) stream: LogStream,
}

/// The monitor of one container.
pub(super) struct Monitor<'a, L: Launcher> {
    pub(super) launcher: &'a L,
    pub(super) dir: StateDir,
    pub(super) record: ContainerRecord,
    pub(super) workload: Box<dyn Workload>,
    pub(super) main_pid: i32,
    pub(super) me: i32,
    /// This monitor's start time (clock ticks after boot).
    pub(super) me_start: u64,
    pub(super) log: LogWriter,
    pub(super) signals: SignalFd,
    pub(super) listener: Option<UnixListener>,
    pub(super) outputs: [Output; 2],
    /// Where client stdin goes (a pipe, or the terminal master).
    pub(super) stdin: Option<File>,
    /// The terminal master, for resizes and ^D.
    pub(super) terminal: Option<File>,
    pub(super) stdin_pending: Vec<u8>,
    pub(super) stdin_close_requested: bool,
    pub(super) clients: Vec<Client>,
    /// Exit code and signal of the main process, once reaped.
    pub(super) main_status: Option<(i32, Option<i32>)>,
    /// Why the workload was killed by the monitor (watchdog), if it was.
    pub(super) kill_reason: Option<String>,
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
    Output(usize),
    StdinOut,
    Client(usize),
    ExecReport(usize),
}

impl<'a, L: Launcher> Monitor<'a, L> {
    /// Reads the container's files and starts its workload.
    pub(super) fn start(launcher: &'a L, dir: &Path) -> Result<Self, SpawnError> {
        let dir = state_dir(dir);
        let engine = |e: zlayer_runtime::RuntimeError| SpawnError::engine(e.to_string());
        let record = records::read_record(&dir).map_err(engine)?.ok_or_else(|| {
            SpawnError::engine(format!(
                "{} is missing; create the container first",
                dir.record().display()
            ))
        })?;
        let plan = records::read_plan(&dir).map_err(engine)?.ok_or_else(|| {
            SpawnError::engine(format!(
                "{} is missing: the container's creation did not finish; remove it and create it again",
                dir.launch().display()
            ))
        })?;
        // A recycled directory keeps its last log's inode for the next one.
        let _ = zlayer_sys::atomic::rename_noreplace(&dir.file(".log.spare"), &dir.log());
        let mut log = LogWriter::open(&dir.log()).map_err(|e| {
            SpawnError::engine(format!("opening the log {}: {e}", dir.log().display()))
        })?;
        let fail = |log: &mut LogWriter, e: SpawnError| -> SpawnError {
            let _ = log.write_message(LogStream::System, &format!("start failed: {e}"));
            let _ = log.finish();
            e
        };
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
        if let Err(e) = mask.thread_block() {
            return Err(fail(
                &mut log,
                SpawnError::engine(format!("blocking signals: {e}")),
            ));
        }
        // SAFETY: ignoring SIGPIPE (a vanished client) is always sound.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| fail(&mut log, SpawnError::engine(format!("signalfd: {e}"))))?;
        let _ = std::fs::create_dir(dir.run());
        let listener = crate::control::bind(&dir.socket()).map_err(|e| {
            fail(
                &mut log,
                SpawnError::engine(format!(
                    "binding the control socket {}: {e}",
                    dir.socket().display()
                )),
            )
        })?;
        let _ = listener.set_nonblocking(true);
        let mut workload = match launcher.spawn(&dir, &record, &plan) {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_file(dir.socket());
                return Err(fail(&mut log, e));
            }
        };
        zlayer_failpoints::hit("start.after-spawn");
        for note in workload.notes() {
            let _ = log.write_message(LogStream::System, &note);
        }
        let main_pid = workload.pid();
        let Some(stdio) = workload.take_stdio() else {
            let _ = workload.signal(libc::SIGKILL);
            return Err(fail(
                &mut log,
                SpawnError::engine("the launcher gave the workload no stdio"),
            ));
        };
        let (stdin, terminal, outputs) = match stdio {
            WorkloadStdio::Pipes {
                stdin,
                stdout,
                stderr,
            } => (
                Some(File::from(stdin)),
                None,
                [
                    Output {
                        file: Some(File::from(stdout)),
                        stream: LogStream::Stdout,
                    },
                    Output {
                        file: Some(File::from(stderr)),
                        stream: LogStream::Stderr,
                    },
                ],
            ),
            WorkloadStdio::Terminal { master } => {
                let dup = |fd: &OwnedFd| fd.try_clone().map(File::from);
                let (input, resize) = match (dup(&master), dup(&master)) {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = workload.signal(libc::SIGKILL);
                        return Err(fail(
                            &mut log,
                            SpawnError::engine(format!("duplicating the terminal: {e}")),
                        ));
                    }
                };
                (
                    Some(input),
                    Some(resize),
                    [
                        Output {
                            file: Some(File::from(master)),
                            stream: LogStream::Stdout,
                        },
                        Output {
                            file: None,
                            stream: LogStream::Stderr,
                        },
                    ],
                )
            }
        };
        for f in outputs.iter().filter_map(|o| o.file.as_ref()) {
            set_nonblocking_cloexec(f.as_raw_fd());
        }
        if let Some(f) = &stdin {
            set_nonblocking_cloexec(f.as_raw_fd());
        }
        let me = std::process::id() as i32;
        let monitor = MonitorRecord {
            monitor: ProcessRef::current(),
            workload: ProcessRef::of(main_pid).unwrap_or(ProcessRef {
                pid: main_pid,
                starttime: 0,
            }),
            started_at_ms: crate::exit::now_ms(),
            notes: workload.notes(),
        };
        if let Err(e) = records::write_monitor(&dir, &monitor) {
            let _ = workload.signal(libc::SIGKILL);
            return Err(fail(&mut log, SpawnError::engine(e.to_string())));
        }
        Ok(Monitor {
            launcher,
            dir,
            record,
            workload,
            main_pid,
            me,
            me_start: monitor.monitor.starttime,
            log,
            signals,
            listener: Some(listener),
            outputs,
            stdin,
            terminal,
            stdin_pending: Vec::new(),
            stdin_close_requested: false,
            clients: Vec::new(),
            main_status: None,
            kill_reason: None,
        })
    }

    /// The workload's main pid.
    pub(super) fn main_pid(&self) -> i32 {
        self.main_pid
    }

    /// Serves until the workload ended and its output is drained.
    pub(super) fn run(&mut self) {
        let mut buf = vec![0u8; 16 * 1024];
        let watch = self.workload.watch_interval();
        let mut next_watch = watch.map(|w| Instant::now() + w);
        let mut drain_deadline: Option<Instant> = None;
        let mut trimmed = false;
        loop {
            self.reap();
            if self.main_status.is_some() && drain_deadline.is_none() {
                // The workload ends with its main process.
                self.workload.cleanup();
                self.reap();
                drain_deadline = Some(Instant::now() + DRAIN);
            }
            if let Some(deadline) = drain_deadline {
                let drained = self.outputs.iter().all(|o| o.file.is_none());
                if drained || Instant::now() >= deadline {
                    break;
                }
            }
            let timeout = match (drain_deadline, next_watch) {
                (Some(d), _) => d.saturating_duration_since(Instant::now()).min(DRAIN),
                (None, Some(w)) => w.saturating_duration_since(Instant::now()),
                (None, None) if !trimmed => IDLE_TRIM,
                (None, None) => Duration::MAX,
            };
            let (mut fds, slots) = self.poll_set();
            let ms = if timeout == Duration::MAX {
                -1
            } else {
                timeout.as_millis().min(60_000) as i32 + 1
            };
            // SAFETY: fds is a valid array of pollfd of the given length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                    continue;
                }
                diag(&format!("poll failed: {}", std::io::Error::last_os_error()));
                break;
            }
            if n == 0 && !trimmed && drain_deadline.is_none() && next_watch.is_none() {
                // Idle for a while: shed start-up memory once. Short-lived
                // workloads never pay for it.
                trimmed = true;
                // SAFETY: malloc_trim only hands free heap memory back.
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
                    Slot::Signal => self.handle_signals(),
                    Slot::Listener => self.accept(),
                    Slot::Output(i) => self.pump(i, &mut buf),
                    Slot::StdinOut => self.flush_stdin(),
                    Slot::Client(i) => self.serve(i, &mut buf),
                    Slot::ExecReport(i) => self.read_exec_report(i),
                }
            }
            self.flush_stdin();
            self.complete_execs();
            self.clients.retain(|c| !c.done);
            if let (Some(w), Some(at)) = (watch, next_watch) {
                if self.main_status.is_none() && Instant::now() >= at {
                    next_watch = Some(Instant::now() + w);
                    if let Some(reason) = self.workload.watch() {
                        let _ = self.log.write_message(LogStream::System, &reason);
                        self.kill_reason = Some(reason);
                    }
                }
            }
        }
        for i in 0..2 {
            self.pump(i, &mut buf);
        }
    }

    fn poll_set(&self) -> (Vec<libc::pollfd>, Vec<Slot>) {
        let mut fds = vec![pollfd(self.signals.as_raw_fd(), libc::POLLIN)];
        let mut slots = vec![Slot::Signal];
        if let Some(l) = &self.listener {
            fds.push(pollfd(l.as_raw_fd(), libc::POLLIN));
            slots.push(Slot::Listener);
        }
        for (i, o) in self.outputs.iter().enumerate() {
            if let Some(f) = &o.file {
                fds.push(pollfd(f.as_raw_fd(), libc::POLLIN));
                slots.push(Slot::Output(i));
            }
        }
        if let (Some(f), false) = (&self.stdin, self.stdin_pending.is_empty()) {
            fds.push(pollfd(f.as_raw_fd(), libc::POLLOUT));
            slots.push(Slot::StdinOut);
        }
        let active = self.active_stdin_client();
        for (i, c) in self.clients.iter().enumerate() {
            if let Some(fd) = c.wants_read(active == Some(i), self.stdin_pending.len()) {
                fds.push(pollfd(fd, libc::POLLIN));
                slots.push(Slot::Client(i));
            }
            if let Some(fd) = c.exec_report_fd() {
                fds.push(pollfd(fd, libc::POLLIN));
                slots.push(Slot::ExecReport(i));
            }
        }
        (fds, slots)
    }

    fn handle_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let sig = info.ssi_signo as i32;
            if sig == libc::SIGTERM && self.main_status.is_none() {
                // The monitor is asked to end (host shutdown): pass it on.
                // SIGHUP/SIGINT/SIGQUIT of a terminal the CLI ran in are
                // ignored.
                let _ = self.workload.signal(libc::SIGTERM);
            }
        }
        self.reap();
    }

    /// Reaps every ended child: the main process and execs.
    pub(super) fn reap(&mut self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            let decoded = if libc::WIFEXITED(status) {
                (libc::WEXITSTATUS(status), None)
            } else if libc::WIFSIGNALED(status) {
                let sig = libc::WTERMSIG(status);
                (128 + sig, Some(sig))
            } else {
                continue;
            };
            if pid == self.main_pid {
                self.main_status = Some(decoded);
            } else if let Some(c) = self.clients.iter_mut().find(|c| c.exec_pid() == Some(pid)) {
                c.exec_reaped(decoded.0);
            }
        }
    }

    fn pump(&mut self, i: usize, buf: &mut [u8]) {
        loop {
            let out = &mut self.outputs[i];
            let Some(f) = out.file.as_mut() else {
                return;
            };
            match f.read(buf) {
                Ok(0) => {
                    out.file = None;
                    let _ = self.log.flush_stream(out.stream);
                    return;
                }
                Ok(n) => {
                    let stream = out.stream;
                    if self.terminal.is_some() {
                        // A terminal: every read is one raw record, so
                        // prompts show at once and replay byte for byte.
                        let _ = self.log.write_raw(stream, &buf[..n]);
                    } else {
                        let _ = self.log.write_chunk(stream, &buf[..n]);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                // EIO: the terminal's last user closed it. Any other error
                // ends the stream too, rather than polling a broken fd.
                Err(_) => {
                    out.file = None;
                    let _ = self.log.flush_stream(out.stream);
                    return;
                }
            }
        }
    }

    /// Writes pending client bytes to the workload's stdin; closes it once
    /// drained when a close was asked for.
    pub(super) fn flush_stdin(&mut self) {
        if let Some(f) = &mut self.stdin {
            while !self.stdin_pending.is_empty() {
                match f.write(&self.stdin_pending) {
                    Ok(n) => {
                        self.stdin_pending.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        // EPIPE: nobody reads the workload's stdin any more.
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
            if let Some(mut t) = self.terminal.as_ref().filter(|_| self.stdin.is_some()) {
                // A terminal is not closed: it gets ^D (EOF for a reader
                // in canonical mode).
                let _ = t.write_all(&[0x04]);
                self.stdin_close_requested = false;
            } else {
                self.stdin = None;
            }
        }
        self.ack_stdin_clients(drained);
    }
}
