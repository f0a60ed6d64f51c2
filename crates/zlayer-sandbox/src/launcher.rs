//! [`SandboxLauncher`]: the sandbox isolation behind the hosting layer's
//! [`Launcher`].

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::OnceLock;
use zlayer_hosting::MonitorBinary;
use zlayer_hosting::{
    Launcher, MonitorRecord, NetworkView, PrepareContext, SpawnError, StateDir, Workload,
};
use zlayer_runtime::{ContainerRecord, PortMappingEntry, Result, RuntimeError};
use zlayer_spec::Isolation;
use zlayer_sys::procfs;

use super::config::SandboxConfig;
use super::create;
use super::overlay;
use super::plan::SandboxPlan;
use super::ports::PortAllocator;
use super::workload::SandboxWorkload;

/// The name of the sandbox's monitor binary.
pub const MONITOR_NAME: &str = "zlayer-sandbox-shim";

/// Runs services as host processes confined by Landlock, seccomp,
/// no_new_privs, dropped capabilities and rlimits, each from a
/// copy-on-write view of its image's root filesystem.
#[derive(Debug)]
pub struct SandboxLauncher {
    config: SandboxConfig,
    /// Host ports held by this node's sandboxes (reserved from the existing
    /// plans on first use).
    ports: PortAllocator,
    ports_loaded: OnceLock<()>,
    monitor: MonitorBinary,
    store: OnceLock<Option<zlayer_image::ImageStore>>,
}

