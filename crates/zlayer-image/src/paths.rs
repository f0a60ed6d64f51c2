//! Where the data root is.

use std::path::PathBuf;

/// The data root used when neither `--root` nor `ZLAYER_ROOT` is given.
pub const DEFAULT_ROOT: &str = "/var/lib/zlayer";

/// Environment variable that overrides the data root.
pub const ROOT_ENV: &str = "ZLAYER_ROOT";

/// The data root: `$ZLAYER_ROOT` when set and non-empty, else [`DEFAULT_ROOT`].
///
/// A `--root` flag should take precedence over this; pass it to
/// [`crate::ImageStore::open`] directly.
pub fn default_root() -> PathBuf {
    match std::env::var_os(ROOT_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_ROOT),
    }
}
