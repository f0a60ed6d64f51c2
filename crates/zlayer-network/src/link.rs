//! Bridges and veth pairs.

use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;

use super::cmd;
use zlayer_runtime::error::Result;

/// Whether interface `name` exists in the host namespace.
pub fn exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Creates bridge `name` with address `gateway/prefix` unless it exists,
/// and makes sure it is up and may carry DNAT'd loopback traffic. True
/// when this call created it.
pub fn ensure_bridge(name: &str, subnet: &Ipv4Net, gateway: Ipv4Addr, mtu: u32) -> Result<bool> {
    let mut created = false;
    if !exists(name) {
        created = true;
        // A fixed MAC: a bridge without one takes the lowest MAC of its
        // ports, so removing a container would change the gateway's MAC
        // under the others' ARP caches (no traffic until they expire).
        let script = format!(
            "link add {name} address {} mtu {mtu} type bridge\naddr add {gateway}/{} dev {name}\nlink set {name} up\n",
            bridge_mac(name),
            subnet.prefix_len()
        );
        if let Err(e) = cmd::ip_batch(&script) {
            // Another process may have won the race; anything else is real.
            if !exists(name) {
                return Err(e);
            }
        }
    }
    if !created {
        adopt_fixed_mac(name)?;
    }
    let forward = "/proc/sys/net/ipv4/ip_forward";
    let localnet = format!("/proc/sys/net/ipv4/conf/{name}/route_localnet");
    if !created && is_one(forward) && is_one(&localnet) {
        return Ok(false);
    }
    // Egress NAT needs forwarding; published ports on 127.0.0.1 need
    // route_localnet so DNAT'd loopback packets may leave via the bridge.
    cmd::sysctl(forward, "1")?;
    cmd::sysctl(&localnet, "1")?;
    Ok(created)
}

/// Gives a bridge made before bridges got a fixed MAC its fixed MAC, at a
/// moment when no container is attached (nobody has the old one cached).
fn adopt_fixed_mac(name: &str) -> Result<()> {
    let want = bridge_mac(name);
    let sys = Path::new("/sys/class/net").join(name);
    let current = std::fs::read_to_string(sys.join("address")).unwrap_or_default();
    if current.trim() == want {
        return Ok(());
    }
    let idle = std::fs::read_dir(sys.join("brif")).is_ok_and(|mut d| d.next().is_none());
    if idle {
        cmd::ip_batch(&format!("link set {name} address {want}\n"))?;
    }
    Ok(())
}

/// A stable, locally administered unicast MAC for bridge `name`.
pub fn bridge_mac(name: &str) -> String {
    let h = zlayer_sys::hash::fnv1a(name.as_bytes());
    let b = h.to_be_bytes();
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[3], b[4], b[5], b[6], b[7]
    )
}

fn is_one(path: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1")
}

/// Deletes interface `name`; a missing interface is not an error.
pub fn delete(name: &str) -> Result<()> {
    match cmd::ip_batch(&format!("link del {name}\n")) {
        Err(e) if !cmd::is_missing(&e) && exists(name) => Err(e),
        _ => Ok(()),
    }
}

/// Creates veth `host_if` on `bridge` whose peer becomes `eth0` with
/// `ip/prefix` and a default route via `gateway` inside `netns`; both ends
/// get `mtu`.
pub fn attach_veth(
    host_if: &str,
    bridge: &str,
    netns: &Path,
    (ip, prefix): (Ipv4Addr, u8),
    gateway: Ipv4Addr,
    mtu: u32,
) -> Result<()> {
    cmd::ip_batch(&format!(
        "link add {host_if} mtu {mtu} type veth peer name eth0 mtu {mtu} netns {}\nlink set {host_if} master {bridge} up\n",
        netns.display()
    ))?;
    // Inside: ioctls from a thread in the namespace, no process spawned.
    if let Err(e) = super::ifconfig::configure(netns, ip, prefix, gateway) {
        let _ = delete(host_if);
        return Err(e);
    }
    Ok(())
}

/// Brings `lo` up inside `netns` (the whole of `--network none`).
pub fn loopback_up(netns: &Path) -> Result<()> {
    super::ifconfig::loopback_up(netns)
}

#[cfg(test)]
mod mac_tests {
    #[test]
    fn bridge_macs_are_stable_local_unicast() {
        let m = super::bridge_mac("zlayer0");
        assert_eq!(m, super::bridge_mac("zlayer0"));
        assert_ne!(m, super::bridge_mac("zlayer1"));
        assert!(m.starts_with("02:"), "{m}");
        assert_eq!(m.len(), 17);
    }
}
