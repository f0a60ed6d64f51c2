//! The VM's launch plan (`launch.json`) and how a spec becomes the guest's
//! `Run` request and shares.

use super::config::Accel;
use super::kernel::KernelBundle;
use super::qemu::Share;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use zlayer_hosting::VolumeStore;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_spec::{PortMapping, ServiceSpec, StorageSpec};
use zlayer_vm_proto::RunRequest;

/// Format version of [`VmPlan`].
pub const PLAN_VERSION: u32 = 1;

/// The VM's launch plan (`launch.json`): what `prepare` resolved,
/// everything its monitor needs to boot it (again).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmPlan {
    /// Format version.
    pub version: u32,
    /// The read-only root shared into the guest.
    pub rootfs: PathBuf,
    /// The workload (complete: image defaults merged with the spec).
    pub run: RunSpec,
    /// Host directories shared over 9p (binds and named volumes).
    pub binds: Vec<Share>,
    /// Guest memory, MiB.
    pub memory_mib: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// Whether the spec set the CPU count (else TCG boots use 1 vCPU: see
    /// `docs/vm.md`).
    pub vcpus_from_spec: bool,
    /// Published ports (TCP), tunnelled by the monitor.
    pub ports: Vec<PortMapping>,
    /// The guest's hostname.
    pub hostname: String,
    /// The kernel and initramfs to boot.
    pub bundle: KernelBundle,
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// The accelerator choice (`auto` probes KVM once per host).
    pub accel: Accel,
    /// Where the accelerator probe's verdict is cached.
    pub accel_cache: PathBuf,
    /// How long the KVM probe guest may take, milliseconds.
    pub probe_timeout_ms: u64,
    /// How long a boot (QEMU start → agent ready) may take, milliseconds.
    pub boot_timeout_ms: u64,
    /// Extra words for the kernel command line.
    pub extra_cmdline: String,
}

/// The workload as sent in `Run` (a serializable copy).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// argv.
    pub argv: Vec<String>,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<String>,
    /// `user[:group]` to resolve in the guest.
    pub user: Option<String>,
}

impl RunSpec {
    /// The `Run` request for this workload.
    pub fn request(&self) -> RunRequest {
        RunRequest {
            argv: self.argv.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            uid: None,
            gid: None,
            user: self.user.clone(),
            open_stdin: true,
            poweroff_on_exit: true,
        }
    }
}

/// Merges the image config with the spec, docker style: the spec's
/// entrypoint replaces the image's (and drops its cmd), the spec's args
/// replace the cmd; the spec's env overrides the image's.
pub fn run_spec(spec: &ServiceSpec, image: &zlayer_image::ImageConfig) -> Result<RunSpec> {
    let (entrypoint, cmd) = match (&spec.command.entrypoint, &spec.command.args) {
        (Some(ep), Some(args)) => (ep.clone(), args.clone()),
        (Some(ep), None) => (ep.clone(), Vec::new()),
        (None, Some(args)) => (image.entrypoint.clone().unwrap_or_default(), args.clone()),
        (None, None) => (
            image.entrypoint.clone().unwrap_or_default(),
            image.cmd.clone().unwrap_or_default(),
        ),
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(RuntimeError::InvalidSpec(format!(
            "service {} has no command: the image sets no Entrypoint/Cmd and the spec gives none",
            spec.name
        )));
    }
    let mut env: Vec<(String, String)> = image
        .env
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .collect();
    for (k, v) in &spec.env {
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    if !env.iter().any(|(k, _)| k == "HOSTNAME") {
        env.push(("HOSTNAME".into(), spec.name.clone()));
    }
    Ok(RunSpec {
        argv,
        env,
        cwd: spec
            .command
            .workdir
            .clone()
            .or_else(|| image.working_dir.clone())
            .filter(|c| !c.is_empty()),
        user: spec
            .user
            .clone()
            .or_else(|| image.user.clone())
            .filter(|u| !u.is_empty()),
    })
}

/// The bind mounts and named volumes of a spec as 9p shares `zlmnt<N>`;
/// other storage kinds are rejected.
pub fn binds(spec: &ServiceSpec, volumes: &VolumeStore) -> Result<Vec<Share>> {
    let mut out = Vec::new();
    for (i, s) in spec.storage.iter().enumerate() {
        match s {
            StorageSpec::Bind {
                source,
                target,
                readonly,
            } => {
                let host = PathBuf::from(source);
                if !host.is_dir() {
                    return Err(RuntimeError::InvalidSpec(format!(
                        "bind source {source} is not a directory; the vm isolation shares directories only"
                    )));
                }
                out.push(Share {
                    tag: format!("zlmnt{i}"),
                    host,
                    target: target.clone(),
                    readonly: *readonly,
                });
            }
            StorageSpec::Named {
                name,
                target,
                readonly,
            } => out.push(Share {
                tag: format!("zlmnt{i}"),
                host: volumes.ensure(name)?,
                target: target.clone(),
                readonly: *readonly,
            }),
            other => {
                return Err(RuntimeError::unsupported(
                    "vm",
                    format!("a {} volume at {}", kind_name(other), other.target()),
                    "the vm isolation shares host directories and named volumes only",
                ))
            }
        }
    }
    Ok(out)
}

fn kind_name(s: &StorageSpec) -> &'static str {
    match s {
        StorageSpec::Bind { .. } => "bind",
        StorageSpec::Named { .. } => "named",
        StorageSpec::Anonymous { .. } => "anonymous",
        StorageSpec::Tmpfs { .. } => "tmpfs",
    }
}

/// Memory (MiB) and vCPUs for a spec: its limits, else the defaults, never
/// more than the host has (and at least 128 MiB / 1 vCPU).
pub fn size(spec: &ServiceSpec, default_mib: u64, default_vcpus: u32) -> (u64, u32) {
    let host_mib = zlayer_sys::procfs::host_memory_bytes() / (1024 * 1024);
    let host_cpus = zlayer_sys::procfs::online_cpus().max(1);
    let mib = spec
        .resources
        .memory_bytes()
        .ok()
        .flatten()
        .map(|b| b / (1024 * 1024))
        .unwrap_or(default_mib)
        .max(128)
        .min(host_mib.max(128));
    let vcpus = spec
        .resources
        .cpu
        .map(|c| c.ceil() as u32)
        .unwrap_or(default_vcpus)
        .clamp(1, host_cpus);
    (mib, vcpus)
}
