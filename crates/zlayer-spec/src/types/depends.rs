//! [`DependsSpec`]: start ordering between services.

use serde::{Deserialize, Serialize};

use crate::macros::string_enum;
use crate::DurationSpec;

/// Waits for another service before this one starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependsSpec {
    /// Name of the service to wait for (a key of `services`).
    #[serde(deserialize_with = "crate::scalar::string::deserialize")]
    pub service: String,
    /// What to wait for; defaults to `healthy`.
    #[serde(default)]
    pub condition: DependsCondition,
    /// How long to wait; absent means the engine's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// What to do when the wait times out; defaults to `fail`.
    #[serde(default)]
    pub on_timeout: OnTimeout,
}

string_enum! {
    /// The state a dependency must reach.
    pub enum DependsCondition ("dependency condition") {
        /// Its process has started.
        Started => "started",
        /// Its health check passes (the default; `started` when it has none).
        #[default]
        Healthy => "healthy",
        /// It is healthy and its endpoints accept connections.
        Ready => "ready",
    }
}

string_enum! {
    /// What happens when a dependency does not reach its condition in time.
    pub enum OnTimeout ("on_timeout action") {
        /// Do not start this service (the default).
        #[default]
        Fail => "fail",
        /// Log a warning and start anyway.
        Warn => "warn",
        /// Start anyway, silently.
        Continue => "continue",
    }
}
