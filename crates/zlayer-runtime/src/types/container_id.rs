//! The identity of one replica of one service.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One container: replica `replica` of service `service`.
///
/// Displayed as `service-replica`, which is also the name of its state
/// directory in every runtime.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContainerId {
    /// The service name (for `zlayer run`, the container name).
    pub service: String,
    /// The replica number, starting at 1 for deployments (0 for single runs).
    pub replica: u32,
}

impl ContainerId {
    /// A container id for `service`, replica `replica`.
    pub fn new(service: impl Into<String>, replica: u32) -> Self {
        ContainerId {
            service: service.into(),
            replica,
        }
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.service, self.replica)
    }
}
