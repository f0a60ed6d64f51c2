//! [`ResourcesSpec`] and [`GpuSpec`]: limits for a service.

use serde::{Deserialize, Serialize};

use crate::ByteSize;

/// Resource limits; every field is optional (no limit).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesSpec {
    /// CPU limit in cores; fractions allowed (`0.5`). Must be > 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Memory limit (`256Mi`, `1G`, plain bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// Maximum number of processes; -1 or absent means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// GPUs to pass through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuSpec>,
}

impl ResourcesSpec {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        self == &ResourcesSpec::default()
    }

    /// The memory limit in bytes, if one is set; the error names the field
    /// and the bad value.
    pub fn memory_bytes(&self) -> Result<Option<u64>, String> {
        self.memory
            .as_ref()
            .map(|m| m.bytes())
            .transpose()
            .map_err(|e| format!("resources.memory: {e}"))
    }
}

/// GPUs requested by a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// GPU vendor, e.g. `nvidia`.
    #[serde(deserialize_with = "crate::scalar::string::deserialize")]
    pub vendor: String,
    /// How many GPUs; defaults to 1.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}
