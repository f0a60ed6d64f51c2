//! Preparing a container (the launcher's `prepare`): rootfs, OCI spec,
//! `/etc` files; the result is the [`ContainerPlan`].

use super::cgroups::HostCgroups;
use super::network::{self, NetworkPlan};
use super::oci_spec_builder::{self, hostname_for, SpecInput};
use super::paths::{cgroup_path, ContainerPaths};
use super::plan::ContainerPlan;
use super::rootfs_fs::mkdir_all_in_root;
use super::seccomp_profile;
use super::storage::storage_mounts;
use super::user::resolve_user;
use std::path::{Path, PathBuf};
use zlayer_hosting::PrepareContext;
use zlayer_network::NetworkOptions;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_spec::NetworkMode;

fn io(what: &str, path: &Path, e: std::io::Error) -> RuntimeError {
    RuntimeError::Internal(format!("{what} {} failed: {e}", path.display()))
}

/// Prepares the container in `ctx.dir` (the launcher's teardown removes
/// what it made when it fails).
pub fn prepare(
    root: &Path,
    network: &NetworkOptions,
    ctx: &PrepareContext<'_>,
) -> Result<ContainerPlan> {
    let id = &ctx.record.container;
    let paths = ContainerPaths::of(ctx.dir.clone())?;
    let spec = &ctx.record.spec;
    // Port conflicts and unknown networks fail here, before anything exists.
    let net_plan = NetworkPlan::new(id, spec, network);
    network::check(root, id, &net_plan).map_err(network::check_error)?;
    let memory_limit = spec
        .resources
        .memory_bytes()
        .map_err(RuntimeError::InvalidSpec)?;
    // Fail on a spec without any command before touching the image.
    let argv = oci_spec_builder::command_argv(spec, ctx.image_config)?;
    let cwd = oci_spec_builder::working_dir(spec, ctx.image_config)?;

    let rootfs = ctx
        .store
        .prepare_rootfs(ctx.image, &paths.dir)
        .map_err(|e| RuntimeError::Internal(format!("preparing the rootfs: {e}")))?;
    zlayer_failpoints::hit("create.after-rootfs");
    let user_spec = spec.user.as_deref().or(ctx.image_config.user.as_deref());
    let user = resolve_user(&rootfs.path, user_spec)?;
    mkdir_all_in_root(&rootfs.path, Path::new(&cwd))
        .map_err(|e| io("creating the working directory in", &rootfs.path, e))?;

    let hostname = hostname_for(&id.to_string());
    let storage = storage_mounts(ctx.volumes, &paths, &spec.storage)?;
    let etc_files = write_etc_files(&paths, &hostname, spec.network_mode == NetworkMode::Host)?;
    let cgroup_path = cgroup_path(root, &paths.lc_id);
    let tty = ctx.record.tty;
    let oci = oci_spec_builder::build_spec(SpecInput {
        service: spec,
        image: ctx.image_config,
        rootfs: &rootfs.path,
        hostname: &hostname,
        user: &user,
        cgroups_path: &cgroup_path,
        cgroup_mode: HostCgroups::get().mode,
        tty,
        storage,
        etc_files,
    })?;
    let path = oci
        .process()
        .as_ref()
        .and_then(|p| p.env().as_ref())
        .and_then(|env| env.iter().find_map(|kv| kv.strip_prefix("PATH=")))
        .unwrap_or(crate::command::DEFAULT_PATH)
        .to_string();
    let json = serde_json::to_vec(&oci)
        .map_err(|e| RuntimeError::Internal(format!("encoding config.json: {e}")))?;
    // A plain write: nothing reads it before launch.json exists.
    std::fs::write(paths.oci_config(), &json).map_err(|e| io("writing", &paths.oci_config(), e))?;

    let oom_events = super::cgroups::ContainerCgroup::new(&cgroup_path).oom_events_file();
    Ok(ContainerPlan {
        id: id.clone(),
        image_digest: Some(ctx.image.digest().to_string()),
        cgroup_path,
        memory_limit,
        oom_events,
        host_network: spec.network_mode == NetworkMode::Host,
        tty,
        seccomp: Some(seccomp_profile::DOCKER_DEFAULT.to_string()),
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids,
        argv,
        path,
        cwd,
        network: net_plan,
    })
}

/// Refills `run/` for a start of the container `plan` describes: a `run/`
/// emptied by a reboot gets its `/etc` files again (with create's
/// contents; a bridge attach rewrites hosts and resolv.conf anyway).
pub fn prepare_run_dir(paths: &ContainerPaths, plan: &ContainerPlan) -> Result<()> {
    if !paths.etc_file("hostname").exists() {
        let hostname = hostname_for(&plan.id.to_string());
        write_etc_files(paths, &hostname, plan.host_network)?;
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
