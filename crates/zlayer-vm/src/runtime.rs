//! [`VmRuntime`]: the [`Runtime`] of the `vm` isolation.

use super::config::{Accel, VmConfig};
use super::forward;
use super::kernel::KernelBundle;
use super::logsync::{self, LOG_FILE};
use super::machines::{
    io_err, not_running, unix_now, Inner, NAME, PAUSED_FILE, PORTS_FILE, RECORD_FILE,
};
use super::qemu;
use super::record::{self, VmRecord};
use async_trait::async_trait;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use zlayer_hosting::exit::now_ms;
use zlayer_image::ImageStore;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::runtime::{
    require_command, LogsStream, RegistryAuth, Runtime, StatsStream, STATS_INTERVAL,
};
use zlayer_runtime::types::{
    ContainerId, ContainerState, ContainerStats, ExecOptions, ExecOutput, ImageInfo,
    LogsStreamOptions, PortMappingEntry,
};
use zlayer_spec::{PullPolicy, ServiceSpec};
use zlayer_sys::atomic::read_json;
use zlayer_vm_proto::{ExecRequest, Msg, WORKLOAD_CHANNEL};
use {zlayer_hosting::logs, zlayer_sys::procfs};

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
        zlayer_image::ensure_dir(&config.containers_dir()).map_err(|e| {
            RuntimeError::Configuration(format!(
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
            .map_err(|e| RuntimeError::PullFailed {
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
            .map_err(|e| RuntimeError::CreateFailed {
                id: id.to_string(),
                reason: e.to_string(),
            })?
            .ok_or_else(|| RuntimeError::NotFound {
                kind: "image",
                id: spec.image.name.clone(),
                hint: Some(format!("pull it first (`zlayer pull {}`)", spec.image.name)),
            })?;
        let config = store
            .image_config(&image)
            .map_err(|e| RuntimeError::CreateFailed {
                id: id.to_string(),
                reason: e.to_string(),
            })?;
        let run = record::run_spec(spec, &config)?;
        let stop_signal = match spec
            .stop_signal
            .as_deref()
            .or(config.stop_signal.as_deref())
        {
            Some(s) => zlayer_runtime::validate_signal(s)?,
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
                    .map_err(|e| RuntimeError::CreateFailed {
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
        let signum = zlayer_runtime::validate_signal(signal.unwrap_or("KILL"))?;
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
            RuntimeError::Internal(format!("releasing the rootfs of {id} failed: {e}"))
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
            Err(RuntimeError::Internal(format!(
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
            return Err(RuntimeError::InvalidSpec(format!(
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
            .map_err(|e| RuntimeError::Internal(format!("listing images failed: {e}")))?;
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

    async fn has_container(&self, id: &ContainerId) -> Result<bool> {
        let dir = self.inner.config.containers_dir().join(id.to_string());
        Ok(read_json::<VmRecord>(&dir.join(RECORD_FILE))
            .ok()
            .flatten()
            .is_some_and(|rec| rec.id == *id))
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
