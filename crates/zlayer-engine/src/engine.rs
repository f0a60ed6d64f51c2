//! [`Engine`]: container operations by name or id, over the composite
//! runtime and the image store.

use crate::catalog::{generated_name, new_container_id, Catalog, ContainerRecord};
use crate::error::{EngineError, Result};
use crate::spec_hash::spec_hash;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use zlayer_image::{ImageStore, PullOptions};
use zlayer_runtime::{
    CompositeRuntime, ContainerId, ContainerState, ExecOptions, ExecOutput, LogsStream,
    LogsStreamOptions, PortMappingEntry, Runtime, StatsStream,
};
use zlayer_spec::{ServiceSpec, TTY_LABEL};

pub use zlayer_spec::labels::{DEPLOYMENT_LABEL, SERVICE_LABEL};

/// How long a catalog record may exist without its runtime container
/// before [`Engine::list`] takes it for one whose container vanished: the
/// longest a runtime's create may take (a vm's, on a loaded host).
pub const CREATE_GRACE: Duration = Duration::from_secs(600);

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
    /// `--rm`.
    pub auto_remove: bool,
    /// Removed by its creator as soon as it exits (the foreground `run
    /// --rm`): its catalog record is not flushed to disk (it need not
    /// survive a power loss).
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

/// A container as `ps` and `inspect` show it.
#[derive(Debug, Clone)]
pub struct ContainerView {
    /// The catalog record.
    pub record: ContainerRecord,
    /// Its state now.
    pub state: ContainerState,
    /// Host PID of its init, while it runs.
    pub pid: Option<u32>,
}

/// Container and image operations shared by the CLI and the daemon.
pub struct Engine {
    root: PathBuf,
    catalog: Catalog,
    images: ImageStore,
    runtime: Arc<CompositeRuntime>,
}

impl Engine {
    /// An engine over an already built composite runtime.
    pub fn new(root: &Path, images: ImageStore, runtime: Arc<CompositeRuntime>) -> Result<Self> {
        Ok(Engine {
            root: root.to_path_buf(),
            catalog: Catalog::open(root)?,
            images,
            runtime,
        })
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The container catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The image store.
    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    /// The composite runtime.
    pub fn runtime(&self) -> &Arc<CompositeRuntime> {
        &self.runtime
    }

    /// Finds a container by name, id or unique id prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<ContainerRecord> {
        self.catalog.resolve(name_or_id)
    }

    /// Pulls the image per the spec's policy, records the container and
    /// creates it in the runtime of its isolation. Nothing is left behind
    /// when any step fails.
    pub async fn create(&self, req: CreateRequest) -> Result<ContainerRecord> {
        let isolation = self.runtime.choose_isolation(&req.spec)?;
        // Refused before anything is pulled.
        if req.tty && isolation == "vm" {
            return Err(EngineError::InvalidRequest(
                "a terminal (-t) is not available in the vm isolation; run without -t, or use --isolation container".into(),
            ));
        }
        let mut pull = req.pull.clone();
        pull.policy = req.spec.image.pull_policy;
        self.images.pull(&req.spec.image.name, &pull).await?;

        let id = new_container_id()?;
        let name = match &req.name {
            Some(n) => n.clone(),
            None => generated_name(&id),
        };
        let container = req
            .container
            .clone()
            .unwrap_or_else(|| ContainerId::new(name.clone(), 0));
        let mut spec = req.spec.clone();
        spec.name = container.service.clone();
        if req.auto_remove {
            spec.lifecycle.delete_on_exit = true;
        }
        if req.tty {
            spec.labels.insert(TTY_LABEL.into(), "true".into());
        }
        let mut labels: BTreeMap<String, String> = spec.labels.clone();
        if let Some(dep) = &req.deployment {
            labels.insert(DEPLOYMENT_LABEL.into(), dep.clone());
        }
        let record = ContainerRecord {
            id,
            name,
            container: container.clone(),
            isolation,
            image: spec.image.name.clone(),
            spec_hash: spec_hash(&req.spec),
            spec: spec.clone(),
            created: SystemTime::now(),
            deployment: req.deployment.clone(),
            auto_remove: req.auto_remove,
            labels,
            interactive: req.interactive,
            tty: req.tty,
            restart_count: 0,
        };
        if let Ok(existing) = self.catalog.resolve(&record.container.to_string()) {
            if existing.container == record.container {
                return Err(EngineError::NameInUse {
                    name: record.container.to_string(),
                    id: existing.id,
                });
            }
        }
        self.catalog
            .insert(&record, !(req.auto_remove || req.ephemeral))?;
        if let Err(e) = self.runtime.create_container(&container, &spec).await {
            let _ = self.runtime.remove_container(&container).await;
            let _ = self.catalog.remove(&record.id);
            return Err(e.into());
        }
        Ok(record)
    }

    /// Starts a created container. A user start clears the stop mark and
    /// the restart-policy history (see [`crate::supervise`]).
    pub async fn start(&self, record: &ContainerRecord) -> Result<()> {
        crate::supervise::SupervisionStore::open(&self.root).note_user_start(&record.id)?;
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
            Ok(state) if state.is_alive() => {
                self.runtime
                    .kill_container(&record.container, Some("KILL"))
                    .await?;
            }
            _ => {}
        }
        self.runtime.remove_container(&record.container).await?;
        crate::supervise::SupervisionStore::open(&self.root).remove(&record.id)?;
        crate::health::HealthStore::open(&self.root).remove(&record.id)?;
        self.catalog.remove(&record.id)
    }

    /// The current state (a container whose runtime state is gone reads as
    /// removed: `NotFound`).
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

    /// Runs a command inside the container.
    pub async fn exec(&self, record: &ContainerRecord, opts: &ExecOptions) -> Result<ExecOutput> {
        Ok(self.runtime.exec_with_opts(&record.container, opts).await?)
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

    /// Every container with its state. Records whose runtime state vanished
    /// (removed by `--rm` in a shim, say) are dropped from the catalog,
    /// except young ones: [`Engine::create`] writes the record before the
    /// runtime creates the container, so a record younger than
    /// [`CREATE_GRACE`] without a runtime container may be a create still
    /// running. It is left alone and not listed.
    pub async fn list(&self) -> Result<Vec<ContainerView>> {
        let mut out = Vec::new();
        for record in self.catalog.list()? {
            match self.runtime.container_state(&record.container).await {
                Ok(state) => {
                    let pid = if state.is_alive() {
                        self.runtime
                            .get_container_pid(&record.container)
                            .await
                            .ok()
                            .flatten()
                    } else {
                        None
                    };
                    out.push(ContainerView { record, state, pid });
                }
                Err(e) if e.is_not_found() => {
                    let age = SystemTime::now()
                        .duration_since(record.created)
                        .unwrap_or_default();
                    if age >= CREATE_GRACE {
                        self.catalog.remove(&record.id)?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }
}
