//! The monitor's side of the control protocol: accepting clients, serving
//! their requests, streaming stdin, and finishing execs.

use super::event_loop::{Monitor, STDIN_BUFFER};
use crate::control::{recv_request, send_reply, ExecReport, Reply, Request};
use crate::launcher::{ExecHandle, Launcher};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// How long a client may take to send its request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// What a connected client waits for.
pub(super) enum Kind {
    /// The end of the workload.
    Wait,
    /// Streaming stdin; `eof` once the client shut down its write half.
    Stdin { eof: bool },
    /// Its stdin close to be done.
    CloseStdin,
    /// An exec to end.
    Exec(ExecState),
}

/// A running exec.
pub(super) struct ExecState {
    pid: Option<i32>,
    /// The wait status code, once reaped.
    reaped: Option<i32>,
    report: Option<File>,
    report_buf: Vec<u8>,
    report_eof: bool,
}

/// One connection.
pub(super) struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
    pub(super) kind: Kind,
    pub(super) done: bool,
}

impl Client {
    /// Sends `msg` and marks the client served.
    pub(super) fn reply(&mut self, msg: &Reply) {
        let _ = self.stream.set_nonblocking(false);
        let _ = self.stream.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = send_reply(&self.stream, msg);
        self.done = true;
    }

    /// The fd to poll for reading, if the client is to be read now.
    pub(super) fn wants_read(&self, active_stdin: bool, pending: usize) -> Option<RawFd> {
        if self.done {
            return None;
        }
        let read = match self.kind {
            Kind::Wait => true,
            Kind::CloseStdin | Kind::Exec(_) => false,
            Kind::Stdin { eof } => !eof && active_stdin && pending < STDIN_BUFFER,
        };
        read.then(|| self.stream.as_raw_fd())
    }

    /// The report pipe of an exec still open.
    pub(super) fn exec_report_fd(&self) -> Option<RawFd> {
        match &self.kind {
            Kind::Exec(e) if !self.done && !e.report_eof => {
                e.report.as_ref().map(|f| f.as_raw_fd())
            }
            _ => None,
        }
    }

    /// The child pid of an exec not reaped yet.
    pub(super) fn exec_pid(&self) -> Option<i32> {
        match &self.kind {
            Kind::Exec(e) if e.reaped.is_none() => e.pid,
            _ => None,
        }
    }

    /// Notes the wait status of the exec's child.
    pub(super) fn exec_reaped(&mut self, code: i32) {
        if let Kind::Exec(e) = &mut self.kind {
            e.reaped = Some(code);
        }
    }
}

