//! `zlayer vm build-kernel`: assembles a kernel bundle from Debian's
//! `linux-image-amd64` package (`apt-get download` + `dpkg-deb`, nothing
//! else from the network) and a static `zlayer-guest` binary.

use super::cpio::CpioWriter;
use super::kernel::{extract_vmlinux, KernelBundle, INITRD_FILE, KERNEL_FILE};
use super::modules::{self, BOOT_MODULES, EXTRA_MODULES};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_sys::atomic::write_atomic;

/// Options of [`build_kernel_bundle`].
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// The static guest agent binary packed as `/init`.
    pub guest_binary: PathBuf,
    /// A kernel package already on disk; when `None`, `package` is fetched
    /// with `apt-get download` (following a meta package's dependency).
    pub deb: Option<PathBuf>,
    /// The Debian package to fetch (default `linux-image-amd64`).
    pub package: String,
}

impl BundleOptions {
    /// Options for `guest_binary` and Debian's default kernel.
    pub fn new(guest_binary: impl Into<PathBuf>) -> Self {
        BundleOptions {
            guest_binary: guest_binary.into(),
            deb: None,
            package: "linux-image-amd64".into(),
        }
    }
}

/// Modules kept from the package: the ones zlayer loads and every
/// dependency they may have.
const CANDIDATES: &[&str] = &[
    "virtio",
    "virtio_ring",
    "virtio_mmio",
    "virtio_console",
    "virtio_pci",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_blk",
    "virtio_net",
    "net_failover",
    "failover",
    "9pnet",
    "9pnet_virtio",
    "9p",
    "netfs",
    "fscache",
    "overlay",
];

fn cfg(msg: String) -> RuntimeError {
    RuntimeError::Configuration(msg)
}

fn run(cmd: &mut Command, what: &str) -> Result<Vec<u8>> {
    let out = cmd.output().map_err(|e| {
        cfg(format!(
            "{what}: cannot run {:?}: {e} (is it installed?)",
            cmd.get_program()
        ))
    })?;
    if !out.status.success() {
        return Err(cfg(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// Downloads `package` into `dir` and follows a meta package (no kernel
/// inside) to the `linux-image-*` package it depends on.
pub fn download_kernel_deb(package: &str, dir: &Path) -> Result<PathBuf> {
    let mut name = package.to_string();
    for _ in 0..3 {
        run(
            Command::new("apt-get")
                .arg("download")
                .arg(&name)
                .current_dir(dir),
            &format!("apt-get download {name}"),
        )?;
        let deb = std::fs::read_dir(dir)
            .map_err(|e| cfg(format!("read {}: {e}", dir.display())))?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{name}_")) && n.ends_with(".deb"))
            })
            .ok_or_else(|| {
                cfg(format!(
                    "apt-get download {name} left no .deb in {}",
                    dir.display()
                ))
            })?;
        let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb), "dpkg-deb -c")?;
        if String::from_utf8_lossy(&listing).contains("/boot/vmlinuz-") {
            return Ok(deb);
        }
        let depends = run(
            Command::new("dpkg-deb")
                .args(["-f"])
                .arg(&deb)
                .arg("Depends"),
            "dpkg-deb -f",
        )?;
        let depends = String::from_utf8_lossy(&depends).to_string();
        name = depends
            .split(',')
            .map(|d| d.split_whitespace().next().unwrap_or(""))
            .find(|d| d.starts_with("linux-image-"))
            .ok_or_else(|| {
                cfg(format!(
                    "{name} holds no kernel and depends on no linux-image package"
                ))
            })?
            .to_string();
    }
    Err(cfg(format!(
        "{package}: no kernel found after following 3 meta packages"
    )))
}

/// What the bundle builder takes from a kernel package.
#[derive(Debug, Default)]
pub struct PackageContents {
    /// The bzImage.
    pub vmlinuz: Vec<u8>,
    /// Kernel release (`6.1.0-56-amd64`).
    pub release: String,
    /// Candidate modules by name (decompressed, signature stripped).
    pub modules: BTreeMap<String, Vec<u8>>,
    /// Names of built-in modules (`modules.builtin`).
    pub builtin: BTreeSet<String>,
}

