//! The busybox image (Debian's `busybox-static`, packed by
//! `zlayer_image::fixtures`) the tests run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use zlayer_image::fixtures::{busybox_layout, FixtureOptions};
use zlayer_image::ImageStore;

/// The reference tests give the busybox image.
pub const BUSYBOX: &str = "busybox:latest";

/// The busybox OCI layout, built once per test binary run under
/// `<target>/tmp/busybox-fixture-<binary>` (a static is never dropped, so
/// a temp dir would stay in /tmp).
pub fn busybox() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let exe = std::env::current_exe().expect("current exe");
        let name = exe
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tests".into());
        let dir = crate::target_dir()
            .join("tmp")
            .join(format!("busybox-fixture-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("busybox");
        busybox_layout(&path, &FixtureOptions::default()).expect("build the busybox fixture");
        path
    })
}

/// Loads the busybox image into `store` as `reference`.
pub fn load_busybox(store: &ImageStore, reference: &str) {
    store
        .load(busybox(), Some(reference))
        .expect("load the busybox fixture");
}
