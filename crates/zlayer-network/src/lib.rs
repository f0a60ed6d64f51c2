//! Container networking (issue 6): bridge networks, address management,
//! egress NAT, published ports and network isolation.
//!
//! A runtime creates a container's network namespace (or uses the host's)
//! and hands it to [`NetworkManager::attach`], which, for `bridge` modes:
//!
//! 1. creates the network's Linux bridge on demand (`zlayer0`,
//!    10.88.0.0/16 for the default network) with its nftables table
//!    (masquerade for egress, drop between different zlayer bridges);
//! 2. leases an address (persisted, round-robin, never given twice);
//! 3. creates a veth pair: the host end joins the bridge, the other end
//!    becomes `eth0` in the namespace with the address and a default route;
//! 4. publishes ports with DNAT rules in a per-container nftables table
//!    (prerouting for other hosts, output for the host itself, including
//!    `127.0.0.1` thanks to `route_localnet` on the bridge, so no userspace
//!    proxy is needed).
//!
//! [`NetworkManager::detach`] undoes all of it. The kernel is driven through
//! the `ip` and `nft` tools (see [`cmd`]) and, inside the container's
//! namespace, plain ioctls (see [`ifconfig`]).

pub mod cmd;
pub mod dns;
pub mod dns_wire;
pub mod etc_files;
pub mod host;
pub mod ifconfig;
pub mod ipam;
pub mod link;
pub mod names;
pub mod nft;
pub mod ports;
pub mod state;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use zlayer_spec::{NetworkMode, PortMapping};

use state::{Lease, Locked, NetworkRecord, State};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::{ContainerId, PortMappingEntry};
use zlayer_sys::fs::now_ms;

/// Name of the default bridge network (`--network bridge`).
pub const DEFAULT_NETWORK: &str = "bridge";

pub use zlayer_spec::labels::SERVICE_LABEL;

/// Tunables of a [`NetworkManager`]; [`Default`] is what zlayer uses.
///
/// Serializable: the container runtime records them with each container,
/// so its monitor attaches it exactly as the creating runtime was set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkOptions {
    /// Bridge interface of the default network.
    pub default_bridge: String,
    /// Subnet of the default network when it is first created.
    pub default_subnet: Ipv4Net,
    /// Prefix of the bridge names of user-defined networks (must start
    /// with `zl`, which network isolation relies on).
    pub bridge_prefix: String,
    /// Pool user-defined networks without `--subnet` get a /24 from.
    pub subnet_pool: Ipv4Net,
    /// The `zlayer-dns` binary serving names on each bridge; `None` turns
    /// the embedded DNS off (containers then get the host's resolvers).
    pub dns_binary: Option<PathBuf>,
    /// Where the DNS responder sends names it does not know; empty means
    /// the host's `/etc/resolv.conf` servers.
    pub dns_upstreams: Vec<SocketAddr>,
    /// MTU of bridges and veth pairs created from now on. The default,
    /// 65535 (`$ZLAYER_NET_MTU` overrides), makes host <-> container and
    /// container <-> container traffic as fast as loopback; traffic leaving
    /// the host is still cut to the uplink's MTU (TCP MSS, PMTU discovery).
    pub mtu: u32,
}

/// `$ZLAYER_DNS_BIN`, else `zlayer-dns` next to the running executable.
pub fn default_dns_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ZLAYER_DNS_BIN") {
        return Some(PathBuf::from(p));
    }
    let sibling = zlayer_sys::exe::dir()?.join("zlayer-dns");
    sibling.exists().then_some(sibling)
}

/// `$name` parsed as a subnet, else `default` (a bad value is logged).
fn env_subnet(name: &str, default: Ipv4Net) -> Ipv4Net {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|e| {
            tracing::warn!("ignoring ${name}={v:?}: {e}; expected a subnet like 10.88.0.0/16");
            default
        }),
        Err(_) => default,
    }
}

