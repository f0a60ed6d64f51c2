//! Building a container's state dir: rootfs, OCI spec, records. Runs on a
//! blocking thread; on any error everything it made is removed again.

use super::cgroups::HostCgroups;
use super::network::{self, NetworkPlan};
use super::oci_spec_builder::{self, hostname_for, SpecInput};
use super::paths::{ContainerPaths, Layout};
use super::rootfs_fs::mkdir_all_in_root;
use super::seccomp_profile;
use super::state_dir::{self, ContainerRecord};
use super::storage::storage_mounts;
use super::teardown::{self, Deletion};
use super::user::resolve_user;
use std::path::{Path, PathBuf};
use zlayer_image::{ImageConfig, ImageRecord, ImageStore};
use zlayer_network::NetworkOptions;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::ContainerId;
use zlayer_spec::{NetworkMode, ServiceSpec};

/// Everything `create` needs, resolved by the (async) caller.
pub struct CreateRequest<'a> {
    /// The container.
    pub id: &'a ContainerId,
    /// Its service spec.
    pub spec: &'a ServiceSpec,
    /// The image record.
    pub image: &'a ImageRecord,
    /// The image's config.
    pub image_config: &'a ImageConfig,
    /// The image store.
    pub store: &'a ImageStore,
    /// The data root layout.
    pub layout: &'a Layout,
    /// The container's paths.
    pub paths: &'a ContainerPaths,
    /// Options of the network manager (bridge names, subnets, DNS).
    pub network: &'a NetworkOptions,
}

/// Creates the container; on failure removes whatever was made.
pub fn create(req: CreateRequest<'_>) -> Result<()> {
    let fail = |e: RuntimeError| -> RuntimeError {
        let _ = teardown::remove_container(req.paths, None, Some(req.store), Deletion::Now);
        match e {
            RuntimeError::InvalidSpec(_) | RuntimeError::Configuration(_) => e,
            other => RuntimeError::CreateFailed {
                id: req.id.to_string(),
                reason: other.to_string(),
            },
        }
    };
    build(&req).map_err(fail)
}

fn io(what: &str, path: &Path, e: std::io::Error) -> RuntimeError {
    RuntimeError::Internal(format!("{what} {} failed: {e}", path.display()))
}

