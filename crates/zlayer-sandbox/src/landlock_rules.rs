//! Landlock: the filesystem, TCP-port and scope rules of a policy, built in
//! the parent into a ruleset file descriptor that the child only has to
//! pass to `landlock_restrict_self`.

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope, ABI,
};
use std::os::fd::OwnedFd;
use std::path::Path;

use super::options::NetworkAccess;
use super::policy::Policy;

/// The ABI whose rights the sandbox asks for (rights a newer kernel adds are
/// not handled, so they stay allowed; an older kernel gets the subset it
/// knows, see [`kernel_abi`]).
pub const TARGET_ABI: ABI = ABI::V6;

/// The Landlock ABI version the running kernel offers (0: none).
pub fn kernel_abi() -> i64 {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a null attribute and size
    // 0 only returns the ABI version; no memory is read or written.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    v.max(0)
}

/// The result of preparing Landlock for a start.
#[derive(Debug)]
pub struct PreparedLandlock {
    /// The ruleset (None in degraded mode).
    pub fd: Option<OwnedFd>,
    /// The kernel's ABI.
    pub abi: i64,
    /// What was not enforced, for the log (empty when fully enforced).
    pub degraded: Vec<String>,
}

/// Builds the ruleset of `policy`. Fails, saying why, when the kernel cannot
/// enforce it and the policy does not allow degraded mode.
pub fn prepare(policy: &Policy) -> Result<PreparedLandlock, String> {
    let abi = kernel_abi();
    let mut degraded = Vec::new();
    if abi < 1 {
        degraded.push("Landlock is not available on this kernel (needs Linux >= 5.13 with landlock in the lsm= list)".to_string());
    } else {
        if abi < 4 && policy.network != NetworkAccess::Full {
            degraded.push(format!(
                "the kernel's Landlock ABI {abi} cannot restrict TCP ports (needs ABI 4, Linux 6.7)"
            ));
        }
        if abi < 6 {
            degraded.push(format!(
                "the kernel's Landlock ABI {abi} cannot scope signals and abstract sockets (needs ABI 6, Linux 6.12)"
            ));
        }
    }
    // Signal/socket scoping only adds protection; its absence alone is not
    // a reason to refuse. Missing filesystem or network enforcement is.
    let fatal: Vec<&String> = degraded
        .iter()
        .filter(|d| !d.contains("scope signals"))
        .collect();
    if !fatal.is_empty() && !policy.allow_degraded {
        return Err(format!(
            "refusing to start the sandbox unconfined: {}; upgrade the kernel or set the label com.zlayer.sandbox.allow-degraded=true",
            fatal.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("; ")
        ));
    }
    if abi < 1 {
        return Ok(PreparedLandlock {
            fd: None,
            abi,
            degraded,
        });
    }
    let fd = build(policy).map_err(|e| format!("building the Landlock ruleset: {e}"))?;
    Ok(PreparedLandlock { fd, abi, degraded })
}

fn build(policy: &Policy) -> Result<Option<OwnedFd>, Box<dyn std::error::Error>> {
    let abi = TARGET_ABI;
    let read_exec: BitFlags<AccessFs> = AccessFs::Execute | AccessFs::ReadFile | AccessFs::ReadDir;
    let read_only: BitFlags<AccessFs> = AccessFs::ReadFile | AccessFs::ReadDir;
    let write: BitFlags<AccessFs> = AccessFs::from_all(abi) & !AccessFs::Execute;
    let device: BitFlags<AccessFs> = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::ReadDir;

    let mut ruleset = Ruleset::default().handle_access(AccessFs::from_all(abi))?;
    if policy.network != NetworkAccess::Full {
        ruleset = ruleset.handle_access(AccessNet::from_all(abi))?;
    }
    ruleset = ruleset.scope(Scope::from_all(abi))?;
    let mut rules: Vec<(&Path, BitFlags<AccessFs>)> = Vec::new();
    rules.extend(
        policy
            .exec_paths
            .iter()
            .map(|g| (g.path.as_path(), read_exec)),
    );
    rules.extend(
        policy
            .read_paths
            .iter()
            .map(|g| (g.path.as_path(), read_only)),
    );
    rules.extend(policy.write_paths.iter().map(|g| (g.path.as_path(), write)));
    rules.extend(policy.devices.iter().map(|d| {
        let access = if d.ioctl {
            device | AccessFs::IoctlDev
        } else {
            device
        };
        (d.path.as_path(), access)
    }));
    let mut created = ruleset.create()?;
    for (path, access) in rules {
        // A path that vanished since create cannot be reached either.
        let Ok(fd) = PathFd::new(path) else {
            continue;
        };
        let access = if is_dir(&fd) {
            access
        } else {
            access & AccessFs::from_file(abi)
        };
        if !access.is_empty() {
            created = created.add_rule(PathBeneath::new(fd, access))?;
        }
    }
    if policy.network == NetworkAccess::Localhost {
        for p in &policy.bind_ports {
            created = created.add_rule(NetPort::new(*p, AccessNet::BindTcp))?;
        }
        for p in &policy.connect_ports {
            created = created.add_rule(NetPort::new(*p, AccessNet::ConnectTcp))?;
        }
    }
    Ok(created.into())
}

/// Whether the open `fd` is a directory: an `fstat`, where `Path::is_dir`
/// would walk the path again (once per rule, at every start).
fn is_dir(fd: &impl std::os::fd::AsFd) -> bool {
    use std::os::fd::AsRawFd;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes into the local buffer, read only on success.
    unsafe {
        libc::fstat(fd.as_fd().as_raw_fd(), st.as_mut_ptr()) == 0
            && st.assume_init().st_mode & libc::S_IFMT == libc::S_IFDIR
    }
}
