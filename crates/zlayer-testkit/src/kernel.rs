//! The VM kernel bundle (uncompressed kernel + initramfs with zlayer's guest
//! agent), built once per target directory in `<target>/vm-cache/bundle`
//! and rebuilt only when its inputs change: the guest binary (cargo
//! rebuilds it when its sources change) and Debian's kernel package.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use zlayer_sys::lock::FileLock;
use zlayer_vm::{self as vm, KernelBundle};

/// The cache directory of the bundle and its inputs.
pub fn cache_dir() -> PathBuf {
    crate::target_dir().join("vm-cache")
}

/// The environment that points a `zlayer` process at the bundle
/// (`ZLAYER_VM_KERNEL`, `ZLAYER_VM_INITRD`), built on first use.
pub fn env() -> Vec<(&'static str, PathBuf)> {
    let b = bundle();
    vec![
        ("ZLAYER_VM_KERNEL", b.kernel),
        ("ZLAYER_VM_INITRD", b.initrd),
    ]
}

/// The kernel bundle, built on first use (serialised across threads and
/// across test processes by a file lock).
pub fn bundle() -> KernelBundle {
    static BUNDLE: OnceLock<KernelBundle> = OnceLock::new();
    static BUILD: Mutex<()> = Mutex::new(());
    if let Some(b) = BUNDLE.get() {
        return b.clone();
    }
    let _g = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(b) = BUNDLE.get() {
        return b.clone();
    }
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).expect("create the VM cache directory");
    let _lock = FileLock::exclusive(&cache.join("build.lock")).expect("lock the VM cache");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| "cargo".into());
    // Cargo itself decides whether the guest needs rebuilding.
    let guest = vm::build_guest_binary(&cargo, &workspace, &cache.join("guest"), &["failpoints"])
        .expect("build the guest agent");
    let deb = kernel_deb(&cache.join("deb"));
    let out = cache.join("bundle");
    let stamp = out.join("inputs.stamp");
    let key = format!(
        "{:?} {}",
        std::fs::metadata(&guest).and_then(|m| m.modified()).ok(),
        deb.display()
    );
    let bundle = KernelBundle::in_dir(&out);
    if !(bundle.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(key.as_str())) {
        let mut opts = vm::BundleOptions::new(&guest);
        opts.deb = Some(deb);
        vm::build_kernel_bundle(&out, &opts).expect("build the kernel bundle");
        std::fs::write(&stamp, &key).expect("write the bundle's stamp");
    }
    let _ = BUNDLE.set(bundle.clone());
    bundle
}

/// Debian's kernel package, downloaded into `dir` once.
fn kernel_deb(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create the kernel package directory");
    if let Some(d) = find_deb(dir) {
        return d;
    }
    vm::download_kernel_deb("linux-image-amd64", dir)
        .or_else(|_| {
            let _ = std::process::Command::new("apt-get")
                .args(["update", "-qq"])
                .status();
            vm::download_kernel_deb("linux-image-amd64", dir)
        })
        .expect("apt-get download linux-image-amd64")
}

fn find_deb(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("linux-image-")
                    && n.ends_with(".deb")
                    && !n.starts_with("linux-image-amd64_")
            })
        })
}
