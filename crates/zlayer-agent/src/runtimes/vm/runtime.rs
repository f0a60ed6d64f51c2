//! [`VmRuntime`]: the [`Runtime`] of the `vm` isolation.

use super::accel;
use super::config::{Accel, VmConfig};
use super::control::Control;
use super::forward;
use super::kernel::{resolve_bundle, KernelBundle};
use super::logsync::{self, LOG_FILE};
use super::qemu::{self, files, Launch, BASE_CMDLINE};
use super::record::{self, QemuProcess, VmRecord};
use crate::error::{AgentError, Result};
use crate::runtime::{
    require_command, LogsStream, RegistryAuth, Runtime, StatsStream, STATS_INTERVAL,
};
use crate::runtimes::common::atomic::{read_json, write_json_atomic};
use crate::runtimes::common::exit::now_ms;
use crate::runtimes::common::{logs, procfs};
use crate::types::{
    ContainerId, ContainerState, ContainerStats, ExecOptions, ExecOutput, ImageInfo,
    LogsStreamOptions, PortMappingEntry,
};
use async_trait::async_trait;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use zlayer_image::ImageStore;
use zlayer_spec::{PullPolicy, ServiceSpec};
use zlayer_vm_proto::{ExecRequest, Msg, WORKLOAD_CHANNEL};

const RECORD_FILE: &str = "vm.json";
const PORTS_FILE: &str = "ports.json";
const PAUSED_FILE: &str = "paused";
const NAME: &str = "vm";

/// A live connection to a running VM and its port forwarders.
struct Live {
    control: Arc<Control>,
    forwards: Vec<JoinHandle<()>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        for f in &self.forwards {
            f.abort();
        }
    }
}

struct Inner {
    config: VmConfig,
    store: Arc<ImageStore>,
    live: tokio::sync::Mutex<HashMap<ContainerId, Arc<Live>>>,
    accel: tokio::sync::OnceCell<Accel>,
}

/// Runs every container in its own QEMU microVM (see `docs/vm.md`).
///
/// QEMU is daemonized, so VMs outlive the process that started them; a new
/// `VmRuntime` over the same root re-adopts them from their state
/// directories (`<root>/containers/<id>/`).
#[derive(Clone)]
pub struct VmRuntime {
    inner: Arc<Inner>,
}

