//! zlayer image store: registry client, content store, safe unpack, snapshots.
//!
//! The local side (this file's modules except `registry`, `pull` and
//! `progress`) keeps images under a data root:
//!
//! - [`ContentStore`]: verified blobs in OCI image layout (`<root>/content`).
//! - [`ImageStore`]: the facade — records (`reference` → manifest), image
//!   configs, per-layer snapshots, container rootfs (overlay or copy),
//!   loading archives, listing, removal, garbage collection and pull-policy
//!   decisions.
//! - [`unpack`]: hostile-input-safe layer extraction (gzip/zstd/plain).
//! - [`fixtures`] (feature `fixtures`): small busybox images for tests and benchmarks.
//!
//! See `docs/image-store.md` for the on-disk layout and locking rules.

mod config;
mod content;
mod digest;
mod error;
mod fsutil;
mod load;
mod lock;
pub mod manifest;
mod paths;
mod policy;
mod record;
mod reference;
mod rootfs;
mod snapshot;
mod store;
pub mod unpack;

#[cfg(feature = "fixtures")]
pub mod fixtures;

// Registry client, pulls and progress reporting.
pub mod progress;
pub mod pull;
pub mod registry;

pub use progress::{ConsoleProgress, NoProgress, PullProgress};
pub use pull::PullOptions;
pub use registry::RegistryAuth;

pub use config::ImageConfig;
pub use content::{ContentStore, IndexEntry, Ingest};
pub use digest::{Digest, Hasher};
pub use error::{Error, Result};
pub use fsutil::ensure_dir;
pub use lock::SharedLock;
pub use paths::{default_root, DEFAULT_ROOT, ROOT_ENV};
pub use policy::PullDecision;
pub use record::{ImageRecord, LayerRecord};
pub use reference::{Reference, DEFAULT_REGISTRY, DEFAULT_TAG};
pub use rootfs::{is_mountpoint, mounts_under, Rootfs, RootfsKind, RootfsMode};
pub use snapshot::SnapshotMeta;
pub use store::{ImageStore, Partial, PruneReport, Usage};
pub use zlayer_spec::PullPolicy;
