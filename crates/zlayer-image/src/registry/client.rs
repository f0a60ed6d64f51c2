//! A registry client for pulls: manifests and resumable, verified blob
//! downloads with retries. Built on `oci-client` (protocol, auth challenges,
//! tokens, ranged GETs); this layer adds retries, resume into the content
//! store, error mapping and credentials lookup.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::RegistryOperation;
use tokio::sync::OnceCell;

use super::auth::{DockerConfig, RegistryAuth};
use super::endpoint::{api_host, use_plain_http};
use super::failure::{Ctx, Failure, Target};
use super::retry::RetryPolicy;
use crate::content::{ContentStore, Ingest};
use crate::manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::progress::PullProgress;
use crate::{Digest, Error, Result};

/// The manifest media types a pull accepts, in `Accept` header order.
pub const ACCEPTED_MANIFEST_TYPES: &[&str] = &[
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    DOCKER_MANIFEST,
];

/// How many body chunks may wait between the network and the disk writer.
const WRITE_QUEUE: usize = 64;

/// Connection settings for one registry.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Use plain HTTP even for a non-loopback registry (loopback registries
    /// always use plain HTTP).
    pub insecure: bool,
    /// Credentials; when `None` they are looked up in the Docker config.
    pub auth: Option<RegistryAuth>,
    /// Retry behaviour for transient failures.
    pub retry: RetryPolicy,
}

/// A pull client bound to one registry.
pub struct RegistryClient {
    inner: oci_client::Client,
    /// The registry as written in references (`docker.io`, `host:port`).
    registry: String,
    /// Where requests go (`registry-1.docker.io` for Docker Hub).
    host: String,
    auth: Option<RegistryAuth>,
    retry: RetryPolicy,
    authenticated: OnceCell<()>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("registry", &self.registry)
            .field("host", &self.host)
            .field("auth", &self.auth)
            .finish()
    }
}

/// A blob to download.
#[derive(Debug, Clone)]
pub struct BlobRef {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
}

enum Pumped {
    /// The body ended (possibly short; the loop checks the offset).
    Ended,
    /// The body failed mid-way.
    Interrupted(std::io::Error),
}

