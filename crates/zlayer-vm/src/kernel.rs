//! The kernel bundle: an uncompressed `vmlinux` (booted through its PVH
//! entry point) and an `initramfs.cpio` holding the guest agent as `/init`
//! plus the kernel modules it loads.
//!
//! Resolution order ([`resolve_bundle`]): explicit paths in the config,
//! `ZLAYER_VM_KERNEL`/`ZLAYER_VM_INITRD`, then the installed bundle in
//! `<root>/kernel` (written by [`super::build_kernel_bundle`] or
//! [`install_bundle_from_image`]).

use std::path::{Path, PathBuf};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_sys::atomic::write_atomic;

/// Environment variable naming the kernel to boot.
pub const KERNEL_ENV: &str = "ZLAYER_VM_KERNEL";
/// Environment variable naming the initramfs to boot.
pub const INITRD_ENV: &str = "ZLAYER_VM_INITRD";
/// File name of the kernel inside a bundle directory.
pub const KERNEL_FILE: &str = "vmlinux";
/// File name of the initramfs inside a bundle directory.
pub const INITRD_FILE: &str = "initramfs.cpio";
/// File recording the digest of the OCI artifact a bundle came from.
pub const DIGEST_FILE: &str = "digest";

/// A kernel and initramfs pair.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KernelBundle {
    /// The uncompressed kernel (ELF with a PVH note).
    pub kernel: PathBuf,
    /// The initramfs (newc cpio).
    pub initrd: PathBuf,
}

impl KernelBundle {
    /// The bundle files inside `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        KernelBundle {
            kernel: dir.join(KERNEL_FILE),
            initrd: dir.join(INITRD_FILE),
        }
    }

    /// Whether both files exist.
    pub fn exists(&self) -> bool {
        self.kernel.is_file() && self.initrd.is_file()
    }
}

/// Finds the kernel bundle to boot. `explicit` wins, then the environment,
/// then `installed_dir`; otherwise a [`RuntimeError::Configuration`] saying
/// how to get one.
pub fn resolve_bundle(
    explicit: Option<&KernelBundle>,
    installed_dir: &Path,
) -> Result<KernelBundle> {
    if let Some(b) = explicit {
        return check(b.clone(), "the VM runtime configuration");
    }
    match (std::env::var_os(KERNEL_ENV), std::env::var_os(INITRD_ENV)) {
        (Some(k), Some(i)) => {
            return check(
                KernelBundle {
                    kernel: k.into(),
                    initrd: i.into(),
                },
                "ZLAYER_VM_KERNEL/ZLAYER_VM_INITRD",
            )
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(RuntimeError::Configuration(format!(
                "set both {KERNEL_ENV} and {INITRD_ENV} (only one is set)"
            )))
        }
        (None, None) => {}
    }
    let installed = KernelBundle::in_dir(installed_dir);
    if installed.exists() {
        return Ok(installed);
    }
    Err(RuntimeError::Configuration(format!(
        "no VM kernel found: run `zlayer vm build-kernel` to build one from Debian's linux-image-amd64 \
         into {dir}, or set {KERNEL_ENV} and {INITRD_ENV} to a kernel (uncompressed vmlinux) and an \
         initramfs holding zlayer-guest as /init, or install a kernel bundle image with \
         `zlayer vm install-kernel REFERENCE`",
        dir = installed_dir.display()
    )))
}

fn check(b: KernelBundle, from: &str) -> Result<KernelBundle> {
    for (what, p) in [("kernel", &b.kernel), ("initramfs", &b.initrd)] {
        if !p.is_file() {
            return Err(RuntimeError::Configuration(format!(
                "the VM {what} {} named by {from} does not exist",
                p.display()
            )));
        }
    }
    Ok(b)
}

