//! Builds the OCI runtime spec (`config.json`) of a container from its
//! [`ServiceSpec`] and its image's config, docker style.

use super::cgroups::CgroupMode;
use super::user::ResolvedUser;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilities, LinuxCpu, LinuxDeviceCgroup, LinuxMemory,
    LinuxNamespace, LinuxNamespaceType, LinuxPids, LinuxResources, Mount, Process, Root, Spec,
    User,
};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use zlayer_image::ImageConfig;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_spec::{NetworkMode, ServiceSpec};

/// `PATH` when neither the image nor the service sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set.
pub const DEFAULT_CAPABILITIES: &[Capability] = &[
    Capability::AuditWrite,
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Mknod,
    Capability::NetBindService,
    Capability::NetRaw,
    Capability::Setfcap,
    Capability::Setgid,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysChroot,
];

/// Paths of `/proc` and `/sys` hidden from containers (docker's list).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths of `/proc` made read-only (docker's list).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub use zlayer_spec::TTY_LABEL;

/// Whether the service asks for a terminal ([`TTY_LABEL`] = `true`).
pub fn wants_tty(service: &ServiceSpec) -> bool {
    service
        .labels
        .get(TTY_LABEL)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// CPU period used with `resources.cpu` (100 ms, like docker's `--cpus`).
pub const CPU_PERIOD_US: u64 = 100_000;

/// Everything needed to build the spec.
#[derive(Debug)]
pub struct SpecInput<'a> {
    /// The service.
    pub service: &'a ServiceSpec,
    /// The image's config.
    pub image: &'a ImageConfig,
    /// The rootfs directory (absolute).
    pub rootfs: &'a Path,
    /// The hostname.
    pub hostname: &'a str,
    /// The resolved user.
    pub user: &'a ResolvedUser,
    /// The cgroup path.
    pub cgroups_path: &'a str,
    /// The host's cgroup mode.
    pub cgroup_mode: CgroupMode,
    /// Run the init on a pseudo-terminal.
    pub tty: bool,
    /// Mounts for the service's storage, resolved by the caller.
    pub storage: Vec<Mount>,
    /// Files bind-mounted over `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
    pub etc_files: Vec<(PathBuf, &'static str)>,
}

/// The container's argv: the service's entrypoint/args over the image's
/// `Entrypoint`/`Cmd`; setting an entrypoint drops the image's `Cmd`.
pub fn command_argv(service: &ServiceSpec, image: &ImageConfig) -> Result<Vec<String>> {
    let cmd = &service.command;
    let entrypoint = cmd
        .entrypoint
        .clone()
        .or_else(|| image.entrypoint.clone())
        .unwrap_or_default();
    let args = match (&cmd.args, &cmd.entrypoint) {
        (Some(args), _) => args.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => image.cmd.clone().unwrap_or_default(),
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(args).collect();
    if argv.is_empty() || argv[0].is_empty() {
        return Err(RuntimeError::InvalidSpec(format!(
            "service {:?} has no command: image {:?} sets no Entrypoint or Cmd; \
             set command.entrypoint or command.args",
            service.name, service.image.name
        )));
    }
    Ok(argv)
}

/// The environment: the image's, then the service's (which wins), plus
/// `PATH`, `HOSTNAME` and `HOME` when unset.
pub fn environment(
    service: &ServiceSpec,
    image: &ImageConfig,
    hostname: &str,
    home: Option<&str>,
) -> Vec<String> {
    #[derive(Default)]
    struct Env {
        order: Vec<String>,
        values: HashMap<String, String>,
    }
    impl Env {
        fn set(&mut self, k: &str, v: &str) {
            if !self.values.contains_key(k) {
                self.order.push(k.to_string());
            }
            self.values.insert(k.to_string(), v.to_string());
        }
        fn has(&self, k: &str) -> bool {
            self.values.contains_key(k)
        }
    }
    let mut env = Env::default();
    for kv in &image.env {
        match kv.split_once('=') {
            Some((k, v)) => env.set(k, v),
            None => env.set(kv, ""),
        }
    }
    for (k, v) in &service.env {
        env.set(k, v);
    }
    if !env.has("PATH") {
        env.set("PATH", DEFAULT_PATH);
    }
    if !env.has("HOSTNAME") {
        env.set("HOSTNAME", hostname);
    }
    if !env.has("HOME") {
        env.set("HOME", home.unwrap_or("/"));
    }
    env.order
        .iter()
        .map(|k| {
            format!(
                "{k}={}",
                env.values.get(k).map(String::as_str).unwrap_or("")
            )
        })
        .collect()
}

/// The working directory: the service's, else the image's, else `/`.
pub fn working_dir(service: &ServiceSpec, image: &ImageConfig) -> Result<String> {
    let dir = service
        .command
        .workdir
        .clone()
        .or_else(|| image.working_dir.clone())
        .unwrap_or_else(|| "/".to_string());
    if !dir.starts_with('/') {
        return Err(RuntimeError::InvalidSpec(format!(
            "working directory {dir:?} must be an absolute path (start with '/')"
        )));
    }
    Ok(dir)
}

/// The capability names (`CAP_CHOWN`, ...) of the default set.
pub fn default_capability_names() -> Vec<String> {
    DEFAULT_CAPABILITIES
        .iter()
        .map(|c| format!("CAP_{c}"))
        .collect()
}

/// The capability sets of a process running as `uid`: the default set, all
/// of it effective for root and none of it for other users (as after exec).
pub fn capabilities() -> LinuxCapabilities {
    let set: HashSet<Capability> = DEFAULT_CAPABILITIES.iter().copied().collect();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(None);
    caps.set_ambient(None);
    caps
}

/// The OCI user of `user`.
pub fn oci_user(user: &ResolvedUser) -> User {
    let mut u = User::default();
    u.set_uid(user.uid);
    u.set_gid(user.gid);
    u.set_additional_gids((!user.additional_gids.is_empty()).then(|| user.additional_gids.clone()));
    u
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// A bind mount of host `source` at `dest`.
pub fn bind_mount(source: &Path, dest: &str, readonly: bool) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some("bind".to_string()));
    m.set_source(Some(source.to_path_buf()));
    let rw = if readonly { "ro" } else { "rw" };
    m.set_options(Some(vec!["rbind".into(), "rprivate".into(), rw.into()]));
    m
}

/// A tmpfs at `dest` limited to `size` bytes.
pub fn tmpfs_mount(dest: &str, size: Option<u64>) -> Mount {
    let mut opts = vec![
        "nosuid".to_string(),
        "nodev".to_string(),
        "mode=1777".to_string(),
    ];
    if let Some(size) = size {
        opts.push(format!("size={size}"));
    }
    let mut m = mount(dest, "tmpfs", "tmpfs", &[]);
    m.set_options(Some(opts));
    m
}

fn default_mounts(cgroup_mode: CgroupMode) -> Vec<Mount> {
    let mut v = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
    ];
    let cg = mount(
        "/sys/fs/cgroup",
        "cgroup",
        "cgroup",
        &["nosuid", "noexec", "nodev", "relatime", "ro"],
    );
    if cgroup_mode != CgroupMode::Legacy || Path::new("/sys/fs/cgroup").exists() {
        v.push(cg);
    }
    v
}