/// `$name` as a bridge name starting with `zl`, else `default`.
fn env_bridge(name: &str, default: &str) -> String {
    match std::env::var(name) {
        Ok(v) if v.starts_with("zl") && (3..=15).contains(&v.len()) => v,
        Ok(v) => {
            tracing::warn!("ignoring ${name}={v:?}: must start with `zl`, 3-15 characters");
            default.into()
        }
        Err(_) => default.into(),
    }
}

impl Default for NetworkOptions {
    /// zlayer's defaults: bridge `zlayer0` on 10.88.0.0/16, user networks
    /// `zlb*` from 10.89.0.0/16. `$ZLAYER_NET_BRIDGE`, `$ZLAYER_NET_SUBNET`,
    /// `$ZLAYER_NET_PREFIX` and `$ZLAYER_NET_POOL` override them (tests use
    /// them to stay apart), `$ZLAYER_NET_MTU` the MTU.
    fn default() -> Self {
        NetworkOptions {
            default_bridge: env_bridge("ZLAYER_NET_BRIDGE", "zlayer0"),
            default_subnet: env_subnet(
                "ZLAYER_NET_SUBNET",
                Ipv4Net::new(Ipv4Addr::new(10, 88, 0, 0), 16).unwrap_or_default(),
            ),
            bridge_prefix: env_bridge("ZLAYER_NET_PREFIX", "zlb"),
            subnet_pool: env_subnet(
                "ZLAYER_NET_POOL",
                Ipv4Net::new(Ipv4Addr::new(10, 89, 0, 0), 16).unwrap_or_default(),
            ),
            dns_binary: default_dns_binary(),
            dns_upstreams: Vec::new(),
            mtu: std::env::var("ZLAYER_NET_MTU")
                .ok()
                .and_then(|m| m.parse().ok())
                .filter(|m| (576..=65535).contains(m))
                .unwrap_or(65535),
        }
    }
}

impl NetworkOptions {
    /// The options of data root `root`: [`Default`], except that a root
    /// other than the default one (`zlayer_image::default_root()`) gets
    /// bridges of its own: `zl<tag>0` for its default network and
    /// `zl<tag>` + 8 hex digits for its user networks, `<tag>` being 5 hex
    /// digits of a hash of its path (`$ZLAYER_NET_BRIDGE` and
    /// `$ZLAYER_NET_PREFIX` still win). Two roots never share a bridge:
    /// each leases addresses on its own, so on one bridge they would hand
    /// out the same address twice. Their subnets are kept apart by
    /// [`host`].
    pub fn for_root(root: &Path) -> NetworkOptions {
        let mut opts = NetworkOptions::default();
        if same_path(root, &zlayer_image::default_root()) {
            return opts;
        }
        let tag = names::root_tag(root);
        if std::env::var_os("ZLAYER_NET_BRIDGE").is_none() {
            opts.default_bridge = format!("zl{tag}0");
        }
        if std::env::var_os("ZLAYER_NET_PREFIX").is_none() {
            opts.bridge_prefix = format!("zl{tag}");
        }
        opts
    }
}

/// Whether `a` and `b` name the same directory (as given when either
/// does not exist yet).
fn same_path(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    // `b` (the default root) usually does not exist on a node run with
    // --root: then they differ, without resolving `a` too.
    match b.canonicalize() {
        Ok(b) => a.canonicalize().is_ok_and(|a| a == b),
        Err(_) => false,
    }
}

/// What [`NetworkManager::attach`] did for a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The network joined (`None` for `host` and `none`).
    pub network: Option<String>,
    /// The container's address (`None` for `host` and `none`).
    pub ip: Option<IpAddr>,
    /// Its default gateway (the bridge).
    pub gateway: Option<IpAddr>,
    /// Host ports actually published (random ports resolved).
    pub ports: Vec<PortMappingEntry>,
    /// Contents for the container's `/etc/hosts` (`None`: keep the host's,
    /// for `host` mode).
    pub hosts_file: Option<String>,
    /// Contents for the container's `/etc/resolv.conf` (`None`: keep the
    /// host's).
    pub resolv_conf: Option<String>,
}

