//! [`VmLauncher`]: the vm isolation behind the hosting layer's [`Launcher`].

use super::config::VmConfig;
use super::forward;
use super::kernel::{resolve_bundle, KernelBundle};
use super::plan::{self, VmPlan, PLAN_VERSION};
use super::qemu::{self, files};
use super::workload::VmWorkload;
use std::path::PathBuf;
use std::sync::OnceLock;
use zlayer_hosting::MonitorBinary;
use zlayer_hosting::{
    Launcher, MonitorRecord, NetworkView, PrepareContext, SpawnError, StateDir, Workload,
};
use zlayer_runtime::{ContainerRecord, PortMappingEntry, Result, RuntimeError};
use zlayer_spec::{Isolation, ServiceSpec};

/// The name of the VM's monitor binary.
pub const MONITOR_NAME: &str = "zlayer-vm-shim";

/// Runs every container in its own QEMU microVM, with zlayer's guest agent
/// as PID 1 (see `docs/vm.md`).
#[derive(Debug)]
pub struct VmLauncher {
    config: VmConfig,
    monitor: MonitorBinary,
    store: OnceLock<Option<zlayer_image::ImageStore>>,
}

impl VmLauncher {
    /// The launcher of a node configured by `config`.
    pub fn new(config: VmConfig) -> Self {
        VmLauncher {
            monitor: MonitorBinary::new(MONITOR_NAME, "zlayer-vm", None, config.monitor.clone()),
            config,
            store: OnceLock::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &VmConfig {
        &self.config
    }

    /// The kernel bundle VMs boot (explicit paths, environment or the
    /// installed bundle), or a configuration error saying how to get one.
    pub fn kernel_bundle(&self) -> Result<KernelBundle> {
        let explicit = match (&self.config.kernel, &self.config.initrd) {
            (Some(k), Some(i)) => Some(KernelBundle {
                kernel: k.clone(),
                initrd: i.clone(),
            }),
            (None, None) => None,
            _ => {
                return Err(RuntimeError::Configuration(
                    "VmConfig sets only one of kernel and initrd; set both or neither".into(),
                ))
            }
        };
        resolve_bundle(explicit.as_ref(), &self.config.kernel_dir())
    }

    /// The accelerator VMs run under (probing KVM once per host when the
    /// configuration says `auto`; the verdict is cached).
    pub fn accelerator(&self) -> Result<super::config::Accel> {
        let bundle = self.kernel_bundle()?;
        super::accel::choose(&super::accel::Choice {
            accel: self.config.accel,
            qemu: &self.config.qemu_binary,
            bundle: &bundle,
            cache: &self.config.root.join("accel.json"),
            probe_timeout: self.config.probe_timeout,
        })
    }

    fn store(&self) -> Option<&zlayer_image::ImageStore> {
        self.store
            .get_or_init(|| {
                self.config
                    .root
                    .parent()
                    .and_then(|root| zlayer_image::ImageStore::open(root).ok())
            })
            .as_ref()
    }
}

impl Launcher for VmLauncher {
    fn isolation(&self) -> Isolation {
        Isolation::Vm
    }

    fn monitor_binary(&self) -> Result<PathBuf> {
        self.monitor.path()
    }

    fn check(&self, spec: &ServiceSpec, tty: bool) -> Result<()> {
        if tty {
            return Err(RuntimeError::unsupported(
                "vm",
                "a terminal (-t)",
                "run without -t, or use --isolation container",
            ));
        }
        forward::check_mappings(&spec.port_mappings)
    }

    fn prepare(&self, ctx: &PrepareContext<'_>) -> Result<serde_json::Value> {
        let spec = &ctx.record.spec;
        let bundle = self.kernel_bundle()?;
        let binds = plan::binds(spec, ctx.volumes)?;
        let run = plan::run_spec(spec, ctx.image_config)?;
        let (memory_mib, vcpus) = plan::size(
            spec,
            self.config.default_memory_mib,
            self.config.default_vcpus,
        );
        let rootfs = ctx
            .store
            .prepare_rootfs(ctx.image, &ctx.dir.dir)
            .map_err(|e| RuntimeError::CreateFailed {
                id: ctx.record.name.clone(),
                reason: e.to_string(),
            })?;
        zlayer_failpoints::hit("create.after-rootfs");
        let plan = VmPlan {
            version: PLAN_VERSION,
            rootfs: rootfs.path,
            run,
            binds,
            memory_mib,
            vcpus,
            vcpus_from_spec: spec.resources.cpu.is_some(),
            ports: spec.port_mappings.clone(),
            hostname: spec.name.clone(),
            bundle,
            qemu: self.config.qemu_binary.clone(),
            accel: self.config.accel,
            accel_cache: self.config.root.join("accel.json"),
            probe_timeout_ms: self.config.probe_timeout.as_millis() as u64,
            boot_timeout_ms: self.config.boot_timeout.as_millis() as u64,
            extra_cmdline: self.config.extra_cmdline.clone(),
        };
        serde_json::to_value(&plan)
            .map_err(|e| RuntimeError::Internal(format!("encoding the VM plan: {e}")))
    }

    fn spawn(
        &self,
        dir: &StateDir,
        _record: &ContainerRecord,
        plan: &serde_json::Value,
    ) -> std::result::Result<Box<dyn Workload>, SpawnError> {
        let plan =
            zlayer_hosting::records::decode_plan::<VmPlan>(plan).map_err(SpawnError::engine)?;
        Ok(Box::new(VmWorkload::start(dir, plan)?))
    }

    fn teardown(&self, dir: &StateDir, _record: &ContainerRecord) -> Result<()> {
        let _ = std::fs::remove_file(dir.file(files::PORTS));
        match self.store() {
            Some(store) => store.release_rootfs(&dir.dir).map_err(|e| {
                RuntimeError::Internal(format!(
                    "releasing the rootfs of {} failed: {e}",
                    dir.dir.display()
                ))
            }),
            None => Ok(()),
        }
    }

    fn kill_orphans(&self, dir: &StateDir, _record: &ContainerRecord, monitor: &MonitorRecord) {
        // QEMU died with its monitor (parent-death signal); the published
        // ports were the monitor's sockets.
        if monitor.workload.is_alive() {
            // SAFETY: kill(2) of a verified live pid.
            unsafe {
                libc::kill(monitor.workload.pid, libc::SIGKILL);
            }
        }
        let _ = std::fs::remove_file(dir.file(files::PORTS));
    }

    fn pause(&self, dir: &StateDir, _record: &ContainerRecord, _m: &MonitorRecord) -> Result<()> {
        qemu::qmp(&dir.dir, "stop").map(|_| ())
    }

    fn unpause(&self, dir: &StateDir, _record: &ContainerRecord, _m: &MonitorRecord) -> Result<()> {
        qemu::qmp(&dir.dir, "cont").map(|_| ())
    }

    fn network(&self, dir: &StateDir, _record: &ContainerRecord) -> Result<NetworkView> {
        // The VM has no network of its own yet: published ports are
        // reached on the host's addresses, through its monitor.
        let ports: Vec<PortMappingEntry> =
            zlayer_sys::atomic::read_json(&dir.file(files::PORTS))?.unwrap_or_default();
        Ok(NetworkView { ip: None, ports })
    }
}
