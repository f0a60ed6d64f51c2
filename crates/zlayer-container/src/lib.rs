//! The `container` isolation: Linux namespaces + cgroups through youki's
//! `libcontainer`, one small monitor process (`zlayer-shim`) per container.
//!
//! See `docs/container-runtime.md` for the design. In short:
//! - `create` prepares the state dir (rootfs overlay, OCI `config.json`,
//!   records) — state `Pending`, no process yet.
//! - `start` launches `zlayer-shim start`, which detaches, creates and
//!   starts the container with libcontainer (the init is its child), then
//!   becomes the monitor that owns stdio, logs, stdin and the
//!   exit record. Everything is on disk, so any agent can re-adopt it.
//! - Everything else reads the state dir, signals the init, talks to the
//!   monitor's socket, or reads cgroup files.
//!
//! Networking (see [`network`] and `docs/networking.md`): `host` shares
//! the host's network namespace, `none` gets a private one with only `lo`
//! up, `bridge` / `bridge:NAME` an `eth0` on a zlayer bridge with an
//! address, published ports and names; the monitor attaches it before the
//! workload starts and detaches it when the workload ends.

pub mod cgroup_stats;
pub mod cgroup_warmup;
pub mod cgroups;
pub mod config;
pub mod create;
pub mod exec;
pub mod freezer;
pub mod netns;
pub mod network;
pub mod oci_spec_builder;
pub mod paths;
pub mod rootfs_fs;
pub mod seccomp_bpf;
pub mod seccomp_profile;
pub mod shim;
pub mod state_dir;
pub mod storage;
pub mod teardown;
pub mod user;

pub use config::ContainerRuntimeConfig;
pub use paths::{ContainerPaths, Layout};

use async_trait::async_trait;
use cgroups::ContainerCgroup;
use futures_util::StreamExt;
use state_dir::Snapshot;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use teardown::{BackgroundDeletions, Deletion};
use zlayer_image::{ImageRecord, ImageStore, PullOptions};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::runtime::{
    ExecStream, LogsStream, RegistryAuth, Runtime, StatsStream, STATS_INTERVAL,
};
use zlayer_runtime::types::{
    ContainerId, ContainerState, ContainerStats, ExecOptions, ExecOutput, ImageInfo,
    LogsStreamOptions, PortMappingEntry,
};
use zlayer_spec::{PullPolicy, ServiceSpec};

/// The isolation name this runtime serves.
pub const NAME: &str = "container";

/// How long `remove`/`stop` wait for the exit after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// Poll interval while a container is `Pending` in `wait`.
const PENDING_POLL: Duration = Duration::from_millis(50);

/// The `container` runtime. Cheap to share behind an `Arc`; several
/// instances (even in several processes) may use the same data root.
pub struct ContainerRuntime {
    config: ContainerRuntimeConfig,
    layout: Layout,
    store: ImageStore,
    /// Containers whose start failed: everything was removed, but `state`
    /// reports why until they are removed.
    failed: Mutex<HashMap<ContainerId, String>>,
    /// Serialises create/start/stop/remove of one container in this process.
    locks: Mutex<HashMap<ContainerId, Arc<tokio::sync::Mutex<()>>>>,
    /// Removed containers' files still being deleted.
    deletions: BackgroundDeletions,
}

impl Drop for ContainerRuntime {
    /// Lets pending background deletions finish, so a short-lived process
    /// (the CLI) leaves no trash behind.
    fn drop(&mut self) {
        self.deletions.wait_all();
    }
}

impl std::fmt::Debug for ContainerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerRuntime")
            .field("config", &self.config)
            .finish()
    }
}

fn internal(what: &str) -> impl Fn(tokio::task::JoinError) -> RuntimeError + '_ {
    move |e| RuntimeError::Internal(format!("{what}: task failed: {e}"))
}

fn not_running(id: &ContainerId, state: &ContainerState, what: &str) -> RuntimeError {
    RuntimeError::InvalidSpec(format!(
        "container {id} is not running (state: {state}); {what}"
    ))
}

