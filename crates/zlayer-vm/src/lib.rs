//! The `vm` isolation: a QEMU microVM per container, with zlayer's own
//! guest agent (`zlayer-guest`) as PID 1, hosted by `zlayer-hosting`: this
//! crate is the [`VmLauncher`] and its monitor binary `zlayer-vm-shim`. See
//! `docs/vm.md` for the design, the protocol, the boot path and the
//! measured choices.
//!
//! - [`kernel`] / [`bundle`]: the kernel bundle (resolve, build from
//!   Debian's kernel package, install from an OCI artifact);
//! - [`qemu`]: the QEMU command line, the child launch, QMP;
//! - [`accel`]: KVM-or-TCG probe with an on-disk cache;
//! - [`control`]: the multiplexed control connection to the guest;
//! - [`forward`]: published ports tunnelled over `Forward` channels;
//! - [`plan`]: the launch plan and how a spec becomes the guest's request;
//! - [`launcher`] / [`workload`]: the launcher and the running VM.

pub mod accel;
pub mod bundle;
pub mod config;
pub mod control;
pub mod cpio;
pub mod forward;
pub mod kernel;
pub mod launcher;
pub mod modules;
pub mod plan;
pub mod qemu;
pub mod workload;

pub use bundle::{build_guest_binary, build_kernel_bundle, download_kernel_deb, BundleOptions};
pub use config::{Accel, VmConfig};
pub use kernel::{install_bundle_from_image, resolve_bundle, KernelBundle, INITRD_ENV, KERNEL_ENV};
pub use launcher::{VmLauncher, MONITOR_NAME};
