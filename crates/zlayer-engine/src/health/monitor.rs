//! Running probes on the spec's schedule.

use super::probe::probe_once;
use super::status::{HealthLogEntry, HealthState, HealthStatus, HealthStore};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use std::time::{Duration, Instant, SystemTime};
use zlayer_runtime::ContainerRecord;
use zlayer_spec::{DurationSpec, HealthCheck, HealthSpec};

/// While no probe has passed yet, probes run at least this often (docker's
/// `start_interval`), so a dependency is seen healthy soon after it is.
pub const STARTING_INTERVAL: Duration = Duration::from_millis(500);

/// The schedule of a health check, defaults filled in (docker's: interval
/// 30 s, timeout 30 s, no start grace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthTiming {
    /// Failures during this time after start do not count.
    pub start_grace: Duration,
    /// Time between probes once healthy.
    pub interval: Duration,
    /// Time one probe may take.
    pub timeout: Duration,
    /// Failures in a row before unhealthy.
    pub retries: u32,
}

impl HealthTiming {
    /// The timing of `spec`; unparsable durations (rejected by validation
    /// anyway) fall back to the defaults.
    pub fn from_spec(spec: &HealthSpec) -> Self {
        let d = |v: &Option<DurationSpec>, default: Duration| {
            v.as_ref()
                .and_then(|d| d.duration().ok())
                .unwrap_or(default)
        };
        HealthTiming {
            start_grace: d(&spec.start_grace, Duration::ZERO),
            interval: d(&spec.interval, Duration::from_secs(30)).max(Duration::from_millis(10)),
            timeout: d(&spec.timeout, Duration::from_secs(30)).max(Duration::from_millis(10)),
            retries: spec.retries.max(1),
        }
    }

    /// The pause before the next probe given the current status.
    pub fn next_delay(&self, status: HealthStatus) -> Duration {
        match status {
            HealthStatus::Starting => self.interval.min(STARTING_INTERVAL),
            _ => self.interval,
        }
    }
}

async fn probe_and_record(
    engine: &Engine,
    record: &ContainerRecord,
    check: &HealthCheck,
    timing: &HealthTiming,
    started: Instant,
    state: &mut HealthState,
) {
    let start = SystemTime::now();
    let outcome = probe_once(engine, record, check, timing.timeout).await;
    let entry = HealthLogEntry {
        start,
        end: SystemTime::now(),
        exit_code: outcome.exit_code,
        output: outcome.output,
    };
    let counts = started.elapsed() >= timing.start_grace;
    state.record(entry, counts, timing.retries);
}

async fn alive(engine: &Engine, record: &ContainerRecord) -> bool {
    engine.state(record).await.is_ok_and(|s| s.is_alive())
}

/// Probes `record` on its schedule until the container stops, persisting
/// each result; `on_change` hears every status change. Returns at once for a
/// container without a health check. Whoever (re)starts a container clears
/// its old status first ([`HealthStore::remove`]).
pub async fn run_health_loop(
    engine: &Engine,
    record: &ContainerRecord,
    on_change: &(dyn Fn(HealthStatus) + Send + Sync),
) -> Result<()> {
    let Some(spec) = &record.spec.health else {
        return Ok(());
    };
    let store = HealthStore::open(engine.root());
    let timing = HealthTiming::from_spec(spec);
    let started = Instant::now();
    // Continue from what another prober (a deployment waiting on this
    // container, an earlier daemon) found; nothing is written before the
    // first probe of our own.
    let mut state = store.load(&record.id)?.unwrap_or_default();
    on_change(state.status);
    while alive(engine, record).await {
        let before = state.status;
        probe_and_record(engine, record, &spec.check, &timing, started, &mut state).await;
        if !alive(engine, record).await {
            break;
        }
        store.save(&record.id, &state)?;
        if state.status != before {
            on_change(state.status);
        }
        tokio::time::sleep(timing.next_delay(state.status)).await;
    }
    Ok(())
}

/// Probes `record` until a probe passes (→ `Healthy`), the container stops
/// (an error) or `deadline` passes (→ the last status, `Starting` or
/// `Unhealthy`). A container without a health check counts as healthy once
/// it runs. Results are persisted like the daemon's.
pub async fn wait_healthy(
    engine: &Engine,
    record: &ContainerRecord,
    deadline: Instant,
) -> Result<HealthStatus> {
    let Some(spec) = &record.spec.health else {
        return Ok(HealthStatus::Healthy);
    };
    let store = HealthStore::open(engine.root());
    let timing = HealthTiming::from_spec(spec);
    let started = Instant::now();
    let mut state = HealthState::default();
    loop {
        let st = engine.state(record).await?;
        if !st.is_alive() {
            return Err(EngineError::InvalidRequest(format!(
                "container {} is {st} and can never become healthy; see `zlayer logs {}`",
                record.name, record.name
            )));
        }
        probe_and_record(engine, record, &spec.check, &timing, started, &mut state).await;
        store.save(&record.id, &state)?;
        if state.status == HealthStatus::Healthy {
            return Ok(HealthStatus::Healthy);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(state.status);
        }
        let pause = timing
            .next_delay(HealthStatus::Starting)
            .min(deadline.saturating_duration_since(now));
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_defaults_and_starting_interval() {
        let spec: HealthSpec =
            serde_json::from_value(serde_json::json!({"check": {"type": "tcp", "port": 80}}))
                .unwrap();
        let t = HealthTiming::from_spec(&spec);
        assert_eq!(t.interval, Duration::from_secs(30));
        assert_eq!(t.timeout, Duration::from_secs(30));
        assert_eq!(t.start_grace, Duration::ZERO);
        assert_eq!(t.retries, 3);
        assert_eq!(t.next_delay(HealthStatus::Starting), STARTING_INTERVAL);
        assert_eq!(t.next_delay(HealthStatus::Healthy), Duration::from_secs(30));
        let spec: HealthSpec = serde_json::from_value(serde_json::json!({
            "interval": "100ms", "timeout": "1s", "start_grace": "2s", "retries": 0,
            "check": {"type": "command", "command": "true"}
        }))
        .unwrap();
        let t = HealthTiming::from_spec(&spec);
        assert_eq!(
            t.next_delay(HealthStatus::Starting),
            Duration::from_millis(100)
        );
        assert_eq!((t.start_grace, t.retries), (Duration::from_secs(2), 1));
    }
}
