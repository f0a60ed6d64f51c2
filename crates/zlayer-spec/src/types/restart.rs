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
