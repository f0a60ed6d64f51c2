//! The crate's single error type.

use std::io;
use std::path::{Path, PathBuf};

/// Result alias used throughout `zlayer-image`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the image store, registry client and unpacker.
///
/// Every message says what was wrong and, where there is one, how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A digest string was not `sha256:<64 lowercase hex>`.
    #[error("invalid digest {input:?}: {reason} (expected \"sha256:\" followed by 64 lowercase hex characters)")]
    InvalidDigest {
        /// The text that failed to parse.
        input: String,
        /// Why it was rejected.
        reason: String,
    },

    /// An image reference could not be parsed.
    #[error("invalid image reference {input:?}: {reason} (expected e.g. `alpine`, `alpine:3.19`, `docker.io/library/alpine:latest` or `host:5000/repo@sha256:<hex>`)")]
    InvalidReference {
        /// The text that failed to parse.
        input: String,
        /// Why it was rejected.
        reason: String,
    },

    /// Content did not hash to the digest it was supposed to have.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}; the data is corrupt or truncated and was discarded — pull or load the image again")]
    DigestMismatch {
        /// What was being verified (a blob, a layer's diff_id, ...).
        what: String,
        /// The digest that was expected.
        expected: String,
        /// The digest the bytes actually have.
        actual: String,
    },

    /// Content did not have the size it was supposed to have.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}; the data is corrupt or truncated and was discarded — pull or load the image again")]
    SizeMismatch {
        /// What was being verified.
        what: String,
        /// The expected size in bytes.
        expected: u64,
        /// The actual size in bytes.
        actual: u64,
    },

    /// A blob is not in the content store.
    #[error("blob {digest} is not in the content store ({path}); pull or load the image that uses it first")]
    BlobNotFound {
        /// The missing blob.
        digest: String,
        /// Where it was expected.
        path: PathBuf,
    },

    /// A filesystem operation failed. On a full disk the message says so
    /// and what to do (see [`Error::is_disk_full`]).
    #[error("{op} {path}: {}", describe_io(source))]
    Io {
        /// What was being done ("open", "rename", ...).
        op: String,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A layer tar entry tried to escape the extraction root or was otherwise unsafe.
    #[error("refused unsafe entry {entry:?} in layer {layer}: {reason}; the layer was rejected and nothing was written outside its snapshot directory")]
    UnsafeEntry {
        /// The layer (digest) being extracted.
        layer: String,
        /// The tar entry path as written in the archive.
        entry: String,
        /// Why it was refused.
        reason: String,
    },

    /// A layer could not be decompressed or extracted.
    #[error("cannot unpack layer {layer}: {reason}")]
    Unpack {
        /// The layer (digest) being extracted.
        layer: String,
        /// What went wrong.
        reason: String,
    },

    /// A manifest, index or config blob was malformed or unsupported.
    #[error("invalid {kind} {digest}: {reason}")]
    InvalidManifest {
        /// "manifest", "index" or "config".
        kind: &'static str,
        /// The blob's digest (or a description of where it came from).
        digest: String,
        /// What was wrong.
        reason: String,
    },

    /// No image is stored under the given reference.
    #[error("image {reference} not found locally; run `zlayer pull {reference}` or `zlayer load <archive>` first")]
    ImageNotFound {
        /// The reference that was looked up.
        reference: String,
    },

    /// The image is absent and the pull policy forbids pulling it.
    #[error("image {reference} not found locally and pull policy is never; run `zlayer pull {reference}` or `zlayer load`")]
    NotPresentPolicyNever {
        /// The reference that was looked up.
        reference: String,
    },

    /// An image archive or layout could not be imported.
    #[error("cannot load {path}: {reason}")]
    Load {
        /// The archive or directory being loaded.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// Mounting or unmounting a container root filesystem failed.
    #[error("cannot {op} rootfs at {path}: {reason}")]
    Rootfs {
        /// "mount", "unmount", "copy" ...
        op: &'static str,
        /// The rootfs path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A JSON document could not be read or written.
    #[error("invalid JSON in {what}: {source}")]
    Json {
        /// The document (path or description).
        what: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },

    /// A registry operation failed (used by the registry client).
    #[error("registry error for {reference}: {reason}")]
    Registry {
        /// The image reference involved.
        reference: String,
        /// What went wrong.
        reason: String,
    },

    // --- registry client / pulls (h3) ---
    /// The registry wants credentials and none were available.
    #[error(
        "authentication required for {registry}; run `docker login {registry}` or pass credentials"
    )]
    AuthRequired {
        /// The registry host that answered 401.
        registry: String,
    },

    /// The registry rejected the credentials that were sent.
    #[error("authentication failed for {registry} as user {username:?}: {reason}; check the credentials (`docker login {registry}`)")]
    AuthFailed {
        /// The registry host.
        registry: String,
        /// The user name that was tried.
        username: String,
        /// What the registry said.
        reason: String,
    },

    /// The tag or digest does not exist in the registry.
    #[error(
        "manifest unknown: {reference} not found in {registry}; check the repository name and tag"
    )]
    ManifestUnknown {
        /// The reference that was asked for.
        reference: String,
        /// The registry host.
        registry: String,
    },

    /// The registry could not be reached at all.
    #[error("cannot reach registry {registry}: {reason}; check that it is running and the address is right")]
    RegistryUnreachable {
        /// The registry address (`host:port`).
        registry: String,
        /// The connection error.
        reason: String,
    },

    /// A Docker client configuration file could not be used.
    #[error("cannot read registry credentials from {path}: {reason}")]
    DockerConfig {
        /// The `config.json` path.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// Builds an [`Error::Io`] for `op` on `path`.
    pub fn io(op: impl Into<String>, path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            op: op.into(),
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Whether this is a write that failed because the file system is full
    /// (`ENOSPC`) or the user's quota is spent (`EDQUOT`).
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Error::Io { source, .. } if is_disk_full(source))
    }

    /// Builds an [`Error::Json`] for the document `what`.
    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }
}

/// Whether `e` says the file system is full or the quota is spent.
pub(crate) fn is_disk_full(e: &io::Error) -> bool {
    use rustix::io::Errno;
    e.raw_os_error()
        .is_some_and(|n| n == Errno::NOSPC.raw_os_error() || n == Errno::DQUOT.raw_os_error())
}

/// The OS error's text; on a full disk followed by what to do about it.
fn describe_io(e: &io::Error) -> String {
    if is_disk_full(e) {
        format!("{e}: the disk is full; free some space (`zlayer system df` shows what zlayer keeps, `zlayer image prune` removes what no image or container uses) and try again")
    } else {
        e.to_string()
    }
}

/// Adds path context to `io::Result`s.
pub(crate) trait IoContext<T> {
    /// Wraps the error as [`Error::Io`] with operation `op` on `path`.
    fn ctx(self, op: &str, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn ctx(self, op: &str, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e.into()))
    }
}