impl SandboxLauncher {
    /// The launcher of a node configured by `config`.
    pub fn new(config: SandboxConfig) -> Self {
        SandboxLauncher {
            monitor: MonitorBinary::new(
                MONITOR_NAME,
                "zlayer-sandbox",
                Some("ZLAYER_SANDBOX_SHIM"),
                config.monitor.clone(),
            ),
            config,
            ports: PortAllocator::default(),
            ports_loaded: OnceLock::new(),
            store: OnceLock::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The ports allocator, with the ports of existing sandboxes reserved.
    fn ports(&self) -> &PortAllocator {
        self.ports_loaded.get_or_init(|| {
            let containers = self.config.root.join("containers");
            let Ok(entries) = std::fs::read_dir(containers) else {
                return;
            };
            for e in entries.flatten() {
                let dir = StateDir::new(e.path());
                if let Some(p) = Self::plan(&dir) {
                    self.ports.reserve(p.ports.iter().map(|p| p.host_port));
                }
            }
        });
        &self.ports
    }

    fn store(&self) -> Option<&zlayer_image::ImageStore> {
        self.store
            .get_or_init(|| zlayer_image::ImageStore::open(&self.config.root).ok())
            .as_ref()
    }

    fn plan(dir: &StateDir) -> Option<SandboxPlan> {
        zlayer_hosting::records::read_plan_as(dir)
    }

    /// Remounts the runtime tmpfs and an overlay rootfs that are not
    /// mounted (after a reboot) and applies create's edits to the fresh
    /// upper layer.
    fn ensure_rootfs(&self, dir: &StateDir, record: &ContainerRecord) -> Result<()> {
        if zlayer_hosting::run_tmpfs::is_mounted(&dir.file("rootfs")) {
            return Ok(());
        }
        let failed = |reason: String| RuntimeError::StartFailed {
            id: record.name.clone(),
            reason,
        };
        let plan = Self::plan(dir).ok_or_else(|| {
            failed("its launch.json is missing or corrupt; remove it and create it again".into())
        })?;
        let Some(lower) = &plan.rootfs_lower else {
            // A cloned rootfs: only the runtime tmpfs was missing, and the
            // hosting layer mounted it again.
            return Ok(());
        };
        let fail = |e: std::io::Error| {
            failed(format!(
                "mounting the rootfs overlay of {} on {} failed: {e}; \
                 remove the container and create it again",
                lower.display(),
                dir.file("rootfs").display()
            ))
        };
        if overlay::ensure_mounted(&dir.dir, lower).map_err(fail)? {
            create::reapply_rootfs_edits(&plan).map_err(fail)?;
        }
        Ok(())
    }
}

impl Launcher for SandboxLauncher {
    fn isolation(&self) -> Isolation {
        Isolation::Sandbox
    }

    fn monitor_binary(&self) -> Result<PathBuf> {
        self.monitor.path()
    }

    fn prepare(&self, ctx: &PrepareContext<'_>) -> Result<serde_json::Value> {
        let plan = create::prepare(&self.config, self.ports(), ctx)?;
        serde_json::to_value(&plan)
            .map_err(|e| RuntimeError::Internal(format!("encoding the sandbox plan: {e}")))
    }

    fn before_start(&self, dir: &StateDir, record: &ContainerRecord) -> Result<()> {
        self.ensure_rootfs(dir, record)
    }

    fn spawn(
        &self,
        dir: &StateDir,
        _record: &ContainerRecord,
        plan: &serde_json::Value,
    ) -> std::result::Result<Box<dyn Workload>, SpawnError> {
        let plan = zlayer_hosting::records::decode_plan::<SandboxPlan>(plan)
            .map_err(SpawnError::engine)?;
        Ok(Box::new(SandboxWorkload::start(dir, plan)?))
    }

    fn teardown(&self, dir: &StateDir, _record: &ContainerRecord) -> Result<()> {
        if let Some(plan) = Self::plan(dir) {
            self.ports().release(plan.ports.iter().map(|p| p.host_port));
        }
        overlay::unmount(&dir.dir).map_err(|e| {
            RuntimeError::Internal(format!(
                "unmounting the rootfs of {} failed: {e}; unmount it by hand (umount -l {d}/rootfs {d}/run)",
                dir.dir.display(),
                d = dir.dir.display()
            ))
        })?;
        if let Some(store) = self.store() {
            store
                .unregister_use(&dir.dir)
                .map_err(|e| RuntimeError::Internal(format!("releasing the image lease: {e}")))?;
        }
        Ok(())
    }

    fn kill_orphans(&self, _dir: &StateDir, _record: &ContainerRecord, monitor: &MonitorRecord) {
        // The main process died with its monitor (parent-death signal);
        // what it started keeps its session (it called setsid).
        kill_session(monitor.workload.pid);
    }

    fn pause(
        &self,
        _dir: &StateDir,
        _record: &ContainerRecord,
        monitor: &MonitorRecord,
    ) -> Result<()> {
        signal_all(monitor, libc::SIGSTOP);
        Ok(())
    }

    fn unpause(
        &self,
        _dir: &StateDir,
        _record: &ContainerRecord,
        monitor: &MonitorRecord,
    ) -> Result<()> {
        signal_all(monitor, libc::SIGCONT);
        Ok(())
    }

    fn network(&self, dir: &StateDir, _record: &ContainerRecord) -> Result<NetworkView> {
        let ports = Self::plan(dir)
            .map(|p| {
                p.ports
                    .iter()
                    .map(|p| PortMappingEntry {
                        host_ip: "127.0.0.1".into(),
                        host_port: p.host_port,
                        container_port: p.container_port,
                        protocol: p.protocol.transport(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        // A sandbox shares the host's network stack.
        Ok(NetworkView {
            ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ports,
        })
    }
}

/// Sends `sig` to every process of the sandbox: the descendants of its
/// monitor, whatever their process group, and the workload's group.
fn signal_all(monitor: &MonitorRecord, sig: i32) {
    for p in procfs::descendants_fast(monitor.monitor.pid) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(p.pid, sig);
        }
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(-monitor.workload.pid, sig);
    }
}

/// SIGKILLs every process of session `sid` (the sandbox's main process
/// made its own session).
fn kill_session(sid: i32) {
    for _ in 0..10 {
        let left: Vec<i32> = procfs::all_processes()
            .into_iter()
            .filter(|p| p.session == sid && p.state != 'Z')
            .map(|p| p.pid)
            .collect();
        if left.is_empty() {
            return;
        }
        for pid in left {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
