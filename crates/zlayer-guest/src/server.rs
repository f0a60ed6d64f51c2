//! Serving the control protocol: one reader loop dispatching frames to
//! sessions, one writer thread owning the control port's write side.

use crate::error::{GuestError, Result};
use crate::reaper::Reaper;
use crate::spawn::{spawn, SpawnRequest, DEFAULT_PATH};
use crate::{boot, sys, users};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zlayer_vm_proto::{
    write_frame, ChannelId, Decoder, ExecRequest, Frame, GuestStats, Msg, OutputStream, RunRequest,
    PROTOCOL_VERSION, WORKLOAD_CHANNEL,
};

/// Largest chunk of output put in one frame.
const CHUNK: usize = 32 * 1024;
/// How long output readers may lag behind a process's exit (grandchildren
/// can keep the pipes open).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

enum Out {
    Frame(Frame),
    Flush(Sender<()>),
}

enum Input {
    Data(Vec<u8>),
    Eof,
}

enum Kind {
    Process(i32),
    Forward(TcpStream),
}

struct Session {
    kind: Kind,
    input: Option<Sender<Input>>,
}

/// Shared state of the agent.
#[derive(Clone)]
struct Agent {
    out: Sender<Out>,
    log: Arc<Mutex<File>>,
    sessions: Arc<Mutex<HashMap<ChannelId, Session>>>,
    reaper: Reaper,
    workload_started: Arc<Mutex<bool>>,
}

/// Serves `ctl` (control port) and writes workload output to `log` until
/// told to shut down.
pub fn serve(ctl: File, log: File) -> Result<()> {
    let writer = ctl
        .try_clone()
        .map_err(|e| GuestError::io("dup control port", e))?;
    let (out_tx, out_rx) = channel::<Out>();
    std::thread::spawn(move || write_loop(writer, out_rx));
    let agent = Agent {
        out: out_tx,
        log: Arc::new(Mutex::new(log)),
        sessions: Arc::new(Mutex::new(HashMap::new())),
        reaper: Reaper::start(),
        workload_started: Arc::new(Mutex::new(false)),
    };
    agent.send(
        WORKLOAD_CHANNEL,
        Msg::Ready {
            version: PROTOCOL_VERSION,
        },
    );
    let mut ctl = ctl;
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut connected = true;
    loop {
        let n = match ctl.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(GuestError::io("read control port", e)),
        };
        if n == 0 {
            // virtio-serial reads 0 while no host is connected.
            if connected {
                connected = false;
                decoder.reset();
                agent.drop_sessions();
            }
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        if !connected {
            connected = true;
            agent.send(
                WORKLOAD_CHANNEL,
                Msg::Ready {
                    version: PROTOCOL_VERSION,
                },
            );
        }
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => agent.handle(frame),
                Ok(None) => break,
                Err(e) => {
                    eprintln!("zlayer-guest: bad frame from host: {e}");
                    if e.is_fatal() {
                        decoder.reset();
                        break;
                    }
                }
            }
        }
    }
}

