//! [`TestDir`]: a test's data root, deleted on drop with whatever a failed
//! test left mounted or running under it.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A test's temporary directory, deleted on drop. The deletion is retried
/// for a moment: a runtime's background trash thread may still be moving
/// emptied container directories around in it, and a single
/// `remove_dir_all` racing with it gives up (`ENOTEMPTY`) and leaves the
/// directory behind in /tmp.
#[derive(Debug)]
pub struct TestDir(PathBuf);

impl TestDir {
    /// A fresh directory `/tmp/<prefix>XXXXXX` (short: unix socket paths
    /// under it must stay below 108 bytes).
    pub fn create(prefix: &str) -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in("/tmp")
            .expect("create a test directory in /tmp")
            .keep();
        TestDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        // The trash thread may recreate `containers/.free` right after a
        // removal: the directory must stay gone for a moment before it is
        // trusted to be.
        for _ in 0..80 {
            // A test that failed before removing its containers leaves
            // their mounts and monitors behind.
            crate::leaks::clean_up_root(&self.0);
            let _ = std::fs::remove_dir_all(&self.0);
            std::thread::sleep(Duration::from_millis(25));
            if !self.0.exists() {
                std::thread::sleep(Duration::from_millis(100));
                if !self.0.exists() {
                    return;
                }
            }
        }
    }
}
