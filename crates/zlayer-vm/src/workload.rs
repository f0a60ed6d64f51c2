//! [`VmWorkload`]: a running microVM inside its monitor.
//!
//! The monitor starts QEMU as its child (it dies with the monitor), then, on
//! a small tokio runtime of its own, connects to the guest's control and
//! log ports, boots the workload, serves the published ports and relays
//! execs. The workload's output reaches the monitor's generic loop through
//! pipes, like any other workload's, and stdin goes the other way.

use super::accel::{self, Choice};
use super::config::Accel;
use super::control::Control;
use super::forward;
use super::plan::VmPlan;
use super::qemu::{self, files, Launch, BASE_CMDLINE};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use zlayer_hosting::control::ExecReport;
use zlayer_hosting::{
    ExecHandle, ExecRequest, SpawnError, StateDir, Workload, WorkloadExit, WorkloadStdio,
};
use zlayer_runtime::{InvokeFailure, PortMappingEntry, StatsSample};
use zlayer_sys::procfs;
use zlayer_vm_proto::{Decoder, Msg, OutputStream, SpawnFailure, WORKLOAD_CHANNEL};

/// A running VM.
pub struct VmWorkload {
    dir: StateDir,
    plan: VmPlan,
    qemu_pid: i32,
    rt: tokio::runtime::Runtime,
    control: Arc<Control>,
    /// The guest's exit code, once its log port reported it.
    guest_code: Arc<Mutex<Option<i32>>>,
    /// Set when the monitor killed QEMU itself (SIGKILL of the workload).
    killed: Arc<AtomicBool>,
    forwards: Vec<JoinHandle<()>>,
    stdio: Option<WorkloadStdio>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SpawnError::engine(format!("creating a pipe failed: {e}")))
}

fn unix_now() -> (i64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

/// The command-level failure a guest spawn failure is.
fn invoke_failure(kind: SpawnFailure) -> Option<InvokeFailure> {
    match kind {
        SpawnFailure::NotFound => Some(InvokeFailure::CommandNotFound),
        SpawnFailure::NotExecutable => Some(InvokeFailure::NotExecutable),
        SpawnFailure::BadWorkingDir => Some(InvokeFailure::BadWorkingDir),
        SpawnFailure::UnknownUser => Some(InvokeFailure::UnknownUser),
        SpawnFailure::Other => None,
    }
}

fn kernel_cmdline(plan: &VmPlan) -> String {
    let (secs, nanos) = unix_now();
    let mut c = format!("{BASE_CMDLINE} zlayer.boottime={secs}.{nanos:09}");
    if let Some(khz) = accel::host_tsc_khz_cached(&plan.accel_cache.with_file_name("tsc.json")) {
        c.push_str(&format!(" tsc_early_khz={khz}"));
    }
    // The kernel hands a `NAME=value` it does not know to init's
    // environment: the guest agent's failpoints (tests only).
    let guest_points = zlayer_failpoints::active_with_prefix("guest.");
    if !guest_points.is_empty() {
        c.push_str(&format!(" {}={guest_points}", zlayer_failpoints::ENV));
    }
    let host: String = plan
        .hostname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(63)
        .collect();
    if !host.is_empty() {
        c.push_str(&format!(" zlayer.hostname={host}"));
    }
    if !plan.extra_cmdline.is_empty() {
        c.push(' ');
        c.push_str(&plan.extra_cmdline);
    }
    c
}

impl VmWorkload {
    /// Boots the VM of `dir` and starts its workload.
    pub fn start(dir: &StateDir, plan: VmPlan) -> Result<Self, SpawnError> {
        let engine = |e: zlayer_runtime::RuntimeError| SpawnError::engine(e.to_string());
        let mut accel = accel::choose(&Choice {
            accel: plan.accel,
            qemu: &plan.qemu,
            bundle: &plan.bundle,
            cache: &plan.accel_cache,
            probe_timeout: Duration::from_millis(plan.probe_timeout_ms),
        })
        .map_err(engine)?;
        if accel == Accel::Auto {
            accel = Accel::Tcg;
        }
        // Measured: under TCG a second vCPU makes the boot ~40% slower and
        // sometimes hangs it; a spec that asks for CPUs still gets them.
        let vcpus = if accel == Accel::Tcg && !plan.vcpus_from_spec {
            1
        } else {
            plan.vcpus
        };
        let launch = Launch {
            qemu: plan.qemu.clone(),
            accel,
            bundle: plan.bundle.clone(),
            cmdline: kernel_cmdline(&plan),
            memory_mib: plan.memory_mib,
            vcpus,
            dir: dir.dir.clone(),
            rootfs: Some(plan.rootfs.clone()),
            binds: plan.binds.clone(),
            name: format!("zlayer-{}", dir.name()),
        };
        let qemu_pid = qemu::launch(&launch).map_err(engine)?;
        let kill_qemu = || {
            // SAFETY: our own child, not reaped yet.
            unsafe {
                libc::kill(qemu_pid, libc::SIGKILL);
                libc::waitpid(qemu_pid, std::ptr::null_mut(), 0);
            }
        };
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("zlayer-vm")
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                kill_qemu();
                return Err(SpawnError::engine(format!(
                    "starting the VM's runtime: {e}"
                )));
            }
        };
        let guest_code = Arc::new(Mutex::new(None));
        let booted = rt.block_on(boot(dir, &plan, qemu_pid, Arc::clone(&guest_code)));
        let (control, stdio, forwards) = match booted {
            Ok(b) => b,
            Err(e) => {
                kill_qemu();
                return Err(with_console(dir, e));
            }
        };
        Ok(VmWorkload {
            dir: dir.clone(),
            plan,
            qemu_pid,
            rt,
            control,
            guest_code,
            killed: Arc::new(AtomicBool::new(false)),
            forwards,
            stdio: Some(stdio),
        })
    }
}

