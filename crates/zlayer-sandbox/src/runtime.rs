//! [`SandboxRuntime`]: the `sandbox` isolation behind the [`Runtime`] trait.

use async_trait::async_trait;
use futures_util::StreamExt;
use nix::sys::signal::Signal;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::runtime::{
    ExecStream, LogsStream, RegistryAuth, Runtime, StatsStream, STATS_INTERVAL,
};
use zlayer_runtime::types::{
    ContainerId, ContainerState, ContainerStats, ExecOptions, ExecOutput, ImageInfo, LogStream,
    LogsStreamOptions, PortMappingEntry,
};
use zlayer_spec::{PullPolicy, ServiceSpec};
use zlayer_sys::atomic::read_json;
use {zlayer_hosting::logs, zlayer_sys::procfs};

use super::config::SandboxConfig;
use super::create::{self, CreateCtx};
use super::images::{ImageResolver, LocalImages};
use super::layout::{self, ContainerPaths};
use super::lifecycle;
use super::overlay;
use super::ports::PortAllocator;
use super::record::ContainerRecord;
use super::state::{self, Phase};
use super::trash::Trash;

const NAME: &str = "sandbox";

/// How long `remove` waits for a killed sandbox to be recorded as ended.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Runs services as host processes confined by Landlock, seccomp,
/// no_new_privs, dropped capabilities and rlimits, each from a
/// copy-on-write clone of its image's root filesystem, supervised by a
/// per-container monitor process that outlives the agent.
pub struct SandboxRuntime {
    config: SandboxConfig,
    images: LocalImages,
    resolver: Option<Arc<dyn ImageResolver>>,
    ports: Arc<PortAllocator>,
    shim: Option<PathBuf>,
    /// The monitor binary found by [`lifecycle::find_shim`], looked up once.
    found_shim: std::sync::OnceLock<PathBuf>,
    trash: Trash,
    /// A monitor started by `create` for the next `start` (see
    /// [`lifecycle::Standby`]).
    standby: std::sync::Mutex<Option<lifecycle::Standby>>,
}

impl std::fmt::Debug for SandboxRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxRuntime")
            .field("config", &self.config)
            .field("shim", &self.shim)
            .finish()
    }
}

/// Runs short blocking filesystem work (clone, remove: milliseconds) from
/// async code without a thread hand-off: `block_in_place` on a multi-thread
/// runtime, inline on a current-thread one (a CLI).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> RuntimeError {
    RuntimeError::Configuration(format!("{what} {}: {e}", path.display()))
}

impl SandboxRuntime {
    /// A runtime over `config`; creates `data_dir/{containers,images}` and
    /// `log_dir`, and re-adopts the containers found there.
    pub fn new(config: SandboxConfig) -> Result<Self> {
        for dir in [
            config.containers_dir(),
            config.images_dir(),
            config.log_dir.clone(),
        ] {
            zlayer_image::ensure_dir(&dir).map_err(|e| io_err("cannot create", &dir, e))?;
        }
        let trash = Trash::new(&config.containers_dir());
        trash.sweep();
        let rt = SandboxRuntime {
            images: LocalImages::new(config.images_dir()),
            trash,
            config,
            resolver: None,
            ports: Arc::new(PortAllocator::default()),
            shim: None,
            found_shim: std::sync::OnceLock::new(),
            standby: std::sync::Mutex::new(None),
        };
        for id in rt.scan_containers() {
            if let Ok(paths) = rt.paths(&id) {
                if let Ok(Some(rec)) = read_json::<ContainerRecord>(&paths.config()) {
                    rt.ports.reserve(rec.ports.iter().map(|p| p.host_port));
                }
            }
        }
        Ok(rt)
    }

    /// Waits until the directories of removed containers are deleted (they
    /// are deleted in the background; see `docs/sandbox.md`).
    pub fn wait_for_deletions(&self) {
        self.trash.wait();
    }

