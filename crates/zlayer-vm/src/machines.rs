//! The machines behind [`super::runtime::VmRuntime`]: state directories,
//! booting QEMU, adopting a running VM's control connection, observing
//! and killing it. The [`zlayer_runtime::runtime::Runtime`] methods in `runtime.rs`
//! are built on these.

use super::accel;
use super::config::{Accel, VmConfig};
use super::control::Control;
use super::forward;
use super::kernel::{resolve_bundle, KernelBundle};
use super::logsync;
use super::qemu::{self, files, Launch, BASE_CMDLINE};
use super::record::{QemuProcess, VmRecord};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinHandle;
use zlayer_image::ImageStore;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::{ContainerId, ContainerState, PortMappingEntry};
use zlayer_sys::atomic::{read_json, write_json_atomic};
use zlayer_sys::procfs;
use zlayer_vm_proto::{Msg, WORKLOAD_CHANNEL};

pub(super) const RECORD_FILE: &str = "vm.json";
pub(super) const PORTS_FILE: &str = "ports.json";
pub(super) const PAUSED_FILE: &str = "paused";
pub(super) const NAME: &str = "vm";

/// A live connection to a running VM and its port forwarders.
pub(super) struct Live {
    pub(super) control: Arc<Control>,
    /// The tasks serving the published ports (each owns its listener).
    pub(super) forwards: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Live {
    fn new(control: Arc<Control>, forwards: Vec<JoinHandle<()>>) -> Live {
        Live {
            control,
            forwards: std::sync::Mutex::new(forwards),
        }
    }

    /// Stops serving the published ports; the listeners are closed when
    /// this returns (an abort alone drops them later, on a worker thread).
    async fn close_ports(&self) {
        let handles: Vec<JoinHandle<()>> = match self.forwards.lock() {
            Ok(mut f) => std::mem::take(&mut *f),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        };
        for h in &handles {
            h.abort();
        }
        for h in handles {
            let _ = h.await;
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Ok(f) = self.forwards.lock() {
            for h in f.iter() {
                h.abort();
            }
        }
    }
}

pub(super) struct Inner {
    pub(super) config: VmConfig,
    pub(super) store: Arc<ImageStore>,
    pub(super) live: tokio::sync::Mutex<HashMap<ContainerId, Arc<Live>>>,
    pub(super) accel: tokio::sync::OnceCell<Accel>,
}

pub(super) fn io_err(what: &str, path: &Path, e: std::io::Error) -> RuntimeError {
    RuntimeError::Internal(format!("{what} {}: {e}", path.display()))
}

pub(super) fn unix_now() -> (i64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

impl Inner {
    pub(super) fn dir(&self, id: &ContainerId) -> PathBuf {
        self.config.containers_dir().join(id.to_string())
    }

    pub(super) fn bundle(&self) -> Result<KernelBundle> {
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

    pub(super) async fn accel(&self, bundle: &KernelBundle) -> Result<Accel> {
        self.accel
            .get_or_try_init(|| accel::choose(&self.config, bundle))
            .await
            .copied()
    }

    pub(super) fn load(&self, id: &ContainerId) -> Result<VmRecord> {
        read_json::<VmRecord>(&self.dir(id).join(RECORD_FILE))?
            .ok_or_else(|| RuntimeError::container_not_found(id))
    }

    pub(super) fn save(&self, rec: &VmRecord) -> Result<()> {
        Ok(write_json_atomic(
            &self.dir(&rec.id).join(RECORD_FILE),
            rec,
        )?)
    }

    pub(super) fn alive(rec: &VmRecord) -> Option<i32> {
        rec.qemu
            .filter(|q| procfs::is_alive(q.pid, q.starttime))
            .map(|q| q.pid)
    }

    pub(super) async fn drop_live(&self, id: &ContainerId) {
        let live = self.live.lock().await.remove(id);
        if let Some(live) = live {
            live.close_ports().await;
        }
    }

    /// The live connection of a running VM, reconnecting (and re-binding
    /// its published ports) after a restart of the agent.
    pub(super) async fn live(&self, id: &ContainerId, rec: &VmRecord) -> Result<Arc<Live>> {
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
        let live = Arc::new(Live::new(control, forwards));
        map.insert(id.clone(), Arc::clone(&live));
        Ok(live)
    }

    /// Where the container is, converting logs and noticing exits.
    pub(super) async fn observe(&self, id: &ContainerId) -> Result<(VmRecord, ContainerState)> {
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

    pub(super) async fn wait_gone(pid: i32, starttime: Option<u64>, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while procfs::is_alive(pid, starttime) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    pub(super) async fn kill_qemu(&self, rec: &VmRecord) {
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

    pub(super) fn cmdline(&self, rec: &VmRecord) -> String {
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

    pub(super) async fn start(&self, id: &ContainerId) -> Result<()> {
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
    pub(super) async fn boot(
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
        let send = |e: RuntimeError| e.to_string();
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
        write_json_atomic(&dir.join(PORTS_FILE), &entries).map_err(|e| e.to_string())?;
        let forwards = bound
            .into_iter()
            .map(|(entry, l)| forward::serve(l, entry.container_port, Arc::clone(&control)))
            .collect();
        Ok(Arc::new(Live::new(control, forwards)))
    }
}

pub(super) fn not_running(id: &ContainerId) -> RuntimeError {
    RuntimeError::InvalidSpec(format!(
        "container {id} is not running; start it first (`zlayer start {id}`)"
    ))
}

pub(super) fn start_failed(id: &ContainerId, reason: String) -> RuntimeError {
    RuntimeError::StartFailed {
        id: id.to_string(),
        reason,
    }
}
