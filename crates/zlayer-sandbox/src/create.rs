//! Preparing a sandbox (the launcher's `prepare`): mount (or clone) the
//! rootfs, resolve the command, assign ports, build the policy, write
//! `sandbox.policy`; the result is the [`SandboxPlan`].

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zlayer_hosting::{PrepareContext, SpawnError};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::InvokeFailure;
use zlayer_spec::{ServiceSpec, StorageSpec};
use zlayer_sys::atomic::write_atomic;

use super::clone;
use super::config::SandboxConfig;
use super::options::{resolve_user, SandboxOptions};
use super::overlay;
use super::plan::{SandboxPlan, PLAN_VERSION};
use super::policy::{Policy, PolicyInput, VolumeGrant};
use super::ports::{env_suffix, AllocatedPort, PortAllocator};

/// The default search path inside an image.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn failed(ctx: &PrepareContext<'_>, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::CreateFailed {
        id: ctx.record.name.clone(),
        reason: reason.into(),
    }
}

/// Prepares the sandbox in `ctx.dir`; returns its plan. On error, what it
/// allocated in memory (ports) is released; the files go with the launcher's
/// teardown.
pub fn prepare(
    config: &SandboxConfig,
    ports: &PortAllocator,
    ctx: &PrepareContext<'_>,
) -> Result<SandboxPlan> {
    let mut allocated: Vec<AllocatedPort> = Vec::new();
    let result = build(config, ports, ctx, &mut allocated);
    if result.is_err() {
        ports.release(allocated.iter().map(|p| p.host_port));
    }
    result
}

