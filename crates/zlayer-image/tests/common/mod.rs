//! Shared helpers for the image-store tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use zlayer_image::fixtures::{self, FixtureImage, FixtureOptions};
use zlayer_image::{ImageRecord, ImageStore};

/// A temp dir holding a store root and scratch space.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub store: ImageStore,
}

impl Env {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = ImageStore::open(&tmp.path().join("root")).unwrap();
        Env { tmp, store }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Writes the busybox layout fixture and loads it.
    pub fn load_busybox(&self, opts: &FixtureOptions) -> (FixtureImage, ImageRecord) {
        let img = fixtures::busybox_layout(&self.path("busybox-layout"), opts).unwrap();
        let recs = self.store.load(&img.path, None).unwrap();
        assert_eq!(recs.len(), 1);
        (img, recs.into_iter().next().unwrap())
    }

    /// Writes the multi-layer layout fixture and loads it.
    pub fn load_multilayer(&self, opts: &FixtureOptions) -> (FixtureImage, ImageRecord) {
        let img = fixtures::multilayer_layout(&self.path("multi-layout"), opts).unwrap();
        let recs = self.store.load(&img.path, None).unwrap();
        assert_eq!(recs.len(), 1);
        (img, recs.into_iter().next().unwrap())
    }
}

impl Drop for Env {
    /// Detaches anything a failed test left mounted, so deleting the temp
    /// dir never reaches through a mount and no mounts outlive the test.
    fn drop(&mut self) {
        if let Ok(mut mounts) = zlayer_image::mounts_under(self.tmp.path()) {
            mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for m in mounts {
                let _ = rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH);
            }
        }
    }
}

/// Sorted names in a directory.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Mount points below `dir` according to /proc/self/mountinfo.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    zlayer_image::mounts_under(dir).unwrap()
}
