//! The `container` isolation: Linux namespaces + cgroups + overlayfs
//! through youki's `libcontainer`, hosted by `zlayer-hosting`: this crate is
//! the [`ContainerLauncher`] and its monitor binary `zlayer-shim`.
//!
//! See `docs/container-runtime.md` for the design. In short:
//! - `prepare` (at create) makes the rootfs overlay, the OCI `config.json`
//!   and the `/etc` files, and checks the network plan;
//! - the monitor creates and starts the container with libcontainer in its
//!   own process (the init is its child and dies with it), attaches the
//!   network first, and runs execs through a forked tenant helper;
//! - `teardown` releases network, libcontainer state, cgroups, rootfs and
//!   the image lease.
//!
//! Networking (see [`network`] and `docs/networking.md`): `host` shares
//! the host's network namespace, `none` gets a private one with only `lo`
//! up, `bridge` / `bridge:NAME` an `eth0` on a zlayer bridge with an
//! address, published ports and names; the monitor attaches it before the
//! workload starts and detaches it when the workload ends.

pub mod cgroup_stats;
pub mod cgroup_warmup;
pub mod cgroups;
pub mod command;
pub mod config;
pub mod create;
pub mod errors;
pub mod exec;
pub mod executor;
pub mod freezer;
pub mod launcher;
pub mod netns;
pub mod network;
pub mod oci_spec_builder;
pub mod paths;
pub mod plan;
pub mod rootfs_fs;
pub mod seccomp_bpf;
pub mod seccomp_profile;
pub mod storage;
pub mod teardown;
pub mod tty;
pub mod user;
pub mod workload;

pub use config::{ContainerConfig, MONITOR_NAME};
pub use launcher::ContainerLauncher;
pub use paths::{cgroup_path, ContainerPaths};
pub use plan::ContainerPlan;
