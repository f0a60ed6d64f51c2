//! Carrying a plan out: dependency waits, create/replace/remove, `down`.

use super::plan::{container_name, desired_spec, plan, runtime_key, Existing, Step};
use crate::engine::{CreateRequest, Engine};
use crate::error::{EngineError, Result};
use crate::health::{wait_healthy, HealthStatus};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zlayer_runtime::ContainerRecord;
use zlayer_runtime::ContainerState;
use zlayer_spec::{DependsCondition, DependsSpec, DeploymentSpec, OnTimeout};
use zlayer_sys::atomic::write_json_atomic_synced as write_json_atomic;
use zlayer_sys::lock::FileLock;

/// How long a dependency may take when its `timeout` is not set.
pub const DEFAULT_DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(60);

/// A callback seeing each container the deployment started.
pub type StartedHook = Arc<dyn Fn(&ContainerRecord) + Send + Sync>;
/// A callback seeing progress lines (`created shop-web-1`, ...).
pub type ProgressHook = Arc<dyn Fn(&str) + Send + Sync>;

/// How [`apply`] and [`down`] behave.
#[derive(Clone, Default)]
pub struct DeployOptions {
    /// Timeout of dependencies without one ([`DEFAULT_DEPENDENCY_TIMEOUT`] when `None`).
    pub dependency_timeout: Option<Duration>,
    /// Grace period when stopping replaced or removed containers (their
    /// spec's, else 10 s, when `None`).
    pub stop_timeout: Option<Duration>,
    /// Called after every container start (the daemon watches it).
    pub on_started: Option<StartedHook>,
    /// Called with a line per action.
    pub progress: Option<ProgressHook>,
}

/// What a deployment did, by container name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployReport {
    /// The deployment.
    pub deployment: String,
    /// Replicas created.
    pub created: Vec<String>,
    /// Replicas replaced because their service changed.
    pub replaced: Vec<String>,
    /// Unchanged replicas that were started again.
    pub started: Vec<String>,
    /// Replicas left as they were.
    pub kept: Vec<String>,
    /// Containers removed (service gone, scaled down, `down`).
    pub removed: Vec<String>,
    /// Dependencies that timed out with `on_timeout: warn`.
    pub warnings: Vec<String>,
}

impl DeployReport {
    /// True when nothing changed.
    pub fn unchanged(&self) -> bool {
        self.created.is_empty()
            && self.replaced.is_empty()
            && self.started.is_empty()
            && self.removed.is_empty()
    }
}

fn deployments_dir(engine: &Engine) -> PathBuf {
    engine.root().join("engine").join("deployments")
}

async fn lock_deployment(engine: &Engine, name: &str) -> Result<FileLock> {
    let dir = deployments_dir(engine);
    std::fs::create_dir_all(&dir)
        .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
    let path = dir.join(format!("{name}.lock"));
    Ok(
        tokio::task::spawn_blocking(move || FileLock::exclusive(&path))
            .await
            .map_err(|e| EngineError::io("locking the deployment", std::io::Error::other(e)))??,
    )
}

/// The deployment's containers with whether they run.
async fn existing_of(engine: &Engine, deployment: &str) -> Result<Vec<Existing>> {
    Ok(engine
        .list()
        .await?
        .into_iter()
        .filter(|v| v.record.deployment.as_deref() == Some(deployment))
        .map(|v| Existing {
            running: v.state.is_alive(),
            record: v.record,
        })
        .collect())
}

struct Run<'a> {
    engine: &'a Engine,
    spec: &'a DeploymentSpec,
    opts: &'a DeployOptions,
    report: DeployReport,
}