fn resources(service: &ServiceSpec) -> Result<LinuxResources> {
    let r = &service.resources;
    let mut res = LinuxResources::default();
    let mut deny_all = LinuxDeviceCgroup::default();
    deny_all.set_allow(false);
    deny_all.set_access(Some("rwm".to_string()));
    res.set_devices(Some(vec![deny_all]));
    if let Some(bytes) = r.memory_bytes().map_err(RuntimeError::InvalidSpec)? {
        if bytes < 1024 * 1024 {
            return Err(RuntimeError::InvalidSpec(format!(
                "resources.memory {bytes} bytes is below 1 MiB; no container can start with so little memory"
            )));
        }
        let mut m = LinuxMemory::default();
        m.set_limit(Some(bytes as i64));
        res.set_memory(Some(m));
    }
    if let Some(cpu) = r.cpu {
        if !(cpu.is_finite() && cpu > 0.0) {
            return Err(RuntimeError::InvalidSpec(format!(
                "resources.cpu {cpu} must be a positive number of cores such as 0.5 or 2"
            )));
        }
        let quota = ((cpu * CPU_PERIOD_US as f64).round() as i64).max(1000);
        let mut c = LinuxCpu::default();
        c.set_period(Some(CPU_PERIOD_US));
        c.set_quota(Some(quota));
        res.set_cpu(Some(c));
    }
    match r.pids_limit {
        None | Some(-1) => {}
        Some(n) if n > 0 => {
            let mut p = LinuxPids::default();
            p.set_limit(n);
            res.set_pids(Some(p));
        }
        Some(n) => {
            return Err(RuntimeError::InvalidSpec(format!(
                "resources.pids_limit {n} is invalid; use a positive number, or -1 for no limit"
            )))
        }
    }
    Ok(res)
}