/// A network as listed by [`NetworkManager::list_networks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    /// Its name (`bridge` for the default one).
    pub name: String,
    /// The Linux bridge interface.
    pub bridge: String,
    /// Its subnet.
    pub subnet: Ipv4Net,
    /// The bridge's address.
    pub gateway: Ipv4Addr,
    /// Attached containers (`service-replica`).
    pub containers: Vec<String>,
}

/// Attaches containers to networks; see the [module docs](self).
///
/// Cheap to construct; every call locks and re-reads the state, so any
/// number of managers in any number of processes may share one root.
#[derive(Debug, Clone)]
pub struct NetworkManager {
    dir: PathBuf,
    opts: NetworkOptions,
}

impl NetworkManager {
    /// A manager keeping its state under `<root>/network/`, with the
    /// options of that root ([`NetworkOptions::for_root`]).
    pub fn open(root: &Path) -> Result<Self> {
        Self::with_options(root, NetworkOptions::for_root(root))
    }

    /// [`NetworkManager::open`] with explicit options (tests use their own
    /// bridge names and subnets).
    pub fn with_options(root: &Path, opts: NetworkOptions) -> Result<Self> {
        if !opts.bridge_prefix.starts_with("zl") || !opts.default_bridge.starts_with("zl") {
            return Err(RuntimeError::Configuration(format!(
                "bridge names must start with `zl` (got {:?} and {:?})",
                opts.default_bridge, opts.bridge_prefix
            )));
        }
        let dir = root.join("network");
        Locked::acquire(&dir)?;
        // Canonical: veth names hash it, whoever opens the root and how.
        let dir = dir.canonicalize().unwrap_or(dir);
        Ok(NetworkManager { dir, opts })
    }

    /// Connects the network namespace `netns_path` of `container` as
    /// `mode` asks, publishing `ports`; `aliases` are extra names the
    /// container answers to on its network (service name, ...). The
    /// network's DNS responder is started if needed.
    ///
    /// Attaching an already attached container first detaches it.
    pub fn attach(
        &self,
        container: &ContainerId,
        netns_path: &Path,
        mode: &NetworkMode,
        ports: &[PortMapping],
        aliases: &[String],
    ) -> Result<Attachment> {
        self.attach_with(container, netns_path, mode, ports, aliases, true)
    }

