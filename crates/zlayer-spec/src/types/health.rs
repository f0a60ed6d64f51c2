//! [`HealthSpec`] and [`HealthCheck`]: how a service is judged healthy.

use serde::{Deserialize, Serialize};

use crate::DurationSpec;

/// When and how to probe a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    /// Time after start during which failures do not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_grace: Option<DurationSpec>,
    /// Time between probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationSpec>,
    /// Time one probe may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// Failed probes in a row before the service is unhealthy; defaults to 3.
    #[serde(default = "three")]
    pub retries: u32,
    /// The probe.
    pub check: HealthCheck,
}

fn three() -> u32 {
    3
}

/// A health probe, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HealthCheck {
    /// Healthy when a TCP connection to `port` succeeds.
    Tcp {
        /// Container port, 1-65535.
        port: u16,
    },
    /// Healthy when a GET of `url` answers `expect_status` (any 2xx when absent).
    Http {
        /// URL to fetch, e.g. `http://localhost:8080/health`.
        url: String,
        /// Expected HTTP status code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_status: Option<u16>,
    },
    /// Healthy when the command exits 0. A single string is run with
    /// `/bin/sh -c`; a list is run as is.
    Command {
        /// Program and arguments.
        #[serde(deserialize_with = "crate::scalar::command_line::deserialize")]
        command: Vec<String>,
    },
}