impl ContainerRuntime {
    /// Opens the runtime on `config.root`, creating its directories.
    ///
    /// Fails with [`RuntimeError::Configuration`] when not running as root or
    /// when the shim binary is missing.
    pub fn new(config: ContainerRuntimeConfig) -> Result<Self> {
        let store = ImageStore::open(&config.root).map_err(|e| {
            RuntimeError::Configuration(format!(
                "cannot open the image store at {}: {e}",
                config.root.display()
            ))
        })?;
        Self::with_image_store(config, store)
    }

    /// [`ContainerRuntime::new`] with the image store already open on
    /// `config.root` (a node opens it once for all its runtimes).
    pub fn with_image_store(config: ContainerRuntimeConfig, store: ImageStore) -> Result<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(RuntimeError::Configuration(
                "the container runtime needs root (namespaces, cgroups, mounts); run zlayer as \
                 root or use the sandbox isolation"
                    .into(),
            ));
        }
        if !config.shim_path.is_file() {
            return Err(RuntimeError::Configuration(format!(
                "the container monitor binary {} does not exist; build it with \
                 `cargo build -p zlayer-container --bin zlayer-shim` or set ContainerRuntimeConfig.shim_path",
                config.shim_path.display()
            )));
        }
        let layout = Layout::new(&config.root);
        for d in [
            layout.containers_dir(),
            layout.volumes_dir(),
            layout.run_dir(),
        ] {
            zlayer_image::ensure_dir(&d).map_err(|e| {
                RuntimeError::Configuration(format!("cannot create {}: {e}", d.display()))
            })?;
        }
        // Finish deletions an earlier process left half done.
        let deletions = BackgroundDeletions::default();
        let containers = layout.containers_dir();
        if containers.join(".trash").exists() {
            deletions.spawn(move || teardown::empty_trash(&containers));
        }
        Ok(ContainerRuntime {
            config,
            layout,
            store,
            failed: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            deletions,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ContainerRuntimeConfig {
        &self.config
    }

    /// The on-disk layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The image store the runtime runs images from.
    pub fn image_store(&self) -> &ImageStore {
        &self.store
    }

    /// The cgroup of container `id` (for inspection and leak checks).
    pub fn cgroup(&self, id: &ContainerId) -> ContainerCgroup {
        ContainerCgroup::new(&self.layout.cgroup_path(id))
    }

    fn lock(&self, id: &ContainerId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.clone()).or_default().clone()
    }

    fn failed_reason(&self, id: &ContainerId) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn set_failed(&self, id: &ContainerId, reason: Option<String>) {
        let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        match reason {
            Some(r) => f.insert(id.clone(), r),
            None => f.remove(id),
        };
    }

    /// The address and published ports of an attached container (`None`
    /// while it does not run, or for `host` / `none`).
    async fn network_lookup(
        &self,
        id: &ContainerId,
    ) -> Result<Option<(IpAddr, Vec<PortMappingEntry>)>> {
        if self.failed_reason(id).is_some() {
            return Ok(None);
        }
        self.existing(id).await?;
        let dir = self.config.root.join("network");
        if !dir.join("networks.json").exists() {
            return Ok(None);
        }
        // Read without the lock: writers replace the file whole.
        let st = zlayer_network::state::read_unlocked(&dir)?;
        Ok(st
            .leases
            .get(&id.to_string())
            .map(|l| (IpAddr::V4(l.ip), l.ports.clone())))
    }

    /// Reads the container's records. They are a few small files (plus
    /// two `/proc/<pid>/stat`), read inline: a blocking-pool round trip
    /// would cost more than the reads.
    async fn load(&self, id: &ContainerId) -> Result<(ContainerPaths, Option<Snapshot>)> {
        let paths = self.layout.container(id)?;
        let snap = Snapshot::load(&paths)?;
        Ok((paths, snap))
    }

    /// The snapshot of an existing container, or NotFound.
    async fn existing(&self, id: &ContainerId) -> Result<(ContainerPaths, Snapshot)> {
        match self.load(id).await? {
            (paths, Some(s)) => Ok((paths, s)),
            _ => Err(RuntimeError::container_not_found(id)),
        }
    }

    /// The snapshot of a running (or paused) container.
    async fn running(
        &self,
        id: &ContainerId,
        what: &str,
    ) -> Result<(ContainerPaths, Snapshot, i32)> {
        if let Some(reason) = self.failed_reason(id) {
            return Err(not_running(id, &ContainerState::Failed { reason }, what));
        }
        let (paths, snap) = self.existing(id).await?;
        let state = snap.state();
        match (state.is_alive(), snap.running_pid()) {
            (true, Some(pid)) => Ok((paths, snap, pid)),
            _ => Err(not_running(id, &state, what)),
        }
    }

    async fn resolve_image(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageRecord> {
        let opts = PullOptions {
            policy,
            auth: auth.map(|a| zlayer_image::RegistryAuth::new(&a.username, &a.password)),
            ..Default::default()
        };
        self.store
            .pull(image, &opts)
            .await
            .map_err(|e| RuntimeError::PullFailed {
                image: image.to_string(),
                reason: e.to_string(),
            })
    }

    /// Waits until the container ended; returns its exit record's code (or
    /// an error when it failed without one).
    async fn wait_exit(&self, id: &ContainerId) -> Result<i32> {
        let mut no_answer = 0u32;
        loop {
            let (paths, snap) = match self.load(id).await? {
                (p, Some(s)) => (p, s),
                _ => {
                    return match self.failed_reason(id) {
                        Some(reason) => Ok(code_for_start_failure(&reason)),
                        None => Err(RuntimeError::container_not_found(id)),
                    }
                }
            };
            if let Some(exit) = &snap.exit {
                return Ok(exit.code);
            }
            match snap.state() {
                ContainerState::Pending => tokio::time::sleep(PENDING_POLL).await,
                ContainerState::Failed { reason } => return Err(RuntimeError::Internal(reason)),
                _ => {
                    if let Some(reply) = shim::client::wait_exit(&paths.socket()).await? {
                        return Ok(reply.code);
                    }
                    // No monitor answered: it has just recorded the exit (or
                    // is about to); read the files again, then poll.
                    if no_answer > 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    no_answer += 1;
                }
            }
        }
    }

    fn signal(pid: i32, sig: i32) -> Result<()> {
        // SAFETY: kill(2) has no memory-safety preconditions.
        if unsafe { libc::kill(pid, sig) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(RuntimeError::Internal(format!(
                    "sending signal {sig} to pid {pid}: {e}"
                )));
            }
        }
        Ok(())
    }
}

