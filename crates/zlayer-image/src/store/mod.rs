//! [`ImageStore`]: the facade over content, records, snapshots and rootfs.
//!
//! ```text
//! <root>/content/        OCI image layout of verified blobs (see crate::content)
//! <root>/images/<k>.json          ImageRecord, k = sha256 of the literal reference
//! <root>/images/<k>.config.json   ImageConfig sidecar
//! <root>/snapshots/sha256/<diff_id hex>/fs   one extracted layer (overlay format)
//! <root>/snapshots/sha256/<diff_id hex>/meta.json
//! <root>/snapshots/tmp/           extractions in progress
//! <root>/snapshots/locks/         per-diff_id lock files
//! <root>/leases/<k>.json          one per container using a snapshot chain
//! <root>/locks/records.lock       serialises record / index.json updates
//! ```

mod inventory;
mod records;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use zlayer_spec::PullPolicy;

use crate::config::ImageConfig;
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::lock::SharedLock;
use crate::policy::{self, PullDecision};
use crate::record::{ImageRecord, LayerRecord};
use crate::rootfs::{self, Rootfs, RootfsMode};
use crate::snapshot::Snapshots;

pub use inventory::{Partial, PruneReport};

/// What [`ImageStore::usage`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Image records.
    pub images: usize,
    /// Bytes of every blob in the content store (layers compressed).
    pub blob_bytes: u64,
    /// Bytes of every extracted layer.
    pub snapshot_bytes: u64,
    /// Bytes of extractions in progress or interrupted (`snapshots/tmp/`).
    pub unpacking_bytes: u64,
    /// Partial downloads and imports in `content/ingest/`.
    pub partials: Vec<Partial>,
}

