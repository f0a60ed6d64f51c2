//! The sandbox policy: what one container may touch. Built at create from
//! the spec, stored in `config.json` (machine form) and rendered to
//! `sandbox.policy` (human form); enforced at start by `landlock_rules`,
//! `seccomp` and `launch`.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::options::{NetworkAccess, SandboxOptions, UserIds};
use super::ports::AllocatedPort;
use super::seccomp;

/// Host directories holding shared libraries and the dynamic loader:
/// readable and executable by every sandbox.
pub const SYSTEM_LIBRARIES: &[&str] = &["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/libexec"];

/// Host files and directories every sandbox may read (not execute): loader
/// and libc configuration, name resolution, time zones, certificates, and
/// `/proc` (other processes' private files stay closed: Landlock denies
/// ptrace-class access across domains).
pub const SYSTEM_READ: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/ssl/certs",
    "/usr/share/zoneinfo",
    "/usr/share/ca-certificates",
    "/proc",
    "/sys/devices/system/cpu",
];

/// Device nodes every sandbox may open: (path, ioctl allowed, why).
pub const BASE_DEVICES: &[(&str, bool, &str)] = &[
    ("/dev/null", false, "null device"),
    ("/dev/zero", false, "zero device"),
    ("/dev/full", false, "full device"),
    ("/dev/random", false, "random numbers"),
    ("/dev/urandom", false, "random numbers"),
    ("/dev/tty", true, "controlling terminal"),
    ("/dev/ptmx", true, "pty: pseudo-tty multiplexer"),
    ("/dev/pts", true, "pty: pseudo-tty devices"),
];

/// GPU device nodes opened only when both the runtime and the spec allow it.
pub const GPU_DEVICES: &[&str] = &[
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
    "/dev/nvidia-caps",
    "/dev/dri",
];

/// One host path the sandbox may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathGrant {
    /// The host path.
    pub path: PathBuf,
    /// Why it is granted (shown in the policy file).
    pub why: String,
}

/// One device node the sandbox may open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceGrant {
    /// The device node (or directory of nodes).
    pub path: PathBuf,
    /// Whether ioctl on it is allowed (terminals, GPUs).
    pub ioctl: bool,
    /// Why it is granted.
    pub why: String,
}

/// One volume: a path of the container mapped to a host directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeGrant {
    /// The path inside the container (e.g. `/data`).
    pub target: String,
    /// The host directory behind it.
    pub host: PathBuf,
    /// Read-only volume.
    pub readonly: bool,
    /// bind, named, anonymous or tmpfs.
    pub kind: String,
}

/// The GPU decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuGrant {
    /// Whether GPU devices are open to the sandbox.
    pub allowed: bool,
    /// Why (or why not).
    pub reason: String,
}

/// The complete policy of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The container's root filesystem (read + execute).
    pub rootfs: PathBuf,
    /// Readable and executable paths (rootfs, system libraries, extras).
    pub exec_paths: Vec<PathGrant>,
    /// Read-only paths (configuration, `/proc`, read-only volumes).
    pub read_paths: Vec<PathGrant>,
    /// Writable paths (tmp, volumes); never executable.
    pub write_paths: Vec<PathGrant>,
    /// Volumes, for the record.
    pub volumes: Vec<VolumeGrant>,
    /// Device nodes.
    pub devices: Vec<DeviceGrant>,
    /// GPU access.
    pub gpu: GpuGrant,
    /// Network access.
    pub network: NetworkAccess,
    /// TCP ports the sandbox may bind (Localhost mode).
    pub bind_ports: Vec<u16>,
    /// TCP ports the sandbox may connect to (Localhost mode).
    pub connect_ports: Vec<u16>,
    /// Syscall names taken off the deny list.
    pub allowed_syscalls: Vec<String>,
    /// RLIMIT_NPROC for a non-root user (from `pids_limit`).
    pub nproc: Option<u64>,
    /// The user the workload runs as (None: the runtime's own user).
    pub user: Option<UserIds>,
    /// Whether running without full Landlock is acceptable.
    pub allow_degraded: bool,
    /// Memory limit enforced by the watchdog, in bytes.
    pub memory_limit: Option<u64>,
    /// The workload runs as uid 0 (file metadata changes are then denied).
    #[serde(default)]
    pub root: bool,
}

