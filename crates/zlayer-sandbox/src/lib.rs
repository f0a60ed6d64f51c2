//! The `sandbox` isolation: host-native processes confined by Landlock
//! (filesystem, TCP ports, signal/socket scopes), a seccomp filter, no_new_privs,
//! dropped capabilities and rlimits, each running from a copy-on-write clone
//! of its image's root filesystem and supervised by a per-container monitor
//! (`zlayer-sandbox-shim`) that survives the agent.
//!
//! Layout: `config` (settings, labels), `layout` (files of a container),
//! `images` (registered rootfs directories, store images), `overlay` (the
//! copy-on-write rootfs mount), `clone` (reflink copies, layer merge), `options`/`policy` (what a container may do),
//! `landlock_rules`/`seccomp`/`launch` (enforcement), `shim` (the monitor),
//! `control` (its socket protocol), `state` (phase from files), `create`,
//! `lifecycle`, `exec`, `ports`, `store` (image store adapter), `trash` (deferred
//! deletion), `runtime` (the [`Runtime`](zlayer_runtime::Runtime) impl).
//! See `docs/sandbox.md`.

pub mod bpf;
pub mod clone;
pub mod config;
pub mod control;
pub mod create;
pub mod exec;
pub mod images;
pub mod landlock_rules;
pub mod launch;
pub mod layout;
pub mod lifecycle;
pub mod options;
pub mod overlay;
pub mod policy;
pub mod ports;
pub mod record;
pub mod runtime;
pub mod seccomp;
pub mod shim;
pub mod state;
pub mod store;
pub mod trash;

pub use config::{
    SandboxConfig, ALLOW_SYSCALLS_LABEL, CONNECT_PORTS_LABEL, DEGRADED_LABEL, NETWORK_LABEL,
    READ_PATHS_LABEL, TTY_LABEL,
};
pub use images::{ImageDefaults, ImageResolver, ImageRootfs, ResolvedImage};
pub use options::NetworkAccess;
pub use runtime::SandboxRuntime;
pub use store::StoreImages;