fn build(req: &CreateRequest<'_>) -> Result<()> {
    let paths = req.paths;
    let spec = req.spec;
    // Port conflicts and unknown networks fail here, before anything exists.
    let net_plan = NetworkPlan::new(req.id, spec, req.network);
    if let Some(root) = paths.data_root() {
        network::check(root, req.id, &net_plan).map_err(network::check_error)?;
    }
    std::fs::create_dir_all(&paths.dir).map_err(|e| io("creating", &paths.dir, e))?;
    ensure_run_tmpfs(paths)?;
    let stop_signal = match spec
        .stop_signal
        .as_deref()
        .or(req.image_config.stop_signal.as_deref())
    {
        Some(s) => zlayer_runtime::validate_signal(s)?,
        None => libc::SIGTERM,
    };
    let stop_grace_ms = spec
        .stop_grace_period
        .as_ref()
        .map(|d| d.duration().map(|d| d.as_millis() as u64))
        .transpose()
        .map_err(|e| RuntimeError::InvalidSpec(format!("stop_grace_period: {e}")))?;
    let memory_limit = spec
        .resources
        .memory
        .as_ref()
        .map(|m| m.bytes())
        .transpose()
        .map_err(|e| RuntimeError::InvalidSpec(format!("resources.memory: {e}")))?;
    // Fail on a missing command before touching the image.
    oci_spec_builder::command_argv(spec, req.image_config)?;
    let cwd = oci_spec_builder::working_dir(spec, req.image_config)?;

    let rootfs = req
        .store
        .prepare_rootfs(req.image, &paths.dir)
        .map_err(|e| RuntimeError::Internal(format!("preparing the rootfs: {e}")))?;
    let user_spec = spec.user.as_deref().or(req.image_config.user.as_deref());
    let user = resolve_user(&rootfs.path, user_spec)?;
    mkdir_all_in_root(&rootfs.path, Path::new(&cwd))
        .map_err(|e| io("creating the working directory in", &rootfs.path, e))?;

    let hostname = hostname_for(&req.id.to_string());
    let storage = storage_mounts(req.layout, paths, &spec.storage)?;
    let etc_files = write_etc_files(paths, &hostname, spec.network_mode == NetworkMode::Host)?;
    let cgroup_path = req.layout.cgroup_path(req.id);
    let tty = oci_spec_builder::wants_tty(spec);
    let oci = oci_spec_builder::build_spec(SpecInput {
        service: spec,
        image: req.image_config,
        rootfs: &rootfs.path,
        hostname: &hostname,
        user: &user,
        cgroups_path: &cgroup_path,
        cgroup_mode: HostCgroups::get().mode,
        tty,
        storage,
        etc_files,
    })?;
    let json = serde_json::to_vec(&oci)
        .map_err(|e| RuntimeError::Internal(format!("encoding config.json: {e}")))?;
    // Plain writes: nothing reads these before container.json exists.
    std::fs::write(paths.oci_config(), &json).map_err(|e| io("writing", &paths.oci_config(), e))?;

    let oom_events = super::cgroups::ContainerCgroup::new(&cgroup_path).oom_events_file();
    let record = ContainerRecord {
        id: req.id.clone(),
        image: spec.image.name.clone(),
        image_digest: Some(req.image.digest().to_string()),
        stop_signal,
        stop_grace_ms,
        delete_on_exit: spec.lifecycle.delete_on_exit,
        cgroup_path,
        memory_limit,
        oom_events,
        host_network: spec.network_mode == NetworkMode::Host,
        tty,
        seccomp: Some(seccomp_profile::DOCKER_DEFAULT.to_string()),
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids,
        created_at_ms: state_dir::now_ms(),
        spec: serde_json::to_value(spec).unwrap_or(serde_json::Value::Null),
        network: Some(net_plan),
    };
    // Written last: a state dir without container.json is an unfinished
    // create, cleaned up by the next create or remove of the same id.
    state_dir::write_json(&paths.record(), &record)
}

/// Mounts the container's `run/` tmpfs unless it is mounted: at create,
/// and again at start after a reboot emptied it. Where mounting is
/// refused, `run/` stays a plain directory.
pub fn ensure_run_tmpfs(paths: &ContainerPaths) -> Result<()> {
    zlayer_hosting::run_tmpfs::ensure_private_tmpfs(
        &paths.lc_root,
        c"mode=0700,size=16m,nr_inodes=4096",
    )
    .map(|_| ())
    .map_err(|e| io("creating", &paths.lc_root, e))
}

/// [`ensure_run_tmpfs`] for a start of the container `record` describes:
/// a `run/` emptied by a reboot gets its `/etc` files again (with create's
/// contents; a bridge attach rewrites hosts and resolv.conf anyway).
pub fn prepare_run_dir(paths: &ContainerPaths, record: &ContainerRecord) -> Result<()> {
    ensure_run_tmpfs(paths)?;
    if !paths.etc_file("hostname").exists() {
        let hostname = hostname_for(&record.id.to_string());
        write_etc_files(paths, &hostname, record.host_network)?;
    }
    Ok(())
}

/// `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` for the container
/// (`host_network`: the host's hosts file).
fn write_etc_files(
    paths: &ContainerPaths,
    hostname: &str,
    host_network: bool,
) -> Result<Vec<(PathBuf, &'static str)>> {
    let hosts = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
        )
    };
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let files = [
        ("hosts", hosts, "/etc/hosts"),
        ("hostname", format!("{hostname}\n"), "/etc/hostname"),
        ("resolv.conf", resolv, "/etc/resolv.conf"),
    ];
    let mut out = Vec::new();
    for (name, content, dest) in files {
        let p = paths.etc_file(name);
        std::fs::write(&p, content).map_err(|e| io("writing", &p, e))?;
        out.push((p, dest));
    }
    Ok(out)
}
