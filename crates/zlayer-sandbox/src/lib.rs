//! The `sandbox` isolation: host-native processes confined by Landlock
//! (filesystem, TCP ports, signal/socket scopes), a seccomp filter,
//! no_new_privs, dropped capabilities and rlimits, each running from a
//! copy-on-write view of its image's root filesystem. Hosted by
//! `zlayer-hosting`: this crate is the [`SandboxLauncher`] and its monitor
//! binary `zlayer-sandbox-shim`.
//!
//! Layout: `config` (settings, labels), `create` (the launcher's prepare:
//! rootfs, command, policy), `plan` (what prepare resolved), `overlay` (the
//! copy-on-write rootfs mount), `clone` (copies, layer merge),
//! `options`/`policy` (what a container may do),
//! `landlock_rules`/`seccomp`/`bpf`/`launch` (enforcement), `ports` (host
//! ports of endpoints), `launcher` (the [`zlayer_hosting::Launcher`]),
//! `workload` (the running sandbox inside its monitor). See
//! `docs/sandbox.md`.

pub mod bpf;
pub mod clone;
pub mod config;
pub mod create;
pub mod landlock_rules;
pub mod launch;
pub mod launcher;
pub mod options;
pub mod overlay;
pub mod plan;
pub mod policy;
pub mod ports;
pub mod seccomp;
pub mod workload;

pub use config::{
    SandboxConfig, ALLOW_SYSCALLS_LABEL, CONNECT_PORTS_LABEL, DEGRADED_LABEL, NETWORK_LABEL,
    READ_PATHS_LABEL, TTY_LABEL,
};
pub use launcher::SandboxLauncher;
pub use options::NetworkAccess;