/// The exit code `wait` reports for a container whose start failed.
fn code_for_start_failure(reason: &str) -> i32 {
    if reason.contains("not found") {
        exec::CODE_NOT_FOUND
    } else if reason.contains("permission") {
        exec::CODE_NOT_EXECUTABLE
    } else {
        125
    }
}

#[async_trait]
impl Runtime for ContainerRuntime {
    fn name(&self) -> &str {
        NAME
    }

    async fn pull_image_with_policy(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: Option<&RegistryAuth>,
    ) -> Result<()> {
        self.resolve_image(image, policy, auth).await.map(|_| ())
    }

    async fn create_container(&self, id: &ContainerId, spec: &ServiceSpec) -> Result<()> {
        let paths = self.layout.container(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.set_failed(id, None);
        if paths.dir.exists() || paths.lc_dir().exists() {
            let p = paths.clone();
            let store = self.store.clone();
            let deletions = self.deletions.clone();
            tokio::task::spawn_blocking(move || {
                teardown::remove_container(&p, None, Some(&store), Deletion::Background(deletions))
            })
            .await
            .map_err(internal("removing the stale container"))??;
        }
        let image = self
            .resolve_image(&spec.image.name, spec.image.pull_policy, None)
            .await?;
        let store = self.store.clone();
        let layout = self.layout.clone();
        let net_opts = self.config.network.clone();
        let (id2, spec2) = (id.clone(), spec.clone());
        tokio::task::spawn_blocking(move || {
            let image_config =
                store
                    .image_config(&image)
                    .map_err(|e| RuntimeError::CreateFailed {
                        id: id2.to_string(),
                        reason: format!("reading the config of image {}: {e}", image.reference),
                    })?;
            create::create(create::CreateRequest {
                id: &id2,
                spec: &spec2,
                image: &image,
                image_config: &image_config,
                store: &store,
                layout: &layout,
                paths: &paths,
                network: &net_opts,
            })
        })
        .await
        .map_err(internal("creating the container"))?
    }

    async fn start_container(&self, id: &ContainerId) -> Result<()> {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let (paths, snap) = self.existing(id).await?;
        let restart = match snap.state() {
            ContainerState::Pending => false,
            ContainerState::Running | ContainerState::Paused | ContainerState::Stopping => {
                return Ok(())
            }
            // Exited or failed: start again in place (same rootfs, logs appended).
            ContainerState::Exited { .. } | ContainerState::Failed { .. } => true,
        };
        // The monitor's cgroup migration would wait a grace period: start
        // one now, so it passes while the monitor gets ready.
        cgroup_warmup::begin();
        let mut result = Ok(0);
        if restart {
            let (p, record, shim_rec) = (paths.clone(), snap.record.clone(), snap.shim.clone());
            result = tokio::task::spawn_blocking(move || {
                teardown::reset_for_restart(&p, &record, shim_rec.as_ref())
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(internal("resetting the container"))?
            .map(|_| 0);
        }
        if result.is_ok() {
            result = create::prepare_run_dir(&paths, &snap.record)
                .map(|_| 0)
                .map_err(|e| e.to_string());
        }
        if result.is_ok() {
            result = shim::spawn::start_shim(&self.config.shim_path, &paths).await;
        }
        if result.is_err() {
            let (p, record, store) = (paths.clone(), snap.record.clone(), self.store.clone());
            let deletions = self.deletions.clone();
            tokio::task::spawn_blocking(move || {
                let _ = teardown::remove_container(
                    &p,
                    Some(&record),
                    Some(&store),
                    Deletion::Background(deletions),
                );
            })
            .await
            .map_err(internal("cleaning up after a failed start"))?;
        }
        match result {
            Ok(_) => Ok(()),
            Err(reason) => {
                self.set_failed(id, Some(reason.clone()));
                Err(RuntimeError::StartFailed {
                    id: id.to_string(),
                    reason,
                })
            }
        }
    }

    async fn stop_container(&self, id: &ContainerId, timeout: Duration) -> Result<()> {
        if self.failed_reason(id).is_some() {
            return Ok(());
        }
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let (_, snap) = self.existing(id).await?;
        let state = snap.state();
        let Some(pid) = snap.running_pid().filter(|_| state.is_alive()) else {
            return Ok(());
        };
        let cg = ContainerCgroup::new(&snap.record.cgroup_path);
        Self::signal(pid, snap.record.stop_signal)?;
        if state == ContainerState::Paused {
            freezer::thaw_quietly(&cg);
        }
        if tokio::time::timeout(timeout, self.wait_exit(id))
            .await
            .is_ok()
        {
            return Ok(());
        }
        Self::signal(pid, libc::SIGKILL)?;
        tokio::task::spawn_blocking(move || cg.kill_all())
            .await
            .map_err(internal("killing the container"))?;
        match tokio::time::timeout(KILL_WAIT, self.wait_exit(id)).await {
            Ok(Ok(_)) | Ok(Err(_)) => Ok(()),
            Err(_) => Err(RuntimeError::Internal(format!(
                "container {id} did not exit within {}s of SIGKILL",
                KILL_WAIT.as_secs()
            ))),
        }
    }

    async fn kill_container(&self, id: &ContainerId, signal: Option<&str>) -> Result<()> {
        let sig = zlayer_runtime::validate_signal(signal.unwrap_or("KILL"))?;
        let (_, snap, pid) = self.running(id, "there is nothing to signal").await?;
        Self::signal(pid, sig)?;
        if sig == libc::SIGKILL {
            let cg = ContainerCgroup::new(&snap.record.cgroup_path);
            tokio::task::spawn_blocking(move || freezer::thaw_quietly(&cg))
                .await
                .map_err(internal("thawing the container"))?;
        }
        Ok(())
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        let paths = match self.layout.container(id) {
            Ok(p) => p,
            // An id that cannot name a container names none: nothing to do.
            Err(_) => return Ok(()),
        };
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.set_failed(id, None);
        if !paths.dir.exists() && !paths.lc_dir().exists() {
            return Ok(());
        }
        let store = self.store.clone();
        let deletions = self.deletions.clone();
        tokio::task::spawn_blocking(move || {
            teardown::remove_container(&paths, None, Some(&store), Deletion::Background(deletions))
        })
        .await
        .map_err(internal("removing the container"))?
    }

    async fn container_state(&self, id: &ContainerId) -> Result<ContainerState> {
        match self.load(id).await? {
            (_, Some(snap)) => Ok(snap.state()),
            _ => match self.failed_reason(id) {
                Some(reason) => Ok(ContainerState::Failed { reason }),
                None => Err(RuntimeError::container_not_found(id)),
            },
        }
    }

    async fn wait_container(&self, id: &ContainerId) -> Result<i32> {
        self.wait_exit(id).await
    }

    async fn logs_stream(&self, id: &ContainerId, opts: LogsStreamOptions) -> Result<LogsStream> {
        let (paths, _) = self.existing(id).await?;
        let (exit, record) = (paths.exit(), paths.record());
        let finished = Arc::new(move || exit.exists() || !record.exists());
        zlayer_hosting::logs::logs_stream(paths.logs(), opts, finished)
    }

    async fn exec_with_opts(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecOutput> {
        let stream = self.exec_stream(id, opts).await?;
        exec::collect(stream).await
    }

    async fn exec_stream(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecStream> {
        zlayer_runtime::require_command(opts)?;
        let (paths, snap, _) = self.running(id, "start it before exec").await?;
        if snap.state() == ContainerState::Paused {
            return Err(RuntimeError::InvalidSpec(format!(
                "container {id} is paused; unpause it before exec"
            )));
        }
        let (p, o) = (paths.clone(), opts.clone());
        let file = tokio::task::spawn_blocking(move || exec::write_process(&p, &snap.record, &o))
            .await
            .map_err(internal("preparing the exec"))??;
        exec::spawn(&self.config.shim_path, &paths, file, opts.stdin.clone())
    }

    async fn get_container_stats(&self, id: &ContainerId) -> Result<ContainerStats> {
        let (_, snap, pid) = self
            .running(id, "statistics exist only while it runs; start it first")
            .await?;
        let cg = ContainerCgroup::new(&snap.record.cgroup_path);
        let host = snap.record.host_network;
        tokio::task::spawn_blocking(move || cgroup_stats::sample(&cg, pid, host))
            .await
            .map_err(internal("reading statistics"))
    }

    async fn stats_stream(&self, id: &ContainerId) -> Result<StatsStream> {
        let first = self.get_container_stats(id).await?;
        let (paths, snap) = self.existing(id).await?;
        let cg = ContainerCgroup::new(&snap.record.cgroup_path);
        let host = snap.record.host_network;
        let state = (Some(first), paths, cg, Instant::now());
        let stream =
            futures_util::stream::unfold(state, move |(first, paths, cg, mut next)| async move {
                if let Some(s) = first {
                    next += STATS_INTERVAL;
                    return Some((Ok(s), (None, paths, cg, next)));
                }
                tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
                next += STATS_INTERVAL;
                let p = paths.clone();
                let snap = tokio::task::spawn_blocking(move || Snapshot::load(&p))
                    .await
                    .ok()?
                    .ok()??;
                let pid = snap.running_pid().filter(|_| snap.state().is_alive())?;
                let cg2 = cg.clone();
                let s = tokio::task::spawn_blocking(move || cgroup_stats::sample(&cg2, pid, host))
                    .await
                    .ok()?;
                Some((Ok(s), (None, paths, cg, next)))
            });
        Ok(stream.boxed())
    }

    async fn get_container_pid(&self, id: &ContainerId) -> Result<Option<u32>> {
        if self.failed_reason(id).is_some() {
            return Ok(None);
        }
        let (_, snap) = self.existing(id).await?;
        Ok(snap
            .running_pid()
            .filter(|_| snap.state().is_alive())
            .map(|p| p as u32))
    }

    async fn get_container_ip(&self, id: &ContainerId) -> Result<Option<IpAddr>> {
        Ok(self.network_lookup(id).await?.map(|(ip, _)| ip))
    }

    async fn port_mappings_container(&self, id: &ContainerId) -> Result<Vec<PortMappingEntry>> {
        Ok(self
            .network_lookup(id)
            .await?
            .map(|(_, ports)| ports)
            .unwrap_or_default())
    }

    async fn write_stdin(&self, id: &ContainerId, data: &[u8]) -> Result<()> {
        let (paths, _, _) = self.running(id, "its stdin is gone").await?;
        shim::client::write_stdin(&paths.socket(), data).await
    }

    async fn close_stdin(&self, id: &ContainerId) -> Result<()> {
        let (paths, _, _) = self.running(id, "its stdin is gone").await?;
        shim::client::close_stdin(&paths.socket()).await
    }

    async fn resize_terminal(&self, id: &ContainerId, rows: u16, cols: u16) -> Result<()> {
        let (paths, _, _) = self.running(id, "its terminal is gone").await?;
        shim::client::resize(&paths.socket(), rows, cols).await
    }

    async fn pause_container(&self, id: &ContainerId) -> Result<()> {
        let (_, snap, _) = self
            .running(id, "only a running container can be paused")
            .await?;
        let cg = ContainerCgroup::new(&snap.record.cgroup_path);
        tokio::task::spawn_blocking(move || freezer::freeze(&cg))
            .await
            .map_err(internal("pausing"))?
    }

    async fn unpause_container(&self, id: &ContainerId) -> Result<()> {
        let (_, snap, _) = self
            .running(id, "only a paused container can be unpaused")
            .await?;
        let cg = ContainerCgroup::new(&snap.record.cgroup_path);
        tokio::task::spawn_blocking(move || freezer::thaw(&cg))
            .await
            .map_err(internal("unpausing"))?
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        let store = self.store.clone();
        let records = tokio::task::spawn_blocking(move || store.list())
            .await
            .map_err(internal("listing images"))?
            .map_err(|e| RuntimeError::Internal(format!("listing images: {e}")))?;
        Ok(records
            .into_iter()
            .map(|r| ImageInfo {
                digest: Some(r.digest().to_string()),
                size_bytes: Some(r.size),
                created: r.created.clone(),
                reference: r.reference,
            })
            .collect())
    }

    async fn has_container(&self, id: &ContainerId) -> Result<bool> {
        let Ok(paths) = self.layout.container(id) else {
            return Ok(false);
        };
        Ok(
            state_dir::read_json::<state_dir::ContainerRecord>(&paths.record())
                .ok()
                .flatten()
                .is_some_and(|r| r.id == *id),
        )
    }

    async fn list_containers(&self) -> Result<Vec<ContainerId>> {
        let dir = self.layout.containers_dir();
        let mut ids = tokio::task::spawn_blocking(move || -> Vec<ContainerId> {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return Vec::new();
            };
            entries
                .flatten()
                .filter_map(|e| ContainerPaths::of_dir(e.path()))
                .filter_map(|p| {
                    state_dir::read_json::<state_dir::ContainerRecord>(&p.record())
                        .ok()
                        .flatten()
                })
                .map(|r| r.id)
                .collect()
        })
        .await
        .map_err(internal("listing containers"))?;
        ids.extend(
            self.failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .keys()
                .cloned(),
        );
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}