    /// [`NetworkManager::attach`]; `dns` false leaves the DNS responder
    /// alone (not started for this container) unless the host's resolvers
    /// are all on loopback (unreachable from the container): the container
    /// then gets the host's resolvers, and its peers' names through
    /// `/etc/hosts` only, like docker's default bridge. Saves starting a
    /// process for containers nobody looks up by name.
    pub fn attach_with(
        &self,
        container: &ContainerId,
        netns_path: &Path,
        mode: &NetworkMode,
        ports: &[PortMapping],
        aliases: &[String],
        dns: bool,
    ) -> Result<Attachment> {
        let network = match mode {
            NetworkMode::Host => {
                return Ok(Attachment {
                    network: None,
                    ip: None,
                    gateway: None,
                    ports: Vec::new(),
                    hosts_file: None,
                    resolv_conf: None,
                })
            }
            NetworkMode::None => {
                if !ports.is_empty() {
                    return Err(RuntimeError::InvalidSpec(
                        "ports cannot be published with `--network none` (the container has \
                         only loopback); use `--network bridge`"
                            .into(),
                    ));
                }
                link::loopback_up(netns_path)?;
                return Ok(Attachment {
                    network: None,
                    ip: None,
                    gateway: None,
                    ports: Vec::new(),
                    hosts_file: Some(etc_files::hosts(None, &[])),
                    resolv_conf: Some(String::new()),
                });
            }
            NetworkMode::Bridge => DEFAULT_NETWORK,
            NetworkMode::BridgeNamed(name) => name.as_str(),
        };
        let id = container.to_string();
        let lock = Locked::acquire(&self.dir)?;
        let mut st = lock.load()?;
        if st.leases.contains_key(&id) {
            self.detach_locked(&lock, &mut st, &id)?;
        }
        collect_released(&mut st);
        let (net, created) = self.bridge_up(&lock, &mut st, network)?;
        // The network's table is loaded once per boot and bridge: an nft
        // transaction costs ~15 ms, most of an attach.
        let boot = boot_id();
        let load_table = created || boot.is_none() || net.table_boot != boot;

        let entries = ports::resolve(&id, ports, &st)?;
        let used: BTreeSet<Ipv4Addr> = st
            .leases
            .values()
            .filter(|l| l.network == network)
            .map(|l| l.ip)
            .collect();
        let (ip, next) = ipam::allocate(&net.subnet, &used, net.next)?;
        let veth = (0..1000)
            .map(|salt| self.veth_name(&id, salt))
            .find(|v| !link::exists(v) && !st.leases.values().any(|l| &l.veth == v))
            .ok_or_else(|| RuntimeError::Internal(format!("no free veth name for {id}")))?;
        let mut own_names = vec![id.clone()];
        own_names.extend(aliases.iter().filter(|a| **a != id).cloned());
        let lease = Lease {
            network: network.to_string(),
            ip,
            veth: veth.clone(),
            table: (!entries.is_empty()).then(|| names::container_table(&veth)),
            ports: entries.clone(),
            aliases: own_names.clone(),
        };
        // Record first: a crash half-way leaves a lease that detach cleans.
        if let Some(rec) = st.networks.get_mut(network) {
            rec.next = Some(next);
            // Cleared until the table is known to be loaded.
            if load_table {
                rec.table_boot = None;
            }
        }
        st.leases.insert(id.clone(), lease.clone());
        lock.save(&st)?;

        let setup = || -> Result<()> {
            // One nft transaction: the network's table and the ports.
            let mut script = String::new();
            if load_table {
                script = nft::network_script(
                    &names::network_table(&net.bridge),
                    &net.bridge,
                    &net.subnet,
                );
            }
            if let Some(table) = &lease.table {
                script.push_str(&nft::ports_script(table, ip, &entries));
            }
            if !script.is_empty() {
                cmd::nft(&script)?;
            }
            let prefix = net.subnet.prefix_len();
            link::attach_veth(
                &veth,
                &net.bridge,
                netns_path,
                (ip, prefix),
                net.gateway,
                self.opts.mtu,
            )
        };
        if let Err(e) = setup() {
            let _ = self.detach_locked(&lock, &mut st, &id);
            return Err(e);
        }
        if load_table && boot.is_some() {
            if let Some(rec) = st.networks.get_mut(network) {
                rec.table_boot = boot;
                lock.save(&st)?;
            }
        }
        // Name service on the bridge; without it the host's resolvers.
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let want_dns = dns || etc_files::host_servers(&host_resolv) == 0;
        let nameserver = match &self.opts.dns_binary {
            _ if !want_dns => None,
            Some(bin) => match dns::ensure(&self.dir, network, bin, &self.opts.dns_upstreams) {
                Ok(()) => Some(net.gateway),
                Err(e) => {
                    tracing::warn!("container {id}: {e}; using the host's resolvers");
                    None
                }
            },
            None => None,
        };

        let peers: Vec<(Ipv4Addr, Vec<String>)> = st
            .leases
            .iter()
            .filter(|(other, l)| **other != id && l.network == network)
            .map(|(_, l)| (l.ip, l.aliases.clone()))
            .collect();
        Ok(Attachment {
            network: Some(network.to_string()),
            ip: Some(IpAddr::V4(ip)),
            gateway: Some(IpAddr::V4(net.gateway)),
            ports: entries,
            hosts_file: Some(etc_files::hosts(Some((ip, &own_names)), &peers)),
            resolv_conf: Some(etc_files::resolv_conf(&host_resolv, nameserver)),
        })
    }

