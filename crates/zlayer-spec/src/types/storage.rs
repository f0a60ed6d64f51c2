//! [`StorageSpec`]: volumes mounted into a service.

use serde::{Deserialize, Serialize};

use crate::ByteSize;

/// One mount, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StorageSpec {
    /// A host directory or file (`type: bind`).
    Bind {
        /// Absolute host path.
        source: String,
        /// Absolute path inside the container.
        target: String,
        /// Mount read-only; defaults to false.
        #[serde(default)]
        readonly: bool,
    },
    /// A named volume kept across restarts (`type: named`).
    Named {
        /// Volume name.
        name: String,
        /// Absolute path inside the container.
        target: String,
        /// Mount read-only; defaults to false.
        #[serde(default)]
        readonly: bool,
    },
    /// A fresh volume removed with the container (`type: anonymous`).
    Anonymous {
        /// Absolute path inside the container.
        target: String,
    },
    /// A memory-backed filesystem (`type: tmpfs`).
    Tmpfs {
        /// Absolute path inside the container.
        target: String,
        /// Size limit (`64Mi`); absent means the kernel default (half of RAM).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<ByteSize>,
    },
}

impl StorageSpec {
    /// The path inside the container.
    pub fn target(&self) -> &str {
        match self {
            StorageSpec::Bind { target, .. }
            | StorageSpec::Named { target, .. }
            | StorageSpec::Anonymous { target }
            | StorageSpec::Tmpfs { target, .. } => target,
        }
    }
}
