//! Layer unpacking: decompression pipeline and safe tar extraction.
//!
//! A layer blob is decompressed (gzip, zstd or none, detected from the magic
//! bytes) and hashed on one thread while another thread extracts the tar
//! stream, connected by a bounded channel. The SHA-256 of the uncompressed
//! stream is the layer's diff_id and is checked by the caller.

mod compression;
mod extract;
mod pipeline;
mod safe_path;

pub use compression::Compression;
pub use extract::{
    extract, ExtractOptions, ExtractStats, OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX,
};
pub use pipeline::unpack;