    /// Checks, without changing anything, that `container` could be
    /// attached as `mode` with `ports`: the network exists, ports are
    /// allowed in this mode and no host port is taken. Runtimes call it at
    /// create time so conflicts fail `create`, not the later start.
    pub fn check(
        &self,
        container: &ContainerId,
        mode: &NetworkMode,
        ports: &[PortMapping],
    ) -> Result<Vec<PortMappingEntry>> {
        let network = match mode {
            NetworkMode::Host => return Ok(Vec::new()),
            NetworkMode::None if ports.is_empty() => return Ok(Vec::new()),
            NetworkMode::None => {
                return Err(RuntimeError::InvalidSpec(
                    "ports cannot be published with `--network none` (the container has \
                     only loopback); use `--network bridge`"
                        .into(),
                ))
            }
            NetworkMode::Bridge => DEFAULT_NETWORK,
            NetworkMode::BridgeNamed(name) => name.as_str(),
        };
        let lock = Locked::acquire(&self.dir)?;
        let mut st = lock.load()?;
        self.network_record(&mut st, network)?;
        ports::resolve(&container.to_string(), ports, &st)
    }

    /// Undoes [`NetworkManager::attach`]: deletes the veth pair, the port
    /// rules and the address lease. Detaching a container that is not
    /// attached does nothing.
    pub fn detach(&self, container: &ContainerId) -> Result<()> {
        let lock = Locked::acquire(&self.dir)?;
        let mut st = lock.load()?;
        self.detach_locked(&lock, &mut st, &container.to_string())
    }

    /// [`NetworkManager::detach`] for a container whose processes have all
    /// exited: the port rules and the lease go now, the veth pair is left
    /// to the kernel, which deletes it with the dying network namespace
    /// within milliseconds (an `ip link del` costs ~20 ms of RCU grace
    /// periods). The veth is remembered; one still there after 5 s
    /// (something else kept its namespace alive) is deleted by the next
    /// attach or detach on this root.
    pub fn release(&self, container: &ContainerId) -> Result<()> {
        let lock = Locked::acquire(&self.dir)?;
        let mut st = lock.load()?;
        let id = container.to_string();
        let Some(lease) = st.leases.remove(&id) else {
            return Ok(());
        };
        if let Some(table) = &lease.table {
            nft::delete_table(table)?;
        }
        if link::exists(&lease.veth) {
            st.released.insert(lease.veth, now_ms());
        }
        lock.save(&st)
    }

    fn detach_locked(&self, lock: &Locked, st: &mut State, id: &str) -> Result<()> {
        let Some(lease) = st.leases.get(id).cloned() else {
            if collect_released(st) {
                lock.save(st)?;
            }
            return Ok(());
        };
        if let Some(table) = &lease.table {
            nft::delete_table(table)?;
        }
        // Gone already when the container's namespace died with it.
        if link::exists(&lease.veth) {
            link::delete(&lease.veth)?;
        }
        st.leases.remove(id);
        lock.save(st)
    }

    /// The address and published ports of an attached container.
    pub fn lookup(
        &self,
        container: &ContainerId,
    ) -> Result<Option<(IpAddr, Vec<PortMappingEntry>)>> {
        let lock = Locked::acquire(&self.dir)?;
        let st = lock.load()?;
        Ok(st
            .leases
            .get(&container.to_string())
            .map(|l| (IpAddr::V4(l.ip), l.ports.clone())))
    }