fn namespaces(service: &ServiceSpec, cgroup_mode: CgroupMode) -> Vec<LinuxNamespace> {
    let mut types = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if service.network_mode != NetworkMode::Host {
        types.push(LinuxNamespaceType::Network);
    }
    if cgroup_mode == CgroupMode::Unified {
        types.push(LinuxNamespaceType::Cgroup);
    }
    types
        .into_iter()
        .map(|t| {
            let mut ns = LinuxNamespace::default();
            ns.set_typ(t);
            ns.set_path(None);
            ns
        })
        .collect()
}

/// Builds the runtime spec.
pub fn build_spec(input: SpecInput<'_>) -> Result<Spec> {
    let service = input.service;
    let argv = command_argv(service, input.image)?;
    let env = environment(
        service,
        input.image,
        input.hostname,
        input.user.home.as_deref(),
    );
    let cwd = working_dir(service, input.image)?;

    let mut process = Process::default();
    process.set_terminal(Some(input.tty));
    process.set_args(Some(argv));
    process.set_env(Some(env));
    process.set_cwd(PathBuf::from(cwd));
    process.set_user(oci_user(input.user));
    process.set_capabilities(Some(capabilities()));
    process.set_no_new_privileges(Some(true));
    process.set_rlimits(None);

    let mut root = Root::default();
    root.set_path(input.rootfs.to_path_buf());
    root.set_readonly(Some(false));

    let mut mounts = default_mounts(input.cgroup_mode);
    for (file, dest) in &input.etc_files {
        mounts.push(bind_mount(file, dest, false));
    }
    mounts.extend(input.storage);

    let mut sysctl = HashMap::new();
    if service.network_mode != NetworkMode::Host {
        // Like docker: ping without CAP_NET_RAW and low ports without
        // CAP_NET_BIND_SERVICE inside a private network namespace.
        sysctl.insert(
            "net.ipv4.ping_group_range".to_string(),
            "0 2147483647".to_string(),
        );
        sysctl.insert(
            "net.ipv4.ip_unprivileged_port_start".to_string(),
            "0".to_string(),
        );
    }

    let linux = LinuxBuilder::default()
        .namespaces(namespaces(service, input.cgroup_mode))
        .resources(resources(service)?)
        .cgroups_path(PathBuf::from(input.cgroups_path))
        .masked_paths(
            MASKED_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .sysctl(sysctl)
        .build()
        .map_err(|e| RuntimeError::Internal(format!("building the OCI linux section: {e}")))?;

    let mut spec = Spec::default();
    spec.set_version("1.0.2".to_string());
    spec.set_hostname(Some(input.hostname.to_string()));
    spec.set_process(Some(process));
    spec.set_root(Some(root));
    spec.set_mounts(Some(mounts));
    spec.set_linux(Some(linux));
    spec.set_annotations(None);
    Ok(spec)
}

/// A hostname for container `name`: at most 63 characters of
/// `[a-z0-9-]`, never starting or ending with `-`.
pub fn hostname_for(name: &str) -> String {
    let h: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    let h = h.trim_matches('-').to_string();
    if h.is_empty() {
        "container".to_string()
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zlayer_spec::{ByteSize, StorageSpec};

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["serve".into(), "--port=80".into()]),
            env: vec!["PATH=/bin".into(), "A=image".into(), "B=image".into()],
            working_dir: Some("/srv".into()),
            ..Default::default()
        }
    }

    #[test]
    fn argv_docker_semantics() {
        let mut s = ServiceSpec::minimal("web", "img");
        assert_eq!(
            command_argv(&s, &image()).unwrap(),
            ["/entry", "serve", "--port=80"]
        );
        s.command.args = Some(vec!["x".into()]);
        assert_eq!(command_argv(&s, &image()).unwrap(), ["/entry", "x"]);
        s.command.args = None;
        s.command.entrypoint = Some(vec!["sh".into(), "-c".into()]);
        assert_eq!(command_argv(&s, &image()).unwrap(), ["sh", "-c"]);
        s.command.args = Some(vec!["echo hi".into()]);
        assert_eq!(command_argv(&s, &image()).unwrap(), ["sh", "-c", "echo hi"]);
        let bare = ServiceSpec::minimal("web", "img");
        let err = command_argv(&bare, &ImageConfig::default()).unwrap_err();
        assert!(err.to_string().contains("no command"), "{err}");
    }

    #[test]
    fn env_and_workdir() {
        let mut s = ServiceSpec::minimal("web", "img");
        s.env.insert("B".into(), "service".into());
        s.env.insert("C".into(), "x=y".into());
        let env = environment(&s, &image(), "web-1", Some("/root"));
        assert_eq!(
            env,
            [
                "PATH=/bin",
                "A=image",
                "B=service",
                "C=x=y",
                "HOSTNAME=web-1",
                "HOME=/root"
            ]
        );
        let env = environment(&s, &ImageConfig::default(), "h", None);
        assert!(env.contains(&format!("PATH={DEFAULT_PATH}")));
        assert!(env.contains(&"HOME=/".to_string()));
        assert_eq!(working_dir(&s, &image()).unwrap(), "/srv");
        assert_eq!(working_dir(&s, &ImageConfig::default()).unwrap(), "/");
        s.command.workdir = Some("rel".into());
        assert!(working_dir(&s, &image())
            .unwrap_err()
            .to_string()
            .contains("absolute"));
    }

    #[test]
    fn full_spec() {
        let mut s = ServiceSpec::minimal("web", "img");
        s.resources.memory = Some(ByteSize::parse("32Mi").unwrap());
        s.resources.cpu = Some(0.5);
        s.resources.pids_limit = Some(20);
        s.storage.push(StorageSpec::Tmpfs {
            target: "/scratch".into(),
            size: None,
        });
        let user = ResolvedUser::default();
        let spec = build_spec(SpecInput {
            service: &s,
            image: &image(),
            rootfs: Path::new("/x/rootfs"),
            hostname: "web-1",
            user: &user,
            cgroups_path: "/zlayer/web-1",
            cgroup_mode: CgroupMode::Hybrid,
            tty: false,
            storage: vec![tmpfs_mount("/scratch", Some(1 << 20))],
            etc_files: vec![],
        })
        .unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let res = linux.resources().as_ref().unwrap();
        assert_eq!(res.memory().as_ref().unwrap().limit(), Some(32 << 20));
        assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));
        assert_eq!(res.cpu().as_ref().unwrap().period(), Some(100_000));
        assert_eq!(res.pids().as_ref().unwrap().limit(), 20);
        let ns: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        assert!(ns.contains(&LinuxNamespaceType::Network));
        assert!(!ns.contains(&LinuxNamespaceType::Cgroup));
        // The seccomp profile travels separately (seccomp.json, compiled once).
        assert!(linux.seccomp().is_none());
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(
            p.capabilities()
                .as_ref()
                .unwrap()
                .bounding()
                .as_ref()
                .unwrap()
                .len(),
            14
        );
        let tmpfs = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/scratch"))
            .unwrap();
        assert!(tmpfs
            .options()
            .as_ref()
            .unwrap()
            .contains(&"size=1048576".to_string()));

        s.network_mode = NetworkMode::Host;
        s.resources.pids_limit = Some(0);
        let err = resources(&s).unwrap_err();
        assert!(err.to_string().contains("pids_limit"));
        assert!(!namespaces(&s, CgroupMode::Unified)
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Network));
    }

    #[test]
    fn hostnames() {
        assert_eq!(hostname_for("web-1"), "web-1");
        assert_eq!(hostname_for("My_App.2"), "my-app-2");
        assert_eq!(hostname_for("--"), "container");
        assert_eq!(hostname_for(&"a".repeat(80)).len(), 63);
    }
}