fn write_loop(mut port: File, rx: Receiver<Out>) {
    while let Ok(item) = rx.recv() {
        match item {
            Out::Frame(frame) => {
                if let Err(e) = write_frame(&mut port, &frame) {
                    eprintln!("zlayer-guest: writing {} to host: {e}", frame.msg.name());
                }
            }
            Out::Flush(ack) => {
                let _ = ack.send(());
            }
        }
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Agent {
    fn send(&self, channel: ChannelId, msg: Msg) {
        let _ = self.out.send(Out::Frame(Frame::new(channel, msg)));
    }

    fn flush(&self, timeout: Duration) {
        let (tx, rx) = channel();
        if self.out.send(Out::Flush(tx)).is_ok() {
            let _ = rx.recv_timeout(timeout);
        }
    }

    fn log(&self, msg: Msg) {
        let mut f = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = write_frame(&mut *f, &Frame::new(WORKLOAD_CHANNEL, msg)) {
            eprintln!("zlayer-guest: writing the log port: {e}");
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelId, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The host went away: end every exec and forward (the workload stays).
    fn drop_sessions(&self) {
        let mut sessions = self.sessions();
        let ids: Vec<ChannelId> = sessions
            .keys()
            .copied()
            .filter(|c| *c != WORKLOAD_CHANNEL)
            .collect();
        for id in ids {
            if let Some(s) = sessions.remove(&id) {
                close_session(s);
            }
        }
    }

    fn handle(&self, frame: Frame) {
        let ch = frame.channel;
        match frame.msg {
            Msg::Run(req) if ch == WORKLOAD_CHANNEL => self.run_workload(req),
            Msg::Run(_) => self.send(
                ch,
                Msg::Error {
                    message: "Run is only valid on channel 0".into(),
                },
            ),
            Msg::Exec(req) => self.exec(ch, req),
            Msg::Signal { signum } => {
                let pid = match self.sessions().get(&ch) {
                    Some(Session {
                        kind: Kind::Process(pid),
                        ..
                    }) => Some(*pid),
                    _ => None,
                };
                match pid {
                    Some(pid) => {
                        if let Err(e) = sys::kill(pid, signum) {
                            self.send(
                                ch,
                                Msg::Error {
                                    message: e.to_string(),
                                },
                            );
                        }
                    }
                    None => self.send(
                        ch,
                        Msg::Error {
                            message: format!("no process on channel {ch} to signal"),
                        },
                    ),
                }
            }
            Msg::Stdin(data) => self.input(ch, Input::Data(data)),
            Msg::StdinEof => self.input(ch, Input::Eof),
            Msg::Mount {
                tag,
                target,
                readonly,
            } => {
                if let Err(e) = boot::mount_share(&tag, &target, readonly) {
                    self.send(
                        ch,
                        Msg::Error {
                            message: e.to_string(),
                        },
                    );
                }
            }
            Msg::Forward { port } => self.forward(ch, port),
            Msg::SetTime { unix_secs, nanos } => {
                if let Err(e) = sys::set_clock(unix_secs, nanos) {
                    self.send(
                        ch,
                        Msg::Error {
                            message: e.to_string(),
                        },
                    );
                }
            }
            Msg::Shutdown => {
                self.flush(Duration::from_millis(500));
                let _ = sys::kill(-1, libc::SIGKILL);
                let err = sys::power_off();
                self.send(
                    ch,
                    Msg::Error {
                        message: err.to_string(),
                    },
                );
            }
            Msg::Close => {
                if let Some(s) = self.sessions().remove(&ch) {
                    close_session(s);
                }
            }
            Msg::QueryStats => self.send(ch, Msg::Stats(guest_stats())),
            other => eprintln!(
                "zlayer-guest: ignoring host-bound {} frame from the host",
                other.name()
            ),
        }
    }

    fn input(&self, ch: ChannelId, input: Input) {
        let mut sessions = self.sessions();
        if let Some(s) = sessions.get_mut(&ch) {
            if let Some(tx) = &s.input {
                let eof = matches!(input, Input::Eof);
                let _ = tx.send(input);
                if eof {
                    s.input = None;
                }
            }
        }
    }

    fn run_workload(&self, req: RunRequest) {
        {
            let mut started = self
                .workload_started
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if *started {
                self.send(
                    WORKLOAD_CHANNEL,
                    Msg::Error {
                        message: "the workload was already started".into(),
                    },
                );
                return;
            }
            *started = true;
        }
        // The working directory of the container's command is made when
        // missing, as docker and the other isolations do (an exec's is not).
        if let Some(cwd) = req.cwd.as_deref().filter(|c| c.starts_with('/')) {
            let _ = std::fs::create_dir_all(cwd);
        }
        let spawned = prepare(
            &req.argv,
            req.env,
            req.cwd,
            req.uid,
            req.gid,
            req.user.as_deref(),
        )
        .and_then(|mut sreq| {
            sreq.stdin_pipe = req.open_stdin;
            spawn(&sreq)
        });
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let message = e.to_string();
                let kind = e.spawn_failure();
                self.log(Msg::Log {
                    stream: OutputStream::Stderr,
                    unix_nanos: now_nanos(),
                    data: format!("{message}\n").into_bytes(),
                });
                self.log(Msg::Exited {
                    code: if kind == zlayer_vm_proto::SpawnFailure::NotFound {
                        127
                    } else {
                        126
                    },
                });
                self.send(WORKLOAD_CHANNEL, Msg::SpawnFailed { kind, message });
                if req.poweroff_on_exit {
                    self.flush(Duration::from_secs(1));
                    let _ = sys::power_off();
                }
                return;
            }
        };
        zlayer_failpoints::hit("guest.after-spawn");
        let pid = child.pid;
        let exit = self.reaper.watch(pid);
        let input = child.stdin.map(input_pump);
        self.sessions().insert(
            WORKLOAD_CHANNEL,
            Session {
                kind: Kind::Process(pid),
                input,
            },
        );
        self.send(WORKLOAD_CHANNEL, Msg::Started { pid: pid as u32 });
        let readers = [
            self.log_pump(child.stdout, OutputStream::Stdout),
            self.log_pump(child.stderr, OutputStream::Stderr),
        ];
        let agent = self.clone();
        std::thread::spawn(move || {
            let code = exit.recv().unwrap_or(255);
            join_with_grace(readers);
            agent.sessions().remove(&WORKLOAD_CHANNEL);
            agent.log(Msg::Exited { code });
            agent.send(WORKLOAD_CHANNEL, Msg::Exited { code });
            if req.poweroff_on_exit {
                agent.flush(Duration::from_secs(1));
                let _ = sys::power_off();
            }
        });
    }

    fn log_pump(&self, mut src: File, stream: OutputStream) -> JoinHandle<()> {
        let agent = self.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => agent.log(Msg::Log {
                        stream,
                        unix_nanos: now_nanos(),
                        data: buf[..n].to_vec(),
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        })
    }

    fn frame_pump(
        &self,
        mut src: impl Read + Send + 'static,
        ch: ChannelId,
        stderr: bool,
    ) -> JoinHandle<()> {
        let agent = self.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; CHUNK];
            loop {
                match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let data = buf[..n].to_vec();
                        agent.send(
                            ch,
                            if stderr {
                                Msg::Stderr(data)
                            } else {
                                Msg::Stdout(data)
                            },
                        );
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        })
    }

    fn exec(&self, ch: ChannelId, req: ExecRequest) {
        if ch == WORKLOAD_CHANNEL || self.sessions().contains_key(&ch) {
            self.send(
                ch,
                Msg::Error {
                    message: format!("channel {ch} is already in use"),
                },
            );
            return;
        }
        let spawned = prepare(
            &req.argv,
            req.env,
            req.cwd,
            req.uid,
            req.gid,
            req.user.as_deref(),
        )
        .and_then(|mut sreq| {
            sreq.stdin_pipe = true;
            spawn(&sreq)
        });
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                self.send(
                    ch,
                    Msg::SpawnFailed {
                        kind: e.spawn_failure(),
                        message: e.to_string(),
                    },
                );
                return;
            }
        };
        let pid = child.pid;
        let exit = self.reaper.watch(pid);
        let input = child.stdin.map(input_pump);
        self.sessions().insert(
            ch,
            Session {
                kind: Kind::Process(pid),
                input,
            },
        );
        self.send(ch, Msg::Started { pid: pid as u32 });
        let readers = [
            self.frame_pump(child.stdout, ch, false),
            self.frame_pump(child.stderr, ch, true),
        ];
        let agent = self.clone();
        std::thread::spawn(move || {
            let code = exit.recv().unwrap_or(255);
            join_with_grace(readers);
            agent.sessions().remove(&ch);
            agent.send(ch, Msg::Exited { code });
        });
    }

    fn forward(&self, ch: ChannelId, port: u16) {
        if ch == WORKLOAD_CHANNEL || self.sessions().contains_key(&ch) {
            self.send(
                ch,
                Msg::Error {
                    message: format!("channel {ch} is already in use"),
                },
            );
            return;
        }
        let stream = match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => s,
            Err(e) => {
                self.send(
                    ch,
                    Msg::Error {
                        message: format!("connect to 127.0.0.1:{port} in the guest: {e}"),
                    },
                );
                return;
            }
        };
        let (reader, writer) = match (stream.try_clone(), stream.try_clone()) {
            (Ok(r), Ok(w)) => (r, w),
            _ => {
                self.send(
                    ch,
                    Msg::Error {
                        message: "cannot duplicate the forwarded socket".into(),
                    },
                );
                return;
            }
        };
        let (tx, rx) = channel::<Input>();
        std::thread::spawn(move || {
            let mut w = writer;
            while let Ok(item) = rx.recv() {
                match item {
                    Input::Data(d) => {
                        if w.write_all(&d).is_err() {
                            break;
                        }
                    }
                    Input::Eof => {
                        let _ = w.shutdown(Shutdown::Write);
                        break;
                    }
                }
            }
        });
        self.sessions().insert(
            ch,
            Session {
                kind: Kind::Forward(stream),
                input: Some(tx),
            },
        );
        let pump = self.frame_pump(reader, ch, false);
        let agent = self.clone();
        std::thread::spawn(move || {
            let _ = pump.join();
            let still_open = agent.sessions().remove(&ch).is_some();
            if still_open {
                agent.send(ch, Msg::Exited { code: 0 });
            }
        });
    }
}