/// `e` with the last lines of the VM's console appended.
fn with_console(dir: &StateDir, e: SpawnError) -> SpawnError {
    let console = std::fs::read_to_string(dir.file(files::CONSOLE)).unwrap_or_default();
    let tail: Vec<&str> = console.lines().rev().take(15).collect();
    if tail.is_empty() || e.failure.is_some() {
        return e;
    }
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    SpawnError {
        failure: e.failure,
        message: format!("{}; console:\n{}", e.message, tail.join("\n")),
    }
}

/// Connects `path` (a socket QEMU serves) as soon as it answers.
async fn connect_when_up(
    path: &std::path::Path,
    qemu_pid: i32,
    deadline: tokio::time::Instant,
) -> Result<tokio::net::UnixStream, SpawnError> {
    loop {
        match tokio::net::UnixStream::connect(path).await {
            Ok(s) => return Ok(s),
            Err(e) => {
                if !procfs::is_alive(qemu_pid, None) {
                    return Err(SpawnError::engine(
                        "QEMU exited before the VM came up; check the console log",
                    ));
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(SpawnError::engine(format!(
                        "{} did not answer in time: {e}",
                        path.display()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

type Booted = (Arc<Control>, WorkloadStdio, Vec<JoinHandle<()>>);

/// Waits for the agent, starts the workload, publishes ports, and wires
/// the workload's stdio to pipes.
async fn boot(
    dir: &StateDir,
    plan: &VmPlan,
    qemu_pid: i32,
    guest_code: Arc<Mutex<Option<i32>>>,
) -> Result<Booted, SpawnError> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(plan.boot_timeout_ms);
    let send = |e: zlayer_runtime::RuntimeError| SpawnError::engine(e.to_string());
    // The control port first: the agent announces itself on it.
    connect_when_up(&dir.file(files::CONTROL), qemu_pid, deadline).await?;
    let control = Control::connect(&dir.file(files::CONTROL))
        .await
        .map_err(send)?;
    loop {
        let ev = control
            .wait_events(Duration::from_millis(250), |e| e.ready.is_some())
            .await;
        if ev.ready.is_some() {
            break;
        }
        if !procfs::is_alive(qemu_pid, None) || control.is_closed() {
            return Err(SpawnError::engine(
                "the VM powered off before its guest agent came up",
            ));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(SpawnError::engine(format!(
                "the guest agent did not come up within {}s",
                plan.boot_timeout_ms / 1000
            )));
        }
    }
    // The log port before the workload, so none of its output is lost.
    let out = connect_when_up(&dir.file(files::OUTPUT), qemu_pid, deadline).await?;
    let (secs, nanos) = unix_now();
    control
        .send(
            WORKLOAD_CHANNEL,
            Msg::SetTime {
                unix_secs: secs,
                nanos,
            },
        )
        .await
        .map_err(send)?;
    for b in &plan.binds {
        control
            .send(
                WORKLOAD_CHANNEL,
                Msg::Mount {
                    tag: b.tag.clone(),
                    target: b.target.clone(),
                    readonly: b.readonly,
                },
            )
            .await
            .map_err(send)?;
    }
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let (stdin_r, stdin_w) = pipe()?;
    tokio::spawn(pump_output(out, stdout_w, stderr_w, guest_code));
    control
        .send(WORKLOAD_CHANNEL, Msg::Run(plan.run.request()))
        .await
        .map_err(send)?;
    let ev = control
        .wait_events(Duration::from_secs(60), |e| {
            e.started.is_some() || e.error.is_some() || e.spawn_failed.is_some()
        })
        .await;
    if let Some((kind, message)) = ev.spawn_failed {
        return Err(match invoke_failure(kind) {
            Some(f) => SpawnError::invoke(f, message),
            None => SpawnError::engine(message),
        });
    }
    if let Some(err) = ev.error {
        return Err(SpawnError::engine(err));
    }
    if ev.started.is_none() {
        return Err(SpawnError::engine(
            "the guest agent did not start the workload",
        ));
    }
    tokio::spawn(pump_stdin(stdin_r, Arc::clone(&control)));
    let bound = forward::bind_all(&plan.ports, &[]).await.map_err(send)?;
    zlayer_failpoints::hit("start.after-network");
    let entries: Vec<PortMappingEntry> = bound.iter().map(|(e, _)| e.clone()).collect();
    zlayer_sys::atomic::write_json_atomic(&dir.file(files::PORTS), &entries)
        .map_err(|e| SpawnError::engine(e.to_string()))?;
    let forwards = bound
        .into_iter()
        .map(|(entry, l)| forward::serve(l, entry.container_port, Arc::clone(&control)))
        .collect();
    Ok((
        control,
        WorkloadStdio::Pipes {
            stdin: stdin_w,
            stdout: stdout_r,
            stderr: stderr_r,
        },
        forwards,
    ))
}

/// The log port's frames to the stdout/stderr pipes; the exit code noted.
async fn pump_output(
    mut out: tokio::net::UnixStream,
    stdout: OwnedFd,
    stderr: OwnedFd,
    guest_code: Arc<Mutex<Option<i32>>>,
) {
    let (Ok(mut o), Ok(mut e)) = (
        tokio::net::unix::pipe::Sender::from_owned_fd(stdout),
        tokio::net::unix::pipe::Sender::from_owned_fd(stderr),
    ) else {
        return;
    };
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match out.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => match frame.msg {
                    Msg::Log { stream, data, .. } => {
                        let w = match stream {
                            OutputStream::Stdout => &mut o,
                            OutputStream::Stderr => &mut e,
                        };
                        let _ = w.write_all(&data).await;
                    }
                    Msg::Exited { code } => {
                        if let Ok(mut g) = guest_code.lock() {
                            *g = Some(code);
                        }
                    }
                    _ => {}
                },
                Ok(None) => break,
                Err(err) if err.is_fatal() => return,
                Err(_) => {}
            }
        }
    }
}

/// The stdin pipe to the workload's stdin in the guest; EOF closes it.
async fn pump_stdin(stdin: OwnedFd, control: Arc<Control>) {
    let Ok(r) = tokio::net::unix::pipe::Receiver::from_owned_fd(stdin) else {
        return;
    };
    control.pump_input(WORKLOAD_CHANNEL, r, 64 * 1024).await;
}

/// One exec: its stdin to the guest, the guest's output to its fds, how it
/// ended to the report pipe.
async fn relay_exec(
    control: Arc<Control>,
    req: zlayer_vm_proto::ExecRequest,
    stdio: [OwnedFd; 3],
    report: OwnedFd,
) {
    let mut report = std::fs::File::from(report);
    let [stdin, stdout, stderr] = stdio;
    let (ch, mut rx) = control.open_channel();
    if let Err(e) = control.send(ch, Msg::Exec(req)).await {
        zlayer_hosting::monitor::write_report(
            &mut report,
            &ExecReport::Failed {
                failure: None,
                message: e.to_string(),
            },
        );
        control.close_channel(ch);
        return;
    }
    let up_control = Arc::clone(&control);
    let up = tokio::spawn(async move {
        match tokio::net::unix::pipe::Receiver::from_owned_fd(stdin) {
            Ok(r) => up_control.pump_input(ch, r, 64 * 1024).await,
            Err(_) => {
                let _ = up_control.send(ch, Msg::StdinEof).await;
            }
        }
    });
    let (Ok(mut o), Ok(mut e)) = (
        tokio::net::unix::pipe::Sender::from_owned_fd(stdout),
        tokio::net::unix::pipe::Sender::from_owned_fd(stderr),
    ) else {
        up.abort();
        control.close_channel(ch);
        return;
    };
    let outcome = loop {
        match rx.recv().await {
            Some(Msg::Stdout(d)) => {
                let _ = o.write_all(&d).await;
            }
            Some(Msg::Stderr(d)) => {
                let _ = e.write_all(&d).await;
            }
            Some(Msg::Exited { code }) => break ExecReport::Exited { code },
            Some(Msg::SpawnFailed { kind, message }) => {
                break ExecReport::Failed {
                    failure: invoke_failure(kind),
                    message,
                }
            }
            Some(Msg::Error { message }) => {
                break ExecReport::Failed {
                    failure: None,
                    message,
                }
            }
            Some(_) => {}
            None => {
                break ExecReport::Failed {
                    failure: None,
                    message: "the VM's control connection closed during the exec".into(),
                }
            }
        }
    };
    up.abort();
    control.close_channel(ch);
    drop((o, e));
    zlayer_hosting::monitor::write_report(&mut report, &outcome);
}

impl Workload for VmWorkload {
    fn pid(&self) -> i32 {
        self.qemu_pid
    }

    fn take_stdio(&mut self) -> Option<WorkloadStdio> {
        self.stdio.take()
    }

    fn exec(
        &mut self,
        request: &ExecRequest,
        stdio: [OwnedFd; 3],
    ) -> Result<ExecHandle, SpawnError> {
        let mut env = self.plan.run.env.clone();
        for (k, v) in &request.env {
            match env.iter_mut().find(|(ek, _)| ek == k) {
                Some(slot) => slot.1 = v.clone(),
                None => env.push((k.clone(), v.clone())),
            }
        }
        let req = zlayer_vm_proto::ExecRequest {
            argv: request.argv.clone(),
            env,
            cwd: request
                .workdir
                .clone()
                .or_else(|| self.plan.run.cwd.clone()),
            uid: None,
            gid: None,
            user: request.user.clone().or_else(|| self.plan.run.user.clone()),
        };
        let (report_r, report_w) = pipe()?;
        self.rt
            .spawn(relay_exec(Arc::clone(&self.control), req, stdio, report_w));
        Ok(ExecHandle {
            pid: None,
            report: Some(std::fs::File::from(report_r)),
        })
    }

    fn signal(&mut self, signal: i32) -> std::io::Result<()> {
        if signal == libc::SIGKILL {
            // All of it at once: the machine.
            self.killed.store(true, Ordering::SeqCst);
            // SAFETY: our own child, reaped by the monitor loop.
            if unsafe { libc::kill(self.qemu_pid, libc::SIGKILL) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            return Ok(());
        }
        let control = Arc::clone(&self.control);
        self.rt
            .block_on(control.send(WORKLOAD_CHANNEL, Msg::Signal { signum: signal }))
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    fn stats(&mut self) -> Result<StatsSample, String> {
        let st = procfs::stat(self.qemu_pid).ok_or("the VM is not running")?;
        let ticks = procfs::clock_ticks().max(1);
        let rss = st.rss_pages * procfs::page_size();
        let control = Arc::clone(&self.control);
        let guest = self
            .rt
            .block_on(control.query_stats(Duration::from_secs(3)))
            .ok();
        let (used, pids) = match guest {
            Some(g) if g.mem_total_bytes > 0 => (
                g.mem_total_bytes.saturating_sub(g.mem_available_bytes),
                g.processes,
            ),
            _ => (rss, 0),
        };
        Ok(StatsSample {
            timestamp: SystemTime::now(),
            cpu_total_ns: (st.utime + st.stime) * 1_000_000_000 / ticks,
            cpu_system_ns: procfs::host_cpu_ns(),
            online_cpus: self.plan.vcpus,
            memory_used_bytes: used.max(1),
            memory_limit_bytes: self.plan.memory_mib * 1024 * 1024,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            blkio_read_bytes: 0,
            blkio_write_bytes: 0,
            pids_current: pids,
            pids_limit: None,
        })
    }

    fn exit(&mut self, code: i32, signal: Option<i32>) -> WorkloadExit {
        let guest = self.guest_code.lock().ok().and_then(|g| *g);
        match guest {
            Some(code) => WorkloadExit {
                code,
                signal: (code > 128).then_some(code - 128),
                reason: None,
            },
            None if self.killed.load(Ordering::SeqCst) => WorkloadExit {
                code: 128 + libc::SIGKILL,
                signal: Some(libc::SIGKILL),
                reason: None,
            },
            None => WorkloadExit {
                code: 255,
                signal,
                reason: Some(format!(
                    "the VM stopped without an exit code from its guest agent (QEMU exit {code}); see {}",
                    self.dir.file(files::CONSOLE).display()
                )),
            },
        }
    }

    fn cleanup(&mut self) {
        for f in self.forwards.drain(..) {
            f.abort();
        }
        let _ = std::fs::remove_file(self.dir.file(files::PORTS));
    }
}
