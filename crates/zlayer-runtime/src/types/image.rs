//! Images as listed by a runtime.

use serde::{Deserialize, Serialize};

/// One image known to a runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The reference as the user typed it.
    pub reference: String,
    /// The manifest digest (`sha256:...`), when known.
    pub digest: Option<String>,
    /// Total size of its layers in bytes, when known.
    pub size_bytes: Option<u64>,
    /// Creation time from the image config (RFC 3339), when known.
    pub created: Option<String>,
}
