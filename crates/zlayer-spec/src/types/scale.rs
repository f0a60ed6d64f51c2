//! [`ScaleSpec`]: how many replicas of a service run.

use serde::{Deserialize, Serialize};

/// Replica policy, tagged by `mode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScaleSpec {
    /// Exactly `replicas` instances (`mode: fixed`); at least 1.
    Fixed {
        /// Number of instances; defaults to 1.
        #[serde(default = "one")]
        replicas: u32,
    },
    /// Instances are started and stopped by hand (`mode: manual`); one is
    /// started on deploy.
    Manual,
}

impl Default for ScaleSpec {
    fn default() -> Self {
        ScaleSpec::Fixed { replicas: 1 }
    }
}

fn one() -> u32 {
    1
}