/// The image store rooted at a data root. Cheap to clone; safe to share
/// between threads and to open from several processes at once.
#[derive(Debug, Clone)]
pub struct ImageStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    content: ContentStore,
    snapshots: Snapshots,
    extractions: AtomicU64,
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        for sub in ["images", "leases", "locks"] {
            let p = root.join(sub);
            crate::fsutil::ensure_dir(&p).ctx("create directory", &p)?;
        }
        let content = ContentStore::open(&root.join("content"))?;
        let snapshots = Snapshots::open(&root.join("snapshots"))?;
        Ok(ImageStore {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                content,
                snapshots,
                extractions: AtomicU64::new(0),
            }),
        })
    }

    /// The data root.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The content (blob) store.
    pub fn content(&self) -> &ContentStore {
        &self.inner.content
    }

    /// Holds off [`ImageStore::prune`] while alive. Take one for the whole
    /// of a pull so blobs fetched before the image is recorded are not collected.
    pub fn gc_guard(&self) -> Result<SharedLock> {
        self.inner.content.gc_shared()
    }

    /// Finds the image stored under `reference` or any equivalent spelling
    /// (`alpine` ≡ `alpine:latest` ≡ `docker.io/library/alpine:latest`), or
    /// by its full digest (`sha256:<hex>`).
    pub fn lookup(&self, reference: &str) -> Result<Option<ImageRecord>> {
        records::lookup(&self.records_dir(), reference)
    }

    /// Like [`ImageStore::lookup`] but absent is an [`crate::Error::ImageNotFound`].
    pub fn get(&self, reference: &str) -> Result<ImageRecord> {
        self.lookup(reference)?
            .ok_or_else(|| crate::Error::ImageNotFound {
                reference: reference.to_string(),
            })
    }

    /// Records `reference` → `manifest_digest`.
    ///
    /// The manifest (or index, whose `linux/<host arch>` entry is used), its
    /// config and every layer blob must already be in the content store.
    /// Writes the record and the config sidecar atomically. If an equivalent
    /// spelling is already recorded, that record is updated in place.
    pub fn record_image(&self, reference: &str, manifest_digest: &Digest) -> Result<ImageRecord> {
        records::record(self, reference, manifest_digest)
    }

    /// The stored runtime config of an image (from the sidecar; rebuilt from
    /// the config blob if the sidecar is missing).
    pub fn image_config(&self, rec: &ImageRecord) -> Result<ImageConfig> {
        records::image_config(self, rec)
    }

    /// Makes sure every layer of `rec` is extracted; returns the snapshot
    /// directories lowest first. Missing layers are extracted in parallel.
    pub fn ensure_unpacked(&self, rec: &ImageRecord) -> Result<Vec<PathBuf>> {
        let _gc = self.gc_guard()?;
        self.inner
            .snapshots
            .ensure_all(&self.inner.content, &rec.layers, &self.inner.extractions)
    }

    /// Extracts one layer into its snapshot (no-op if already there) and returns the directory.
    pub fn unpack_layer(&self, layer: &LayerRecord) -> Result<PathBuf> {
        let _gc = self.gc_guard()?;
        self.inner
            .snapshots
            .ensure(&self.inner.content, layer, &self.inner.extractions)
    }

    /// Number of layer extractions this store handle (and its clones) performed.
    pub fn extraction_count(&self) -> u64 {
        self.inner.extractions.load(Ordering::SeqCst)
    }

    /// The snapshot directory of a layer, if it has been extracted.
    pub fn snapshot_dir(&self, diff_id: &Digest) -> Option<PathBuf> {
        self.inner.snapshots.existing(diff_id)
    }

    /// Builds `container_dir/rootfs`: an overlay of the image's layers with
    /// `container_dir/upper` and `container_dir/work`, or a copy when overlay
    /// is unavailable. Registers a lease so prune keeps the layers.
    pub fn prepare_rootfs(&self, rec: &ImageRecord, container_dir: &Path) -> Result<Rootfs> {
        self.prepare_rootfs_with(rec, container_dir, RootfsMode::Auto)
    }

    /// [`ImageStore::prepare_rootfs`] with an explicit [`RootfsMode`].
    pub fn prepare_rootfs_with(
        &self,
        rec: &ImageRecord,
        container_dir: &Path,
        mode: RootfsMode,
    ) -> Result<Rootfs> {
        let _gc = self.gc_guard()?;
        inventory::write_lease(self, container_dir, rec)?;
        let prepared = self
            .inner
            .snapshots
            .ensure_all(&self.inner.content, &rec.layers, &self.inner.extractions)
            .and_then(|layers| {
                let empty = self.inner.snapshots.empty_dir()?;
                rootfs::prepare(&layers, &empty, container_dir, mode)
            });
        if prepared.is_err() {
            let _ = inventory::remove_lease(self, container_dir);
        }
        prepared
    }

    /// Unmounts (lazily if busy) and removes `container_dir/{rootfs,upper,work}`
    /// and the lease. Idempotent.
    pub fn release_rootfs(&self, container_dir: &Path) -> Result<()> {
        rootfs::release(container_dir)?;
        inventory::remove_lease(self, container_dir)
    }

    /// Registers that `holder` (e.g. a container directory) uses `rec`'s layers,
    /// without building a rootfs. Prune keeps them until [`ImageStore::unregister_use`]
    /// or until `holder` no longer exists.
    pub fn register_use(&self, holder: &Path, rec: &ImageRecord) -> Result<()> {
        inventory::write_lease(self, holder, rec)
    }

    /// Drops a registration made by [`ImageStore::register_use`]. Idempotent.
    pub fn unregister_use(&self, holder: &Path) -> Result<()> {
        inventory::remove_lease(self, holder)
    }

    /// All stored images, sorted by reference.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        records::list(&self.records_dir())
    }

    /// Removes the record for `reference` (or an equivalent spelling, or a
    /// digest). Blobs and snapshots stay until [`ImageStore::prune`].
    pub fn remove(&self, reference: &str) -> Result<()> {
        records::remove(self, reference)
    }

    /// Deletes blobs, snapshots and stale leases that no image or live container uses.
    pub fn prune(&self) -> Result<PruneReport> {
        inventory::prune(self)
    }

    /// Imports an OCI layout directory, an oci-archive or a docker-archive
    /// (format detected). With `tag`, the (single) image is stored under it.
    ///
    /// A load that fails leaves nothing behind: its partial blobs are
    /// deleted, and so are the blobs it stored that no image or container
    /// uses (a load of the same layers at the same moment may have to store
    /// them again). The archive is still there, so nothing needs resuming.
    pub fn load(&self, path: &Path, tag: Option<&str>) -> Result<Vec<ImageRecord>> {
        let _gc = self.gc_guard()?;
        let (content, journal) = self.inner.content.journaled();
        let journaled = ImageStore {
            inner: Arc::new(Inner {
                root: self.inner.root.clone(),
                content,
                snapshots: self.inner.snapshots.clone(),
                extractions: AtomicU64::new(0),
            }),
        };
        let loaded = crate::load::load(&journaled, path, tag);
        if loaded.is_err() {
            if let Err(e) = inventory::undo_import(self, &journal.take_written()) {
                tracing::warn!("cleaning up after a failed load of {}: {e}", path.display());
            }
        }
        loaded
    }

    /// What the store holds, by kind, and the bytes each takes; see [`Usage`].
    pub fn usage(&self) -> Result<Usage> {
        let images = self.list()?;
        let mut blobs = 0;
        for d in self.inner.content.list_blobs()? {
            blobs += self.inner.content.blob_size(&d).unwrap_or(0);
        }
        Ok(Usage {
            images: images.len(),
            blob_bytes: blobs,
            snapshot_bytes: self.inner.snapshots.total_size(),
            unpacking_bytes: self.inner.snapshots.tmp_size(),
            partials: inventory::partials(self.inner.content.dir())?,
        })
    }

    /// Decides whether `reference` must be pulled under `policy`.
    ///
    /// An image whose blobs are incomplete counts as absent. `never` with
    /// the image absent is an error telling the user to pull or load it.
    pub fn pull_decision(&self, reference: &str, policy: PullPolicy) -> Result<PullDecision> {
        let local = self
            .lookup(reference)?
            .filter(|rec| rec.blobs().iter().all(|d| self.inner.content.has_blob(d)));
        policy::decide(reference, policy, local)
    }

    pub(crate) fn records_dir(&self) -> PathBuf {
        self.inner.root.join("images")
    }

    pub(crate) fn leases_dir(&self) -> PathBuf {
        self.inner.root.join("leases")
    }

    pub(crate) fn records_lock(&self) -> PathBuf {
        self.inner.root.join("locks/records.lock")
    }

    pub(crate) fn snapshots(&self) -> &Snapshots {
        &self.inner.snapshots
    }
}
