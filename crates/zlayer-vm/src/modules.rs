//! Kernel module files: dependency metadata, signature stripping and load
//! order.

use std::collections::{BTreeMap, BTreeSet};

/// Modules every VM loads at boot, in dependency-closed order after
/// [`load_order`]: the virtio-mmio transport, the virtio-serial console
/// (control and log ports), 9p over virtio (the image share) and overlay
/// (the writable layer). Modules built into the kernel are skipped.
pub const BOOT_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_console",
    "9pnet_virtio",
    "9p",
    "overlay",
];

/// Modules packed into `/lib/modules/extra` and loaded only when the host
/// asks for them (`zlayer.extra=1`): PCI transport, block and network devices.
pub const EXTRA_MODULES: &[&str] = &["virtio_pci", "virtio_blk", "virtio_net"];

const SIG_MAGIC: &[u8] = b"~Module signature appended~\n";

/// The module name of a file name (`9pnet_virtio.ko` → `9pnet_virtio`).
pub fn module_name(file_name: &str) -> Option<String> {
    let base = file_name
        .strip_suffix(".ko")
        .or_else(|| file_name.strip_suffix(".ko.xz"))
        .or_else(|| file_name.strip_suffix(".ko.zst"))
        .or_else(|| file_name.strip_suffix(".ko.gz"))?;
    Some(base.replace('-', "_"))
}

/// The `depends=` list of a module's `.modinfo` section.
pub fn depends(module: &[u8]) -> Vec<String> {
    let key = b"depends=";
    let Some(pos) = module.windows(key.len()).position(|w| w == key) else {
        return Vec::new();
    };
    let rest = &module[pos + key.len()..];
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .map(|d| d.trim().replace('-', "_"))
        .filter(|d| !d.is_empty())
        .collect()
}

/// Removes an appended module signature: the kernel then skips the
/// (costly, under emulation) signature check and loads it as unsigned,
/// which an unenforcing kernel allows.
pub fn strip_signature(module: &[u8]) -> &[u8] {
    let Some(body) = module.strip_suffix(SIG_MAGIC) else {
        return module;
    };
    // struct module_signature (12 bytes) precedes the magic; its last field
    // is the big-endian signature length.
    if body.len() < 12 {
        return module;
    }
    let info = &body[body.len() - 12..];
    let sig_len = u32::from_be_bytes([info[8], info[9], info[10], info[11]]) as usize;
    match body.len().checked_sub(12 + sig_len) {
        Some(end) => &body[..end],
        None => module,
    }
}

/// Orders `roots` and their dependencies so each module follows what it
/// needs. `available` maps module names to their dependencies; names in
/// `builtin` are satisfied without loading. An unknown dependency is an
/// error naming it.
pub fn load_order(
    roots: &[&str],
    available: &BTreeMap<String, Vec<String>>,
    builtin: &BTreeSet<String>,
) -> Result<Vec<String>, String> {
    fn visit(
        name: &str,
        available: &BTreeMap<String, Vec<String>>,
        builtin: &BTreeSet<String>,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) -> Result<(), String> {
        if seen.contains(name) || builtin.contains(name) {
            return Ok(());
        }
        if stack.iter().any(|s| s == name) {
            return Err(format!("module dependency cycle through {name}"));
        }
        let deps = available.get(name).ok_or_else(|| {
            format!("module {name} is neither built into the kernel nor in the package")
        })?;
        stack.push(name.to_string());
        for d in deps {
            visit(d, available, builtin, seen, out, stack)?;
        }
        stack.pop();
        seen.insert(name.to_string());
        out.push(name.to_string());
        Ok(())
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in roots {
        visit(r, available, builtin, &mut seen, &mut out, &mut Vec::new())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_depends() {
        assert_eq!(
            module_name("9pnet_virtio.ko").as_deref(),
            Some("9pnet_virtio")
        );
        assert_eq!(
            module_name("crc32c-intel.ko.zst").as_deref(),
            Some("crc32c_intel")
        );
        assert_eq!(module_name("README"), None);
        let m = b"\x00junk\x00license=GPL\x00depends=virtio,virtio_ring\x00name=x\x00";
        assert_eq!(depends(m), vec!["virtio", "virtio_ring"]);
        assert!(depends(b"depends=\x00").is_empty());
        assert!(depends(b"nothing").is_empty());
    }

    #[test]
    fn strips_signatures_only_when_present() {
        let mut signed = b"ELFBODY".to_vec();
        signed.extend_from_slice(b"SIGNATURE");
        signed.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        signed.extend_from_slice(SIG_MAGIC);
        assert_eq!(strip_signature(&signed), b"ELFBODY");
        assert_eq!(strip_signature(b"plain"), b"plain");
        let mut bogus = vec![0xff; 12];
        bogus.extend_from_slice(SIG_MAGIC);
        assert_eq!(strip_signature(&bogus), &bogus[..]);
    }

    #[test]
    fn orders_dependencies_first() {
        let mut avail = BTreeMap::new();
        avail.insert(
            "9p".to_string(),
            vec!["9pnet".to_string(), "netfs".to_string()],
        );
        avail.insert("9pnet".to_string(), vec![]);
        avail.insert("netfs".to_string(), vec![]);
        avail.insert("virtio_ring".to_string(), vec![]);
        let builtin: BTreeSet<String> = ["virtio".to_string()].into();
        avail.insert(
            "virtio_console".to_string(),
            vec!["virtio".to_string(), "virtio_ring".to_string()],
        );
        let order = load_order(&["virtio_console", "9p"], &avail, &builtin).unwrap();
        assert_eq!(
            order,
            vec!["virtio_ring", "virtio_console", "9pnet", "netfs", "9p"]
        );
        let err = load_order(&["missing"], &avail, &builtin).unwrap_err();
        assert!(err.contains("missing"));
    }
}
