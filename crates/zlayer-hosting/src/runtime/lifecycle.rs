//! Starting, stopping, signalling, waiting for and removing containers.

use super::{blocking, HostedRuntime};
use crate::control::Unanswered;
use crate::exit::{now_ms, ExitRecord};
use crate::layout::StateDir;
use crate::monitor_record::MonitorRecord;
use crate::phase::Phase;
use crate::records;
use std::time::Duration;
use zlayer_runtime::{ContainerId, ContainerRecord, Result, RuntimeError};

/// How long `stop`, `kill` and `remove` wait for the end after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long `remove` waits for a monitor that removes its container
/// itself (`--rm`) to finish doing so.
const SELF_REMOVE_WAIT: Duration = Duration::from_secs(5);
/// Poll interval while a container is created but not started.
const PENDING_POLL: Duration = Duration::from_millis(50);

fn wrong_state(record: &ContainerRecord, phase: &Phase, hint: &str) -> RuntimeError {
    RuntimeError::WrongState {
        id: record.name.clone(),
        state: phase.state(record).to_string(),
        hint: hint.to_string(),
    }
}

impl HostedRuntime {
    pub(super) async fn start(&self, id: &ContainerId) -> Result<()> {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let (dir, record) = self.load(id)?;
        match self.observe(&dir, &record)? {
            Phase::Running(_) | Phase::Paused(_) => return Ok(()),
            Phase::Creating => {
                return Err(wrong_state(
                    &record,
                    &Phase::Creating,
                    "it is still being created; start it once `create` returned",
                ))
            }
            Phase::Interrupted => {
                return Err(wrong_state(
                    &record,
                    &Phase::Interrupted,
                    "remove it and create it again",
                ))
            }
            Phase::Created | Phase::Ended(_) | Phase::Lost(_) => {}
        }
        for f in [dir.exit(), dir.monitor(), dir.paused()] {
            let _ = std::fs::remove_file(f);
        }
        let launcher = self.launcher(record.isolation)?.clone();
        crate::run_tmpfs::ensure_run_dir(&dir).map_err(|e| RuntimeError::StartFailed {
            id: record.name.clone(),
            reason: format!("mounting {}: {e}", dir.run().display()),
        })?;
        blocking(|| launcher.before_start(&dir, &record))?;
        let binary = launcher.monitor_binary()?;
        let started =
            crate::standby::start_monitor(&binary, &dir, self.take_standby(record.isolation)).await;
        if let Err(e) = started {
            // A monitor that died during the start leaves what its spawn
            // made, or (once it had recorded the workload) a lost run.
            match self.observe(&dir, &record)? {
                Phase::Lost(m) => {
                    self.reconcile_lost(&dir, &record, &m)?;
                }
                Phase::Created => blocking(|| launcher.release_failed_start(&dir, &record)),
                _ => {}
            }
            return Err(e.into_runtime_error(&record.name));
        }
        Ok(())
    }

    pub(super) async fn stop(&self, id: &ContainerId, timeout: Duration) -> Result<()> {
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let (dir, record) = self.load(id)?;
        let monitor = match self.observe(&dir, &record)? {
            Phase::Running(m) => m,
            Phase::Paused(m) => {
                self.launcher(record.isolation)?
                    .unpause(&dir, &record, &m)?;
                let _ = std::fs::remove_file(dir.paused());
                m
            }
            _ => return Ok(()),
        };
        let client = Self::client(&dir);
        if client.signal(record.stop_signal).await.is_ok()
            && tokio::time::timeout(timeout, self.wait_ended(&dir, &record))
                .await
                .is_ok()
        {
            return Ok(());
        }
        self.kill_and_wait(&dir, &record, &monitor).await
    }

    /// SIGKILLs a running workload and waits until its end is recorded.
    async fn kill_and_wait(
        &self,
        dir: &StateDir,
        record: &ContainerRecord,
        monitor: &MonitorRecord,
    ) -> Result<()> {
        let _ = Self::client(dir).signal(libc::SIGKILL).await;
        zlayer_failpoints::hit("stop.after-kill");
        match tokio::time::timeout(KILL_WAIT, self.wait_ended(dir, record)).await {
            Ok(r) => r.map(|_| ()),
            Err(_) => {
                // The monitor does not get it done: do it ourselves.
                // SAFETY: kill(2) of a verified live pid.
                if monitor.monitor.is_alive() {
                    unsafe {
                        libc::kill(monitor.monitor.pid, libc::SIGKILL);
                    }
                }
                let phase = crate::phase::observe(dir, record)?;
                if let Phase::Lost(m) = phase {
                    self.reconcile_lost(dir, record, &m)?;
                }
                Ok(())
            }
        }
    }

    pub(super) async fn kill(&self, id: &ContainerId, signal: i32) -> Result<()> {
        let (dir, record) = self.load(id)?;
        let phase = self.observe(&dir, &record)?;
        let Some(monitor) = phase.live().cloned() else {
            return Err(wrong_state(&record, &phase, "there is nothing to signal"));
        };
        if signal == libc::SIGKILL && matches!(phase, Phase::Paused(_)) {
            // A frozen workload cannot die until it is thawed.
            self.launcher(record.isolation)?
                .unpause(&dir, &record, &monitor)?;
            let _ = std::fs::remove_file(dir.paused());
        }
        Self::client(&dir).signal(signal).await
    }

