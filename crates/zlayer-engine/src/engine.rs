//! [`Engine`]: the node, assembled, and container operations by name or id.
//!
//! [`Engine::open`] builds the node from its data root: the image store,
//! every isolation's launcher, and the hosting layer's runtime over them.
//! The CLI (embedded) and the daemon use only this API.

use crate::error::{EngineError, Result};
use crate::names::{generated_name, validate_name};
use crate::node::NodeConfig;
use crate::spec_hash::spec_hash;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zlayer_hosting::HostedRuntime;
use zlayer_image::{ImageStore, PullOptions};
use zlayer_runtime::{
    new_container_id, ContainerId, ContainerRecord, ContainerState, ContainerStats, ContainerView,
    ExecOptions, ExecOutput, ExecStream, LogsStream, LogsStreamOptions, NewContainer,
    PortMappingEntry, Runtime, StatsStream,
};
use zlayer_spec::{Isolation, ServiceSpec};

pub use zlayer_spec::labels::{DEPLOYMENT_LABEL, SERVICE_LABEL};

/// What to create.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// `--name`; generated when `None`.
    pub name: Option<String>,
    /// The service spec (image, command, env, resources, ...).
    pub spec: ServiceSpec,
    /// Runtime key; defaults to `{name, 0}`.
    pub container: Option<ContainerId>,
    /// The deployment it belongs to.
    pub deployment: Option<String>,
    /// `--rm`: its monitor removes it once it exits.
    pub auto_remove: bool,
    /// Removed by its creator as soon as it exits (the foreground `run
    /// --rm`): its files are not flushed to disk (they need not survive a
    /// power loss).
    pub ephemeral: bool,
    /// `-i`.
    pub interactive: bool,
    /// `-t`.
    pub tty: bool,
    /// Pull options (progress, credentials); the policy comes from the spec.
    pub pull: PullOptions,
}

impl CreateRequest {
    /// A request for `spec` with everything else defaulted.
    pub fn new(spec: ServiceSpec) -> Self {
        CreateRequest {
            name: None,
            spec,
            container: None,
            deployment: None,
            auto_remove: false,
            ephemeral: false,
            interactive: false,
            tty: false,
            pull: PullOptions::default(),
        }
    }
}

/// A node: its image store and its containers, under every isolation.
pub struct Engine {
    root: PathBuf,
    runtime: Arc<HostedRuntime>,
}

