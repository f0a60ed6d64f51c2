//! The one record of a container: what every front end, the engine and the
//! hosting layer know about it, written once at create.

use super::container_id::ContainerId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::SystemTime;
use zlayer_spec::{Isolation, ServiceSpec};
use zlayer_sys::procfs::ProcessRef;

/// Format version of [`ContainerRecord`].
pub const RECORD_VERSION: u32 = 2;

/// What to create (see [`crate::Runtime::create_container`]).
#[derive(Debug, Clone)]
pub struct NewContainer {
    /// The key runtimes know it by (`service-replica`, its state directory).
    pub container: ContainerId,
    /// 64 lowercase hex characters, unique on the node.
    pub id: String,
    /// Unique name (`--name`, generated, or `<deployment>-<service>-<n>`).
    pub name: String,
    /// The service spec (image, command, env, resources, labels...).
    pub spec: ServiceSpec,
    /// A hash of the spec as the user gave it (deployments compare it).
    pub spec_hash: String,
    /// The deployment it belongs to.
    pub deployment: Option<String>,
    /// Remove it once it exits (`--rm`).
    pub auto_remove: bool,
    /// Keep stdin open (`-i`).
    pub interactive: bool,
    /// Give it a terminal (`-t`).
    pub tty: bool,
    /// Its files need not survive a power loss (a foreground `run --rm`):
    /// nothing is flushed to disk.
    pub ephemeral: bool,
}

impl NewContainer {
    /// A request for `spec` as container `service-replica`, named like it
    /// (`service-replica`), with a fresh id and nothing else set.
    pub fn new(container: ContainerId, spec: ServiceSpec) -> Self {
        NewContainer {
            name: container.to_string(),
            id: new_container_id(),
            container,
            spec,
            spec_hash: String::new(),
            deployment: None,
            auto_remove: false,
            interactive: false,
            tty: false,
            ephemeral: false,
        }
    }
}

/// A container as recorded in `record.json` of its state directory. Runtimes
/// know containers by [`ContainerId`]; users by the 64-hex `id` (or a unique
/// prefix) and the unique `name`. This record ties them together and keeps
/// the spec the container was created from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Format version ([`RECORD_VERSION`]).
    pub version: u32,
    /// 64 lowercase hex characters.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The key runtimes know it by.
    pub container: ContainerId,
    /// The isolation it runs under.
    pub isolation: Isolation,
    /// The image reference as given.
    pub image: String,
    /// The spec it was created from (its `name` is the service name).
    pub spec: ServiceSpec,
    /// A hash of the spec as given, for deployments.
    pub spec_hash: String,
    /// When it was created.
    pub created: SystemTime,
    /// The deployment it belongs to, if any.
    pub deployment: Option<String>,
    /// Remove it when it exits (`--rm`).
    pub auto_remove: bool,
    /// Labels shown by `ps` and `inspect`: the spec's, plus the deployment's.
    pub labels: BTreeMap<String, String>,
    /// Keep stdin open (`-i`).
    pub interactive: bool,
    /// A terminal (`-t`).
    pub tty: bool,
    /// How often a restart policy restarted it.
    #[serde(default)]
    pub restart_count: u32,
    /// The signal `stop` sends first (the spec's, else the image's, else
    /// SIGTERM).
    pub stop_signal: i32,
    /// The process that created it: while the creation has not finished,
    /// a live creator means "being created", a dead one "interrupted".
    pub created_by: ProcessRef,
}

/// A container as `ps` and `inspect` show it.
#[derive(Debug, Clone)]
pub struct ContainerView {
    /// Its record.
    pub record: ContainerRecord,
    /// Its state now.
    pub state: crate::types::ContainerState,
    /// Host pid of its main process, while it runs.
    pub pid: Option<u32>,
}

impl ContainerRecord {
    /// The first 12 characters of the id, as `ps` shows it.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }
}

/// A new random container id: 64 lowercase hex characters.
pub fn new_container_id() -> String {
    let mut bytes = [0u8; 32];
    // getrandom(2) cannot fail for 32 bytes once the pool is initialised;
    // if it ever does, the clock and pid still make ids unique on a node.
    if getrandom::fill(&mut bytes).is_err() {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id());
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
