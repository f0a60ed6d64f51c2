//! The container's launch plan (`launch.json`): what `prepare` resolved,
//! everything its monitor needs to start (and restart) it. The OCI runtime
//! spec (`config.json`) sits beside it.

use super::network::NetworkPlan;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use zlayer_runtime::types::ContainerId;

/// What a container runs, as `prepare` resolved it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerPlan {
    /// The container (libcontainer's id and the network lease key).
    pub id: ContainerId,
    /// The image's digest, when known.
    pub image_digest: Option<String>,
    /// The cgroup path (relative to each hierarchy root).
    pub cgroup_path: String,
    /// Memory limit in bytes, if any (for the OOM message).
    pub memory_limit: Option<u64>,
    /// The cgroup file with the `oom_kill` counter (found once at create,
    /// so the monitor need not parse the host's mounts).
    #[serde(default)]
    pub oom_events: Option<PathBuf>,
    /// Whether the container shares the host's network namespace.
    pub host_network: bool,
    /// Whether the init runs on a pseudo-terminal.
    #[serde(default)]
    pub tty: bool,
    /// The seccomp profile: `docker-default` (generated from code, see
    /// `seccomp_profile`), or `None` for none. A `seccomp.json` in the state
    /// dir takes precedence.
    #[serde(default)]
    pub seccomp: Option<String>,
    /// The default user of execs: uid.
    pub uid: u32,
    /// The default user of execs: gid.
    pub gid: u32,
    /// The default user of execs: supplementary groups.
    pub additional_gids: Vec<u32>,
    /// The command (entrypoint + args), checked at start.
    pub argv: Vec<String>,
    /// The container's `PATH`, for finding commands.
    pub path: String,
    /// Its working directory.
    pub cwd: String,
    /// How the monitor connects the container to its network.
    pub network: NetworkPlan,
}