/// Everything the policy is derived from.
#[derive(Debug, Clone)]
pub struct PolicyInput<'a> {
    /// Container id, for the header.
    pub container: String,
    /// Image reference, for the header.
    pub image: String,
    /// The cloned rootfs.
    pub rootfs: &'a Path,
    /// The private tmp directory.
    pub tmp: &'a Path,
    /// Volumes.
    pub volumes: Vec<VolumeGrant>,
    /// The runtime's `gpu_access`.
    pub gpu_runtime: bool,
    /// The spec's GPU request, as `vendor xN`.
    pub gpu_spec: Option<String>,
    /// Options from labels.
    pub options: &'a SandboxOptions,
    /// Ports assigned to the endpoints.
    pub ports: &'a [AllocatedPort],
    /// The workload's user.
    pub user: Option<UserIds>,
    /// `resources.pids_limit`.
    pub pids_limit: Option<i64>,
    /// `resources.memory` in bytes.
    pub memory_limit: Option<u64>,
}

fn grant(path: impl Into<PathBuf>, why: &str) -> PathGrant {
    PathGrant {
        path: path.into(),
        why: why.to_string(),
    }
}

impl Policy {
    /// Builds the policy; host paths that do not exist are left out.
    pub fn build(input: &PolicyInput<'_>) -> Policy {
        let mut exec_paths = vec![grant(input.rootfs, "rootfs")];
        for p in SYSTEM_LIBRARIES.iter().filter(|p| Path::new(p).exists()) {
            exec_paths.push(grant(*p, "system libraries"));
        }
        for p in &input.options.read_paths {
            exec_paths.push(grant(
                p.clone(),
                "extra (label com.zlayer.sandbox.read-paths)",
            ));
        }
        let mut read_paths: Vec<PathGrant> = SYSTEM_READ
            .iter()
            .filter(|p| Path::new(p).exists())
            .map(|p| {
                grant(
                    *p,
                    if p.starts_with("/proc") || p.starts_with("/sys") {
                        "kernel info"
                    } else {
                        "system configuration"
                    },
                )
            })
            .collect();
        let mut write_paths = vec![grant(input.tmp, "tmp (TMPDIR, HOME)")];
        for v in &input.volumes {
            let why = format!("volume {} ({})", v.target, v.kind);
            if v.readonly {
                read_paths.push(grant(v.host.clone(), &why));
            } else {
                write_paths.push(grant(v.host.clone(), &why));
            }
        }
        let mut devices: Vec<DeviceGrant> = BASE_DEVICES
            .iter()
            .filter(|(p, _, _)| Path::new(p).exists())
            .map(|(p, ioctl, why)| DeviceGrant {
                path: PathBuf::from(p),
                ioctl: *ioctl,
                why: why.to_string(),
            })
            .collect();
        let gpu = match (input.gpu_runtime, &input.gpu_spec) {
            (true, Some(req)) => {
                for dev in gpu_device_nodes() {
                    devices.push(DeviceGrant {
                        path: dev,
                        ioctl: true,
                        why: "gpu".into(),
                    });
                }
                GpuGrant {
                    allowed: true,
                    reason: format!(
                        "the service asks for a GPU ({req}) and the runtime has gpu_access"
                    ),
                }
            }
            (false, Some(req)) => GpuGrant {
                allowed: false,
                reason: format!(
                    "the service asks for a GPU ({req}) but this runtime's gpu_access is off"
                ),
            },
            (_, None) => GpuGrant {
                allowed: false,
                reason: "the service does not ask for a GPU (resources.gpu)".into(),
            },
        };
        let (bind_ports, connect_ports) = match input.options.network {
            NetworkAccess::Localhost => {
                let own: Vec<u16> = input
                    .ports
                    .iter()
                    .filter(|p| p.is_tcp())
                    .map(|p| p.host_port)
                    .collect();
                let mut connect = own.clone();
                connect.extend(&input.options.connect_ports);
                connect.sort_unstable();
                connect.dedup();
                (own, connect)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let non_root = input.user.is_some_and(|u| u.uid != 0);
        // SAFETY: geteuid cannot fail.
        let root = match input.user {
            Some(u) => u.uid == 0,
            None => (unsafe { libc::geteuid() }) == 0,
        };
        Policy {
            rootfs: input.rootfs.to_path_buf(),
            exec_paths,
            read_paths,
            write_paths,
            volumes: input.volumes.clone(),
            devices,
            gpu,
            network: input.options.network,
            bind_ports,
            connect_ports,
            allowed_syscalls: input.options.allow_syscalls.clone(),
            nproc: input
                .pids_limit
                .filter(|n| *n > 0 && non_root)
                .map(|n| n as u64),
            user: input.user,
            allow_degraded: input.options.allow_degraded,
            memory_limit: input.memory_limit,
            root,
        }
    }

    /// The human-readable policy file.
    pub fn render(&self, container: &str, image: &str, ports: &[AllocatedPort]) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# zlayer sandbox policy of container {container} (image {image})"
        );
        let _ = writeln!(
            s,
            "# Generated at create from the service spec; enforced at start by Landlock"
        );
        let _ = writeln!(
            s,
            "# (filesystem, TCP ports, scopes), a seccomp filter (syscalls), no_new_privs,"
        );
        let _ = writeln!(
            s,
            "# dropped capabilities and rlimits. Anything not listed here is denied."
        );
        let _ = writeln!(s, "version 1");
        let _ = writeln!(s, "default deny");
        let _ = writeln!(s);
        let _ = writeln!(s, "[process]");
        let _ = writeln!(
            s,
            "process-exec    allowed only for files under [read+exec] (Landlock execute right)"
        );
        let _ = writeln!(
            s,
            "process-fork    allowed (fork, vfork, clone without namespace flags)"
        );
        let _ = writeln!(
            s,
            "session         own session and process group (setsid); no_new_privs"
        );
        let _ = writeln!(
            s,
            "capabilities    all dropped (bounding, effective, permitted, ambient)"
        );
        match self.user {
            Some(u) => {
                let _ = writeln!(s, "user            {}:{}", u.uid, u.gid);
            }
            None => {
                let _ = writeln!(s, "user            the runtime's own user");
            }
        }
        let mut rl = String::from("core=0");
        if let Some(n) = self.nproc {
            let _ = write!(rl, " nproc={n}");
        }
        let _ = writeln!(
            s,
            "rlimits         {rl} (never above the current hard limit)"
        );
        match self.memory_limit {
            Some(m) => {
                let _ = writeln!(
                    s,
                    "memory          {m} bytes: the watchdog kills the process tree above it"
                );
            }
            None => {
                let _ = writeln!(s, "memory          unlimited");
            }
        }
        let _ = writeln!(
            s,
            "signals         only to processes of this sandbox (Landlock signal scope)"
        );
        let _ = writeln!(
            s,
            "ipc             abstract unix sockets outside the sandbox denied (Landlock scope);"
        );
        let _ = writeln!(
            s,
            "                posix shm/semaphores (/dev/shm) denied; pipes and socketpairs allowed"
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "[read+exec]");
        for g in &self.exec_paths {
            let _ = writeln!(s, "{:<40} {}", g.path.display(), g.why);
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "[read]");
        for g in &self.read_paths {
            let _ = writeln!(s, "{:<40} {}", g.path.display(), g.why);
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "[write]  (read, write, create, remove; never exec)");
        for g in &self.write_paths {
            let _ = writeln!(s, "{:<40} {}", g.path.display(), g.why);
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "[volumes]  (container path -> host directory; a symlink in the rootfs)"
        );
        for v in &self.volumes {
            let _ = writeln!(
                s,
                "{:<40} -> {} ({}, {})",
                v.target,
                v.host.display(),
                v.kind,
                if v.readonly { "read-only" } else { "writable" }
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "[devices]");
        for d in &self.devices {
            let _ = writeln!(
                s,
                "{:<40} read write{} ({})",
                d.path.display(),
                if d.ioctl { " ioctl" } else { "" },
                d.why
            );
        }
        if self.gpu.allowed {
            let _ = writeln!(s, "gpu             allowed: {}", self.gpu.reason);
            let _ = writeln!(
                s,
                "gpu-devices     /dev/nvidia[0-9]* {} (read write ioctl; nodes absent on this host are skipped)",
                GPU_DEVICES.join(" ")
            );
        } else {
            let _ = writeln!(s, "gpu             denied: {}", self.gpu.reason);
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "[network]");
        match self.network {
            NetworkAccess::Full => {
                let _ = writeln!(s, "mode            full access: network-outbound and network-inbound allowed on every port");
            }
            NetworkAccess::Localhost => {
                let _ = writeln!(s, "mode            localhost: network-bind only on the assigned ports, connect only to the");
                let _ = writeln!(s, "                listed ports (Landlock matches TCP ports, not addresses); UDP and raw");
                let _ = writeln!(s, "                sockets denied (seccomp)");
                let list = |v: &[u16]| {
                    if v.is_empty() {
                        "none".to_string()
                    } else {
                        v.iter()
                            .map(|p| format!("tcp/{p}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                };
                let _ = writeln!(s, "network-bind    {}", list(&self.bind_ports));
                let _ = writeln!(s, "connect         {}", list(&self.connect_ports));
            }
            NetworkAccess::None => {
                let _ = writeln!(s, "mode            none: no IP sockets (AF_INET, AF_INET6, AF_PACKET denied by seccomp;");
                let _ = writeln!(
                    s,
                    "                every TCP bind/connect denied by Landlock); unix sockets only"
                );
            }
        }
        for p in ports {
            let _ = writeln!(
                s,
                "endpoint        {} {}/{} -> 127.0.0.1:{} (env PORT / ZLAYER_PORT_{})",
                p.name,
                p.protocol,
                p.container_port,
                p.host_port,
                super::ports::env_suffix(&p.name)
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "[syscalls]  (seccomp; denied with EPERM)");
        let allowed = |n: &str| self.allowed_syscalls.iter().any(|a| a == n);
        let denied: Vec<&str> = seccomp::DENIED
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| !allowed(n))
            .collect();
        for chunk in denied.chunks(6) {
            let _ = writeln!(s, "deny            {}", chunk.join(" "));
        }
        if !allowed(seccomp::NAMESPACES) {
            let _ = writeln!(
                s,
                "deny            clone/unshare with CLONE_NEW* flags; clone3 (ENOSYS)"
            );
        }
        if self.root && !allowed(seccomp::METADATA) {
            let names: Vec<&str> = seccomp::METADATA_SYSCALLS.iter().map(|(n, _)| *n).collect();
            let _ = writeln!(
                s,
                "deny            file metadata changes ({}): the workload runs as uid 0, which owns",
                names.join(" ")
            );
            let _ = writeln!(
                s,
                "                most host files, and Landlock does not cover metadata; set `user` to allow them"
            );
        }
        if !allowed(seccomp::TIOCSTI) {
            let _ = writeln!(
                s,
                "deny            ioctl TIOCSTI TIOCLINUX (terminal injection)"
            );
        }
        let _ = writeln!(
            s,
            "deny            x32 syscalls; other architectures kill the process"
        );
        if !self.allowed_syscalls.is_empty() {
            let _ = writeln!(
                s,
                "allow           {} (label com.zlayer.sandbox.allow-syscalls)",
                self.allowed_syscalls.join(" ")
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "[landlock]");
        let _ = writeln!(
            s,
            "required        {}",
            if self.allow_degraded {
                "no: degraded mode allowed (label com.zlayer.sandbox.allow-degraded)"
            } else {
                "yes: the start fails when the kernel lacks Landlock"
            }
        );
        s
    }
}

/// The GPU device nodes present on this host.
pub fn gpu_device_nodes() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/dev") {
        let mut cards: Vec<PathBuf> = dir
            .filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.strip_prefix("nvidia").is_some_and(|rest| {
                    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())
                })
            })
            .map(|e| e.path())
            .collect();
        cards.sort();
        out.extend(cards);
    }
    out.extend(GPU_DEVICES.iter().map(PathBuf::from).filter(|p| p.exists()));
    out
}
