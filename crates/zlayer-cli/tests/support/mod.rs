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

/// Deletes the bridges (and their nftables tables) the data root `root`
/// made: zlayer marks each bridge with its root's network directory, and
/// would collect them itself only the next time a network is created after
/// the root is gone.
pub fn remove_bridges_of(root: &std::path::Path) {
    use zlayer_network::host;
    let Ok(root) = root.canonicalize() else {
        return;
    };
    for bridge in host::bridges_owned_by(&root.join("network")) {
        host::delete_bridge(&bridge);
    }
}