impl Engine {
    /// Opens the node on `root` (created if missing): the image store,
    /// the launchers of every isolation `config` enables, the runtime.
    pub fn open(root: &Path, config: NodeConfig) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| {
            EngineError::io(
                format!(
                    "creating the data root {}; run as root or pass --root DIR",
                    root.display()
                ),
                e,
            )
        })?;
        let images = ImageStore::open(root)?;
        let runtime = crate::node::assemble(root, images, &config)?;
        Ok(Engine {
            root: root.to_path_buf(),
            runtime: Arc::new(runtime),
        })
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The image store.
    pub fn images(&self) -> &ImageStore {
        self.runtime.images()
    }

    /// The named volumes.
    pub fn volumes(&self) -> &zlayer_hosting::VolumeStore {
        self.runtime.volumes()
    }

    /// The isolations this node offers.
    pub fn isolations(&self) -> Vec<Isolation> {
        self.runtime.isolations()
    }

    /// The bridge networks of this node.
    pub fn networks(&self) -> Result<zlayer_network::NetworkManager> {
        Ok(zlayer_network::NetworkManager::open(&self.root)?)
    }

    /// Finds a container by exact name, full id, or unique id prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<ContainerRecord> {
        if let Some(r) = self.runtime.by_name(name_or_id) {
            return Ok(r);
        }
        let all = self.runtime.records();
        if let Some(r) = all.iter().find(|r| r.id == name_or_id) {
            return Ok(r.clone());
        }
        let is_hex = !name_or_id.is_empty() && name_or_id.chars().all(|c| c.is_ascii_hexdigit());
        let mut matches: Vec<ContainerRecord> = if is_hex {
            let prefix = name_or_id.to_ascii_lowercase();
            all.into_iter()
                .filter(|r| r.id.starts_with(&prefix))
                .collect()
        } else {
            Vec::new()
        };
        match matches.len() {
            0 => Err(EngineError::NoSuchContainer(name_or_id.to_string())),
            1 => Ok(matches.remove(0)),
            count => Err(EngineError::AmbiguousId {
                prefix: name_or_id.to_string(),
                count,
            }),
        }
    }

    /// Pulls the image per the spec's policy (with the request's progress
    /// and credentials) and creates the container under the isolation it
    /// asks for. Nothing is left behind when any step fails.
    pub async fn create(&self, req: CreateRequest) -> Result<ContainerRecord> {
        // Refused before anything is pulled.
        let isolation = self.runtime.choose_isolation(&req.spec)?;
        self.runtime
            .launcher(isolation)?
            .check(&req.spec, req.tty)?;
        if let Some(n) = &req.name {
            validate_name(n)?;
        }
        let mut pull = req.pull.clone();
        pull.policy = req.spec.image.pull_policy;
        self.images().pull(&req.spec.image.name, &pull).await?;
        // A generated name can be taken (it is short: 4 hex digits of the
        // id): another id gives another name, as docker retries.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.create_once(&req).await {
                Err(EngineError::NameInUse { .. })
                    if req.name.is_none() && req.container.is_none() && attempts < 8 => {}
                other => return other,
            }
        }
    }

    /// One try of [`Engine::create`] under a fresh id.
    async fn create_once(&self, req: &CreateRequest) -> Result<ContainerRecord> {
        let id = new_container_id();
        let name = req.name.clone().unwrap_or_else(|| generated_name(&id));
        let container = req
            .container
            .clone()
            .unwrap_or_else(|| ContainerId::new(name.clone(), 0));
        let mut spec = req.spec.clone();
        spec.name = container.service.clone();
        if req.auto_remove {
            spec.lifecycle.delete_on_exit = true;
        }
        let new = NewContainer {
            container,
            id,
            name,
            spec_hash: spec_hash(&req.spec),
            spec,
            deployment: req.deployment.clone(),
            auto_remove: req.auto_remove,
            interactive: req.interactive,
            tty: req.tty,
            ephemeral: req.ephemeral || req.auto_remove,
        };
        Ok(self.runtime.create_container(&new).await?)
    }

    /// Starts a created container. A user start clears the stop mark and
    /// the restart-policy history (see [`crate::supervise`]).
    pub async fn start(&self, record: &ContainerRecord) -> Result<()> {
        crate::supervise::SupervisionStore::open(&self.root).note_user_start(&record.id)?;
        Ok(self.runtime.start_container(&record.container).await?)
    }

    /// Starts an exited container again in place for a restart policy (the
    /// user's stop mark and the policy history stay).
    pub async fn restart_in_place(&self, record: &ContainerRecord) -> Result<()> {
        Ok(self.runtime.start_container(&record.container).await?)
    }

    /// Graceful stop with `timeout` (default: the spec's grace period, else 10 s).
    pub async fn stop(&self, record: &ContainerRecord, timeout: Option<Duration>) -> Result<()> {
        let timeout = timeout
            .or_else(|| {
                record
                    .spec
                    .stop_grace_period
                    .as_ref()
                    .and_then(|d| d.duration().ok())
            })
            .unwrap_or(Duration::from_secs(10));
        // A user stop is never undone by a restart policy (see crate::supervise).
        crate::supervise::SupervisionStore::open(&self.root).note_user_stop(&record.id)?;
        Ok(self
            .runtime
            .stop_container(&record.container, timeout)
            .await?)
    }

    /// Sends a signal (default KILL).
    pub async fn kill(&self, record: &ContainerRecord, signal: Option<&str>) -> Result<()> {
        crate::supervise::SupervisionStore::open(&self.root).note_user_stop(&record.id)?;
        Ok(self
            .runtime
            .kill_container(&record.container, signal)
            .await?)
    }

    /// Removes a container; a running one only with `force` (killed first).
    pub async fn remove(&self, record: &ContainerRecord, force: bool) -> Result<()> {
        match self.runtime.container_state(&record.container).await {
            Ok(state) if state.is_alive() && !force => {
                return Err(EngineError::InvalidRequest(format!(
                    "container {} is {state}; stop it first or use `zlayer rm -f {}`",
                    record.name, record.name
                )))
            }
            _ => {}
        }
        self.runtime.remove_container(&record.container).await?;
        crate::supervise::SupervisionStore::open(&self.root).remove(&record.id)?;
        crate::health::HealthStore::open(&self.root).remove(&record.id)?;
        Ok(())
    }

    /// The current state.
    pub async fn state(&self, record: &ContainerRecord) -> Result<ContainerState> {
        Ok(self.runtime.container_state(&record.container).await?)
    }

    /// Waits for the container to end; returns its exit code.
    pub async fn wait(&self, record: &ContainerRecord) -> Result<i32> {
        Ok(self.runtime.wait_container(&record.container).await?)
    }

    /// Log records per `opts`.
    pub async fn logs(
        &self,
        record: &ContainerRecord,
        opts: LogsStreamOptions,
    ) -> Result<LogsStream> {
        Ok(self.runtime.logs_stream(&record.container, opts).await?)
    }

    /// Runs a command inside the container and collects its output.
    pub async fn exec(&self, record: &ContainerRecord, opts: &ExecOptions) -> Result<ExecOutput> {
        Ok(self.runtime.exec_with_opts(&record.container, opts).await?)
    }

    /// Runs a command inside the container, streaming its output.
    pub async fn exec_stream(
        &self,
        record: &ContainerRecord,
        opts: &ExecOptions,
    ) -> Result<ExecStream> {
        Ok(self.runtime.exec_stream(&record.container, opts).await?)
    }

    /// One resource sample.
    pub async fn stats_once(&self, record: &ContainerRecord) -> Result<ContainerStats> {
        Ok(self.runtime.get_container_stats(&record.container).await?)
    }

    /// A stream of resource samples.
    pub async fn stats(&self, record: &ContainerRecord) -> Result<StatsStream> {
        Ok(self.runtime.stats_stream(&record.container).await?)
    }

    /// Freezes the container.
    pub async fn pause(&self, record: &ContainerRecord) -> Result<()> {
        Ok(self.runtime.pause_container(&record.container).await?)
    }

    /// Thaws the container.
    pub async fn unpause(&self, record: &ContainerRecord) -> Result<()> {
        Ok(self.runtime.unpause_container(&record.container).await?)
    }

    /// Published ports.
    pub async fn ports(&self, record: &ContainerRecord) -> Result<Vec<PortMappingEntry>> {
        Ok(self
            .runtime
            .port_mappings_container(&record.container)
            .await?)
    }

    /// Its own address, when it has one.
    pub async fn ip(&self, record: &ContainerRecord) -> Result<Option<IpAddr>> {
        Ok(self.runtime.get_container_ip(&record.container).await?)
    }

    /// The host pid of its main process, while it runs.
    pub async fn pid(&self, record: &ContainerRecord) -> Result<Option<u32>> {
        Ok(self.runtime.get_container_pid(&record.container).await?)
    }

    /// Writes to the workload's stdin.
    pub async fn write_stdin(&self, record: &ContainerRecord, data: &[u8]) -> Result<()> {
        Ok(self.runtime.write_stdin(&record.container, data).await?)
    }

    /// Closes the workload's stdin.
    pub async fn close_stdin(&self, record: &ContainerRecord) -> Result<()> {
        Ok(self.runtime.close_stdin(&record.container).await?)
    }

    /// Sets the size of the workload's terminal.
    pub async fn resize(&self, record: &ContainerRecord, rows: u16, cols: u16) -> Result<()> {
        Ok(self
            .runtime
            .resize_terminal(&record.container, rows, cols)
            .await?)
    }

    /// Rewrites a container's record (restart count, `--rm` set by a front
    /// end after create).
    pub fn update_record(
        &self,
        record: &ContainerRecord,
        update: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord> {
        Ok(self.runtime.update_record(&record.container, update)?)
    }

    /// Every container with its state, oldest first: one read of the state
    /// directories, which are the one record of which containers exist.
    pub async fn list(&self) -> Result<Vec<ContainerView>> {
        Ok(self.runtime.list_containers().await?)
    }
}
