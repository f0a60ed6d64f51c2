//! Kernel bundle resolution, OCI-artifact install (digest recorded,
//! re-extracted only on change), the accelerator probe and its cache.

mod vm_support;

use std::os::unix::fs::MetadataExt;
use zlayer_image::fixtures::{
    EntryMeta, FixtureConfig, ImageBuilder, LayerBuilder, LayerCompression,
};
use zlayer_image::ImageStore;
use zlayer_runtime::RuntimeError;
use zlayer_vm::{self as vm, Accel, KernelBundle};

fn bundle_image(dir: &std::path::Path, kernel: &[u8], initrd: &[u8]) -> std::path::PathBuf {
    let mut layer = LayerBuilder::new();
    layer.dir("zlayer-vm", &EntryMeta::mode(0o755)).unwrap();
    layer
        .file("zlayer-vm/vmlinux", kernel, &EntryMeta::mode(0o644))
        .unwrap();
    layer
        .file("zlayer-vm/initramfs.cpio", initrd, &EntryMeta::mode(0o644))
        .unwrap();
    let mut img = ImageBuilder::new(
        "localhost/zlayer/vm-kernel:test",
        FixtureConfig::standard("vm-kernel"),
    )
    .unwrap();
    img.layer(&layer.finish().unwrap(), LayerCompression::Gzip)
        .unwrap();
    img.write_layout(dir).unwrap().path
}

#[test]
fn oci_bundle_installs_atomically_and_only_when_the_digest_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&tmp.path().join("images")).unwrap();
    let dest = tmp.path().join("kernel");
    let reference = "localhost/zlayer/vm-kernel:test";
    // Not in the store yet: a pull error naming the reference.
    let err = vm::install_bundle_from_image(&store, reference, &dest).unwrap_err();
    assert!(matches!(err, RuntimeError::PullFailed { .. }), "{err}");

    let v1 = bundle_image(&tmp.path().join("v1"), b"\x7fELF-kernel-v1", b"initrd-v1");
    let rec = store.load(&v1, None).unwrap().remove(0);
    let b = vm::install_bundle_from_image(&store, reference, &dest).unwrap();
    assert_eq!(b, KernelBundle::in_dir(&dest));
    assert_eq!(std::fs::read(&b.kernel).unwrap(), b"\x7fELF-kernel-v1");
    assert_eq!(std::fs::read(&b.initrd).unwrap(), b"initrd-v1");
    assert_eq!(
        std::fs::read_to_string(dest.join("digest")).unwrap(),
        rec.manifest_digest.to_string()
    );
    let ino = std::fs::metadata(&b.kernel).unwrap().ino();
    // Same digest: nothing is rewritten.
    vm::install_bundle_from_image(&store, reference, &dest).unwrap();
    assert_eq!(std::fs::metadata(&b.kernel).unwrap().ino(), ino);
    // A new version under the same reference: re-extracted.
    let v2 = bundle_image(&tmp.path().join("v2"), b"\x7fELF-kernel-v2", b"initrd-v2");
    let rec2 = store.load(&v2, None).unwrap().remove(0);
    assert_ne!(rec.manifest_digest, rec2.manifest_digest);
    vm::install_bundle_from_image(&store, reference, &dest).unwrap();
    assert_eq!(std::fs::read(&b.kernel).unwrap(), b"\x7fELF-kernel-v2");
    assert_eq!(
        std::fs::read_to_string(dest.join("digest")).unwrap(),
        rec2.manifest_digest.to_string()
    );
    assert!(std::fs::read_dir(&dest)
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().contains("tmp")));
}

#[test]
fn a_missing_kernel_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    if std::env::var_os(vm::KERNEL_ENV).is_some() {
        return; // the environment names a kernel; resolution would use it
    }
    let err = vm::resolve_bundle(None, &tmp.path().join("kernel")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RuntimeError::Configuration(_)));
    for needle in [
        "zlayer vm build-kernel",
        "ZLAYER_VM_KERNEL",
        "ZLAYER_VM_INITRD",
        "linux-image-amd64",
    ] {
        assert!(msg.contains(needle), "{msg} lacks {needle}");
    }
    let missing = KernelBundle::in_dir(&tmp.path().join("nope"));
    let err = vm::resolve_bundle(Some(&missing), tmp.path()).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn the_built_bundle_has_a_kernel_an_agent_and_ordered_modules() {
    let b = vm_support::bundle();
    let kernel = std::fs::read(&b.kernel).unwrap();
    assert!(
        kernel.starts_with(b"\x7fELF"),
        "vmlinux must be uncompressed for the PVH entry"
    );
    let initrd = std::fs::read(&b.initrd).unwrap();
    assert!(initrd.starts_with(b"070701"));
    let text = String::from_utf8_lossy(&initrd);
    assert!(text.contains("init") && text.contains("lib/modules/modules.list"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.kernel.with_file_name("manifest.json")).unwrap())
            .unwrap();
    let mods: Vec<&str> = manifest["boot_modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let pos = |m: &str| {
        mods.iter()
            .position(|x| *x == m)
            .unwrap_or_else(|| panic!("{m} missing from {mods:?}"))
    };
    assert!(
        pos("virtio_ring") < pos("virtio_console")
            && pos("9pnet") < pos("9p")
            && pos("virtio_mmio") < pos("9pnet_virtio")
    );
    assert!(mods.contains(&"overlay"));
}

#[test]
fn auto_accel_probes_once_and_caches_the_verdict() {
    let b = vm_support::bundle();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("vm/accel.json");
    let choice = vm::accel::Choice {
        accel: Accel::Auto,
        qemu: std::path::Path::new("qemu-system-x86_64"),
        bundle: &b,
        cache: &cache,
        probe_timeout: std::time::Duration::from_secs(2),
    };
    let chosen = vm::accel::choose(&choice).unwrap();
    assert!(matches!(chosen, Accel::Kvm | Accel::Tcg));
    if std::path::Path::new("/dev/kvm").exists() {
        let cached: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
        assert_eq!(cached["accel"], serde_json::json!(chosen.qemu_name()));
        // A second choice answers from the cache without probing again.
        let t0 = std::time::Instant::now();
        assert_eq!(vm::accel::choose(&choice).unwrap(), chosen);
        assert!(t0.elapsed() < std::time::Duration::from_secs(1));
    }
}