    pub(super) async fn remove(&self, id: &ContainerId) -> Result<()> {
        let Ok(dir) = self.state_dir(id) else {
            // An id that cannot name a container names none.
            return Ok(());
        };
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        let record = match records::read_record(&dir)? {
            Some(r) => r,
            None => {
                if dir.dir.exists() {
                    // The remains of a create that crashed before its record.
                    blocking(|| -> Result<()> {
                        crate::mounts::unmount_all_under(&dir.dir)?;
                        crate::removal::remove_dir(&dir.dir)
                    })?;
                }
                return Ok(());
            }
        };
        match self.observe(&dir, &record)? {
            Phase::Running(m) | Phase::Paused(m) => {
                if dir.paused().exists() {
                    let _ = self.launcher(record.isolation)?.unpause(&dir, &record, &m);
                }
                self.kill_and_wait(&dir, &record, &m).await?;
                if record.spec.lifecycle.delete_on_exit {
                    // Its monitor removes it: let it finish.
                    let deadline = tokio::time::Instant::now() + SELF_REMOVE_WAIT;
                    while dir.record().exists() && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            Phase::Creating => {
                return Err(wrong_state(
                    &record,
                    &Phase::Creating,
                    "it is still being created; remove it once `create` returned",
                ))
            }
            _ => {}
        }
        let launcher = self.launcher(record.isolation)?.clone();
        blocking(|| crate::removal::remove_with(launcher.as_ref(), &dir, &record, &self.trash))
    }

    /// Waits for the end of the container; its exit code.
    pub(super) async fn wait(&self, id: &ContainerId) -> Result<i32> {
        let (dir, record) = self.load(id)?;
        self.wait_ended(&dir, &record).await
    }

    async fn wait_ended(&self, dir: &StateDir, record: &ContainerRecord) -> Result<i32> {
        let mut no_answer = 0u32;
        loop {
            if !dir.record().exists() {
                // Removed meanwhile (`--rm`): its exit code went with it.
                return Err(RuntimeError::container_not_found(&record.name));
            }
            match self.observe(dir, record)? {
                Phase::Ended(exit) => return Ok(exit.code),
                Phase::Running(_) | Phase::Paused(_) => {
                    match Self::client(dir).wait().await {
                        Ok((code, _)) => return Ok(code),
                        Err(Unanswered::NoMonitor(_)) | Err(Unanswered::Closed) => {
                            // It has just recorded the exit (or is about
                            // to); read the files again, then poll.
                            if no_answer > 0 {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            no_answer += 1;
                        }
                    }
                }
                Phase::Interrupted => {
                    return Err(wrong_state(
                        record,
                        &Phase::Interrupted,
                        "it never ran; remove it",
                    ))
                }
                Phase::Creating | Phase::Created | Phase::Lost(_) => {
                    tokio::time::sleep(PENDING_POLL).await
                }
            }
        }
    }

    /// A monitor died without recording the end: kills what is left of its
    /// workload, records the end with the reason, and removes a `--rm`
    /// container. Returns the phase after that.
    pub(super) fn reconcile_lost(
        &self,
        dir: &StateDir,
        record: &ContainerRecord,
        monitor: &MonitorRecord,
    ) -> Result<Phase> {
        let launcher = self.launcher(record.isolation)?;
        blocking(|| launcher.kill_orphans(dir, record, monitor));
        // The monitor may have recorded the end after all, just now.
        if let Some(exit) = records::read_exit(dir)? {
            return Ok(Phase::Ended(exit));
        }
        let exit = ExitRecord {
            code: 128 + libc::SIGKILL,
            signal: Some(libc::SIGKILL),
            reason: Some(format!(
                "its monitor (pid {}) was killed; the workload was stopped with it",
                monitor.monitor.pid
            )),
            finished_at_ms: now_ms(),
        };
        records::write_exit(dir, &exit)?;
        let _ = std::fs::remove_file(dir.paused());
        let _ = std::fs::remove_file(dir.socket());
        if record.spec.lifecycle.delete_on_exit {
            blocking(|| crate::removal::remove_with(launcher.as_ref(), dir, record, &self.trash))?;
        }
        Ok(Phase::Ended(exit))
    }

    pub(super) async fn pause(&self, id: &ContainerId) -> Result<()> {
        let (dir, record) = self.load(id)?;
        match self.observe(&dir, &record)? {
            Phase::Paused(_) => Ok(()),
            Phase::Running(m) => {
                self.launcher(record.isolation)?.pause(&dir, &record, &m)?;
                std::fs::write(dir.paused(), b"").map_err(|e| {
                    RuntimeError::Internal(format!("writing {}: {e}", dir.paused().display()))
                })
            }
            other => Err(wrong_state(
                &record,
                &other,
                "only a running container can be paused",
            )),
        }
    }

    pub(super) async fn unpause(&self, id: &ContainerId) -> Result<()> {
        let (dir, record) = self.load(id)?;
        match self.observe(&dir, &record)? {
            Phase::Paused(m) => {
                self.launcher(record.isolation)?
                    .unpause(&dir, &record, &m)?;
                let _ = std::fs::remove_file(dir.paused());
                Ok(())
            }
            other => Err(wrong_state(&record, &other, "it is not paused")),
        }
    }
}