impl RegistryClient {
    /// A client for `registry` (`host[:port]` as written in a reference).
    ///
    /// Without explicit credentials, those saved by `docker login` (see
    /// [`DockerConfig::load_default`]) are used when present.
    pub fn new(registry: &str, opts: ClientOptions) -> Result<Self> {
        let auth = match opts.auth {
            Some(a) => Some(a),
            None => DockerConfig::load_default()?.credentials_for(registry)?,
        };
        // reqwest is built without a bundled crypto provider; install ring's
        // (a no-op when the process already chose one).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let host = api_host(registry);
        let protocol = if use_plain_http(registry, opts.insecure) {
            ClientProtocol::HttpsExcept(vec![host.clone()])
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(60)),
            user_agent: concat!("zlayer/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let inner = oci_client::Client::try_from(config).map_err(|e| Error::Registry {
            reference: registry.to_string(),
            reason: format!("cannot set up an HTTP client: {e}"),
        })?;
        Ok(RegistryClient {
            inner,
            registry: registry.to_string(),
            host,
            auth,
            retry: opts.retry,
            authenticated: OnceCell::new(),
        })
    }

    /// The registry as written in references.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    fn oci_auth(&self) -> oci_client::secrets::RegistryAuth {
        match &self.auth {
            Some(a) => {
                oci_client::secrets::RegistryAuth::Basic(a.username.clone(), a.password.clone())
            }
            None => oci_client::secrets::RegistryAuth::Anonymous,
        }
    }

    fn ctx<'a>(&'a self, reference: &'a str, target: Target<'a>) -> Ctx<'a> {
        Ctx {
            registry: &self.registry,
            reference,
            username: self.auth.as_ref().map(|a| a.username.as_str()),
            target,
        }
    }

    fn oci_ref(&self, repository: &str, tag_or_digest: &str) -> oci_client::Reference {
        if tag_or_digest.starts_with("sha256:") {
            oci_client::Reference::with_digest(
                self.host.clone(),
                repository.to_string(),
                tag_or_digest.to_string(),
            )
        } else {
            oci_client::Reference::with_tag(
                self.host.clone(),
                repository.to_string(),
                tag_or_digest.to_string(),
            )
        }
    }

    /// Runs `op` until it succeeds, fails permanently or runs out of retries.
    async fn with_retries<T, F, Fut>(&self, ctx: Ctx<'_>, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<
            Output = std::result::Result<T, oci_client::errors::OciDistributionError>,
        >,
    {
        let mut failed = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let Failure { error, transient } = ctx.classify(e);
                    failed += 1;
                    match self.retry.delay_after(failed).filter(|_| transient) {
                        Some(delay) => {
                            tracing::debug!(registry = %self.registry, %error, ?delay, "retrying");
                            tokio::time::sleep(delay).await;
                        }
                        None => return Err(error),
                    }
                }
            }
        }
    }

    /// Performs the auth handshake once (token fetch or basic-auth setup),
    /// so that a bad password is reported as such.
    async fn ensure_auth(&self, repository: &str, reference: &str) -> Result<()> {
        self.authenticated
            .get_or_try_init(|| async {
                let image = self.oci_ref(repository, "latest");
                let auth = self.oci_auth();
                self.with_retries(self.ctx(reference, Target::Manifest), || {
                    self.inner.auth(&image, &auth, RegistryOperation::Pull)
                })
                .await
                .map(|_| ())
            })
            .await
            .map(|_| ())
    }

    /// Fetches the manifest or index `tag_or_digest` of `repository` and
    /// returns its bytes and digest. When `tag_or_digest` is a digest the
    /// bytes are checked to hash to it.
    pub async fn fetch_manifest(
        &self,
        repository: &str,
        tag_or_digest: &str,
        display: &str,
    ) -> Result<(Vec<u8>, Digest)> {
        self.ensure_auth(repository, display).await?;
        let image = self.oci_ref(repository, tag_or_digest);
        let auth = self.oci_auth();
        let (bytes, _) = self
            .with_retries(self.ctx(display, Target::Manifest), || {
                self.inner
                    .pull_manifest_raw(&image, &auth, ACCEPTED_MANIFEST_TYPES)
            })
            .await?;
        let actual = Digest::of(&bytes);
        if tag_or_digest.starts_with("sha256:") && actual.to_string() != tag_or_digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest of {display}"),
                expected: tag_or_digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok((bytes.to_vec(), actual))
    }

    /// The digest the registry currently has for `tag_or_digest` (a `HEAD`
    /// request; falls back to `GET` when the registry sends no digest header).
    pub async fn resolve_digest(
        &self,
        repository: &str,
        tag_or_digest: &str,
        display: &str,
    ) -> Result<Digest> {
        self.ensure_auth(repository, display).await?;
        let image = self.oci_ref(repository, tag_or_digest);
        let auth = self.oci_auth();
        let text = self
            .with_retries(self.ctx(display, Target::Manifest), || {
                self.inner.fetch_manifest_digest(&image, &auth)
            })
            .await?;
        text.parse().map_err(|_| Error::Registry {
            reference: display.to_string(),
            reason: format!(
                "{} sent manifest digest {text:?}, which is not a sha256 digest",
                self.registry
            ),
        })
    }

    /// Downloads `blob` of `repository` into `store` unless it is already
    /// there; resumes a partial download left by an earlier attempt when the
    /// registry supports ranges. The blob is only visible in the store once
    /// its size and digest have been verified.
    ///
    /// Returns `true` when bytes were downloaded, `false` when the blob was
    /// already present.
    pub async fn fetch_blob(
        &self,
        repository: &str,
        blob: &BlobRef,
        store: &ContentStore,
        display: &str,
        progress: Option<&Arc<dyn PullProgress>>,
    ) -> Result<bool> {
        if store.has_blob(&blob.digest) {
            return Ok(false);
        }
        self.ensure_auth(repository, display).await?;
        let digest_text = blob.digest.to_string();
        let ctx = self.ctx(display, Target::Blob(&digest_text));
        let mut ingest = begin_ingest(store, &blob.digest, blob.size).await?;
        if ingest.is_complete() {
            // Another pull finished it while we waited for the lock.
            return Ok(false);
        }
        if let Some(p) = progress {
            p.layer_started(&blob.digest, blob.size, ingest.offset());
        }
        let image = self.oci_ref(repository, &digest_text);
        let desc = OciDescriptor {
            media_type: blob.media_type.clone(),
            digest: digest_text.clone(),
            size: i64::try_from(blob.size).unwrap_or(i64::MAX),
            ..OciDescriptor::default()
        };
        let mut failed = 0u32;
        loop {
            let offset = ingest.offset();
            if offset >= blob.size {
                break;
            }
            let attempt = self
                .inner
                .pull_blob_stream_partial(&image, &desc, offset, None)
                .await;
            let failure = match attempt {
                Err(e) => ctx.classify(e),
                Ok(resp) => {
                    let stream = match resp {
                        BlobResponse::Partial(s) => s,
                        BlobResponse::Full(s) => {
                            if offset > 0 {
                                // The registry ignored the range: start over.
                                ingest = blocking(move || {
                                    let mut ingest = ingest;
                                    ingest.restart().map(|_| ingest)
                                })
                                .await?;
                                if let Some(p) = progress {
                                    p.layer_retrying(
                                        &blob.digest,
                                        0,
                                        "registry does not support ranges",
                                    );
                                }
                            }
                            s
                        }
                    };
                    let (back, pumped) = pump(stream, ingest, &blob.digest, progress).await?;
                    ingest = back;
                    match pumped {
                        Pumped::Ended => {
                            if ingest.offset() > offset {
                                failed = 0;
                            }
                            if ingest.offset() >= blob.size {
                                break;
                            }
                            ctx.stream_failure(&std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                format!(
                                    "the body ended after {} of {} bytes",
                                    ingest.offset(),
                                    blob.size
                                ),
                            ))
                        }
                        Pumped::Interrupted(e) => {
                            if ingest.offset() > offset {
                                failed = 0;
                            }
                            ctx.stream_failure(&e)
                        }
                    }
                }
            };
            failed += 1;
            match self.retry.delay_after(failed).filter(|_| failure.transient) {
                Some(delay) => {
                    let reason = failure.error.to_string();
                    tracing::debug!(blob = %blob.digest, %reason, ?delay, "retrying blob download");
                    if let Some(p) = progress {
                        p.layer_retrying(&blob.digest, ingest.offset(), &reason);
                    }
                    tokio::time::sleep(delay).await;
                }
                // Dropping the ingest keeps the partial file for a later resume.
                None => return Err(failure.error),
            }
        }
        blocking(move || ingest.commit()).await?;
        Ok(true)
    }
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Registry {
            reference: String::new(),
            reason: format!("internal task failed: {e}"),
        })?
}

