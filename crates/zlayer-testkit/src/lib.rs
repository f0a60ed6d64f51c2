//! zlayer-testkit: the pieces every crate's integration tests (and the
//! benchmarks) would otherwise write again, each in one place:
//! - [`fixture`]: the busybox OCI image, built once per test binary;
//! - [`kernel`]: the VM kernel bundle, built once per target directory and
//!   keyed by its inputs (the guest agent and Debian's kernel package);
//! - [`leaks`]: what a removed container must not leave behind (processes,
//!   mounts) and a killer for what a failed test left;
//! - [`wait`]: polling until a condition holds;
//! - [`TestDir`]: a data root that cleans up after a failed test.
//!
//! Only for tests: it panics on setup failures, with the reason.

pub mod dir;
pub mod fixture;
pub mod kernel;
pub mod leaks;
pub mod wait;

pub use dir::TestDir;
use std::path::PathBuf;

/// Cargo's target directory of the running test binary (`<target>` of
/// `<target>/debug/deps/<test>`; `CARGO_TARGET_DIR` when set).
pub fn target_dir() -> PathBuf {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .find(|a| a.join("CACHEDIR.TAG").is_file())
        .or_else(|| exe.ancestors().nth(3))
        .expect("a target directory above the test binary")
        .to_path_buf()
}