impl VmRuntime {
    /// A runtime keeping its state under `config.root` and taking images
    /// from `store`.
    pub fn new(config: VmConfig, store: Arc<ImageStore>) -> Result<Self> {
        std::fs::create_dir_all(config.containers_dir()).map_err(|e| {
            AgentError::Configuration(format!(
                "cannot create the vm runtime root {}: {e}",
                config.containers_dir().display()
            ))
        })?;
        Ok(VmRuntime {
            inner: Arc::new(Inner {
                config,
                store,
                live: tokio::sync::Mutex::new(HashMap::new()),
                accel: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// The kernel bundle this runtime boots (explicit paths, environment or
    /// the installed bundle), or a configuration error saying how to get one.
    pub fn kernel_bundle(&self) -> Result<KernelBundle> {
        self.inner.bundle()
    }

    /// The accelerator VMs run under (probing KVM once when `Auto`).
    pub async fn accelerator(&self) -> Result<Accel> {
        let bundle = self.inner.bundle()?;
        self.inner.accel(&bundle).await
    }

    /// The state directory of a container.
    pub fn state_dir(&self, id: &ContainerId) -> PathBuf {
        self.inner.dir(id)
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> AgentError {
    AgentError::Internal(format!("{what} {}: {e}", path.display()))
}

fn unix_now() -> (i64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

impl Inner {
    fn dir(&self, id: &ContainerId) -> PathBuf {
        self.config.containers_dir().join(id.to_string())
    }

    fn bundle(&self) -> Result<KernelBundle> {
        let explicit = match (&self.config.kernel, &self.config.initrd) {
            (Some(k), Some(i)) => Some(KernelBundle {
                kernel: k.clone(),
                initrd: i.clone(),
            }),
            (None, None) => None,
            _ => {
                return Err(AgentError::Configuration(
                    "VmConfig sets only one of kernel and initrd; set both or neither".into(),
                ))
            }
        };
        resolve_bundle(explicit.as_ref(), &self.config.kernel_dir())
    }

    async fn accel(&self, bundle: &KernelBundle) -> Result<Accel> {
        self.accel
            .get_or_try_init(|| accel::choose(&self.config, bundle))
            .await
            .copied()
    }

    fn load(&self, id: &ContainerId) -> Result<VmRecord> {
        read_json::<VmRecord>(&self.dir(id).join(RECORD_FILE))?
            .ok_or_else(|| AgentError::container_not_found(id))
    }

    fn save(&self, rec: &VmRecord) -> Result<()> {
        write_json_atomic(&self.dir(&rec.id).join(RECORD_FILE), rec)
    }

    fn alive(rec: &VmRecord) -> Option<i32> {
        rec.qemu
            .filter(|q| procfs::is_alive(q.pid, q.starttime))
            .map(|q| q.pid)
    }

    async fn drop_live(&self, id: &ContainerId) {
        self.live.lock().await.remove(id);
    }

    /// The live connection of a running VM, reconnecting (and re-binding
    /// its published ports) after a restart of the agent.
    async fn live(&self, id: &ContainerId, rec: &VmRecord) -> Result<Arc<Live>> {
        let mut map = self.live.lock().await;
        if let Some(l) = map.get(id) {
            if !l.control.is_closed() {
                return Ok(Arc::clone(l));
            }
        }
        if Self::alive(rec).is_none() {
            map.remove(id);
            return Err(not_running(id));
        }
        let dir = self.dir(id);
        let control = Control::connect(&dir.join(files::CONTROL)).await?;
        let previous: Vec<PortMappingEntry> = read_json(&dir.join(PORTS_FILE))?.unwrap_or_default();
        let bound = forward::bind_all(&rec.spec.port_mappings, &previous).await?;
        let forwards = bound
            .into_iter()
            .map(|(entry, l)| forward::serve(l, entry.container_port, Arc::clone(&control)))
            .collect();
        let (secs, nanos) = unix_now();
        let _ = control
            .send(
                WORKLOAD_CHANNEL,
                Msg::SetTime {
                    unix_secs: secs,
                    nanos,
                },
            )
            .await;
        let live = Arc::new(Live { control, forwards });
        map.insert(id.clone(), Arc::clone(&live));
        Ok(live)
    }

    /// Where the container is, converting logs and noticing exits.
    async fn observe(&self, id: &ContainerId) -> Result<(VmRecord, ContainerState)> {
        let rec = self.load(id)?;
        let dir = self.dir(id);
        let code = logsync::sync(&dir)?;
        let alive = Self::alive(&rec);
        let state = if let Some(code) = code {
            match logsync::read_exit(&dir)?.and_then(|r| r.reason) {
                Some(reason) if alive.is_none() => ContainerState::Failed { reason },
                _ => ContainerState::Exited { code },
            }
        } else if rec.qemu.is_none() {
            ContainerState::Pending
        } else if alive.is_some() {
            if dir.join(PAUSED_FILE).exists() {
                ContainerState::Paused
            } else {
                ContainerState::Running
            }
        } else {
            // QEMU is gone; a last sync picks up an exit written just before.
            match logsync::sync(&dir)? {
                Some(code) => ContainerState::Exited { code },
                None => {
                    let reason = format!(
                        "the VM stopped without an exit code from its guest agent; see {}",
                        dir.join(files::CONSOLE).display()
                    );
                    logsync::write_exit(&dir, 255, Some(reason.clone()))?;
                    ContainerState::Failed { reason }
                }
            }
        };
        if state.is_terminal() {
            self.drop_live(id).await;
        }
        Ok((rec, state))
    }

    async fn wait_gone(pid: i32, starttime: Option<u64>, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while procfs::is_alive(pid, starttime) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    async fn kill_qemu(&self, rec: &VmRecord) {
        if let Some(q) = rec.qemu {
            if procfs::is_alive(q.pid, q.starttime) {
                // SAFETY: plain system call on a pid we verified is our QEMU.
                unsafe {
                    libc::kill(q.pid, libc::SIGKILL);
                }
                Self::wait_gone(q.pid, q.starttime, Duration::from_secs(10)).await;
            }
        }
    }

    fn cmdline(&self, rec: &VmRecord) -> String {
        let (secs, nanos) = unix_now();
        let mut c = format!("{BASE_CMDLINE} zlayer.boottime={secs}.{nanos:09}");
        if let Some(khz) = accel::host_tsc_khz() {
            c.push_str(&format!(" tsc_early_khz={khz}"));
        }
        let host: String = rec
            .spec
            .name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
            .take(63)
            .collect();
        if !host.is_empty() {
            c.push_str(&format!(" zlayer.hostname={host}"));
        }
        if !self.config.extra_cmdline.is_empty() {
            c.push(' ');
            c.push_str(&self.config.extra_cmdline);
        }
        c
    }

    async fn start(&self, id: &ContainerId) -> Result<()> {
        let (mut rec, state) = self.observe(id).await?;
        if state.is_alive() {
            return Ok(());
        }
        let dir = self.dir(id);
        let bundle = self.bundle()?;
        let accel = self.accel(&bundle).await?;
        let _ = std::fs::remove_file(dir.join(logsync::EXIT_FILE));
        let _ = std::fs::remove_file(dir.join(PAUSED_FILE));
        // Measured: under TCG a second vCPU makes the boot ~40% slower and
        // sometimes hangs it; a spec that asks for CPUs still gets them.
        if accel == Accel::Tcg && !rec.vcpus_from_spec {
            rec.vcpus = 1;
        }
        let launch = Launch {
            qemu: self.config.qemu_binary.clone(),
            accel,
            bundle,
            cmdline: self.cmdline(&rec),
            memory_mib: rec.memory_mib,
            vcpus: rec.vcpus,
            dir: dir.clone(),
            rootfs: Some(rec.rootfs.clone()),
            binds: rec.binds.clone(),
            name: format!("zlayer-{id}"),
        };
        let started = tokio::time::Instant::now();
        let pid = qemu::launch(&launch)
            .await
            .map_err(|e| start_failed(id, e.to_string()))?;
        rec.qemu = Some(QemuProcess {
            pid,
            starttime: procfs::stat(pid).map(|s| s.starttime),
        });
        rec.accel = Some(accel.qemu_name().to_string());
        self.save(&rec)?;
        match self.boot(id, &rec, started).await {
            Ok(live) => {
                self.live.lock().await.insert(id.clone(), live);
                Ok(())
            }
            Err(reason) => {
                self.kill_qemu(&rec).await;
                let console = std::fs::read_to_string(dir.join(files::CONSOLE)).unwrap_or_default();
                let tail: Vec<&str> = console.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                let reason = if tail.is_empty() {
                    reason
                } else {
                    format!("{reason}; console:\n{}", tail.join("\n"))
                };
                let _ = logsync::sync(&dir);
                let _ = logsync::write_exit(&dir, 127, Some(reason.clone()));
                for f in [files::CONTROL, files::QMP, files::PID] {
                    let _ = std::fs::remove_file(dir.join(f));
                }
                Err(start_failed(id, reason))
            }
        }
    }

    /// Waits for the agent, sends the workload, publishes ports.
    async fn boot(
        &self,
        id: &ContainerId,
        rec: &VmRecord,
        started: tokio::time::Instant,
    ) -> std::result::Result<Arc<Live>, String> {
        let dir = self.dir(id);
        let deadline = started + self.config.boot_timeout;
        let qemu = rec.qemu.ok_or("no QEMU process")?;
        let control = loop {
            match Control::connect(&dir.join(files::CONTROL)).await {
                Ok(c) => break c,
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e.to_string()),
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        loop {
            let ev = control
                .wait_events(Duration::from_millis(250), |e| e.ready.is_some())
                .await;
            if ev.ready.is_some() {
                break;
            }
            if !procfs::is_alive(qemu.pid, qemu.starttime) || control.is_closed() {
                return Err("the VM powered off before its guest agent came up".into());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "the guest agent did not come up within {}s",
                    self.config.boot_timeout.as_secs()
                ));
            }
        }
        let send = |e: AgentError| e.to_string();
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
        for b in &rec.binds {
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
        control
            .send(WORKLOAD_CHANNEL, Msg::Run(rec.run.request()))
            .await
            .map_err(send)?;
        let ev = control
            .wait_events(Duration::from_secs(60), |e| {
                e.started.is_some() || e.error.is_some()
            })
            .await;
        if let Some(err) = ev.error {
            return Err(err);
        }
        if ev.started.is_none() {
            return Err("the guest agent did not start the workload".into());
        }
        let bound = forward::bind_all(&rec.spec.port_mappings, &[])
            .await
            .map_err(send)?;
        let entries: Vec<PortMappingEntry> = bound.iter().map(|(e, _)| e.clone()).collect();
        write_json_atomic(&dir.join(PORTS_FILE), &entries).map_err(send)?;
        let forwards = bound
            .into_iter()
            .map(|(entry, l)| forward::serve(l, entry.container_port, Arc::clone(&control)))
            .collect();
        Ok(Arc::new(Live { control, forwards }))
    }
}

fn not_running(id: &ContainerId) -> AgentError {
    AgentError::InvalidSpec(format!(
        "container {id} is not running; start it first (`zlayer start {id}`)"
    ))
}

fn start_failed(id: &ContainerId, reason: String) -> AgentError {
    AgentError::StartFailed {
        id: id.to_string(),
        reason,
    }
}

#[async_trait]
impl Runtime for VmRuntime {
    fn name(&self) -> &str {
        NAME
    }

    async fn pull_image_with_policy(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: Option<&RegistryAuth>,
    ) -> Result<()> {
        let opts = zlayer_image::PullOptions {
            policy,
            auth: auth.map(|a| zlayer_image::RegistryAuth {
                username: a.username.clone(),
                password: a.password.clone(),
            }),
            ..Default::default()
        };
        self.inner
            .store
            .pull(image, &opts)
            .await
            .map(|_| ())
            .map_err(|e| AgentError::PullFailed {
                image: image.to_string(),
                reason: e.to_string(),
            })
    }

    async fn create_container(&self, id: &ContainerId, spec: &ServiceSpec) -> Result<()> {
        let inner = &self.inner;
        forward::check_mappings(&spec.port_mappings)?;
        let binds = record::binds(spec)?;
        let dir = inner.dir(id);
        if dir.exists() {
            self.remove_container(id).await?;
        }
        let store = &inner.store;
        let image = store
            .lookup(&spec.image.name)
            .map_err(|e| AgentError::CreateFailed {
                id: id.to_string(),
                reason: e.to_string(),
            })?
            .ok_or_else(|| AgentError::NotFound {
                kind: "image",
                id: spec.image.name.clone(),
                hint: Some(format!("pull it first (`zlayer pull {}`)", spec.image.name)),
            })?;
        let config = store
            .image_config(&image)
            .map_err(|e| AgentError::CreateFailed {
                id: id.to_string(),
                reason: e.to_string(),
            })?;
        let run = record::run_spec(spec, &config)?;
        let stop_signal = match spec
            .stop_signal
            .as_deref()
            .or(config.stop_signal.as_deref())
        {
            Some(s) => crate::validate_signal(s)?,
            None => libc::SIGTERM,
        };
        let (memory_mib, vcpus) = record::size(
            spec,
            inner.config.default_memory_mib,
            inner.config.default_vcpus,
        );
        let result = (|| -> Result<()> {
            std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
            let rootfs =
                store
                    .prepare_rootfs(&image, &dir)
                    .map_err(|e| AgentError::CreateFailed {
                        id: id.to_string(),
                        reason: e.to_string(),
                    })?;
            inner.save(&VmRecord {
                id: id.clone(),
                spec: spec.clone(),
                image_digest: image.manifest_digest.to_string(),
                rootfs: rootfs.path,
                run,
                binds,
                memory_mib,
                vcpus,
                vcpus_from_spec: spec.resources.cpu.is_some(),
                stop_signal,
                created_ms: now_ms(),
                qemu: None,
                accel: None,
            })
        })();
        if let Err(e) = result {
            let _ = store.release_rootfs(&dir);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(())
    }

    async fn start_container(&self, id: &ContainerId) -> Result<()> {
        self.inner.start(id).await?;
        let rec = self.inner.load(id)?;
        if rec.spec.lifecycle.delete_on_exit {
            let me = self.clone();
            let id = id.clone();
            tokio::spawn(async move {
                if me.wait_container(&id).await.is_ok() {
                    let _ = me.remove_container(&id).await;
                }
            });
        }
        Ok(())
    }

    async fn stop_container(&self, id: &ContainerId, timeout: Duration) -> Result<()> {
        let inner = &self.inner;
        let (rec, state) = inner.observe(id).await?;
        let Some(q) = rec.qemu.filter(|_| state.is_alive()) else {
            return Ok(());
        };
        if state == ContainerState::Paused {
            let _ = qemu::qmp(&inner.dir(id), "cont").await;
            let _ = std::fs::remove_file(inner.dir(id).join(PAUSED_FILE));
        }
        let signalled = match inner.live(id, &rec).await {
            Ok(live) => live
                .control
                .send(
                    WORKLOAD_CHANNEL,
                    Msg::Signal {
                        signum: rec.stop_signal,
                    },
                )
                .await
                .is_ok(),
            Err(_) => false,
        };
        let mut gone = signalled && Inner::wait_gone(q.pid, q.starttime, timeout).await;
        if !gone {
            if let Ok(live) = inner.live(id, &rec).await {
                let _ = live
                    .control
                    .send(
                        WORKLOAD_CHANNEL,
                        Msg::Signal {
                            signum: libc::SIGKILL,
                        },
                    )
                    .await;
                gone = Inner::wait_gone(q.pid, q.starttime, Duration::from_secs(5)).await;
            }
        }
        if !gone {
            inner.kill_qemu(&rec).await;
        }
        let dir = inner.dir(id);
        if logsync::sync(&dir)?.is_none() {
            logsync::write_exit(&dir, 128 + libc::SIGKILL, None)?;
        }
        inner.drop_live(id).await;
        Ok(())
    }

    async fn kill_container(&self, id: &ContainerId, signal: Option<&str>) -> Result<()> {
        let signum = crate::validate_signal(signal.unwrap_or("KILL"))?;
        let inner = &self.inner;
        let (rec, state) = inner.observe(id).await?;
        if !state.is_alive() {
            return Err(not_running(id));
        }
        match inner.live(id, &rec).await {
            Ok(live) => {
                live.control
                    .send(WORKLOAD_CHANNEL, Msg::Signal { signum })
                    .await
            }
            Err(_) => {
                inner.kill_qemu(&rec).await;
                logsync::write_exit(&inner.dir(id), 128 + signum, None)
            }
        }
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        let inner = &self.inner;
        let dir = inner.dir(id);
        if !dir.exists() {
            return Ok(());
        }
        if let Ok(Some(rec)) = read_json::<VmRecord>(&dir.join(RECORD_FILE)) {
            inner.kill_qemu(&rec).await;
        } else if let Some(pid) = qemu::read_pid(&dir) {
            // A record-less directory (interrupted create): only a QEMU
            // started for this directory is killed.
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmd.contains(&*dir.to_string_lossy()) {
                // SAFETY: plain system call on a verified pid.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                Inner::wait_gone(pid, None, Duration::from_secs(10)).await;
            }
        }
        inner.drop_live(id).await;
        inner.store.release_rootfs(&dir).map_err(|e| {
            AgentError::Internal(format!("releasing the rootfs of {id} failed: {e}"))
        })?;
        std::fs::remove_dir_all(&dir).or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(io_err("remove", &dir, e))
            }
        })
    }

    async fn container_state(&self, id: &ContainerId) -> Result<ContainerState> {
        Ok(self.inner.observe(id).await?.1)
    }

    async fn wait_container(&self, id: &ContainerId) -> Result<i32> {
        loop {
            match self.inner.observe(id).await?.1 {
                ContainerState::Exited { code } => return Ok(code),
                ContainerState::Failed { .. } => {
                    return Ok(logsync::read_exit(&self.inner.dir(id))?
                        .map(|r| r.code)
                        .unwrap_or(255))
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    async fn logs_stream(&self, id: &ContainerId, opts: LogsStreamOptions) -> Result<LogsStream> {
        let inner = Arc::clone(&self.inner);
        inner.observe(id).await?;
        let dir = inner.dir(id);
        let finished_dir = dir.clone();
        let finished = Arc::new(move || {
            let code = logsync::sync(&finished_dir).ok().flatten();
            if code.is_some() {
                return true;
            }
            match read_json::<VmRecord>(&finished_dir.join(RECORD_FILE)) {
                Ok(Some(rec)) => rec.qemu.is_some() && Inner::alive(&rec).is_none(),
                _ => true,
            }
        });
        logs::logs_stream(dir.join(LOG_FILE), opts, finished)
    }

    async fn exec_with_opts(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecOutput> {
        require_command(opts)?;
        let inner = &self.inner;
        let (rec, state) = inner.observe(id).await?;
        if state != ContainerState::Running {
            return Err(not_running(id));
        }
        let live = inner.live(id, &rec).await?;
        let control = &live.control;
        let mut env = rec.run.env.clone();
        for (k, v) in &opts.env {
            match env.iter_mut().find(|(ek, _)| ek == k) {
                Some(slot) => slot.1 = v.clone(),
                None => env.push((k.clone(), v.clone())),
            }
        }
        let (ch, mut rx) = control.open_channel();
        let req = ExecRequest {
            argv: opts.command.clone(),
            env,
            cwd: opts.working_dir.clone().or_else(|| rec.run.cwd.clone()),
            uid: None,
            gid: None,
            user: opts.user.clone().or_else(|| rec.run.user.clone()),
        };
        let result = async {
            control.send(ch, Msg::Exec(req)).await?;
            for chunk in opts.stdin.as_deref().unwrap_or_default().chunks(1 << 20) {
                control.send(ch, Msg::Stdin(chunk.to_vec())).await?;
            }
            control.send(ch, Msg::StdinEof).await?;
            let (mut out, mut err) = (Vec::new(), Vec::new());
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::Stdout(d) => out.extend_from_slice(&d),
                    Msg::Stderr(d) => err.extend_from_slice(&d),
                    Msg::Exited { code } => {
                        return Ok(ExecOutput {
                            exit_code: code,
                            stdout: String::from_utf8_lossy(&out).into_owned(),
                            stderr: String::from_utf8_lossy(&err).into_owned(),
                        })
                    }
                    Msg::Error { message } => {
                        let code = if message.contains("not found") {
                            127
                        } else {
                            126
                        };
                        return Ok(ExecOutput {
                            exit_code: code,
                            stdout: String::new(),
                            stderr: format!("{message}\n"),
                        });
                    }
                    _ => {}
                }
            }
            Err(AgentError::Internal(format!(
                "the control connection to {id} closed during exec (did the VM stop?)"
            )))
        }
        .await;
        control.close_channel(ch);
        result
    }

    async fn get_container_stats(&self, id: &ContainerId) -> Result<ContainerStats> {
        let inner = &self.inner;
        let (rec, state) = inner.observe(id).await?;
        let pid = match (state.is_alive(), Inner::alive(&rec)) {
            (true, Some(pid)) => pid,
            _ => return Err(not_running(id)),
        };
        let st = procfs::stat(pid).ok_or_else(|| not_running(id))?;
        let ticks = procfs::clock_ticks().max(1);
        let rss = st.rss_pages * procfs::page_size();
        let guest = match inner.live(id, &rec).await {
            Ok(live) if state == ContainerState::Running => {
                live.control.query_stats(Duration::from_secs(3)).await.ok()
            }
            _ => None,
        };
        let (used, pids) = match guest {
            Some(g) if g.mem_total_bytes > 0 => (
                g.mem_total_bytes.saturating_sub(g.mem_available_bytes),
                g.processes,
            ),
            _ => (rss, 0),
        };
        Ok(ContainerStats {
            timestamp: SystemTime::now(),
            cpu_total_ns: (st.utime + st.stime) * 1_000_000_000 / ticks,
            cpu_system_ns: procfs::host_cpu_ns(),
            online_cpus: rec.vcpus,
            memory_used_bytes: used.max(1),
            memory_limit_bytes: rec.memory_mib * 1024 * 1024,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            blkio_read_bytes: 0,
            blkio_write_bytes: 0,
            pids_current: pids,
            pids_limit: None,
        })
    }

    async fn stats_stream(&self, id: &ContainerId) -> Result<StatsStream> {
        let first = self.get_container_stats(id).await?;
        let me = self.clone();
        let id = id.clone();
        let rest = futures_util::stream::unfold((me, id), |(me, id)| async move {
            tokio::time::sleep(STATS_INTERVAL).await;
            match me.get_container_stats(&id).await {
                Ok(s) => Some((Ok(s), (me, id))),
                Err(_) => None,
            }
        });
        Ok(futures_util::stream::iter([Ok(first)]).chain(rest).boxed())
    }

    async fn get_container_pid(&self, id: &ContainerId) -> Result<Option<u32>> {
        let (rec, state) = self.inner.observe(id).await?;
        Ok(Inner::alive(&rec)
            .filter(|_| state.is_alive())
            .map(|p| p as u32))
    }

    async fn get_container_ip(&self, id: &ContainerId) -> Result<Option<IpAddr>> {
        self.inner.load(id)?;
        // The VM has no network of its own: published ports are reached on
        // the host's addresses (see port_mappings_container).
        Ok(None)
    }

    async fn port_mappings_container(&self, id: &ContainerId) -> Result<Vec<PortMappingEntry>> {
        let (_, state) = self.inner.observe(id).await?;
        if !state.is_alive() {
            return Ok(Vec::new());
        }
        Ok(read_json(&self.inner.dir(id).join(PORTS_FILE))?.unwrap_or_default())
    }

    async fn write_stdin(&self, id: &ContainerId, data: &[u8]) -> Result<()> {
        let (rec, state) = self.inner.observe(id).await?;
        if !state.is_alive() {
            return Err(not_running(id));
        }
        let live = self.inner.live(id, &rec).await?;
        for chunk in data.chunks(1 << 20) {
            live.control
                .send(WORKLOAD_CHANNEL, Msg::Stdin(chunk.to_vec()))
                .await?;
        }
        Ok(())
    }

    async fn close_stdin(&self, id: &ContainerId) -> Result<()> {
        let (rec, state) = self.inner.observe(id).await?;
        if !state.is_alive() {
            return Ok(());
        }
        let live = self.inner.live(id, &rec).await?;
        live.control.send(WORKLOAD_CHANNEL, Msg::StdinEof).await
    }

    async fn pause_container(&self, id: &ContainerId) -> Result<()> {
        let (_, state) = self.inner.observe(id).await?;
        match state {
            ContainerState::Paused => Ok(()),
            ContainerState::Running => {
                let dir = self.inner.dir(id);
                qemu::qmp(&dir, "stop").await?;
                std::fs::write(dir.join(PAUSED_FILE), b"").map_err(|e| io_err("write", &dir, e))
            }
            _ => Err(not_running(id)),
        }
    }

    async fn unpause_container(&self, id: &ContainerId) -> Result<()> {
        let (rec, state) = self.inner.observe(id).await?;
        if state != ContainerState::Paused {
            return Err(AgentError::InvalidSpec(format!(
                "container {id} is not paused"
            )));
        }
        let dir = self.inner.dir(id);
        qemu::qmp(&dir, "cont").await?;
        let _ = std::fs::remove_file(dir.join(PAUSED_FILE));
        if let Ok(live) = self.inner.live(id, &rec).await {
            let (secs, nanos) = unix_now();
            let _ = live
                .control
                .send(
                    WORKLOAD_CHANNEL,
                    Msg::SetTime {
                        unix_secs: secs,
                        nanos,
                    },
                )
                .await;
        }
        Ok(())
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        let images = self
            .inner
            .store
            .list()
            .map_err(|e| AgentError::Internal(format!("listing images failed: {e}")))?;
        Ok(images
            .into_iter()
            .map(|r| ImageInfo {
                digest: Some(r.manifest_digest.to_string()),
                size_bytes: Some(r.size),
                created: r.created.clone(),
                reference: r.reference,
            })
            .collect())
    }

    async fn list_containers(&self) -> Result<Vec<ContainerId>> {
        let dir = self.inner.config.containers_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &dir, e)),
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            if let Ok(Some(rec)) = read_json::<VmRecord>(&e.path().join(RECORD_FILE)) {
                out.push(rec.id);
            }
        }
        out.sort();
        Ok(out)
    }
}
