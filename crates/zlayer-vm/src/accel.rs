//! Choosing the accelerator: KVM only when a probe guest really boots under
//! it in time (a para-virtual `/dev/kvm` such as `kvm_pvm` may exist and
//! still be far too slow for a stock kernel), else TCG. The verdict is
//! cached in `<root>/accel.json`, keyed by the QEMU binary's and the kernel
//! bundle's paths, sizes and mtimes.

use super::config::Accel;
use super::kernel::KernelBundle;
use super::qemu::BASE_CMDLINE;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant, UNIX_EPOCH};
use zlayer_runtime::error::Result;
use zlayer_sys::atomic::{read_json, write_json_atomic};

/// What the accelerator choice needs.
#[derive(Debug, Clone)]
pub struct Choice<'a> {
    /// The configured choice.
    pub accel: Accel,
    /// The QEMU binary.
    pub qemu: &'a Path,
    /// The bundle a probe boots.
    pub bundle: &'a KernelBundle,
    /// Where the verdict is cached (`accel.json`).
    pub cache: &'a Path,
    /// How long the probe guest may take.
    pub probe_timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProbeCache {
    key: String,
    accel: Accel,
    probe_ms: u64,
}

fn file_key(p: &Path) -> String {
    std::fs::metadata(p)
        .map(|m| {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            format!("{}:{}:{mtime}", p.display(), m.len())
        })
        .unwrap_or_default()
}

/// Resolves `c.accel` to `Kvm` or `Tcg` for `c.bundle`.
pub fn choose(c: &Choice<'_>) -> Result<Accel> {
    let bundle = c.bundle;
    match c.accel {
        Accel::Kvm => return Ok(Accel::Kvm),
        Accel::Tcg => return Ok(Accel::Tcg),
        Accel::Auto => {}
    }
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Ok(Accel::Tcg);
    }
    // The QEMU binary's size and mtime stand for its version (an upgrade
    // changes both): a `stat`, where `qemu --version` cost ~40 ms of every
    // VM start.
    let qemu = match zlayer_sys::exe::find_on_path(c.qemu) {
        Some(path) => file_key(&path),
        None => super::qemu::version(c.qemu)?,
    };
    let key = format!(
        "{qemu}|{}|{}",
        file_key(&bundle.kernel),
        file_key(&bundle.initrd)
    );
    let cache_path = c.cache;
    if let Ok(Some(cached)) = read_json::<ProbeCache>(cache_path) {
        if cached.key == key {
            return Ok(cached.accel);
        }
    }
    let t0 = Instant::now();
    let ok = probe_kvm(c);
    let accel = if ok { Accel::Kvm } else { Accel::Tcg };
    tracing::info!(
        ?accel,
        probe_ms = t0.elapsed().as_millis() as u64,
        "vm: accelerator probe done"
    );
    if let Some(dir) = cache_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = write_json_atomic(
        cache_path,
        &ProbeCache {
            key,
            accel,
            probe_ms: t0.elapsed().as_millis() as u64,
        },
    );
    Ok(accel)
}

/// Boots the bundle under KVM with `zlayer.probe=1` (the agent powers off
/// at once) and reports whether QEMU exited cleanly within the timeout.
fn probe_kvm(c: &Choice<'_>) -> bool {
    let cmdline = format!("{BASE_CMDLINE} zlayer.probe=1");
    let child = std::process::Command::new(c.qemu)
        .args([
            "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "256M", "-smp", "1",
        ])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ])
        .arg("-kernel")
        .arg(&c.bundle.kernel)
        .arg("-initrd")
        .arg(&c.bundle.initrd)
        .args(["-append", &cmdline])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let deadline = Instant::now() + c.probe_timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// The host's TSC frequency cached on disk for the current boot.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TscCache {
    boot_id: String,
    khz: Option<u64>,
}

/// [`host_tsc_khz`], measured once per boot of the host and kept in `cache`
/// (keyed by the kernel's boot id): each VM's monitor is a new process,
/// and the measurement takes 20 ms of its start.
pub fn host_tsc_khz_cached(cache: &Path) -> Option<u64> {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if let Ok(Some(c)) = read_json::<TscCache>(cache) {
        if !boot_id.is_empty() && c.boot_id == boot_id {
            return c.khz;
        }
    }
    let khz = host_tsc_khz();
    if !boot_id.is_empty() {
        if let Some(dir) = cache.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = write_json_atomic(cache, &TscCache { boot_id, khz });
    }
    khz
}

/// The host TSC frequency in kHz, measured against `CLOCK_MONOTONIC_RAW`.
/// Under TCG the guest's TSC ticks at the host's rate, so the guest is told
/// this rate (`tsc_early_khz=`) instead of calibrating it slowly.
pub fn host_tsc_khz() -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        static KHZ: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        *KHZ.get_or_init(|| {
            // SAFETY: rdtsc has no preconditions on x86_64.
            let tsc = || unsafe { core::arch::x86_64::_rdtsc() };
            let t0 = Instant::now();
            let c0 = tsc();
            std::thread::sleep(Duration::from_millis(20));
            let c1 = tsc();
            let ns = t0.elapsed().as_nanos() as u64;
            let khz = (c1.wrapping_sub(c0)).checked_mul(1_000_000)? / ns.max(1);
            (100_000..20_000_000).contains(&khz).then_some(khz)
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}