    /// Creates the user-defined network `name` (used as `bridge:NAME`),
    /// on `subnet` or a free /24 of the pool.
    pub fn create_network(&self, name: &str, subnet: Option<Ipv4Net>) -> Result<NetworkInfo> {
        validate_name(name)?;
        let lock = Locked::acquire(&self.dir)?;
        let mut st = lock.load()?;
        if st.networks.contains_key(name) {
            return Err(RuntimeError::InvalidSpec(format!(
                "network {name} already exists; `zlayer network rm {name}` first or pick another name"
            )));
        }
        // Held until the bridge (and so its route) exists: another root
        // choosing a subnet now sees it.
        let _host = host::HostLock::acquire()?;
        host::collect_orphans();
        let taken = self.taken_subnets(&st);
        let subnet = match subnet {
            Some(s) => {
                let s = s.trunc();
                if let Some(t) = taken.iter().find(|t| overlap(t, &s)) {
                    return Err(RuntimeError::InvalidSpec(format!(
                        "subnet {s} overlaps {t}, already used by a network or a host route; \
                         pick another --subnet"
                    )));
                }
                s
            }
            None => self
                .opts
                .subnet_pool
                .subnets(24)
                .map_err(|e| RuntimeError::Configuration(format!("bad subnet pool: {e}")))?
                .find(|s| !taken.iter().any(|t| overlap(t, s)))
                .ok_or_else(|| {
                    RuntimeError::Network(format!(
                        "no free /24 left in {}; give --subnet",
                        self.opts.subnet_pool
                    ))
                })?,
        };
        let gateway = ipam::gateway(&subnet)?;
        let mut bridge = names::bridge_name(&self.opts.bridge_prefix, name);
        let mut salt = 0;
        while st.networks.values().any(|n| n.bridge == bridge) || link::exists(&bridge) {
            salt += 1;
            bridge = names::bridge_name(&self.opts.bridge_prefix, &format!("{name}/{salt}"));
        }
        let mut rec = NetworkRecord {
            bridge,
            subnet,
            gateway,
            next: None,
            table_boot: None,
        };
        link::ensure_bridge(&rec.bridge, &subnet, gateway, self.opts.mtu)?;
        host::mark_owner(&rec.bridge, &self.dir);
        nft::apply_network(&names::network_table(&rec.bridge), &rec.bridge, &subnet)?;
        rec.table_boot = boot_id();
        st.networks.insert(name.to_string(), rec.clone());
        lock.save(&st)?;
        Ok(info(name, &rec, &st))
    }