/// Streams `dpkg-deb --fsys-tarfile deb` and keeps the kernel, the
/// candidate modules and the built-in module list.
pub fn read_kernel_package(deb: &Path) -> Result<PackageContents> {
    let mut child = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| cfg(format!("cannot run dpkg-deb: {e} (install dpkg)")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| cfg("dpkg-deb has no stdout".into()))?;
    let mut archive = tar::Archive::new(stdout);
    let mut pc = PackageContents::default();
    let entries = archive
        .entries()
        .map_err(|e| cfg(format!("reading {}: {e}", deb.display())))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| cfg(format!("reading {}: {e}", deb.display())))?;
        let path = entry
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = path.trim_start_matches("./").to_string();
        let file_name = path.rsplit('/').next().unwrap_or("").to_string();
        let read = |entry: &mut tar::Entry<'_, _>| -> Result<Vec<u8>> {
            let mut buf = Vec::new();
            entry
                .read_to_end(&mut buf)
                .map_err(|e| cfg(format!("reading {path} from {}: {e}", deb.display())))?;
            Ok(buf)
        };
        if path.starts_with("boot/vmlinuz-") {
            pc.release = file_name.trim_start_matches("vmlinuz-").to_string();
            pc.vmlinuz = read(&mut entry)?;
        } else if path.ends_with("/modules.builtin") {
            let text = read(&mut entry)?;
            pc.builtin = String::from_utf8_lossy(&text)
                .lines()
                .filter_map(|l| l.rsplit('/').next().and_then(modules::module_name))
                .collect();
        } else if let Some(name) = modules::module_name(&file_name) {
            if CANDIDATES.contains(&name.as_str()) && path.contains("/kernel/") {
                let raw = read(&mut entry)?;
                let plain = decompress_module(&file_name, raw)?;
                pc.modules
                    .insert(name, modules::strip_signature(&plain).to_vec());
            }
        }
    }
    let _ = child.wait();
    if pc.vmlinuz.is_empty() {
        return Err(cfg(format!("{} holds no /boot/vmlinuz-*", deb.display())));
    }
    Ok(pc)
}

