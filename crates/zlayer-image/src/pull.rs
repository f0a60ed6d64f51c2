//! [`ImageStore::pull`]: fetch an image from its registry into the store.
//!
//! The manifest (and index), config and layer blobs all go through the
//! content store, which verifies size and digest before anything becomes
//! visible. Layers download in parallel (at most [`PARALLEL_DOWNLOADS`]),
//! and each layer is extracted as soon as its blob is committed, so
//! downloading and unpacking overlap. The image is recorded only once every
//! blob is present.

use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use tokio::task::JoinHandle;
use zlayer_spec::PullPolicy;

use crate::config::ImageConfig;
use crate::manifest::{self, ManifestDoc};
use crate::policy::PullDecision;
use crate::progress::PullProgress;
use crate::record::{ImageRecord, LayerRecord};
use crate::reference::Reference;
use crate::registry::client::BlobRef;
use crate::registry::{ClientOptions, RegistryAuth, RegistryClient, RetryPolicy};
use crate::{Digest, Error, ImageStore, Result};

/// How many layer blobs download at once.
pub const PARALLEL_DOWNLOADS: usize = 5;

/// How [`ImageStore::pull`] behaves.
#[derive(Clone, Default)]
pub struct PullOptions {
    /// When to contact the registry (see [`PullPolicy`]).
    pub policy: PullPolicy,
    /// Use plain HTTP for a non-loopback registry (loopback registries
    /// always use plain HTTP).
    pub insecure: bool,
    /// Credentials; when `None`, those saved by `docker login` in
    /// `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`) are used.
    pub auth: Option<RegistryAuth>,
    /// Receives per-layer progress events.
    pub progress: Option<Arc<dyn PullProgress>>,
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("policy", &self.policy)
            .field("insecure", &self.insecure)
            .field("auth", &self.auth)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Runs blocking store work on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Registry {
            reference: String::new(),
            reason: format!("internal task failed: {e}"),
        })?
}

/// What the registry resolved a reference to.
struct Resolved {
    /// Digest to record (the index's when the image came from one).
    record_digest: Digest,
    /// The single-platform manifest.
    manifest_digest: Digest,
    manifest: manifest::Manifest,
}

impl ImageStore {
    /// Makes `reference` available locally according to `opts.policy` and
    /// returns its record.
    ///
    /// - `always`: pull (blobs already present are not downloaded again).
    /// - `if_not_present`: use the local image without any network request;
    ///   pull only when it is absent.
    /// - `never`: use the local image; absent is an error.
    /// - `newer`: ask the registry for the current digest and pull only if it
    ///   differs from the local one.
    ///
    /// Pulled layers are extracted into snapshots as they arrive. A failed
    /// pull records nothing; an interrupted layer download is resumed by
    /// the next pull.
    pub async fn pull(&self, reference: &str, opts: &PullOptions) -> Result<ImageRecord> {
        let parsed = Reference::parse(reference)?;
        // A few stats and one small read, done inline: a blocking-pool
        // round trip costs more (a thread start in a single-threaded CLI).
        let decision = self.pull_decision(reference, opts.policy)?;
        let client = match decision {
            PullDecision::UseLocal(rec) => return Ok(rec),
            PullDecision::MustPull => self.client_for(&parsed, opts)?,
            PullDecision::CheckRemote(local) => {
                let client = self.client_for(&parsed, opts)?;
                let remote = client
                    .resolve_digest(parsed.repository(), &tag_or_digest(&parsed), reference)
                    .await?;
                if remote == local {
                    if let Some(rec) = self.lookup(reference)? {
                        tracing::debug!(%reference, digest = %remote, "local image is current");
                        return Ok(rec);
                    }
                }
                client
            }
        };
        self.pull_with(&client, &parsed, reference, opts.progress.as_ref())
            .await
    }

    fn client_for(&self, reference: &Reference, opts: &PullOptions) -> Result<RegistryClient> {
        RegistryClient::new(
            reference.registry(),
            ClientOptions {
                insecure: opts.insecure,
                auth: opts.auth.clone(),
                retry: RetryPolicy::default(),
            },
        )
    }

    /// Pulls unconditionally with an existing client.
    async fn pull_with(
        &self,
        client: &RegistryClient,
        parsed: &Reference,
        reference: &str,
        progress: Option<&Arc<dyn PullProgress>>,
    ) -> Result<ImageRecord> {
        // Keep prune away until the image is recorded.
        let store = self.clone();
        let _gc = blocking(move || store.gc_guard()).await?;

        let resolved = self.resolve(client, parsed, reference).await?;
        let m = &resolved.manifest;
        let repo = parsed.repository();

        // Config first: its diff_ids name the layers' snapshots.
        let config_ref = BlobRef {
            digest: m.config.digest.clone(),
            size: m.config.size,
            media_type: m.config.media_type.clone(),
        };
        client
            .fetch_blob(repo, &config_ref, self.content(), reference, None)
            .await?;
        let content = self.content().clone();
        let config_digest = m.config.digest.clone();
        let config_bytes = blocking(move || content.read_blob(&config_digest)).await?;
        let config = ImageConfig::parse(&config_bytes, &m.config.digest.to_string())?;
        if config.diff_ids.len() != m.layers.len() {
            return Err(Error::InvalidManifest {
                kind: "config",
                digest: m.config.digest.to_string(),
                reason: format!(
                    "it lists {} diff_ids but manifest {} has {} layers",
                    config.diff_ids.len(),
                    resolved.manifest_digest,
                    m.layers.len()
                ),
            });
        }
        let layers: Vec<LayerRecord> = m
            .layers
            .iter()
            .zip(&config.diff_ids)
            .map(|(d, diff_id)| LayerRecord {
                digest: d.digest.clone(),
                diff_id: diff_id.clone(),
                media_type: d.media_type.clone(),
                size: d.size,
            })
            .collect();
        if let Some(p) = progress {
            p.resolved(reference, &resolved.manifest_digest, layers.len());
        }

        self.fetch_and_unpack(client, repo, reference, &layers, progress)
            .await?;

        let store = self.clone();
        let (r, d) = (reference.to_string(), resolved.record_digest.clone());
        let rec = blocking(move || store.record_image(&r, &d)).await?;
        if let Some(p) = progress {
            p.finished(&resolved.manifest_digest);
        }
        Ok(rec)
    }

