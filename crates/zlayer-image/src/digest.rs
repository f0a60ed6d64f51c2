//! Content digests (`sha256:<64 hex>`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A SHA-256 content digest, written `sha256:<64 lowercase hex>`.
///
/// Only SHA-256 is accepted: every other algorithm or malformed string is
/// rejected with [`Error::InvalidDigest`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The only supported algorithm name.
    pub const ALGORITHM: &'static str = "sha256";

    /// Computes the digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// Finishes `hasher` into a digest.
    pub fn from_hasher(hasher: Sha256) -> Self {
        Digest {
            hex: hex::encode(hasher.finalize()),
        }
    }

    /// Builds a digest from a 64-character lowercase hex string (no `sha256:` prefix).
    pub fn from_hex(hex: &str) -> Result<Self> {
        validate_hex(hex).map_err(|reason| Error::InvalidDigest {
            input: hex.to_string(),
            reason,
        })?;
        Ok(Digest {
            hex: hex.to_string(),
        })
    }

    /// The algorithm, always `"sha256"`.
    pub fn algorithm(&self) -> &'static str {
        Self::ALGORITHM
    }

    /// The 64 lowercase hex characters.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// A short form (first 12 hex characters) for human output.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

fn validate_hex(hex: &str) -> std::result::Result<(), String> {
    if hex.len() != 64 {
        return Err(format!(
            "the hex part has {} characters, expected 64",
            hex.len()
        ));
    }
    if let Some(c) = hex.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(format!("character {c:?} is not lowercase hex"));
    }
    Ok(())
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidDigest {
            input: s.to_string(),
            reason,
        };
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| invalid("missing the `algorithm:` prefix".to_string()))?;
        if alg != Self::ALGORITHM {
            return Err(invalid(format!(
                "unsupported algorithm {alg:?}, only sha256 is supported"
            )));
        }
        validate_hex(hex).map_err(invalid)?;
        Ok(Digest {
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(sha256:{})", self.hex)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = Error;

    fn try_from(d: &oci_spec::image::Digest) -> Result<Self> {
        d.to_string().parse()
    }
}

impl TryFrom<&Digest> for oci_spec::image::Digest {
    type Error = Error;

    fn try_from(d: &Digest) -> Result<Self> {
        oci_spec::image::Digest::from_str(&d.to_string()).map_err(|e| Error::InvalidDigest {
            input: d.to_string(),
            reason: e.to_string(),
        })
    }
}

/// A streaming SHA-256 hasher that also counts bytes.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("len", &self.len).finish()
    }
}

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `buf`.
    pub fn update(&mut self, buf: &[u8]) {
        self.inner.update(buf);
        self.len += buf.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been hashed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        Digest::from_hasher(self.inner)
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