fn decompress_module(file_name: &str, raw: Vec<u8>) -> Result<Vec<u8>> {
    let bad = |e: String| cfg(format!("decompressing module {file_name}: {e}"));
    if file_name.ends_with(".ko.xz") {
        let mut out = Vec::new();
        liblzma::read::XzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| bad(e.to_string()))?;
        Ok(out)
    } else if file_name.ends_with(".ko.zst") {
        zstd::stream::decode_all(&raw[..]).map_err(|e| bad(e.to_string()))
    } else if file_name.ends_with(".ko.gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| bad(e.to_string()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Builds the initramfs: the guest as `/init`, the boot modules (with
/// `modules.list` giving their load order) and the extra modules.
pub fn build_initramfs(guest: &[u8], pc: &PackageContents) -> Result<(Vec<u8>, Vec<String>)> {
    let deps: BTreeMap<String, Vec<String>> = pc
        .modules
        .iter()
        .map(|(n, b)| (n.clone(), modules::depends(b)))
        .collect();
    let boot = modules::load_order(BOOT_MODULES, &deps, &pc.builtin).map_err(cfg)?;
    let extra: Vec<String> = modules::load_order(EXTRA_MODULES, &deps, &pc.builtin)
        .map_err(cfg)?
        .into_iter()
        .filter(|m| !boot.contains(m))
        .collect();
    let mut w = CpioWriter::new();
    for d in [
        "dev",
        "proc",
        "sys",
        "run",
        "lib",
        "lib/modules",
        "lib/modules/extra",
    ] {
        w.dir(d, 0o755);
    }
    w.char_device("dev/console", 0o600, 5, 1);
    w.char_device("dev/null", 0o666, 1, 3);
    w.file("init", 0o755, guest);
    for (dir, list) in [("lib/modules", &boot), ("lib/modules/extra", &extra)] {
        for m in list.iter() {
            w.file(&format!("{dir}/{m}.ko"), 0o644, &pc.modules[m]);
        }
        let names: String = list.iter().map(|m| format!("{m}.ko\n")).collect();
        w.file(&format!("{dir}/modules.list"), 0o644, names.as_bytes());
    }
    Ok((w.finish(), boot))
}

/// Builds a kernel bundle into `out_dir` (`vmlinux`, `initramfs.cpio`,
/// `manifest.json`), each file installed atomically.
pub fn build_kernel_bundle(out_dir: &Path, opts: &BundleOptions) -> Result<KernelBundle> {
    let guest = std::fs::read(&opts.guest_binary).map_err(|e| {
        cfg(format!(
            "cannot read the guest agent {}: {e}; build it with \
             `RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -p zlayer-guest --target x86_64-unknown-linux-gnu`",
            opts.guest_binary.display()
        ))
    })?;
    if !is_static_elf(&guest) {
        return Err(cfg(format!(
            "{} is not a static ELF binary (it has a program interpreter, or is no ELF at all); \
             the initramfs has no libc, so build zlayer-guest with RUSTFLAGS='-C target-feature=+crt-static'",
            opts.guest_binary.display()
        )));
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|e| cfg(format!("create {}: {e}", out_dir.display())))?;
    let work = zlayer_sys::atomic::temp_sibling(&out_dir.join("build"));
    std::fs::create_dir_all(&work).map_err(|e| cfg(format!("create {}: {e}", work.display())))?;
    let result = (|| {
        let deb = match &opts.deb {
            Some(d) => d.clone(),
            None => download_kernel_deb(&opts.package, &work)?,
        };
        let pc = read_kernel_package(&deb)?;
        Ok::<_, RuntimeError>((deb, pc))
    })();
    let _ = std::fs::remove_dir_all(&work);
    let (deb, pc) = result?;
    let vmlinux = extract_vmlinux(&pc.vmlinuz)?;
    let (initrd, boot_modules) = build_initramfs(&guest, &pc)?;
    let bundle = KernelBundle::in_dir(out_dir);
    write_atomic(&out_dir.join(KERNEL_FILE), &vmlinux)?;
    write_atomic(&out_dir.join(INITRD_FILE), &initrd)?;
    let manifest = serde_json::json!({
        "kernel_release": pc.release,
        "package": deb.file_name().map(|n| n.to_string_lossy().into_owned()),
        "boot_modules": boot_modules,
        "kernel_bytes": vmlinux.len(),
        "initramfs_bytes": initrd.len(),
    });
    write_atomic(
        &out_dir.join("manifest.json"),
        manifest.to_string().as_bytes(),
    )?;
    Ok(bundle)
}

/// Whether `elf` is a 64-bit little-endian ELF without a `PT_INTERP`
/// segment (i.e. it runs without a dynamic loader).
pub fn is_static_elf(elf: &[u8]) -> bool {
    if elf.len() < 64 || !elf.starts_with(b"\x7fELF\x02\x01") {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    (0..phnum).all(|i| {
        let off = phoff + i * phentsize;
        match elf.get(off..off + 4) {
            Some(t) => u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != 3,
            None => false,
        }
    })
}

/// Builds the static guest agent from the workspace at `workspace` into
/// `target_dir` (release, size-optimised, `+crt-static`) with the `cargo`
/// at `cargo`, and returns the binary's path. Used by tests, benchmarks and
/// `scripts/build-vm-kernel`. `features` are the guest crate's features to
/// enable (tests enable `failpoints`).
pub fn build_guest_binary(
    cargo: &Path,
    workspace: &Path,
    target_dir: &Path,
    features: &[&str],
) -> Result<PathBuf> {
    let target = "x86_64-unknown-linux-gnu";
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "zlayer-guest",
            "--target",
            target,
        ])
        .args(if features.is_empty() {
            Vec::new()
        } else {
            vec!["--features".to_string(), features.join(",")]
        })
        .arg("--target-dir")
        .arg(target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "s")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .map_err(|e| cfg(format!("cannot run {}: {e}", cargo.display())))?;
    if !status.success() {
        return Err(cfg(format!("building zlayer-guest failed ({status})")));
    }
    Ok(target_dir.join(target).join("release").join("zlayer-guest"))
}