    /// Fetches the manifest (choosing this platform's entry of an index) and
    /// stores the manifest and index blobs.
    async fn resolve(
        &self,
        client: &RegistryClient,
        parsed: &Reference,
        reference: &str,
    ) -> Result<Resolved> {
        let repo = parsed.repository();
        let (bytes, digest) = client
            .fetch_manifest(repo, &tag_or_digest(parsed), reference)
            .await?;
        let doc = manifest::parse(&bytes, &digest.to_string())?;
        self.put_blob(&digest, bytes).await?;
        match doc {
            ManifestDoc::Manifest(m) => Ok(Resolved {
                record_digest: digest.clone(),
                manifest_digest: digest,
                manifest: m,
            }),
            ManifestDoc::Index(entries) => {
                let chosen = manifest::select_platform(&entries, &digest.to_string())?;
                let want = chosen.descriptor.digest.clone();
                let (mbytes, mdigest) = client
                    .fetch_manifest(repo, &want.to_string(), reference)
                    .await?;
                match manifest::parse(&mbytes, &mdigest.to_string())? {
                    ManifestDoc::Manifest(m) => {
                        self.put_blob(&mdigest, mbytes).await?;
                        Ok(Resolved {
                            record_digest: digest,
                            manifest_digest: mdigest,
                            manifest: m,
                        })
                    }
                    ManifestDoc::Index(_) => Err(Error::InvalidManifest {
                        kind: "index",
                        digest: digest.to_string(),
                        reason: format!(
                            "its entry {want} is another index; nested indexes are not supported"
                        ),
                    }),
                }
            }
        }
    }

    async fn put_blob(&self, digest: &Digest, bytes: Vec<u8>) -> Result<()> {
        let content = self.content().clone();
        let digest = digest.clone();
        blocking(move || {
            if content.has_blob(&digest) {
                return Ok(());
            }
            content.put_blob(&digest, &bytes)
        })
        .await
    }

    /// Downloads the layers (bounded parallelism) and extracts each one as
    /// soon as its blob is committed.
    async fn fetch_and_unpack(
        &self,
        client: &RegistryClient,
        repo: &str,
        reference: &str,
        layers: &[LayerRecord],
        progress: Option<&Arc<dyn PullProgress>>,
    ) -> Result<()> {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let unpack_slots = Arc::new(tokio::sync::Semaphore::new(cpus));
        let mut downloads = Box::pin(
            stream::iter(layers.iter().cloned())
                .map(|layer| {
                    let unpack_slots = unpack_slots.clone();
                    async move {
                        let blob = BlobRef {
                            digest: layer.digest.clone(),
                            size: layer.size,
                            media_type: layer.media_type.clone(),
                        };
                        let downloaded = client
                            .fetch_blob(repo, &blob, self.content(), reference, progress)
                            .await?;
                        if let Some(p) = progress {
                            p.layer_finished(&layer.digest, !downloaded);
                        }
                        Ok::<_, Error>(self.spawn_unpack(layer, unpack_slots, progress.cloned()))
                    }
                })
                .buffer_unordered(PARALLEL_DOWNLOADS),
        );

        let mut unpacks: Vec<JoinHandle<Result<()>>> = Vec::new();
        let mut first_error = None;
        while let Some(item) = downloads.next().await {
            match item {
                Ok(handle) => unpacks.push(handle),
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            }
        }
        // Stop the remaining downloads (their partial files stay for a resume).
        drop(downloads);
        // Always wait for started extractions so nothing runs on after we return.
        for handle in unpacks {
            let outcome = handle.await.map_err(|e| Error::Registry {
                reference: reference.to_string(),
                reason: format!("internal unpack task failed: {e}"),
            });
            if first_error.is_none() {
                if let Err(e) = outcome.and_then(|r| r) {
                    first_error = Some(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn spawn_unpack(
        &self,
        layer: LayerRecord,
        slots: Arc<tokio::sync::Semaphore>,
        progress: Option<Arc<dyn PullProgress>>,
    ) -> JoinHandle<Result<()>> {
        let store = self.clone();
        tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.map_err(|e| Error::Registry {
                reference: layer.digest.to_string(),
                reason: format!("internal unpack queue closed: {e}"),
            })?;
            let digest = layer.digest.clone();
            blocking(move || store.unpack_layer(&layer).map(|_| ())).await?;
            if let Some(p) = progress {
                p.layer_extracted(&digest);
            }
            Ok(())
        })
    }
}

/// The tag or `sha256:` digest to ask the registry for.
fn tag_or_digest(r: &Reference) -> String {
    match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => crate::reference::DEFAULT_TAG.to_string(),
    }
}
