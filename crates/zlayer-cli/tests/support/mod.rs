//! What the CLI's end-to-end tests share: the test image, the `zlayer`
//! binary under test, and small helpers for command output and waiting.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;

/// The builtin busybox image (`zlayer image builtin`).
pub const IMAGE: &str = "localhost/zlayer/busybox:latest";

/// The `zlayer` binary cargo built for these tests.
pub fn zlayer_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zlayer"))
}

/// Bytes as (lossy) text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The stdout of a command that must have succeeded (else a panic showing
/// both streams).
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

#[allow(unused_imports)]
pub use zlayer_testkit::wait::eventually;

#[allow(unused_imports)]
pub use zlayer_testkit::leaks::remove_bridges_of;