impl Run<'_> {
    fn say(&self, line: String) {
        tracing::info!("{line}");
        if let Some(p) = &self.opts.progress {
            p(&line);
        }
    }

    async fn remove(&mut self, id: &str) -> Result<()> {
        if let Some(name) = self.remove_quiet(id).await? {
            self.say(format!("removed {name}"));
        }
        Ok(())
    }

    /// Stops (gracefully) and removes container `id`; its name, or `None`
    /// when it was already gone.
    async fn remove_quiet(&self, id: &str) -> Result<Option<String>> {
        let record = match self.engine.resolve(id) {
            Ok(r) => r,
            Err(EngineError::NoSuchContainer(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if self.engine.state(&record).await.is_ok_and(|s| s.is_alive()) {
            self.engine.stop(&record, self.opts.stop_timeout).await?;
        }
        self.engine.remove(&record, true).await?;
        Ok(Some(record.name))
    }

    async fn create(&mut self, service: &str, replica: u32) -> Result<String> {
        let dep = &self.spec.deployment;
        let svc = self.spec.services.get(service).ok_or_else(|| {
            EngineError::InvalidRequest(format!("service {service:?} is not in the spec"))
        })?;
        let mut req = CreateRequest::new(desired_spec(dep, service, svc));
        req.name = Some(container_name(dep, service, replica));
        req.container = Some(runtime_key(dep, service, replica));
        req.deployment = Some(dep.clone());
        let record = self.engine.create(req).await?;
        self.start(&record).await?;
        Ok(record.name)
    }

    async fn start(&self, record: &ContainerRecord) -> Result<()> {
        self.engine.start(record).await?;
        if let Some(hook) = &self.opts.on_started {
            hook(record);
        }
        Ok(())
    }

    /// Waits for one dependency; `Err(reason)` when it did not get there.
    async fn wait_for(&self, dep: &DependsSpec) -> std::result::Result<(), String> {
        let timeout = dep
            .timeout
            .as_ref()
            .and_then(|t| t.duration().ok())
            .or(self.opts.dependency_timeout)
            .unwrap_or(DEFAULT_DEPENDENCY_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let records: Vec<ContainerRecord> = existing_of(self.engine, &self.spec.deployment)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|e| e.record)
            .filter(|r| r.container.service == format!("{}-{}", self.spec.deployment, dep.service))
            .collect();
        if records.is_empty() {
            return Err("has no containers".into());
        }
        let wants_health = matches!(
            dep.condition,
            DependsCondition::Healthy | DependsCondition::Ready
        );
        for record in &records {
            wait_started(self.engine, record, deadline)
                .await
                .map_err(|e| format!("did not start within {timeout:?}: {e}"))?;
            if wants_health && record.spec.health.is_some() {
                match wait_healthy(self.engine, record, deadline).await {
                    Ok(HealthStatus::Healthy) => {}
                    Ok(status) => {
                        return Err(format!(
                            "replica {} is still {status} after {timeout:?}",
                            record.name
                        ))
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        Ok(())
    }
}

/// Waits until the container has started (runs, or already ended).
async fn wait_started(
    engine: &Engine,
    record: &ContainerRecord,
    deadline: Instant,
) -> std::result::Result<(), String> {
    loop {
        match engine.state(record).await {
            Ok(ContainerState::Pending) => {}
            Ok(ContainerState::Failed { reason, .. }) => return Err(reason),
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
        if Instant::now() >= deadline {
            return Err("still created, not running".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Brings the deployment to `spec`: removes containers of services no
/// longer in it and scaled-down replicas, then per service in dependency
/// order waits for its dependencies and creates, replaces or starts its
/// replicas. Unchanged running replicas are left alone. One deployment is
/// applied at a time (a lock under `<root>/engine/deployments/`).
pub async fn apply(
    engine: &Engine,
    spec: &DeploymentSpec,
    opts: &DeployOptions,
) -> Result<DeployReport> {
    let _lock = lock_deployment(engine, &spec.deployment).await?;
    let mut spec = spec.clone();
    spec.fill_names();
    let existing = existing_of(engine, &spec.deployment).await?;
    let plan = plan(&spec, &existing);
    let name_of = |id: &str| {
        existing
            .iter()
            .find(|e| e.record.id == id)
            .map(|e| e.record.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let mut run = Run {
        engine,
        spec: &spec,
        opts,
        report: DeployReport {
            deployment: spec.deployment.clone(),
            ..Default::default()
        },
    };
    for step in &plan.removals {
        if let Step::Remove { id, .. } = step {
            run.remove(id).await?;
            run.report.removed.push(name_of(id));
        }
    }
    for service in &plan.services {
        let svc = spec.services.get(&service.name).ok_or_else(|| {
            EngineError::InvalidRequest(format!("service {:?} is not in the spec", service.name))
        })?;
        let needs_action = service
            .steps
            .iter()
            .any(|s| !matches!(s, Step::Keep { .. } | Step::Remove { .. }));
        if needs_action {
            for dep in &svc.depends {
                if let Err(reason) = run.wait_for(dep).await {
                    let msg = format!(
                        "dependency {} ({}) of service {} {reason}",
                        dep.service, dep.condition, service.name
                    );
                    match dep.on_timeout {
                        OnTimeout::Fail => {
                            return Err(EngineError::InvalidRequest(format!(
                                "{msg}; {} was not started (set on_timeout: warn or continue to start it anyway, or fix {})",
                                service.name, dep.service
                            )))
                        }
                        OnTimeout::Warn => {
                            run.say(format!("warning: {msg}; starting {} anyway", service.name));
                            run.report.warnings.push(msg);
                        }
                        OnTimeout::Continue => {}
                    }
                }
            }
        }
        for step in &service.steps {
            match step {
                Step::Keep { id, .. } => run.report.kept.push(name_of(id)),
                Step::Remove { id, .. } => {
                    run.remove(id).await?;
                    run.report.removed.push(name_of(id));
                }
                Step::Start { id, .. } => {
                    let record = engine.resolve(id)?;
                    run.start(&record).await?;
                    run.say(format!("started {}", record.name));
                    run.report.started.push(record.name);
                }
                Step::Replace {
                    service,
                    replica,
                    id,
                } => {
                    run.remove(id).await?;
                    let name = run.create(service, *replica).await?;
                    run.say(format!("replaced {name}"));
                    run.report.replaced.push(name);
                }
                Step::Create { service, replica } => {
                    let name = run.create(service, *replica).await?;
                    run.say(format!("created {name}"));
                    run.report.created.push(name);
                }
            }
        }
    }
    let path = deployments_dir(engine).join(format!("{}.json", spec.deployment));
    write_json_atomic(&path, &spec)?;
    Ok(run.report)
}

/// Stops and removes every container of `deployment`: service by service,
/// dependents first (reverse dependency order of the last applied spec, else
/// reverse creation order), the replicas of one service concurrently.
/// Returns the removed names; none is not an error.
pub async fn down(engine: &Engine, deployment: &str, opts: &DeployOptions) -> Result<DeployReport> {
    let _lock = lock_deployment(engine, deployment).await?;
    let existing = existing_of(engine, deployment).await?;
    let dir = deployments_dir(engine);
    let spec_path = dir.join(format!("{deployment}.json"));
    let saved: Option<DeploymentSpec> = std::fs::read(&spec_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    // Service keys (`<deployment>-<service>`), dependents first.
    let mut order: Vec<String> = saved
        .map(|s| {
            super::order::dependency_order(&s.services)
                .into_iter()
                .rev()
                .map(|n| format!("{deployment}-{n}"))
                .collect()
        })
        .unwrap_or_default();
    for e in existing.iter().rev() {
        if !order.contains(&e.record.container.service) {
            order.push(e.record.container.service.clone());
        }
    }
    let spec = DeploymentSpec {
        version: "v1".into(),
        deployment: deployment.to_string(),
        services: Default::default(),
    };
    let run = Run {
        engine,
        spec: &spec,
        opts,
        report: DeployReport::default(),
    };
    let mut report = DeployReport {
        deployment: deployment.to_string(),
        ..Default::default()
    };
    for key in &order {
        let group: Vec<&Existing> = existing
            .iter()
            .filter(|e| &e.record.container.service == key)
            .collect();
        let results =
            futures_util::future::join_all(group.iter().map(|e| run.remove_quiet(&e.record.id)))
                .await;
        for (e, r) in group.iter().zip(results) {
            r?;
            run.say(format!("removed {}", e.record.name));
            report.removed.push(e.record.name.clone());
        }
    }
    match std::fs::remove_file(&spec_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(EngineError::io(
                format!("removing {}", spec_path.display()),
                e,
            ))
        }
    }
    Ok(report)
}
