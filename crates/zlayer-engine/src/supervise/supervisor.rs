//! The supervisor: a watcher task per running container. The daemon runs
//! one for every container; without a daemon, `zlayer` starts a small
//! per-container supervisor process (`zlayer supervise ID`) for containers
//! with a restart policy or a health check. A claim (a lock file per
//! container) keeps two of them from acting on the same container.

use super::events::{EventHub, EventKind};
use super::policy::{decide, restart_on_daemon_start, Decision, ExitFacts, RESET_BACKOFF_AFTER};
use super::state::{SupervisionState, SupervisionStore};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::health::{run_health_loop, HealthStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;
use zlayer_runtime::ContainerRecord;
use zlayer_runtime::ContainerState;
use zlayer_spec::RestartKind;

/// How often the supervisor looks for running containers it does not watch
/// yet (started by a CLI working without the daemon).
pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(2);

/// How long an auto-removed container waits for its attached clients.
const ATTACH_DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// How many times an ended `--rm` container's removal is tried.
const AUTO_REMOVE_ATTEMPTS: u32 = 5;

/// Watches containers: exit codes, `--rm`, restart policies, health checks.
pub struct Supervisor {
    engine: Arc<Engine>,
    store: SupervisionStore,
    events: EventHub,
    watched: Mutex<HashMap<String, JoinHandle<()>>>,
}

fn is_not_found(e: &EngineError) -> bool {
    match e {
        EngineError::NoSuchContainer(_) => true,
        EngineError::Runtime(a) => a.is_not_found(),
        _ => false,
    }
}

impl Supervisor {
    /// A supervisor over `engine` publishing to `events`.
    pub fn new(engine: Arc<Engine>, events: EventHub) -> Arc<Self> {
        Arc::new(Supervisor {
            store: SupervisionStore::open(engine.root()),
            engine,
            events,
            watched: Mutex::new(HashMap::new()),
        })
    }

    /// The engine it supervises.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Where it publishes what it sees.
    pub fn events(&self) -> &EventHub {
        &self.events
    }

    /// Whether a watcher runs for container `id`.
    pub fn is_watched(&self, id: &str) -> bool {
        self.watched
            .lock()
            .map(|w| w.get(id).is_some_and(|h| !h.is_finished()))
            .unwrap_or(false)
    }

    /// Starts watching `record` (a no-op when already watched). Call after
    /// every start.
    pub fn watch(self: &Arc<Self>, record: &ContainerRecord) {
        let Ok(mut watched) = self.watched.lock() else {
            return;
        };
        if watched.get(&record.id).is_some_and(|h| !h.is_finished()) {
            return;
        }
        // Another process (a per-container supervisor, another daemon)
        // supervises it: leave it; `reconcile` asks again later.
        let claim = match self.store.claim(&record.id) {
            Ok(Some(claim)) => claim,
            Ok(None) => {
                tracing::debug!("{} is supervised by another process", record.name);
                return;
            }
            Err(e) => {
                tracing::warn!("claiming the supervision of {}: {e}", record.name);
                return;
            }
        };
        let me = self.clone();
        let id = record.id.clone();
        let handle = tokio::spawn(async move {
            let _claim = claim;
            me.watch_loop(id).await
        });
        watched.insert(record.id.clone(), handle);
    }

    /// A user start (`start`, `restart`, `run`): starts a created container,
    /// or an ended one again (in place, else re-created under the same key),
    /// clears the stop mark and restart history, and watches it.
    pub async fn user_start(self: &Arc<Self>, record: &ContainerRecord) -> Result<()> {
        HealthStore::open(self.engine.root()).remove(&record.id)?;
        match self.engine.state(record).await? {
            s if s.is_alive() => {}
            ContainerState::Exited { .. } | ContainerState::Failed { .. } => {
                self.store.note_user_start(&record.id)?;
                self.start_again(record).await?;
            }
            _ => self.engine.start(record).await?,
        }
        self.events.publish(&record.id, EventKind::Started);
        self.watch(record);
        Ok(())
    }

    /// Stops every watcher and waits until they are gone, so their claims
    /// are released when this returns (the containers keep running).
    pub async fn release(&self) {
        let handles: Vec<JoinHandle<()>> = match self.watched.lock() {
            Ok(mut w) => w.drain().map(|(_, h)| h).collect(),
            Err(_) => return,
        };
        for h in handles {
            h.abort();
            let _ = h.await;
        }
    }

    /// Stops every watcher (the containers keep running).
    pub fn shutdown(&self) {
        if let Ok(mut watched) = self.watched.lock() {
            for (_, h) in watched.drain() {
                h.abort();
            }
        }
    }

    /// Re-adopts every container on disk: watches the running ones, removes
    /// auto-remove ones that ended unwatched, and restarts stopped ones whose
    /// policy says so (docker's rules at daemon start).
    pub async fn adopt_all(self: &Arc<Self>) -> Result<()> {
        for view in self.engine.list().await? {
            let record = view.record;
            match view.state {
                s if s.is_alive() => self.watch(&record),
                ContainerState::Exited { .. } | ContainerState::Failed { .. } => {
                    if record.auto_remove {
                        if let Err(e) = self.engine.remove(&record, true).await {
                            tracing::warn!("removing ended --rm container {}: {e}", record.name);
                        }
                        self.events.publish(&record.id, EventKind::Removed);
                        continue;
                    }
                    let st = self.store.load(&record.id)?;
                    let code = match &view.state {
                        ContainerState::Exited { code } => *code,
                        _ => st.last_exit_code.unwrap_or(-1),
                    };
                    let facts = facts_of(&st, code);
                    if restart_on_daemon_start(&record.spec.restart_policy, &facts) {
                        let me = self.clone();
                        tokio::spawn(async move { me.restart_adopted(record, st).await });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn restart_adopted(self: Arc<Self>, record: ContainerRecord, st: SupervisionState) {
        if record.spec.restart_policy.kind == RestartKind::Always && st.user_stopped {
            if let Err(e) = self.store.update(&record.id, |s| s.user_stopped = false) {
                tracing::warn!("{}: {e}", record.name);
            }
        }
        if let Some(due) = st.restart_due {
            if let Ok(left) = due.duration_since(SystemTime::now()) {
                tokio::time::sleep(left).await;
            }
        }
        let step = st.backoff_step;
        if self.restart_now(&record.id, step).await {
            if let Ok(r) = self.engine.resolve(&record.id) {
                self.watch(&r);
            }
        }
    }

    /// Watches running containers nobody watches yet.
    pub async fn reconcile(self: &Arc<Self>) -> Result<()> {
        if let Ok(mut w) = self.watched.lock() {
            w.retain(|_, h| !h.is_finished());
        }
        for view in self.engine.list().await? {
            if view.state.is_alive() && !self.is_watched(&view.record.id) {
                self.watch(&view.record);
            }
        }
        Ok(())
    }

    /// Adopts everything, then reconciles every [`RECONCILE_INTERVAL`] until
    /// `shutdown` resolves; then stops the watchers.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        if let Err(e) = self.adopt_all().await {
            tracing::error!("re-adopting containers: {e}");
        }
        let me = self.clone();
        let loop_ = async move {
            loop {
                tokio::time::sleep(RECONCILE_INTERVAL).await;
                if let Err(e) = me.reconcile().await {
                    tracing::warn!("reconciling containers: {e}");
                }
            }
        };
        tokio::select! {
            _ = shutdown => {}
            _ = loop_ => {}
        }
        self.shutdown();
    }

    fn spawn_health(self: &Arc<Self>, record: &ContainerRecord) -> Option<JoinHandle<()>> {
        record.spec.health.as_ref()?;
        let me = self.clone();
        let record = record.clone();
        Some(tokio::spawn(async move {
            let events = me.events.clone();
            let id = record.id.clone();
            let on_change = move |s| events.publish(&id, EventKind::Health(s));
            if let Err(e) = run_health_loop(&me.engine, &record, &on_change).await {
                tracing::warn!("health checks of {}: {e}", record.name);
            }
        }))
    }

    async fn watch_loop(self: Arc<Self>, id: String) {
        loop {
            let record = match self.engine.resolve(&id) {
                Ok(r) => r,
                Err(_) => {
                    self.events.publish(&id, EventKind::Removed);
                    return;
                }
            };
            let health = self.spawn_health(&record);
            let waited = self.engine.wait(&record).await;
            if let Some(h) = health {
                h.abort();
            }
            let code = match waited {
                Ok(code) => code,
                Err(e) if is_not_found(&e) => {
                    self.events.publish(&id, EventKind::Removed);
                    return;
                }
                Err(e) => {
                    if record.auto_remove {
                        // Its runtime may be removing it right now.
                        tracing::debug!("waiting for {}: {e}", record.name);
                    } else {
                        tracing::warn!("waiting for {}: {e}", record.name);
                    }
                    match self.engine.state(&record).await {
                        Ok(s) if s.is_alive() => {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                        // The wait failed but the exit was recorded: carry on
                        // with that code, so restart policies still apply.
                        Ok(ContainerState::Exited { code }) => code,
                        _ => return,
                    }
                }
            };
            let st = match self.store.update(&id, |s| s.last_exit_code = Some(code)) {
                Ok(st) => st,
                Err(e) => {
                    tracing::warn!("{}: {e}", record.name);
                    SupervisionState::default()
                }
            };
            self.events.publish(&id, EventKind::Exited(code));
            // Started again meanwhile (`restart`, a user `start`): keep watching.
            if self.engine.state(&record).await.is_ok_and(|s| s.is_alive()) {
                continue;
            }
            // `--rm` through the Docker API is the daemon's job (the runtime
            // was not told, so the exit code outlives the exit); with
            // `delete_on_exit` the runtime removes the container itself.
            if record.auto_remove && !record.spec.lifecycle.delete_on_exit {
                self.events.wait_detached(&id, ATTACH_DRAIN_LIMIT).await;
                self.auto_remove(&record).await;
                self.events.publish(&id, EventKind::Removed);
                return;
            }
            if record.auto_remove {
                // The runtime removes it; report the removal once it is gone.
                for _ in 0..100 {
                    if self.engine.state(&record).await.is_err() {
                        self.events.publish(&id, EventKind::Removed);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                return;
            }
            let facts = facts_of(&st, code);
            match decide(&record.spec.restart_policy, &facts) {
                Decision::Stay(reason) => {
                    tracing::debug!("{} stays stopped: {reason}", record.name);
                    if !st.user_stopped && record.spec.restart_policy.kind != RestartKind::No {
                        let _ = self.store.update(&id, |s| s.gave_up = Some(reason));
                    }
                    return;
                }
                Decision::Restart { delay } => {
                    let due = SystemTime::now() + delay;
                    let _ = self.store.update(&id, |s| s.restart_due = Some(due));
                    tracing::info!("restarting {} in {delay:?} (exit code {code})", record.name);
                    tokio::time::sleep(delay).await;
                    if !self.restart_now(&id, facts.backoff_step).await {
                        return;
                    }
                }
            }
        }
    }

    /// Removes an ended `--rm` container, trying again a few times (100 ms,
    /// doubling) when the removal fails: under load it may meet a passing
    /// shortage (EMFILE, ENOMEM, a busy mount) that a moment later is gone.
    async fn auto_remove(&self, record: &ContainerRecord) {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=AUTO_REMOVE_ATTEMPTS {
            match self.engine.remove(record, true).await {
                Ok(()) => return,
                Err(e) if is_not_found(&e) => return,
                Err(e) if attempt == AUTO_REMOVE_ATTEMPTS => {
                    tracing::warn!("auto-removing {}: {e}", record.name)
                }
                Err(e) => {
                    tracing::debug!("auto-removing {} (attempt {attempt}): {e}", record.name);
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
    }

    /// Starts `id` again by policy unless the user stopped or removed it
    /// meanwhile; true when it runs afterwards.
    async fn restart_now(self: &Arc<Self>, id: &str, step: u32) -> bool {
        let Ok(record) = self.engine.resolve(id) else {
            return false;
        };
        match self.store.load(id) {
            Ok(st) if st.user_stopped => return false,
            Err(e) => {
                tracing::warn!("{}: {e}", record.name);
                return false;
            }
            _ => {}
        }
        match self.engine.state(&record).await {
            Ok(s) if s.is_alive() => return true,
            Err(_) => return false,
            _ => {}
        }
        if let Err(e) = HealthStore::open(self.engine.root()).remove(id) {
            tracing::warn!("{}: {e}", record.name);
        }
        if let Err(e) = self.start_again(&record).await {
            tracing::error!("restart of {} failed: {e}", record.name);
            let _ = self.store.update(id, |s| {
                s.gave_up = Some(format!("restart failed: {e}"));
                s.restart_due = None;
            });
            return false;
        }
        if let Ok(fresh) = self.engine.resolve(id) {
            let counted = self.engine.update_record(&fresh, |r| {
                r.restart_count = r.restart_count.saturating_add(1)
            });
            if let Err(e) = counted {
                tracing::warn!("{}: {e}", record.name);
            }
        }
        let _ = self.store.update(id, |s| {
            s.attempts = s.attempts.saturating_add(1);
            s.backoff_step = step.saturating_add(1);
            s.last_started = Some(SystemTime::now());
            s.restart_due = None;
        });
        self.events.publish(id, EventKind::Started);
        true
    }

    /// Starts an exited container again in place (same rootfs, logs
    /// appended), without the user-start bookkeeping of [`Engine::start`].
    async fn start_again(&self, record: &ContainerRecord) -> Result<()> {
        self.engine.restart_in_place(record).await
    }
}

fn facts_of(st: &SupervisionState, code: i32) -> ExitFacts {
    let ran_long = st
        .last_started
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|d| d >= RESET_BACKOFF_AFTER);
    ExitFacts {
        code,
        user_stopped: st.user_stopped,
        attempts: st.attempts,
        backoff_step: if ran_long { 0 } else { st.backoff_step },
    }
}
