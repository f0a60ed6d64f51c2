//! The persisted networking state: networks, leases and published ports.
//!
//! Everything lives in one JSON file, `<root>/network/networks.json`, read
//! and rewritten under an exclusive `flock` on `<root>/network/lock`, so
//! several `zlayer` processes can attach and detach at the same time. A
//! write goes to a temporary file renamed over the old one: a process
//! killed at any point leaves either the old or the new state, never half
//! of one. Not fsynced (like the container records): after a power loss
//! every namespace, veth and rule is gone anyway, stale leases are dropped
//! by the containers' removal, and an fsync costs 1-7 ms per attach and
//! per detach on a busy disk.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::PortMappingEntry;

/// One bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// The Linux bridge interface.
    pub bridge: String,
    /// The subnet containers get addresses from.
    pub subnet: Ipv4Net,
    /// The bridge's own address, the containers' default route.
    pub gateway: Ipv4Addr,
    /// Where the next address search starts (addresses are handed out
    /// round-robin so a freed address is reused as late as possible).
    #[serde(default)]
    pub next: Option<Ipv4Addr>,
    /// The boot id under which the network's nftables table was last
    /// loaded (it is reloaded when the boot or the bridge changes).
    #[serde(default)]
    pub table_boot: Option<String>,
}

/// One attached container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The network the container is on.
    pub network: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Host-side veth interface.
    pub veth: String,
    /// nftables table with its port rules (`None` without ports).
    #[serde(default)]
    pub table: Option<String>,
    /// Published ports.
    #[serde(default)]
    pub ports: Vec<PortMappingEntry>,
    /// Names it answers to on its network (service, container name, ...).
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Networks by name (`bridge` is the default network).
    #[serde(default)]
    pub networks: BTreeMap<String, NetworkRecord>,
    /// Leases by container id (`service-replica`).
    #[serde(default)]
    pub leases: BTreeMap<String, Lease>,
    /// Host-side veths of released containers the kernel deletes with
    /// their namespace, with the release time (ms since the epoch); one
    /// still there after a grace period is deleted by the next attach or
    /// detach.
    #[serde(default)]
    pub released: BTreeMap<String, u64>,
}

/// The state directory, locked for the lifetime of this value.
pub struct Locked {
    _lock: File,
    path: PathBuf,
}

impl Locked {
    /// Takes the exclusive lock on `dir` (creating it).
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            RuntimeError::Network(format!(
                "cannot create the network state directory {}: {e}",
                dir.display()
            ))
        })?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                RuntimeError::Network(format!("cannot open {}: {e}", lock_path.display()))
            })?;
        // SAFETY: flock on an fd we own; blocks until the lock is ours.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(RuntimeError::Network(format!(
                "cannot lock {}: {}",
                lock_path.display(),
                std::io::Error::last_os_error()
            )));
        }
        Ok(Locked {
            _lock: lock,
            path: dir.join("networks.json"),
        })
    }

    /// Reads the state (empty when the file does not exist yet).
    pub fn load(&self) -> Result<State> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                RuntimeError::Network(format!(
                    "the network state {} is corrupt ({e}); move it away to start over \
                     (existing containers lose their addresses)",
                    self.path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(RuntimeError::Network(format!(
                "cannot read {}: {e}",
                self.path.display()
            ))),
        }
    }

    /// Writes `state` atomically (temp file, rename).
    pub fn save(&self, state: &State) -> Result<()> {
        zlayer_sys::atomic::write_json_atomic(&self.path, state)
            .map_err(|e| RuntimeError::Network(e.to_string()))
    }
}

/// Reads the state of `dir` without locking (writers rename whole files,
/// so a reader sees one complete version); empty when there is none.
pub fn read_unlocked(dir: &Path) -> Result<State> {
    match std::fs::read(dir.join("networks.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| RuntimeError::Network(format!("corrupt network state: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(RuntimeError::Network(format!(
            "cannot read network state: {e}"
        ))),
    }
}