fn close_session(s: Session) {
    match s.kind {
        Kind::Process(pid) => {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
        Kind::Forward(stream) => {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn input_pump(mut dst: File) -> Sender<Input> {
    let (tx, rx) = channel::<Input>();
    std::thread::spawn(move || {
        while let Ok(Input::Data(d)) = rx.recv() {
            if dst.write_all(&d).is_err() {
                break;
            }
        }
    });
    tx
}

fn join_with_grace(readers: [JoinHandle<()>; 2]) {
    let deadline = std::time::Instant::now() + DRAIN_GRACE;
    for r in readers {
        while !r.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if r.is_finished() {
            let _ = r.join();
        }
    }
}

/// Turns a run/exec request into a spawn request: resolves the user against
/// the container's files and completes the environment.
fn prepare(
    argv: &[String],
    mut env: Vec<(String, String)>,
    cwd: Option<String>,
    uid: Option<u32>,
    gid: Option<u32>,
    user: Option<&str>,
) -> Result<SpawnRequest> {
    if argv.is_empty() || argv[0].is_empty() {
        return Err(GuestError::Invalid("the command is empty".into()));
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let spec = match (user.filter(|u| !u.is_empty()), uid, gid) {
        (Some(u), _, _) => u.to_string(),
        (None, Some(u), Some(g)) => format!("{u}:{g}"),
        (None, Some(u), None) => u.to_string(),
        (None, None, Some(g)) => format!("0:{g}"),
        (None, None, None) => "0".to_string(),
    };
    let id = users::resolve(&spec, &passwd, &group)?;
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".into(), id.home.clone().unwrap_or_else(|| "/".into())));
    }
    Ok(SpawnRequest {
        argv: argv.to_vec(),
        env,
        cwd,
        uid: id.uid,
        gid: id.gid,
        groups: id.groups,
        stdin_pipe: false,
    })
}

/// Memory and process figures of the guest.
fn guest_stats() -> GuestStats {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
            * 1024
    };
    let processes = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .count() as u64
        })
        .unwrap_or(0);
    GuestStats {
        mem_total_bytes: field("MemTotal:"),
        mem_available_bytes: field("MemAvailable:"),
        processes,
    }
}
