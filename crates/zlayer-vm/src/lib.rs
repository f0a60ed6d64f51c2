//! The `vm` isolation: a QEMU microVM per container, with zlayer's own
//! guest agent (`zlayer-guest`) as PID 1. See `docs/vm.md` for the design,
//! the protocol, the boot path and the measured choices.
//!
//! - [`kernel`] / [`bundle`]: the kernel bundle (resolve, build from
//!   Debian's kernel package, install from an OCI artifact);
//! - [`qemu`]: the QEMU command line, daemonized launch, QMP;
//! - [`accel`]: KVM-or-TCG probe with an on-disk cache;
//! - [`control`]: the multiplexed control connection;
//! - [`forward`]: published ports tunnelled over `Forward` channels;
//! - [`logsync`]: QEMU-written files → JSON-lines logs and exit record;
//! - [`runtime`]: the runtime itself, [`VmRuntime`].

pub mod accel;
pub mod bundle;
pub mod config;
pub mod control;
pub mod cpio;
pub mod forward;
pub mod kernel;
pub mod logsync;
mod machines;
pub mod modules;
pub mod qemu;
pub mod record;
pub mod runtime;

pub use bundle::{build_guest_binary, build_kernel_bundle, download_kernel_deb, BundleOptions};
pub use config::{Accel, VmConfig};
pub use kernel::{install_bundle_from_image, resolve_bundle, KernelBundle, INITRD_ENV, KERNEL_ENV};
pub use runtime::VmRuntime;
