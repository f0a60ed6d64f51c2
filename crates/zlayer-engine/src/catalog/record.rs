//! What the engine remembers about one container.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::SystemTime;
use zlayer_runtime::ContainerId;
use zlayer_spec::ServiceSpec;

/// The engine's record of one container, beside the runtime's own state.
///
/// Runtimes know containers by [`ContainerId`]; users know them by a
/// 64-hex id (or a unique prefix) and a unique name. This record ties them
/// together and keeps the spec the container was created from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 lowercase hex characters.
    pub id: String,
    /// Unique name (`--name`, or generated; `<deployment>-<service>-<n>` for deployments).
    pub name: String,
    /// The key the runtime knows it by.
    pub container: ContainerId,
    /// The isolation it runs under (`container`, `sandbox`, `vm`).
    pub isolation: String,
    /// The image reference as given.
    pub image: String,
    /// The spec it was created from.
    pub spec: ServiceSpec,
    /// When it was created.
    pub created: SystemTime,
    /// The deployment it belongs to, if any.
    pub deployment: Option<String>,
    /// A hash of `spec`, used by deployments to tell changed services.
    pub spec_hash: String,
    /// Remove it when it exits (`run --rm`).
    pub auto_remove: bool,
    /// Docker-style labels shown by `ps`/`inspect` (the spec's labels plus engine ones).
    pub labels: BTreeMap<String, String>,
    /// Keep stdin open for `-i`.
    pub interactive: bool,
    /// Allocate a terminal (`-t`).
    pub tty: bool,
    /// How often a restart policy restarted it.
    pub restart_count: u32,
}

impl ContainerRecord {
    /// The first 12 characters of the id, as `ps` shows it.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}