fn set_nonblocking(fd: &impl AsRawFd) {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

impl<L: Launcher> Monitor<'_, L> {
    /// The stdin client whose bytes are relayed now (one at a time, so
    /// concurrent writers are not interleaved).
    pub(super) fn active_stdin_client(&self) -> Option<usize> {
        self.clients
            .iter()
            .position(|c| matches!(c.kind, Kind::Stdin { .. }) && !c.done)
    }

    /// Accepts every waiting connection and serves its request line.
    pub(super) fn accept(&mut self) {
        loop {
            let Some(l) = &self.listener else { return };
            let stream = match l.accept() {
                Ok((s, _)) => s,
                Err(_) => return,
            };
            self.serve_new(stream);
        }
    }

    fn serve_new(&mut self, mut stream: UnixStream) {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
        let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
        // Processes of the workload may not drive their own monitor.
        if let Ok(cred) =
            nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        {
            if cred.pid() != self.me && super::descends_from(cred.pid(), self.me, self.me_start) {
                let _ = send_reply(
                    &stream,
                    &Reply::error("processes of the container may not use its control socket"),
                );
                return;
            }
        }
        let received = match recv_request(&mut stream) {
            Ok(r) => r,
            Err(e) => {
                let _ = send_reply(&stream, &Reply::error(format!("bad request: {e}")));
                return;
            }
        };
        let mut client = Client {
            stream,
            buf: received.rest,
            kind: Kind::Wait,
            done: false,
        };
        let ended = self.main_status.is_some();
        match received.request {
            Request::Wait => {}
            Request::Stdin if self.stdin.is_none() || ended => {
                client.reply(&Reply::error("the container's stdin is closed"));
                return;
            }
            Request::Stdin => client.kind = Kind::Stdin { eof: false },
            Request::CloseStdin => {
                self.stdin_close_requested = true;
                client.kind = Kind::CloseStdin;
            }
            Request::Resize { rows, cols } => {
                client.reply(&match &self.terminal {
                    Some(t) if !ended => {
                        super::set_window_size(t, rows, cols);
                        Reply::Done
                    }
                    Some(_) => Reply::error("the container's terminal is closed"),
                    None => Reply::error("the container has no terminal; create it with -t"),
                });
                return;
            }
            Request::Signal { signal } => {
                client.reply(&if ended {
                    Reply::NotRunning
                } else {
                    match self.workload.signal(signal) {
                        Ok(()) => Reply::Done,
                        Err(e) => Reply::error(format!("sending signal {signal}: {e}")),
                    }
                });
                return;
            }
            Request::Stats => {
                client.reply(&if ended {
                    Reply::NotRunning
                } else {
                    match self.workload.stats() {
                        Ok(s) => Reply::Stats(s),
                        Err(e) => Reply::error(e),
                    }
                });
                return;
            }
            Request::Exec(req) => {
                let fds: Vec<OwnedFd> = received.fds;
                let reply = if ended {
                    Err(Reply::NotRunning)
                } else if req.argv.is_empty() {
                    Err(Reply::error("exec needs a command"))
                } else {
                    match <[OwnedFd; 3]>::try_from(fds) {
                        Err(_) => Err(Reply::error(
                            "exec needs stdin, stdout and stderr descriptors",
                        )),
                        Ok(stdio) => self.workload.exec(&req, stdio).map_err(|e| Reply::Failed {
                            failure: e.failure,
                            message: e.message,
                        }),
                    }
                };
                match reply {
                    Ok(ExecHandle { pid, report }) => {
                        if let Some(r) = &report {
                            set_nonblocking(r);
                        }
                        let _ = send_reply(
                            &client.stream,
                            &Reply::Started {
                                pid: pid.unwrap_or(0),
                            },
                        );
                        client.kind = Kind::Exec(ExecState {
                            pid,
                            reaped: None,
                            report_eof: report.is_none(),
                            report,
                            report_buf: Vec::new(),
                        });
                    }
                    Err(r) => {
                        client.reply(&r);
                        return;
                    }
                }
            }
        }
        let _ = client.stream.set_nonblocking(true);
        self.clients.push(client);
        let i = self.clients.len() - 1;
        if matches!(self.clients[i].kind, Kind::Stdin { .. }) {
            self.take_stdin_bytes();
        }
    }

    /// Reads from a client: stdin data, or its hang-up.
    pub(super) fn serve(&mut self, i: usize, buf: &mut [u8]) {
        let room = STDIN_BUFFER
            .saturating_sub(self.stdin_pending.len())
            .max(1)
            .min(buf.len());
        let c = &mut self.clients[i];
        let n = match c.stream.read(&mut buf[..room]) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => return,
            Err(_) => 0,
        };
        match c.kind {
            Kind::Wait => {
                if n == 0 {
                    // The waiter went away: forget it.
                    c.done = true;
                }
            }
            Kind::Stdin { .. } => {
                if n == 0 {
                    c.kind = Kind::Stdin { eof: true };
                } else {
                    c.buf.extend_from_slice(&buf[..n]);
                }
                self.take_stdin_bytes();
            }
            Kind::CloseStdin | Kind::Exec(_) => {}
        }
    }

    /// Moves the active stdin client's bytes into the pending buffer.
    fn take_stdin_bytes(&mut self) {
        let Some(i) = self.active_stdin_client() else {
            return;
        };
        let c = &mut self.clients[i];
        if self.stdin.is_none() {
            c.reply(&Reply::error("the container's stdin is closed"));
            return;
        }
        self.stdin_pending.append(&mut c.buf);
    }

    /// Answers stdin and close-stdin clients whose request is done.
    pub(super) fn ack_stdin_clients(&mut self, drained: bool) {
        let stdin_open = self.stdin.is_some();
        let closing = self.stdin_close_requested;
        let mut next_active = false;
        for c in self.clients.iter_mut().filter(|c| !c.done) {
            match c.kind {
                Kind::Stdin { eof: true } if drained && c.buf.is_empty() => {
                    c.reply(&if stdin_open {
                        Reply::Done
                    } else {
                        Reply::error("the container's stdin is closed")
                    });
                    next_active = true;
                }
                Kind::Stdin { .. } if !stdin_open => {
                    c.reply(&Reply::error("the container's stdin is closed"))
                }
                Kind::CloseStdin if !closing => c.reply(&Reply::Done),
                _ => {}
            }
        }
        if next_active {
            self.take_stdin_bytes();
        }
    }

    /// Reads what an exec reported on its pipe.
    pub(super) fn read_exec_report(&mut self, i: usize) {
        let Kind::Exec(e) = &mut self.clients[i].kind else {
            return;
        };
        let Some(f) = e.report.as_mut() else {
            e.report_eof = true;
            return;
        };
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) => {
                    e.report_eof = true;
                    e.report = None;
                    return;
                }
                Ok(n) => e.report_buf.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    e.report_eof = true;
                    e.report = None;
                    return;
                }
            }
        }
    }

    /// Answers the clients whose exec ended.
    pub(super) fn complete_execs(&mut self) {
        for c in self.clients.iter_mut().filter(|c| !c.done) {
            let Kind::Exec(e) = &c.kind else { continue };
            let child_done = e.pid.is_none() || e.reaped.is_some();
            if !(child_done && e.report_eof) {
                continue;
            }
            let reply = exec_result(e);
            c.reply(&reply);
        }
    }

    /// Answers every client now that the workload has ended.
    pub(super) fn answer_all(&mut self, code: i32, reason: Option<String>) {
        // Connections not accepted yet: a waiter among them gets its answer.
        self.accept_after_exit();
        let nothing_pending = self.stdin_pending.is_empty();
        let exited = Reply::Exited { code, reason };
        for c in self.clients.iter_mut().filter(|c| !c.done) {
            match &mut c.kind {
                Kind::Wait => c.reply(&exited),
                Kind::Stdin { eof } => {
                    // Its bytes may all have reached the workload, which
                    // read them and exited before the client's end of input
                    // was seen: that write succeeded.
                    let mut probe = [0u8; 1];
                    let more = !*eof && matches!(c.stream.read(&mut probe), Ok(n) if n > 0);
                    let delivered = c.buf.is_empty() && nothing_pending && !more;
                    c.reply(&if delivered {
                        Reply::Done
                    } else {
                        Reply::error("the container has exited")
                    });
                }
                Kind::CloseStdin => c.reply(&Reply::Done),
                Kind::Exec(e) => {
                    // Execs end with the workload.
                    if e.reaped.is_none() && e.pid.is_some() {
                        e.reaped = Some(128 + libc::SIGKILL);
                    }
                    let reply = exec_result(e);
                    c.reply(&reply);
                }
            }
        }
    }

    /// Serves the connections queued at the end: waits get the exit, other
    /// requests an error.
    fn accept_after_exit(&mut self) {
        loop {
            let Some(l) = &self.listener else { return };
            let _ = l.set_nonblocking(true);
            match l.accept() {
                Ok((stream, _)) => self.serve_new(stream),
                Err(_) => return,
            }
        }
    }
}

/// The reply for an ended exec: what its report said, else its wait status.
fn exec_result(e: &ExecState) -> Reply {
    let line = e
        .report_buf
        .split(|b| *b == b'\n')
        .rfind(|l| !l.is_empty())
        .map(<[u8]>::to_vec);
    match line.and_then(|l| serde_json::from_slice::<ExecReport>(&l).ok()) {
        Some(ExecReport::Exited { code }) => Reply::Exited { code, reason: None },
        Some(ExecReport::Failed { failure, message }) => Reply::Failed { failure, message },
        None => Reply::Exited {
            code: e.reaped.unwrap_or(255),
            reason: None,
        },
    }
}

/// Writes `report` on an exec's report pipe (for launchers).
pub fn write_report(pipe: &mut File, report: &ExecReport) {
    if let Ok(mut line) = serde_json::to_vec(report) {
        line.push(b'\n');
        let _ = pipe.write_all(&line);
    }
}