    /// Removes the user-defined network `name`; fails while containers are
    /// attached to it.
    pub fn remove_network(&self, name: &str) -> Result<()> {
        if name == DEFAULT_NETWORK {
            return Err(RuntimeError::InvalidSpec(
                "the default network `bridge` cannot be removed".into(),
            ));
        }
        let lock = Locked::acquire(&self.dir)?;
        let mut st = lock.load()?;
        let Some(rec) = st.networks.get(name).cloned() else {
            return Err(RuntimeError::NotFound {
                kind: "network",
                id: name.into(),
                hint: Some("run `zlayer network ls` to list networks".into()),
            });
        };
        let users: Vec<&String> = st
            .leases
            .iter()
            .filter(|(_, l)| l.network == name)
            .map(|(id, _)| id)
            .collect();
        if !users.is_empty() {
            return Err(RuntimeError::InvalidSpec(format!(
                "network {name} is in use by {}; remove those containers first",
                users
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        nft::delete_table(&names::network_table(&rec.bridge))?;
        link::delete(&rec.bridge)?;
        st.networks.remove(name);
        lock.save(&st)
    }

    /// All networks, the default one first.
    pub fn list_networks(&self) -> Result<Vec<NetworkInfo>> {
        let lock = Locked::acquire(&self.dir)?;
        let mut st = lock.load()?;
        self.network_record(&mut st, DEFAULT_NETWORK)?;
        let mut out: Vec<NetworkInfo> = st
            .networks
            .iter()
            .map(|(name, rec)| info(name, rec, &st))
            .collect();
        out.sort_by_key(|n| (n.name != DEFAULT_NETWORK, n.name.clone()));
        Ok(out)
    }

    /// Deletes the bridges and rules of networks no container uses (they
    /// are recreated on the next attach); state and leases are kept.
    pub fn prune(&self) -> Result<()> {
        let lock = Locked::acquire(&self.dir)?;
        let mut st = lock.load()?;
        let unused: Vec<String> = st
            .networks
            .keys()
            .filter(|name| !st.leases.values().any(|l| &l.network == *name))
            .cloned()
            .collect();
        for name in unused {
            if let Some(rec) = st.networks.get_mut(&name) {
                nft::delete_table(&names::network_table(&rec.bridge))?;
                link::delete(&rec.bridge)?;
                rec.table_boot = None;
            }
        }
        lock.save(&st)
    }

    /// The default network's subnet when it is first created: the
    /// configured one, unless a host route on another interface covers it
    /// (podman's default network is also 10.88.0.0/16, VPNs use 10.x):
    /// then the first free subnet of the same size in 10.0.0.0/8 after it
    /// (outside the user-network pool), with a warning. It is recorded, so
    /// it stays the same afterwards.
    fn default_subnet(&self, st: &State) -> Ipv4Net {
        let wanted = self.opts.default_subnet.trunc();
        let taken = self.taken_subnets(st);
        let Some(clash) = taken.iter().find(|t| overlap(t, &wanted)).copied() else {
            return wanted;
        };
        let mut avoid = taken;
        avoid.extend(host::routes().into_iter().map(|(net, _)| net));
        avoid.push(self.opts.subnet_pool);
        let ten = Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 8).unwrap_or_default();
        let free: Vec<Ipv4Net> = match ten.subnets(wanted.prefix_len()) {
            Ok(all) => all
                .filter(|c| !avoid.iter().any(|a| overlap(a, c)))
                .collect(),
            Err(_) => Vec::new(),
        };
        let pick = free
            .iter()
            .find(|c| c.network() > wanted.network())
            .or_else(|| free.first())
            .copied();
        match pick {
            Some(p) => {
                tracing::warn!(
                    "the default network's subnet {wanted} is routed through another interface ({clash}); using {p} instead (set ZLAYER_NET_SUBNET to choose)"
                );
                p
            }
            None => wanted,
        }
    }

    /// Host-side veth name number `salt` of `container`: hashed with this
    /// root's state directory, as two roots may both have a `web-0`.
    pub fn veth_name(&self, container: &str, salt: u32) -> String {
        names::veth_name(&format!("{}|{container}", self.dir.display()), salt)
    }

    /// This root's bridges: its networks' and its default one's.
    fn own_bridges<'a>(&'a self, st: &'a State) -> Vec<&'a str> {
        let mut own: Vec<&str> = st.networks.values().map(|n| n.bridge.as_str()).collect();
        own.push(self.opts.default_bridge.as_str());
        own
    }

    /// Subnets a new network of this root must not use: its networks' and
    /// those routed through any other interface (the host's networks,
    /// other roots' bridges).
    fn taken_subnets(&self, st: &State) -> Vec<Ipv4Net> {
        let mut out: Vec<Ipv4Net> = st.networks.values().map(|n| n.subnet).collect();
        out.extend(
            host::foreign_subnets(&self.own_bridges(st))
                .into_iter()
                .map(|(net, _)| net),
        );
        out
    }

    /// The record of network `name` with its bridge up; true when the
    /// bridge was just created. The fast path (record and bridge exist)
    /// takes no host-wide lock. Otherwise, under [`host::HostLock`]:
    /// bridges of deleted roots are collected, the default network's
    /// record is made, a default network whose bridge went away (pruned,
    /// rebooted) while another interface took its subnet moves to a free
    /// one, and the bridge is created and marked as this root's.
    fn bridge_up(
        &self,
        lock: &Locked,
        st: &mut State,
        name: &str,
    ) -> Result<(NetworkRecord, bool)> {
        if let Some(rec) = st.networks.get(name).filter(|r| link::exists(&r.bridge)) {
            let rec = rec.clone();
            let created =
                link::ensure_bridge(&rec.bridge, &rec.subnet, rec.gateway, self.opts.mtu)?;
            return Ok((rec, created));
        }
        let _host = host::HostLock::acquire()?;
        host::collect_orphans();
        let known = st.networks.contains_key(name);
        let mut rec = self.network_record(st, name)?;
        let mut changed = !known;
        if !link::exists(&rec.bridge) {
            let own = self.own_bridges(st);
            let clash = host::foreign_subnets(&own)
                .into_iter()
                .find(|(t, _)| overlap(t, &rec.subnet));
            if let Some((net, dev)) = clash {
                if name != DEFAULT_NETWORK {
                    return Err(RuntimeError::Network(format!(
                        "network {name}'s subnet {} is now routed through {dev} ({net}); \
                         `zlayer network rm {name}` and create it again with another --subnet",
                        rec.subnet
                    )));
                }
                st.networks.remove(name);
                let subnet = self.default_subnet(st);
                rec.subnet = subnet;
                rec.gateway = ipam::gateway(&subnet)?;
                rec.next = None;
                rec.table_boot = None;
                st.networks.insert(name.into(), rec.clone());
                changed = true;
            }
        }
        if changed {
            lock.save(st)?;
        }
        let created = link::ensure_bridge(&rec.bridge, &rec.subnet, rec.gateway, self.opts.mtu)?;
        host::mark_owner(&rec.bridge, &self.dir);
        Ok((rec, created))
    }

    /// The record of `name`, creating the default network's on first use.
    fn network_record(&self, st: &mut State, name: &str) -> Result<NetworkRecord> {
        if let Some(rec) = st.networks.get(name) {
            return Ok(rec.clone());
        }
        if name != DEFAULT_NETWORK {
            return Err(RuntimeError::NotFound {
                kind: "network",
                id: name.into(),
                hint: Some(format!("create it with `zlayer network create {name}`")),
            });
        }
        let subnet = self.default_subnet(st);
        let rec = NetworkRecord {
            bridge: self.opts.default_bridge.clone(),
            subnet,
            gateway: ipam::gateway(&subnet)?,
            next: None,
            table_boot: None,
        };
        st.networks.insert(name.into(), rec.clone());
        Ok(rec)
    }
}

/// How long a released container's veth may outlive it before it is
/// deleted explicitly (its namespace was kept alive by something else).
const RELEASED_GRACE_MS: u64 = 5_000;

/// Forgets released veths the kernel has deleted and deletes those still
/// there after [`RELEASED_GRACE_MS`]; true when `st` changed.
fn collect_released(st: &mut State) -> bool {
    if st.released.is_empty() {
        return false;
    }
    let now = now_ms();
    let before = st.released.len();
    st.released.retain(|veth, at| {
        if !link::exists(veth) {
            return false;
        }
        if now.saturating_sub(*at) < RELEASED_GRACE_MS {
            return true;
        }
        link::delete(veth).is_err()
    });
    st.released.len() != before
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`): nftables tables do
/// not survive a reboot, so a table loaded under another boot id is gone.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn info(name: &str, rec: &NetworkRecord, st: &State) -> NetworkInfo {
    NetworkInfo {
        name: name.into(),
        bridge: rec.bridge.clone(),
        subnet: rec.subnet,
        gateway: rec.gateway,
        containers: st
            .leases
            .iter()
            .filter(|(_, l)| l.network == name)
            .map(|(id, _)| id.clone())
            .collect(),
    }
}

fn validate_name(name: &str) -> Result<()> {
    if matches!(name, "bridge" | "host" | "none") {
        return Err(RuntimeError::InvalidSpec(format!(
            "`{name}` is a built-in network mode; pick another network name"
        )));
    }
    format!("bridge:{name}")
        .parse::<NetworkMode>()
        .map(|_| ())
        .map_err(|_| {
            RuntimeError::InvalidSpec(format!(
                "invalid network name {name:?}: use 1-15 letters, digits, `-`, `_` or `.`"
            ))
        })
}

fn overlap(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}