/// Extracts the uncompressed kernel (`vmlinux`) from a bzImage, using the
/// payload offset and length of its setup header. Supports xz, gzip and
/// zstd payloads; an ELF given as is is returned unchanged.
pub fn extract_vmlinux(bzimage: &[u8]) -> Result<Vec<u8>> {
    if bzimage.starts_with(b"\x7fELF") {
        return Ok(bzimage.to_vec());
    }
    let bad = |why: &str| {
        RuntimeError::Configuration(format!("the kernel image is not a usable bzImage: {why}"))
    };
    if bzimage.len() < 0x260 || &bzimage[0x202..0x206] != b"HdrS" {
        return Err(bad("no Linux boot header (HdrS)"));
    }
    let setup_sects = match bzimage[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let rd32 = |off: usize| {
        u32::from_le_bytes([
            bzimage[off],
            bzimage[off + 1],
            bzimage[off + 2],
            bzimage[off + 3],
        ]) as usize
    };
    let start = (setup_sects + 1) * 512 + rd32(0x248);
    let end = start + rd32(0x24c);
    let payload = bzimage
        .get(start..end)
        .ok_or_else(|| bad("payload outside the file"))?;
    let mut out = Vec::new();
    if payload.starts_with(b"\xfd7zXZ\x00") {
        use std::io::Read;
        liblzma::read::XzDecoder::new(payload)
            .read_to_end(&mut out)
            .map_err(|e| bad(&format!("xz payload: {e}")))?;
    } else if payload.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        flate2::read::GzDecoder::new(payload)
            .read_to_end(&mut out)
            .map_err(|e| bad(&format!("gzip payload: {e}")))?;
    } else if payload.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        out = zstd::stream::decode_all(payload).map_err(|e| bad(&format!("zstd payload: {e}")))?;
    } else {
        return Err(bad(
            "unsupported payload compression (need xz, gzip or zstd)",
        ));
    }
    if !out.starts_with(b"\x7fELF") {
        return Err(bad("the decompressed payload is not an ELF kernel"));
    }
    Ok(out)
}

/// Installs the kernel bundle of an OCI artifact already in `store` into
/// `dest` (files `vmlinux` and `initramfs.cpio` at the root of, or under
/// `zlayer-vm/` in, its layers). The artifact's manifest digest is recorded
/// in `dest/digest`; when it matches, nothing is re-extracted. Each file is
/// installed with a rename, the digest last.
pub fn install_bundle_from_image(
    store: &zlayer_image::ImageStore,
    reference: &str,
    dest: &Path,
) -> Result<KernelBundle> {
    let fail = |reason: String| RuntimeError::PullFailed {
        image: reference.to_string(),
        reason,
    };
    let rec = store
        .lookup(reference)
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| {
            fail("the kernel bundle image is not in the image store; pull it first".into())
        })?;
    let digest = rec.manifest_digest.to_string();
    let bundle = KernelBundle::in_dir(dest);
    let recorded = std::fs::read_to_string(dest.join(DIGEST_FILE)).ok();
    if recorded.as_deref().map(str::trim) == Some(digest.as_str()) && bundle.exists() {
        return Ok(bundle);
    }
    let layers = store
        .ensure_unpacked(&rec)
        .map_err(|e| fail(e.to_string()))?;
    let find = |name: &str| -> Option<PathBuf> {
        layers.iter().rev().find_map(|l| {
            [l.join(name), l.join("zlayer-vm").join(name)]
                .into_iter()
                .find(|p| p.is_file())
        })
    };
    let (Some(kernel), Some(initrd)) = (find(KERNEL_FILE), find(INITRD_FILE)) else {
        return Err(fail(format!(
            "the image holds no {KERNEL_FILE} and {INITRD_FILE} (at its root or under zlayer-vm/)"
        )));
    };
    std::fs::create_dir_all(dest).map_err(|e| fail(format!("create {}: {e}", dest.display())))?;
    // The digest goes first out of the way so a crash mid-install re-extracts.
    let _ = std::fs::remove_file(dest.join(DIGEST_FILE));
    for (src, dst) in [(&kernel, &bundle.kernel), (&initrd, &bundle.initrd)] {
        let bytes = std::fs::read(src).map_err(|e| fail(format!("read {}: {e}", src.display())))?;
        let bytes = if dst == &bundle.kernel {
            extract_vmlinux(&bytes)?
        } else {
            bytes
        };
        write_atomic(dst, &bytes)?;
    }
    write_atomic(&dest.join(DIGEST_FILE), digest.as_bytes())?;
    Ok(bundle)
}