    /// Uses `path` as the monitor binary instead of searching for it.
    pub fn with_shim_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.shim = Some(path.into());
        self
    }

    /// Also runs images of `resolver` (the node's image store).
    pub fn with_image_resolver(mut self, resolver: Arc<dyn ImageResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Registers the host directory `dir` as image `image_name` (cloned into
    /// `images/`). Idempotent for the same directory.
    pub async fn register_local_rootfs(&self, image_name: &str, dir: &Path) -> Result<()> {
        blocking(|| self.images.register(image_name, dir)).map(|_| ())
    }

    /// The container's directory (`data_dir/containers/<service>-<replica>`).
    pub fn container_dir(&self, id: &ContainerId) -> Result<PathBuf> {
        Ok(self.paths(id)?.dir)
    }

    /// The host port of the container's first endpoint (what it gets as
    /// `PORT`), if it has endpoints.
    pub async fn get_container_port_override(&self, id: &ContainerId) -> Result<Option<u16>> {
        let rec = self.record(id)?;
        Ok(rec.ports.first().map(|p| p.host_port))
    }

    fn paths(&self, id: &ContainerId) -> Result<ContainerPaths> {
        ContainerPaths::new(&self.config, id)
    }

    fn record(&self, id: &ContainerId) -> Result<ContainerRecord> {
        state::record(&self.paths(id)?, id)
    }

    fn phase(&self, id: &ContainerId) -> Result<Phase> {
        state::phase(&self.paths(id)?, id)
    }

    fn shim_path(&self) -> Result<PathBuf> {
        if let Some(p) = self.shim.as_ref().or(self.found_shim.get()) {
            return Ok(p.clone());
        }
        let found = lifecycle::find_shim()?;
        Ok(self.found_shim.get_or_init(|| found).clone())
    }

    /// Starts a standby monitor for the next start unless a fresh one
    /// waits already: its exec then overlaps the rest of `create`.
    fn prepare_standby(&self) {
        let Ok(mut slot) = self.standby.lock() else {
            return;
        };
        if slot.as_ref().is_some_and(lifecycle::Standby::is_fresh) {
            return;
        }
        *slot = self
            .shim_path()
            .ok()
            .and_then(|shim| lifecycle::Standby::spawn(&shim).ok());
    }

    /// The standby monitor, if any (taken: one start uses it).
    fn take_standby(&self) -> Option<lifecycle::Standby> {
        self.standby.lock().ok().and_then(|mut s| s.take())
    }

    /// Remounts the runtime tmpfs and an overlay rootfs that are not
    /// mounted (after a reboot) and applies create's edits to the fresh
    /// upper layer.
    fn ensure_rootfs(&self, id: &ContainerId, paths: &ContainerPaths) -> Result<()> {
        if zlayer_hosting::run_tmpfs::is_mounted(&paths.rootfs()) {
            return Ok(());
        }
        let rec = state::record(paths, id)?;
        let Some(lower) = &rec.rootfs_lower else {
            // A cloned rootfs: only the runtime tmpfs may be missing.
            return overlay::make_run_dir(&paths.dir).map(|_| ()).map_err(|e| {
                RuntimeError::StartFailed {
                    id: id.to_string(),
                    reason: format!("creating {}: {e}", paths.run().display()),
                }
            });
        };
        let fail = |e: std::io::Error| RuntimeError::StartFailed {
            id: id.to_string(),
            reason: format!(
                "mounting the rootfs overlay of {} on {} failed: {e}; \
                 remove the container and create it again",
                lower.display(),
                paths.rootfs().display()
            ),
        };
        if overlay::ensure_mounted(&paths.dir, lower).map_err(fail)? {
            create::reapply_rootfs_edits(&rec).map_err(fail)?;
        }
        Ok(())
    }

    fn scan_containers(&self) -> Vec<ContainerId> {
        let Ok(dir) = std::fs::read_dir(self.config.containers_dir()) else {
            return Vec::new();
        };
        let mut out: Vec<ContainerId> = dir
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                read_json::<ContainerRecord>(&e.path().join("config.json"))
                    .ok()
                    .flatten()
            })
            .map(|r| r.id)
            .collect();
        out.sort();
        out
    }

    fn not_running(id: &ContainerId, phase: &Phase) -> RuntimeError {
        RuntimeError::InvalidSpec(format!(
            "container {id} is not running (it is {}); start it first",
            phase.state()
        ))
    }

    /// Waits until the container is recorded as ended, up to `timeout`.
    async fn wait_ended(&self, id: &ContainerId, timeout: Duration) -> Result<Option<Phase>> {
        match tokio::time::timeout(timeout, self.wait_not_live(id)).await {
            Ok(phase) => phase.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Waits until the container is not running (ended, lost, or created
    /// and not started); event-driven while a monitor runs.
    async fn wait_not_live(&self, id: &ContainerId) -> Result<Phase> {
        let mut delay = Duration::from_millis(1);
        loop {
            let phase = self.phase(id)?;
            match phase.live() {
                None => return Ok(phase),
                Some(info) => {
                    if !state::monitor_exited(info).await {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_millis(20));
                    }
                }
            }
        }
    }

    /// Kills every process of a live sandbox and waits for the monitor to
    /// record the end.
    async fn kill_and_wait(&self, id: &ContainerId) -> Result<()> {
        match self.phase(id)? {
            Phase::Running(info) | Phase::Paused(info) => {
                lifecycle::signal_all(&info, Signal::SIGKILL);
                lifecycle::signal_all(&info, Signal::SIGCONT);
                if self.wait_ended(id, KILL_WAIT).await?.is_none() {
                    return Err(RuntimeError::Internal(format!(
                        "container {id} did not end after SIGKILL (monitor pid {})",
                        info.monitor_pid
                    )));
                }
            }
            Phase::Lost(info) => {
                if procfs::is_alive(info.pid, Some(info.pid_starttime)) {
                    let _ = lifecycle::signal_group(&info, libc::SIGKILL);
                }
            }
            Phase::Created | Phase::Ended(_) => {}
        }
        Ok(())
    }

    fn sample(&self, rec: &ContainerRecord, monitor_pid: i32) -> ContainerStats {
        let procs = procfs::descendants_fast(monitor_pid);
        let u = procfs::usage(&procs);
        ContainerStats {
            timestamp: SystemTime::now(),
            cpu_total_ns: u.cpu_ns,
            cpu_system_ns: procfs::host_cpu_ns(),
            online_cpus: procfs::online_cpus(),
            memory_used_bytes: u.rss_bytes,
            memory_limit_bytes: rec
                .policy
                .memory_limit
                .unwrap_or_else(procfs::host_memory_bytes),
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            blkio_read_bytes: u.read_bytes,
            blkio_write_bytes: u.write_bytes,
            pids_current: u.threads,
            pids_limit: rec.pids_limit.filter(|n| *n > 0).map(|n| n as u64),
        }
    }
}

#[async_trait]
impl Runtime for SandboxRuntime {
    fn name(&self) -> &str {
        NAME
    }

    async fn pull_image_with_policy(
        &self,
        image: &str,
        _policy: PullPolicy,
        _auth: Option<&RegistryAuth>,
    ) -> Result<()> {
        if self.images.rootfs(image).is_some() {
            return Ok(());
        }
        if let Some(resolver) = &self.resolver {
            if resolver.resolve(image)?.is_some() {
                return Ok(());
            }
        }
        Err(RuntimeError::PullFailed {
            image: image.to_string(),
            reason: "the sandbox runtime does not pull from registries; pull the image into the node's image store (`zlayer pull`) or register a host directory as this image".into(),
        })
    }

    async fn create_container(&self, id: &ContainerId, spec: &ServiceSpec) -> Result<()> {
        let paths = self.paths(id)?;
        // A stale container with this id goes first, processes included.
        if paths.dir.exists() {
            if paths.config().exists() {
                self.remove_container(id).await?;
            } else {
                create::remove_container_dir(&paths.dir)?;
            }
        }
        self.prepare_standby();
        let ctx = CreateCtx {
            config: &self.config,
            images: &self.images,
            resolver: self.resolver.as_deref(),
            ports: &self.ports,
            recycle: Some(&self.trash),
        };
        let created = blocking(|| create::create(&ctx, id, spec)).map(|_| ());
        if created.is_err() {
            // Nothing to start: a failed create leaves no process behind.
            drop(self.take_standby());
        }
        created
    }

    async fn start_container(&self, id: &ContainerId) -> Result<()> {
        let paths = self.paths(id)?;
        match self.phase(id)? {
            Phase::Running(_) | Phase::Paused(_) => return Ok(()),
            Phase::Lost(_) => {
                self.kill_and_wait(id).await?;
            }
            Phase::Created | Phase::Ended(_) => {}
        }
        for f in [paths.exit(), paths.monitor(), paths.pid(), paths.paused()] {
            let _ = std::fs::remove_file(f);
        }
        self.ensure_rootfs(id, &paths)?;
        let shim = self.shim_path()?;
        lifecycle::spawn_monitor(&shim, &paths, id, self.take_standby()).await?;
        Ok(())
    }

    async fn stop_container(&self, id: &ContainerId, timeout: Duration) -> Result<()> {
        let info = match self.phase(id)? {
            Phase::Running(info) | Phase::Paused(info) => info,
            Phase::Lost(_) => return self.kill_and_wait(id).await,
            Phase::Created | Phase::Ended(_) => return Ok(()),
        };
        let rec = self.record(id)?;
        lifecycle::signal_group(&info, rec.stop_signal)?;
        if self.paths(id)?.paused().exists() {
            lifecycle::signal_all(&info, Signal::SIGCONT);
            let _ = std::fs::remove_file(self.paths(id)?.paused());
        }
        if self.wait_ended(id, timeout).await?.is_some() {
            return Ok(());
        }
        self.kill_and_wait(id).await
    }

    async fn kill_container(&self, id: &ContainerId, signal: Option<&str>) -> Result<()> {
        let sig = match signal {
            Some(s) => zlayer_runtime::signal::validate_signal(s)?,
            None => libc::SIGKILL,
        };
        let phase = self.phase(id)?;
        let Some(info) = phase.live() else {
            return Err(Self::not_running(id, &phase));
        };
        lifecycle::signal_group(info, sig)?;
        if sig == libc::SIGKILL {
            lifecycle::signal_all(info, Signal::SIGKILL);
        }
        Ok(())
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        let paths = match self.paths(id) {
            Ok(p) => p,
            Err(_) => return Ok(()),
        };
        if !paths.dir.exists() {
            let _ = std::fs::remove_file(&paths.log);
            return Ok(());
        }
        if paths.config().exists() {
            self.kill_and_wait(id).await?;
            if let Ok(Some(rec)) = read_json::<ContainerRecord>(&paths.config()) {
                self.ports.release(rec.ports.iter().map(|p| p.host_port));
            }
        }
        // Unmounted here (no mount outlives the call, even if this process
        // exits next); moved away and deleted in the background.
        // The log goes with the directory when it can (same filesystem):
        // unlinking a file with data blocks costs milliseconds here (an
        // inode eviction, and with `discard` a synchronous TRIM).
        let log_moved = std::fs::rename(&paths.log, paths.dir.join(layout::REMOVED_LOG)).is_ok();
        blocking(|| {
            create::unmount_rootfs(&paths.dir)?;
            self.trash.discard(&paths.dir)
        })?;
        if let Some(resolver) = &self.resolver {
            resolver.release(&paths.dir)?;
        }
        if !log_moved {
            let _ = std::fs::remove_file(&paths.log);
        }
        Ok(())
    }

    async fn container_state(&self, id: &ContainerId) -> Result<ContainerState> {
        Ok(self.phase(id)?.state())
    }

    async fn wait_container(&self, id: &ContainerId) -> Result<i32> {
        let mut delay = Duration::from_millis(1);
        loop {
            match self.wait_not_live(id).await? {
                Phase::Ended(rec) => return Ok(rec.code),
                Phase::Lost(info) => {
                    return Err(RuntimeError::Internal(format!(
                        "the sandbox monitor of {id} (pid {}) died without recording the exit code",
                        info.monitor_pid
                    )))
                }
                // Not started yet: wait for a start.
                _ => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_millis(25));
                }
            }
        }
    }

    async fn logs_stream(&self, id: &ContainerId, opts: LogsStreamOptions) -> Result<LogsStream> {
        let paths = self.paths(id)?;
        let rec = state::record(&paths, id)?;
        let p2 = paths.clone();
        // The exit is recorded in the container's directory, not the log's;
        // a running container's monitor exiting wakes the follower at once.
        let ended = match state::phase(&paths, id)? {
            Phase::Running(info) | Phase::Paused(info) if opts.follow => {
                let end: logs::EndSignal = Box::pin(async move {
                    if !state::monitor_exited(&info).await {
                        std::future::pending::<()>().await;
                    }
                });
                Some(end)
            }
            _ => None,
        };
        logs::logs_stream_watching(
            rec.log_path,
            Some(paths.dir.clone()),
            opts,
            Arc::new(move || state::finished(&p2)),
            ended,
        )
    }

    async fn exec_with_opts(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecOutput> {
        let stream = self.exec_stream(id, opts).await?;
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut chunks = stream.output;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            match chunk.stream {
                LogStream::Stderr => err.extend_from_slice(&chunk.data),
                _ => out.extend_from_slice(&chunk.data),
            }
        }
        let exit_code = stream.exit_code.await?;
        Ok(ExecOutput {
            exit_code,
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        })
    }

    async fn exec_stream(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecStream> {
        zlayer_runtime::runtime::require_command(opts)?;
        let paths = self.paths(id)?;
        let phase = state::phase(&paths, id)?;
        if phase.live().is_none() {
            return Err(Self::not_running(id, &phase));
        }
        let rec = state::record(&paths, id)?;
        super::exec::exec_stream(&paths, id, &rec, opts).await
    }

    async fn get_container_stats(&self, id: &ContainerId) -> Result<ContainerStats> {
        let phase = self.phase(id)?;
        let Some(info) = phase.live() else {
            return Err(Self::not_running(id, &phase));
        };
        let rec = self.record(id)?;
        Ok(self.sample(&rec, info.monitor_pid))
    }

    async fn stats_stream(&self, id: &ContainerId) -> Result<StatsStream> {
        let first = self.get_container_stats(id).await?;
        let paths = self.paths(id)?;
        let rec = self.record(id)?;
        let id2 = id.clone();
        let tail = futures_util::stream::unfold((paths, rec, id2), |(paths, rec, id)| async move {
            tokio::time::sleep(STATS_INTERVAL).await;
            let phase = state::phase(&paths, &id).ok()?;
            let info = phase.live()?.clone();
            let procs = procfs::descendants_fast(info.monitor_pid);
            let u = procfs::usage(&procs);
            let s = ContainerStats {
                timestamp: SystemTime::now(),
                cpu_total_ns: u.cpu_ns,
                cpu_system_ns: procfs::host_cpu_ns(),
                online_cpus: procfs::online_cpus(),
                memory_used_bytes: u.rss_bytes,
                memory_limit_bytes: rec
                    .policy
                    .memory_limit
                    .unwrap_or_else(procfs::host_memory_bytes),
                net_rx_bytes: 0,
                net_tx_bytes: 0,
                blkio_read_bytes: u.read_bytes,
                blkio_write_bytes: u.write_bytes,
                pids_current: u.threads,
                pids_limit: rec.pids_limit.filter(|n| *n > 0).map(|n| n as u64),
            };
            Some((Ok(s), (paths, rec, id)))
        });
        Ok(futures_util::stream::once(async move { Ok(first) })
            .chain(tail)
            .boxed())
    }

    async fn get_container_pid(&self, id: &ContainerId) -> Result<Option<u32>> {
        Ok(self.phase(id)?.live().map(|i| i.pid as u32))
    }

    async fn get_container_ip(&self, id: &ContainerId) -> Result<Option<IpAddr>> {
        self.record(id)?;
        Ok(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))
    }

    async fn port_mappings_container(&self, id: &ContainerId) -> Result<Vec<PortMappingEntry>> {
        Ok(self
            .record(id)?
            .ports
            .iter()
            .map(|p| PortMappingEntry {
                host_ip: "127.0.0.1".into(),
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: p.protocol.transport(),
            })
            .collect())
    }

    async fn write_stdin(&self, id: &ContainerId, data: &[u8]) -> Result<()> {
        let paths = self.paths(id)?;
        let phase = state::phase(&paths, id)?;
        if phase.live().is_none() {
            return Err(Self::not_running(id, &phase));
        }
        let fifo = paths.stdin();
        let data = data.to_vec();
        tokio::task::spawn_blocking(move || -> Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .map_err(|e| {
                    RuntimeError::Internal(format!("opening the container's stdin: {e}"))
                })?;
            // Blocking writes from here on: the workload reads at its pace.
            let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
            // SAFETY: plain fcntl on an fd we own.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
            f.write_all(&data).map_err(|e| {
                RuntimeError::Internal(format!("writing to the container's stdin: {e}"))
            })
        })
        .await
        .map_err(|e| RuntimeError::Internal(format!("stdin task: {e}")))?
    }

    async fn close_stdin(&self, id: &ContainerId) -> Result<()> {
        let paths = self.paths(id)?;
        let phase = state::phase(&paths, id)?;
        if phase.live().is_none() {
            return Err(Self::not_running(id, &phase));
        }
        let sock = paths.socket();
        tokio::task::spawn_blocking(move || -> Result<()> {
            use std::io::BufRead;
            let conn = super::control::connect(&sock).map_err(|e| {
                RuntimeError::Internal(format!("reaching the sandbox monitor: {e}"))
            })?;
            super::control::send_request(&conn, &super::control::Request::CloseStdin, &[])
                .map_err(|e| RuntimeError::Internal(format!("close stdin: {e}")))?;
            let mut line = String::new();
            std::io::BufReader::new(conn)
                .read_line(&mut line)
                .map_err(|e| RuntimeError::Internal(format!("close stdin: {e}")))?;
            Ok(())
        })
        .await
        .map_err(|e| RuntimeError::Internal(format!("stdin task: {e}")))?
    }

    async fn pause_container(&self, id: &ContainerId) -> Result<()> {
        let paths = self.paths(id)?;
        match state::phase(&paths, id)? {
            Phase::Running(info) => {
                std::fs::write(paths.paused(), b"")
                    .map_err(|e| RuntimeError::Internal(format!("marking {id} paused: {e}")))?;
                lifecycle::signal_all(&info, Signal::SIGSTOP);
                Ok(())
            }
            Phase::Paused(_) => Ok(()),
            other => Err(Self::not_running(id, &other)),
        }
    }

    async fn unpause_container(&self, id: &ContainerId) -> Result<()> {
        let paths = self.paths(id)?;
        match state::phase(&paths, id)? {
            Phase::Paused(info) => {
                lifecycle::signal_all(&info, Signal::SIGCONT);
                let _ = std::fs::remove_file(paths.paused());
                Ok(())
            }
            Phase::Running(_) => Ok(()),
            other => Err(Self::not_running(id, &other)),
        }
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        let mut out = self.images.list();
        if let Some(r) = &self.resolver {
            out.extend(r.list()?);
        }
        Ok(out)
    }

    async fn list_containers(&self) -> Result<Vec<ContainerId>> {
        Ok(self.scan_containers())
    }

    async fn has_container(&self, id: &ContainerId) -> Result<bool> {
        Ok(self.paths(id).is_ok_and(|p| p.config().exists()))
    }
}
