//! [`ContainerLauncher`]: the container isolation behind the hosting
//! layer's [`Launcher`].

use super::config::{ContainerConfig, MONITOR_NAME};
use super::paths::ContainerPaths;
use super::plan::ContainerPlan;
use super::workload::ContainerWorkload;
use super::{cgroup_warmup, create, freezer, teardown};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use zlayer_hosting::MonitorBinary;
use zlayer_hosting::{
    Launcher, MonitorRecord, NetworkView, PrepareContext, SpawnError, StateDir, Workload,
};
use zlayer_runtime::{ContainerRecord, Result, RuntimeError};
use zlayer_spec::Isolation;

/// Runs services as OCI containers: namespaces, cgroups v1/v2, overlayfs,
/// seccomp and capabilities through youki's libcontainer, in the monitor's
/// own process.
#[derive(Debug)]
pub struct ContainerLauncher {
    config: ContainerConfig,
    monitor: MonitorBinary,
    store: OnceLock<Option<zlayer_image::ImageStore>>,
}

impl ContainerLauncher {
    /// The launcher of a node configured by `config`. Fails when not root.
    pub fn new(config: ContainerConfig) -> Result<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(RuntimeError::Configuration(
                "the container isolation needs root (namespaces, cgroups, mounts); run zlayer \
                 as root or use the sandbox isolation"
                    .into(),
            ));
        }
        Ok(ContainerLauncher {
            monitor: MonitorBinary::new(
                MONITOR_NAME,
                "zlayer-container",
                None,
                config.monitor.clone(),
            ),
            config,
            store: OnceLock::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ContainerConfig {
        &self.config
    }

    fn store(&self) -> Option<&zlayer_image::ImageStore> {
        self.store
            .get_or_init(|| zlayer_image::ImageStore::open(&self.config.root).ok())
            .as_ref()
    }

    fn paths(dir: &StateDir) -> Result<ContainerPaths> {
        ContainerPaths::of(dir.clone())
    }

    fn plan(dir: &StateDir) -> Option<ContainerPlan> {
        zlayer_hosting::records::read_plan_as(dir)
    }

    fn require_plan(dir: &StateDir) -> Result<ContainerPlan> {
        zlayer_hosting::records::require_plan(dir)
    }
}

impl Launcher for ContainerLauncher {
    fn isolation(&self) -> Isolation {
        Isolation::Container
    }

    fn monitor_binary(&self) -> Result<PathBuf> {
        self.monitor.path()
    }

    fn prepare(&self, ctx: &PrepareContext<'_>) -> Result<serde_json::Value> {
        let plan = create::prepare(&self.config.root, &self.config.network, ctx)?;
        serde_json::to_value(&plan)
            .map_err(|e| RuntimeError::Internal(format!("encoding the container plan: {e}")))
    }

    fn before_start(&self, dir: &StateDir, record: &ContainerRecord) -> Result<()> {
        let _ = record;
        // The monitor's cgroup migration would wait a grace period: start
        // one now, so it passes while the monitor gets ready.
        cgroup_warmup::begin();
        let paths = Self::paths(dir)?;
        let plan = Self::require_plan(dir)?;
        if paths.lc_dir().exists() {
            // An earlier run: start again in place.
            teardown::reset_for_restart(&paths, &plan)?;
        }
        create::prepare_run_dir(&paths, &plan)
    }

    fn spawn(
        &self,
        dir: &StateDir,
        _record: &ContainerRecord,
        plan: &serde_json::Value,
    ) -> std::result::Result<Box<dyn Workload>, SpawnError> {
        let plan = zlayer_hosting::records::decode_plan::<ContainerPlan>(plan)
            .map_err(SpawnError::engine)?;
        Ok(Box::new(ContainerWorkload::start(dir, plan)?))
    }

    fn teardown(&self, dir: &StateDir, _record: &ContainerRecord) -> Result<()> {
        let paths = Self::paths(dir)?;
        let plan = Self::plan(dir);
        teardown::teardown(&paths, plan.as_ref(), self.store())
    }

    fn kill_orphans(&self, dir: &StateDir, _record: &ContainerRecord, _monitor: &MonitorRecord) {
        if let (Ok(paths), Some(plan)) = (Self::paths(dir), Self::plan(dir)) {
            teardown::kill_orphans(&paths, &plan);
        }
    }

    fn release_failed_start(&self, dir: &StateDir, _record: &ContainerRecord) {
        // The container's init is forked by the monitor before it may get
        // a parent-death signal: it outlives a monitor killed meanwhile.
        if let (Ok(paths), Some(plan)) = (Self::paths(dir), Self::plan(dir)) {
            teardown::kill_orphans(&paths, &plan);
        }
    }

    fn pause(&self, dir: &StateDir, _record: &ContainerRecord, _m: &MonitorRecord) -> Result<()> {
        let plan = Self::require_plan(dir)?;
        freezer::freeze(&super::cgroups::ContainerCgroup::new(&plan.cgroup_path))
    }

    fn unpause(&self, dir: &StateDir, _record: &ContainerRecord, _m: &MonitorRecord) -> Result<()> {
        let plan = Self::require_plan(dir)?;
        freezer::thaw(&super::cgroups::ContainerCgroup::new(&plan.cgroup_path))
    }

    fn network(&self, _dir: &StateDir, record: &ContainerRecord) -> Result<NetworkView> {
        let net = self.config.root.join("network");
        if !net.join("networks.json").exists() {
            return Ok(NetworkView::default());
        }
        // Read without the lock: writers replace the file whole.
        let st = zlayer_network::state::read_unlocked(&net)?;
        Ok(st
            .leases
            .get(&record.container.to_string())
            .map(|l| NetworkView {
                ip: Some(IpAddr::V4(l.ip)),
                ports: l.ports.clone(),
            })
            .unwrap_or_default())
    }
}
