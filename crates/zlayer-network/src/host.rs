//! What the zlayer roots of one host share: its interfaces and routes.
//!
//! Every root (`--root`, default `/var/lib/zlayer`) keeps its own networks:
//! bridges, subnets and address leases under `<root>/network/`. A root
//! other than the default one gets bridge names of its own
//! ([`super::NetworkOptions::for_root`]), and this module keeps the roots
//! from stepping on each other in the kernel:
//!
//! - [`HostLock`]: held while a network's subnet is chosen and its bridge
//!   created, so two roots never pick the same free subnet at once;
//! - ownership: a bridge's interface alias names the state directory of
//!   the root that made it ([`mark_owner`]), so [`collect_orphans`] can
//!   delete the bridges of roots that were deleted (test roots, `rm -rf`)
//!   instead of letting them hold subnets forever;
//! - [`foreign_subnets`]: the subnets routed through interfaces a root
//!   does not own (the host's, other roots' bridges): never handed out.

use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::{cmd, link, names, nft};
use zlayer_runtime::error::{Result, RuntimeError};

/// The host-wide lock file ([`HostLock`]).
pub const HOST_LOCK: &str = "/run/zlayer/network.lock";

/// What a bridge's interface alias starts with; the rest is the state
/// directory of the root owning it.
const OWNER_PREFIX: &str = "zlayer-network:";

/// Holds [`HOST_LOCK`] (an exclusive `flock`) until dropped.
#[derive(Debug)]
pub struct HostLock {
    _file: File,
}

impl HostLock {
    /// Blocks until this process holds the host-wide network lock.
    pub fn acquire() -> Result<HostLock> {
        let path = Path::new(HOST_LOCK);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                RuntimeError::Network(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| RuntimeError::Network(format!("cannot open {HOST_LOCK}: {e}")))?;
        // SAFETY: flock on an fd we own; blocks until the lock is ours.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(RuntimeError::Network(format!(
                "cannot lock {HOST_LOCK}: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(HostLock { _file: file })
    }
}

/// Records `state_dir` as the owner of `bridge` (its interface alias). A
/// path that cannot be an alias (over 200 bytes, a newline) is skipped, and
/// a failed write only logged: that bridge is then never collected, which
/// costs a subnet, not the attach.
pub fn mark_owner(bridge: &str, state_dir: &Path) {
    let owner = state_dir.display().to_string();
    if owner.len() > 200 || owner.contains('\n') || !state_dir.is_absolute() {
        return;
    }
    if owner_of(bridge).as_deref() == Some(state_dir) {
        return;
    }
    let alias = Path::new("/sys/class/net").join(bridge).join("ifalias");
    if let Err(e) = std::fs::write(&alias, format!("{OWNER_PREFIX}{owner}\n")) {
        tracing::warn!(
            "cannot mark bridge {bridge} as this root's ({}): {e}",
            alias.display()
        );
    }
}

/// The state directory named in `bridge`'s alias, if zlayer marked it.
pub fn owner_of(bridge: &str) -> Option<PathBuf> {
    let alias =
        std::fs::read_to_string(Path::new("/sys/class/net").join(bridge).join("ifalias")).ok()?;
    alias
        .trim_end_matches('\n')
        .strip_prefix(OWNER_PREFIX)
        .map(PathBuf::from)
}

/// zlayer's bridges (`zl*` interfaces marked by [`mark_owner`]) with the
/// state directory each names as its owner.
fn marked_bridges() -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("zl"))
        .filter_map(|name| owner_of(&name).map(|owner| (name, owner)))
        .collect()
}

/// The bridges marked as owned by `state_dir` (a root's `network/`).
pub fn bridges_owned_by(state_dir: &Path) -> Vec<String> {
    marked_bridges()
        .into_iter()
        .filter(|(_, owner)| owner == state_dir)
        .map(|(name, _)| name)
        .collect()
}

/// Deletes bridge `name` and its network's nftables table; failures are
/// logged (a bridge that stays costs a subnet, nothing else).
pub fn delete_bridge(name: &str) {
    if let Err(e) = nft::delete_table(&names::network_table(name)) {
        tracing::warn!("deleting the rules of bridge {name}: {e}");
    }
    if let Err(e) = link::delete(name) {
        tracing::warn!("deleting bridge {name}: {e}");
    }
}

/// Deletes the bridges (and their nftables tables) whose owning state
/// directory no longer exists. Call with the [`HostLock`] held.
pub fn collect_orphans() {
    for (name, owner) in marked_bridges() {
        if !owner.exists() {
            tracing::info!(
                "deleting bridge {name}: its zlayer root {} is gone",
                owner.display()
            );
            delete_bridge(&name);
        }
    }
}

/// Destinations of the host's IPv4 routes (not the default route) with
/// the interface each goes through.
pub fn routes() -> Vec<(Ipv4Net, String)> {
    let mut out = Vec::new();
    let Ok(table) = cmd::run("ip", &["-4", "-o", "route", "show"], None) else {
        return out;
    };
    for line in table.lines() {
        let dst = line.split_whitespace().next().unwrap_or("default");
        if dst == "default" {
            continue;
        }
        let dev = line
            .split_whitespace()
            .skip_while(|w| *w != "dev")
            .nth(1)
            .unwrap_or("")
            .to_string();
        let net = dst
            .parse::<Ipv4Net>()
            .ok()
            .or_else(|| dst.parse::<Ipv4Addr>().ok().map(Ipv4Net::from));
        if let Some(n) = net {
            out.push((n.trunc(), dev));
        }
    }
    out
}

/// Subnets routed through interfaces other than `own` (this root's
/// bridges): the host's networks and other roots' bridges.
pub fn foreign_subnets(own: &[&str]) -> Vec<(Ipv4Net, String)> {
    routes()
        .into_iter()
        .filter(|(_, dev)| !own.contains(&dev.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_have_devices() {
        for (net, dev) in routes() {
            assert!(!dev.is_empty(), "{net} without a device");
        }
    }

    #[test]
    fn unmarked_interfaces_have_no_owner() {
        assert_eq!(owner_of("lo"), None);
        assert_eq!(owner_of("no-such-interface"), None);
    }
}