fn build(
    config: &SandboxConfig,
    port_allocator: &PortAllocator,
    ctx: &PrepareContext<'_>,
    ports: &mut Vec<AllocatedPort>,
) -> Result<SandboxPlan> {
    let spec: &ServiceSpec = &ctx.record.spec;
    let dir = &ctx.dir.dir;
    let io = |what: &str, e: std::io::Error| failed(ctx, format!("{what}: {e}"));
    let options = SandboxOptions::from_spec(spec)?;
    let memory_limit = spec
        .resources
        .memory_bytes()
        .map_err(RuntimeError::InvalidSpec)?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    let tmpfs = zlayer_hosting::run_tmpfs::is_mounted(&ctx.dir.run());
    let rootfs = dir.join("rootfs");
    let layers = ctx
        .store
        .ensure_unpacked(ctx.image)
        .map_err(|e| failed(ctx, format!("unpacking image {}: {e}", ctx.image.reference)))?;
    // Flattened once per image (symlinks made relative), then an overlay
    // lower; else merged into this container's own copy.
    let flat = if tmpfs {
        flattened_layers(&config.flat_dir(), &layers)
            .map_err(|e| tracing::debug!(error = %e, "flattening the image's layers"))
            .ok()
    } else {
        None
    };
    let rootfs_lower = match flat {
        Some(src) if overlay_rootfs(&src, dir) => Some(src),
        _ => {
            let _ = std::fs::create_dir_all(&rootfs);
            let mut stats = clone::CloneStats::default();
            for layer in &layers {
                clone::merge_layer(layer, &rootfs, &rootfs, &mut stats)
                    .map_err(|e| io(&format!("merging layer {}", layer.display()), e))?;
            }
            None
        }
    };
    ctx.store
        .register_use(dir, ctx.image)
        .map_err(|e| failed(ctx, format!("recording the image lease: {e}")))?;
    zlayer_failpoints::hit("create.after-rootfs");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| io("creating tmp", e))?;
    let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777));

    // Command.
    let defaults = ctx.image_config;
    let mut argv: Vec<String> = match &spec.command.entrypoint {
        Some(ep) => ep.clone(),
        None => defaults.entrypoint.clone().unwrap_or_default(),
    };
    match &spec.command.args {
        Some(args) => argv.extend(args.iter().cloned()),
        None if spec.command.entrypoint.is_none() => {
            argv.extend(defaults.cmd.clone().unwrap_or_default())
        }
        None => {}
    }
    if argv.is_empty() || argv[0].is_empty() {
        return Err(failed(
            ctx,
            "no command: set command.entrypoint in the service (the image has no Entrypoint/Cmd)",
        ));
    }
    let workdir = spec
        .command
        .workdir
        .clone()
        .or_else(|| defaults.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_string());
    if !workdir.starts_with('/') {
        return Err(RuntimeError::InvalidSpec(format!(
            "command.workdir {workdir:?} must be an absolute path inside the image"
        )));
    }
    let cwd = inside(&rootfs, &workdir);
    std::fs::create_dir_all(&cwd).map_err(|e| io("creating the working directory", e))?;

    // Environment: defaults < image < spec < engine-provided.
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v));
    };
    set("PATH", map_path_list(&rootfs, DEFAULT_PATH));
    set("HOME", tmp.display().to_string());
    set("TMPDIR", tmp.display().to_string());
    for kv in &defaults.env {
        if let Some((k, v)) = kv.split_once('=') {
            let v = if k == "PATH" {
                map_path_list(&rootfs, v)
            } else {
                v.to_string()
            };
            set(k, v);
        }
    }
    for (k, v) in &spec.env {
        set(k, v.clone());
    }
    *ports = port_allocator.allocate(spec).map_err(|e| match e {
        RuntimeError::CreateFailed { reason, .. } => failed(ctx, reason),
        other => other,
    })?;
    if let Some(first) = ports.first() {
        set("PORT", first.host_port.to_string());
    }
    for p in ports.iter() {
        set(
            &format!("ZLAYER_PORT_{}", env_suffix(&p.name)),
            p.host_port.to_string(),
        );
    }
    set("ZLAYER_CONTAINER", ctx.record.container.to_string());
    set("ZLAYER_ROOTFS", rootfs.display().to_string());
    set("ZLAYER_ISOLATION", "sandbox".to_string());

    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    // A command that is not there fails the start (docker's 126/127), as
    // with every isolation; the container is created all the same.
    let (program, unresolved) = match resolve_program(&rootfs, &cwd, &argv[0], &path_var) {
        Some(p) => (p, None),
        None if is_plain_file(&rootfs, &cwd, &argv[0]) => (
            PathBuf::new(),
            Some(SpawnError::invoke(
                InvokeFailure::NotExecutable,
                format!(
                    "entrypoint {:?} in the image is not executable; `chmod +x` it or run it through /bin/sh",
                    argv[0]
                ),
            )),
        ),
        None => (
            PathBuf::new(),
            Some(SpawnError::invoke(
                InvokeFailure::CommandNotFound,
                format!(
                    "entrypoint {:?} not found in the image; give a path inside the image, e.g. /bin/sh",
                    argv[0]
                ),
            )),
        ),
    };

    let user = match spec
        .user
        .as_ref()
        .or(defaults.user.as_ref())
        .filter(|u| !u.is_empty())
    {
        Some(u) => Some(resolve_user(u, &rootfs)?),
        None => None,
    };
    let volumes = volumes(ctx, &rootfs)?;
    if let Some(u) = user {
        for dir in std::iter::once(&tmp).chain(
            volumes
                .iter()
                .filter(|v| !v.readonly && v.kind != "bind")
                .map(|v| &v.host),
        ) {
            let _ = std::os::unix::fs::chown(dir, Some(u.uid), Some(u.gid));
        }
    }
    let gpu_spec = spec
        .resources
        .gpu
        .as_ref()
        .map(|g| format!("{} x{}", g.vendor, g.count));
    let name = ctx.record.container.to_string();
    let policy = Policy::build(&PolicyInput {
        container: name.clone(),
        image: spec.image.name.clone(),
        rootfs: &rootfs,
        tmp: &tmp,
        volumes,
        gpu_runtime: config.gpu_access,
        gpu_spec,
        options: &options,
        ports,
        user,
        pids_limit: spec.resources.pids_limit,
        memory_limit,
    });
    let plan = SandboxPlan {
        version: PLAN_VERSION,
        argv,
        program,
        unresolved,
        env,
        workdir,
        cwd,
        ports: ports.clone(),
        policy,
        pids_limit: spec.resources.pids_limit,
        tty: ctx.record.tty,
        rootfs_lower,
    };
    let text = plan.policy.render(&name, &spec.image.name, ports);
    write_atomic(&ctx.dir.file("sandbox.policy"), text.as_bytes())?;
    Ok(plan)
}

/// The merged tree of the store image made of `layers` (lowest first),
/// built once under `store/<key>` (in a temp directory, then renamed) and shared read-only by the overlays of its containers.
fn flattened_layers(store: &Path, layers: &[PathBuf]) -> std::io::Result<PathBuf> {
    let mut chain = Vec::new();
    for l in layers {
        chain.extend_from_slice(l.as_os_str().as_encoded_bytes());
        chain.push(0);
    }
    let digest = zlayer_image::Digest::of(&chain);
    let key = &digest.hex()[..24];
    let dest = store.join(key);
    if dest.is_dir() {
        return Ok(dest);
    }
    std::fs::create_dir_all(store)?;
    // Creates in one process (the daemon) may flatten one image at once.
    let tmp = zlayer_sys::atomic::temp_sibling(&dest);
    std::fs::create_dir_all(&tmp)?;
    let mut stats = clone::CloneStats::default();
    let built = layers
        .iter()
        .try_for_each(|l| clone::merge_layer(l, &tmp, &tmp, &mut stats));
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if std::fs::rename(&tmp, &dest).is_err() {
        // Another create built it meanwhile.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(dest)
}

/// The rootfs as an overlay of the image directory `src` (see
/// [`overlay`]); false when that is not possible here (a filesystem
/// overlayfs refuses), and then nothing is left behind.
fn overlay_rootfs(src: &Path, dir: &Path) -> bool {
    match overlay::mount(src, dir) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, image = %src.display(), "overlay rootfs unavailable; copying the image");
            let _ = std::fs::remove_dir_all(overlay::upper_dir(dir));
            let _ = std::fs::remove_dir_all(overlay::work_dir(dir));
            let _ = std::fs::remove_dir(dir.join("rootfs"));
            false
        }
    }
}

