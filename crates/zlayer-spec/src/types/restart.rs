//! [`RestartPolicy`]: what happens when a service's process exits.

use serde::{Deserialize, Serialize};

use crate::macros::string_enum;
use crate::DurationSpec;

/// When and how often to restart.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    /// When to restart; defaults to `no`.
    #[serde(default)]
    pub kind: RestartKind,
    /// Give up after this many restarts; absent means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Wait before each restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DurationSpec>,
}

impl RestartPolicy {
    /// Whether this is the default (never restart).
    pub fn is_default(&self) -> bool {
        self == &RestartPolicy::default()
    }

    /// Docker's restart policy: `name` is `no`, `always`, `on-failure` or
    /// `unless-stopped` (empty = `no`; underscores accepted), `max_retries`
    /// its `MaximumRetryCount` (0 = no limit; only for `on-failure`).
    pub fn from_docker(name: &str, max_retries: i64) -> Result<RestartPolicy, String> {
        let kind = match name {
            "" | "no" => RestartKind::No,
            "always" => RestartKind::Always,
            "on-failure" | "on_failure" => RestartKind::OnFailure,
            "unless-stopped" | "unless_stopped" => RestartKind::UnlessStopped,
            other => {
                return Err(format!(
                    "invalid restart policy {other:?}; use no, always, on-failure[:N] or unless-stopped"
                ))
            }
        };
        if max_retries < 0 {
            return Err(format!(
                "invalid maximum retry count {max_retries}: must be 0 or more"
            ));
        }
        if max_retries > 0 && kind != RestartKind::OnFailure {
            return Err(
                "a maximum retry count can only be used with the on-failure restart policy".into(),
            );
        }
        Ok(RestartPolicy {
            kind,
            max_attempts: (max_retries > 0).then(|| u32::try_from(max_retries).unwrap_or(u32::MAX)),
            delay: None,
        })
    }

    /// `docker run --restart` syntax: `no`, `always`, `unless-stopped`,
    /// `on-failure` or `on-failure:N`.
    pub fn parse_docker_flag(flag: &str) -> Result<RestartPolicy, String> {
        let (name, max) = match flag.split_once(':') {
            Some((name, n)) => (
                name,
                n.parse::<i64>()
                    .map_err(|_| format!("invalid retry count {n:?} in --restart {flag}"))?,
            ),
            None => (flag, 0),
        };
        RestartPolicy::from_docker(name, max)
    }
}

#[cfg(test)]
mod docker_syntax_tests {
    use super::*;

    #[test]
    fn docker_restart_flags() {
        assert_eq!(
            RestartPolicy::parse_docker_flag("on-failure:3").unwrap(),
            RestartPolicy {
                kind: RestartKind::OnFailure,
                max_attempts: Some(3),
                delay: None
            }
        );
        assert_eq!(
            RestartPolicy::parse_docker_flag("always").unwrap().kind,
            RestartKind::Always
        );
        assert!(RestartPolicy::parse_docker_flag("always:2").is_err());
        assert!(RestartPolicy::parse_docker_flag("sometimes").is_err());
        assert!(RestartPolicy::parse_docker_flag("on-failure:x").is_err());
        assert!(RestartPolicy::from_docker("on-failure", -1).is_err());
        assert!(RestartPolicy::parse_docker_flag("no").unwrap().is_default());
    }
}

string_enum! {
    /// When a service is restarted.
    pub enum RestartKind ("restart kind") {
        /// Never (the default).
        #[default]
        No => "no",
        /// After every exit.
        Always => "always",
        /// After a non-zero exit.
        OnFailure => "on_failure",
        /// After every exit unless stopped by the user.
        UnlessStopped => "unless_stopped",
    }
}
