//! Restart decisions, free of I/O so they can be tested exhaustively.

use std::time::Duration;
use zlayer_spec::{RestartKind, RestartPolicy};

/// First restart delay when the policy gives none (docker's 100 ms).
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_millis(100);
/// The backoff never grows past this (unless the policy's own delay is longer).
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff to the policy's delay.
pub const RESET_BACKOFF_AFTER: Duration = Duration::from_secs(10);

/// What the supervisor knows when a container has exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitFacts {
    /// The exit code (128+N for signal N).
    pub code: i32,
    /// The user stopped or killed it (`stop`, `kill`).
    pub user_stopped: bool,
    /// Restarts by policy since the user last started it.
    pub attempts: u32,
    /// The current backoff step (0: the policy's delay).
    pub backoff_step: u32,
}

/// The supervisor's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after `delay`.
    Restart {
        /// How long to wait first.
        delay: Duration,
    },
    /// Leave it stopped, and why.
    Stay(String),
}

/// `base * 2^step`, capped at [`MAX_RESTART_DELAY`] (or `base` when that is
/// longer).
pub fn backoff(base: Duration, step: u32) -> Duration {
    let cap = MAX_RESTART_DELAY.max(base);
    let factor = 1u32.checked_shl(step.min(31)).unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(cap).min(cap)
}

/// Whether and when a container that just exited restarts.
///
/// - `no`: never.
/// - `always`: after every exit, unless the user stopped it.
/// - `on_failure`: after a non-zero exit, unless the user stopped it.
/// - `unless_stopped`: like `always`; the difference shows when the daemon
///   starts ([`restart_on_daemon_start`]).
///
/// `max_attempts` (any kind) stops restarting after that many restarts.
pub fn decide(policy: &RestartPolicy, facts: &ExitFacts) -> Decision {
    let wants = match policy.kind {
        RestartKind::No => return Decision::Stay("restart policy is no".into()),
        RestartKind::Always | RestartKind::UnlessStopped => true,
        RestartKind::OnFailure => facts.code != 0,
    };
    if facts.user_stopped {
        return Decision::Stay("stopped by the user".into());
    }
    if !wants {
        return Decision::Stay("exited with code 0 and the policy is on_failure".into());
    }
    if let Some(max) = policy.max_attempts {
        if facts.attempts >= max {
            return Decision::Stay(format!(
                "gave up after {max} restart attempt(s) (max_attempts)"
            ));
        }
    }
    let base = policy
        .delay
        .as_ref()
        .and_then(|d| d.duration().ok())
        .unwrap_or(DEFAULT_RESTART_DELAY);
    Decision::Restart {
        delay: backoff(base, facts.backoff_step),
    }
}

/// Whether the daemon starts a stopped container when it (re)starts, as
/// docker does: `always` even when the user stopped it, `unless_stopped`
/// and `on_failure` only when the user did not (and, for `on_failure`, after
/// a failure), never beyond `max_attempts`.
pub fn restart_on_daemon_start(policy: &RestartPolicy, facts: &ExitFacts) -> bool {
    if policy.kind == RestartKind::Always {
        let facts = ExitFacts {
            user_stopped: false,
            ..facts.clone()
        };
        return matches!(decide(policy, &facts), Decision::Restart { .. });
    }
    matches!(decide(policy, facts), Decision::Restart { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use zlayer_spec::DurationSpec;

    fn policy(kind: RestartKind, max: Option<u32>, delay: Option<&str>) -> RestartPolicy {
        RestartPolicy {
            kind,
            max_attempts: max,
            delay: delay.map(|d| DurationSpec::parse(d).unwrap()),
        }
    }

    fn facts(code: i32, user_stopped: bool, attempts: u32, step: u32) -> ExitFacts {
        ExitFacts {
            code,
            user_stopped,
            attempts,
            backoff_step: step,
        }
    }

    fn restarts(p: &RestartPolicy, f: &ExitFacts) -> bool {
        matches!(decide(p, f), Decision::Restart { .. })
    }

    #[test]
    fn kinds() {
        let no = policy(RestartKind::No, None, None);
        let always = policy(RestartKind::Always, None, None);
        let on_failure = policy(RestartKind::OnFailure, None, None);
        let unless = policy(RestartKind::UnlessStopped, None, None);
        for code in [0, 1, 137] {
            assert!(!restarts(&no, &facts(code, false, 0, 0)));
            assert!(restarts(&always, &facts(code, false, 0, 0)));
            assert!(restarts(&unless, &facts(code, false, 0, 0)));
            assert_eq!(restarts(&on_failure, &facts(code, false, 0, 0)), code != 0);
            // A user stop is never undone while the daemon runs.
            for p in [&always, &on_failure, &unless] {
                assert!(!restarts(p, &facts(code, true, 0, 0)));
            }
        }
    }

    #[test]
    fn max_attempts_and_growing_delay() {
        let p = policy(RestartKind::OnFailure, Some(3), Some("1s"));
        let delays: Vec<_> = (0..3)
            .map(|n| match decide(&p, &facts(1, false, n, n)) {
                Decision::Restart { delay } => delay,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            delays,
            [1, 2, 4].map(Duration::from_secs).to_vec(),
            "exponential from the policy's delay"
        );
        assert!(matches!(
            decide(&p, &facts(1, false, 3, 3)),
            Decision::Stay(r) if r.contains("max_attempts")
        ));
    }

    #[test]
    fn backoff_is_capped() {
        assert_eq!(
            backoff(DEFAULT_RESTART_DELAY, 0),
            Duration::from_millis(100)
        );
        assert_eq!(
            backoff(DEFAULT_RESTART_DELAY, 3),
            Duration::from_millis(800)
        );
        assert_eq!(backoff(DEFAULT_RESTART_DELAY, 20), MAX_RESTART_DELAY);
        assert_eq!(backoff(DEFAULT_RESTART_DELAY, 200), MAX_RESTART_DELAY);
        let long = Duration::from_secs(300);
        assert_eq!(backoff(long, 5), long, "a long base delay is not cut");
    }

    #[test]
    fn daemon_start_follows_docker() {
        let always = policy(RestartKind::Always, None, None);
        let unless = policy(RestartKind::UnlessStopped, None, None);
        let on_failure = policy(RestartKind::OnFailure, Some(2), None);
        assert!(restart_on_daemon_start(&always, &facts(0, true, 0, 0)));
        assert!(!restart_on_daemon_start(&unless, &facts(0, true, 0, 0)));
        assert!(restart_on_daemon_start(&unless, &facts(0, false, 0, 0)));
        assert!(restart_on_daemon_start(&on_failure, &facts(2, false, 1, 1)));
        assert!(!restart_on_daemon_start(
            &on_failure,
            &facts(2, false, 2, 2)
        ));
        assert!(!restart_on_daemon_start(
            &on_failure,
            &facts(0, false, 0, 0)
        ));
    }
}