/// Applies create's changes of the rootfs again (volume links, the working
/// directory) on a fresh overlay upper layer (after a reboot).
pub fn reapply_rootfs_edits(rec: &SandboxPlan) -> std::io::Result<()> {
    let rootfs = &rec.policy.rootfs;
    for v in &rec.policy.volumes {
        let at = inside(rootfs, &v.target);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&at)?,
            Ok(_) => std::fs::remove_file(&at)?,
            Err(_) => {}
        }
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(&v.host, &at)?;
    }
    std::fs::create_dir_all(&rec.cwd)
}

/// `path` (absolute, inside the container) as a host path under `rootfs`.
pub fn inside(rootfs: &Path, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        rootfs.to_path_buf()
    } else {
        rootfs.join(rel)
    }
}

fn map_path_list(rootfs: &Path, list: &str) -> String {
    list.split(':')
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p.starts_with('/') {
                inside(rootfs, p).display().to_string()
            } else {
                p.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// Finds the executable for `argv0` inside `rootfs`: an absolute path is
/// taken inside the rootfs, a relative one with a slash from the working
/// directory, a bare name through `PATH` (host paths already mapped).
pub fn resolve_program(rootfs: &Path, cwd: &Path, argv0: &str, path_var: &str) -> Option<PathBuf> {
    let candidates = program_candidates(rootfs, cwd, argv0, path_var);
    match beneath::Root::open(rootfs) {
        Ok(root) => candidates.into_iter().find(|p| {
            p.strip_prefix(rootfs)
                .is_ok_and(|rel| root.is_executable(rel))
        }),
        Err(_) => candidates
            .into_iter()
            .find(|p| is_executable(p) && canonically_within(p, rootfs)),
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn canonically_within(p: &Path, rootfs: &Path) -> bool {
    p.canonicalize().is_ok_and(|c| c.starts_with(rootfs))
}

/// Lookups that cannot leave a directory: `openat2(RESOLVE_BENEATH)`, one
/// syscall per lookup where `canonicalize` made one per path component.
mod beneath {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::Path;

    /// An `O_PATH` descriptor of the directory lookups stay under.
    pub struct Root(OwnedFd);

    impl Root {
        /// Opens `dir`; fails where the kernel has no `openat2` (before 5.6).
        pub fn open(dir: &Path) -> nix::Result<Root> {
            let fd = nix::fcntl::open(
                dir,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )?;
            // SAFETY: open returned a new descriptor that we now own.
            let root = Root(unsafe { OwnedFd::from_raw_fd(fd) });
            // The probe that the kernel has openat2 (ENOSYS before 5.6).
            let probe = openat2(root.0.as_raw_fd(), ".", how(OFlag::O_DIRECTORY))?;
            // SAFETY: openat2 returned a new descriptor that we now own.
            drop(unsafe { OwnedFd::from_raw_fd(probe) });
            Ok(root)
        }

        /// Whether `rel` names, without leaving the root (no `..` above it,
        /// no absolute or magic symlinks), a regular file with an execute bit.
        pub fn is_executable(&self, rel: &Path) -> bool {
            let rel = if rel.as_os_str().is_empty() {
                Path::new(".")
            } else {
                rel
            };
            let Ok(fd) = openat2(self.0.as_raw_fd(), rel, how(OFlag::empty())) else {
                return false;
            };
            // SAFETY: openat2 returned a new descriptor that we now own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            nix::sys::stat::fstat(fd.as_raw_fd()).is_ok_and(|st| {
                st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_mode & 0o111 != 0
            })
        }
    }

    fn how(extra: OFlag) -> OpenHow {
        OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | extra)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    }
}

/// Where `argv0` may be: the path itself (inside `rootfs`, or relative to
/// `cwd`), or a bare name in each directory of `path_var`.
fn program_candidates(rootfs: &Path, cwd: &Path, argv0: &str, path_var: &str) -> Vec<PathBuf> {
    if argv0.starts_with('/') {
        vec![inside(rootfs, argv0)]
    } else if argv0.contains('/') {
        vec![cwd.join(argv0)]
    } else {
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(argv0))
            .collect()
    }
}

