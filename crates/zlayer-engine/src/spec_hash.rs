//! A stable hash of a service spec, to tell changed services apart.

use sha2::{Digest, Sha256};
use zlayer_spec::ServiceSpec;

/// sha256 of the spec's canonical JSON, hex encoded.
pub fn spec_hash(spec: &ServiceSpec) -> String {
    let json = serde_json::to_vec(spec).unwrap_or_default();
    hex::encode(Sha256::digest(json))
}