async fn begin_ingest(store: &ContentStore, digest: &Digest, size: u64) -> Result<Ingest> {
    let store = store.clone();
    let digest = digest.clone();
    blocking(move || store.begin_ingest(&digest, Some(size))).await
}

/// Streams `body` into `ingest` on a blocking writer thread (hashing and
/// disk writes overlap with the network), returning the ingest afterwards.
async fn pump<S, B>(
    mut body: S,
    mut ingest: Ingest,
    digest: &Digest,
    progress: Option<&Arc<dyn PullProgress>>,
) -> Result<(Ingest, Pumped)>
where
    S: Stream<Item = std::result::Result<B, std::io::Error>> + Unpin,
    B: AsRef<[u8]> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<B>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking(move || {
        let mut result = Ok(());
        while let Some(chunk) = rx.blocking_recv() {
            if let Err(e) = ingest.write_all(chunk.as_ref()) {
                result = Err(e);
                break;
            }
        }
        (ingest, result)
    });
    let mut outcome = Pumped::Ended;
    while let Some(item) = body.next().await {
        match item {
            Ok(chunk) => {
                let n = chunk.as_ref().len() as u64;
                if tx.send(chunk).await.is_err() {
                    break; // the writer failed; its error is reported below
                }
                if let Some(p) = progress {
                    p.layer_bytes(digest, n);
                }
            }
            Err(e) => {
                outcome = Pumped::Interrupted(e);
                break;
            }
        }
    }
    drop(tx);
    let (ingest, written) = writer.await.map_err(|e| Error::Registry {
        reference: digest.to_string(),
        reason: format!("internal writer task failed: {e}"),
    })?;
    written?;
    Ok((ingest, outcome))
}