/// Whether `argv0`, a path, names a file without execute permission.
fn is_plain_file(rootfs: &Path, cwd: &Path, argv0: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    argv0.contains('/')
        && program_candidates(rootfs, cwd, argv0, "").iter().any(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 == 0)
        })
}

fn volumes(ctx: &PrepareContext<'_>, rootfs: &Path) -> Result<Vec<VolumeGrant>> {
    let spec = &ctx.record.spec;
    let anon = ctx.dir.file("volumes");
    let mut out = Vec::new();
    for (i, s) in spec.storage.iter().enumerate() {
        let target = s.target().to_string();
        if !target.starts_with('/') || target.split('/').any(|c| c == "..") {
            return Err(RuntimeError::InvalidSpec(format!(
                "storage target {target:?} must be an absolute path without '..'"
            )));
        }
        let (host, readonly, kind) = match s {
            StorageSpec::Bind {
                source, readonly, ..
            } => {
                let p = PathBuf::from(source);
                if !p.exists() {
                    return Err(failed(
                        ctx,
                        format!(
                            "bind source {source} does not exist; create it or fix storage.source"
                        ),
                    ));
                }
                (p, *readonly, "bind")
            }
            StorageSpec::Named { name, readonly, .. } => {
                (ctx.volumes.ensure(name)?, *readonly, "named")
            }
            StorageSpec::Anonymous { .. } => (anon.join(format!("anon-{i}")), false, "anonymous"),
            StorageSpec::Tmpfs { .. } => (
                anon.join(format!("tmpfs-{i}")),
                false,
                "tmpfs (disk-backed)",
            ),
        };
        if kind != "bind" {
            std::fs::create_dir_all(&host)
                .map_err(|e| failed(ctx, format!("creating volume {}: {e}", host.display())))?;
        }
        // Make the target visible inside the rootfs: a symlink to the
        // volume (image content there seeds an empty volume).
        let at = inside(rootfs, &target);
        if let Ok(m) = std::fs::symlink_metadata(&at) {
            if m.is_dir() && kind != "bind" && dir_is_empty(&host) {
                let _ = clone::clone_tree(&at, &host.with_extension("seed"))
                    .and_then(|_| move_contents(&host.with_extension("seed"), &host));
            }
            zlayer_hosting::removal::remove_dir(&at)?;
            let _ = std::fs::remove_file(&at);
        }
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| failed(ctx, format!("creating {}: {e}", parent.display())))?;
        }
        std::os::unix::fs::symlink(&host, &at)
            .map_err(|e| failed(ctx, format!("linking volume {target}: {e}")))?;
        out.push(VolumeGrant {
            target,
            host,
            readonly,
            kind: kind.to_string(),
        });
    }
    Ok(out)
}

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

fn move_contents(from: &Path, to: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        std::fs::rename(e.path(), to.join(e.file_name()))?;
    }
    std::fs::remove_dir_all(from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for (name, mode) in [("ok", 0o755), ("plain", 0o644)] {
            std::fs::write(bin.join(name), b"#!/bin/sh\n").unwrap();
            std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(mode))
                .unwrap();
        }
        symlink("ok", bin.join("rel")).unwrap();
        symlink("/bin/sh", bin.join("absolute")).unwrap();
        symlink("../../../../../../bin/sh", bin.join("up")).unwrap();
        dir
    }

    #[test]
    fn programs_resolve_only_inside_the_rootfs() {
        let dir = rootfs();
        let root = dir.path();
        let path = map_path_list(root, "/usr/bin:/bin");
        let find = |argv0: &str| resolve_program(root, root, argv0, &path);
        assert_eq!(find("ok"), Some(root.join("bin/ok")));
        assert_eq!(find("/bin/ok"), Some(root.join("bin/ok")));
        assert_eq!(find("rel"), Some(root.join("bin/rel")));
        assert_eq!(find("bin/ok"), Some(root.join("bin/ok")));
        // Not executable, missing, or leading out of the rootfs.
        for argv0 in ["plain", "missing", "absolute", "up", "/bin/up", "../bin/ok"] {
            assert_eq!(find(argv0), None, "{argv0}");
        }
    }

    #[test]
    fn the_fallback_without_openat2_agrees() {
        let dir = rootfs();
        let root = dir.path();
        for (name, want) in [
            ("ok", true),
            ("rel", true),
            ("plain", false),
            ("absolute", false),
            ("up", false),
        ] {
            let p = root.join("bin").join(name);
            assert_eq!(
                is_executable(&p) && canonically_within(&p, root),
                want,
                "{name}"
            );
        }
    }
}
