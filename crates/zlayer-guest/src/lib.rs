//! The in-VM guest agent of the `vm` isolation: PID 1 inside each microVM.
//!
//! Boot sequence ([`boot`]): mount `/proc`, `/sys`, `/dev`; set the clock
//! from `zlayer.boottime=`; load the kernel modules the bundle packed
//! (`finit_module`, in the order of `/lib/modules/modules.list`); bring up
//! `lo`; find the virtio-serial ports; mount the image rootfs (9p share
//! `zlroot`, read-only) under a tmpfs-backed overlay and switch onto it
//! (`MS_MOVE` + `chroot`, as `switch_root` does: an initramfs cannot be
//! `pivot_root`ed away). Then [`server`] serves the control protocol of
//! `zlayer-vm-proto` until `Shutdown`, reaping every zombie on the way.
//!
//! Everything that touches the kernel lives in [`sys`]; the other modules
//! are plain logic and unit-tested on the host.

pub mod boot;
pub mod cmdline;
pub mod error;
pub mod reaper;
pub mod server;
pub mod spawn;
pub mod sys;
pub mod users;

pub use error::{GuestError, Result};
