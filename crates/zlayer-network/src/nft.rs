//! nftables rules: one table per network (egress NAT, isolation) and one
//! per container with published ports (DNAT). Dropping a table drops all of
//! its rules at once, which keeps teardown exact and idempotent.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use zlayer_spec::Protocol;

use super::cmd;
use zlayer_runtime::error::Result;
use zlayer_runtime::types::PortMappingEntry;

/// Prefix every zlayer bridge name starts with; isolation drops forwarded
/// traffic between two interfaces matching `zl*`.
pub const BRIDGE_GLOB: &str = "zl*";

/// (Re)creates the table of a network on `bridge` with `subnet`.
pub fn apply_network(table: &str, bridge: &str, subnet: &Ipv4Net) -> Result<()> {
    cmd::nft(&network_script(table, bridge, subnet))
}

/// The nft script behind [`apply_network`].
pub fn network_script(table: &str, bridge: &str, subnet: &Ipv4Net) -> String {
    format!(
        r#"table ip {table}
delete table ip {table}
table ip {table} {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {subnet} oifname != "{bridge}" masquerade
    oifname "{bridge}" ip saddr 127.0.0.0/8 masquerade
    oifname "{bridge}" ip saddr {subnet} ct status dnat masquerade
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname "{bridge}" oifname != "{bridge}" oifname "{BRIDGE_GLOB}" drop
  }}
  chain prerouting {{
    type filter hook prerouting priority raw; policy accept;
    iifname "{bridge}" ip daddr 127.0.0.0/8 drop
  }}
}}
"#
    )
}

/// (Re)creates the DNAT table of one container.
pub fn apply_ports(table: &str, container_ip: Ipv4Addr, ports: &[PortMappingEntry]) -> Result<()> {
    cmd::nft(&ports_script(table, container_ip, ports))
}

/// The nft script behind [`apply_ports`].
pub fn ports_script(table: &str, container_ip: Ipv4Addr, ports: &[PortMappingEntry]) -> String {
    let mut rules = String::new();
    for p in ports {
        let proto = match p.protocol.transport() {
            Protocol::Udp => "udp",
            _ => "tcp",
        };
        let dst = if p.host_ip == "0.0.0.0" {
            "fib daddr type local".to_string()
        } else {
            format!("ip daddr {}", p.host_ip)
        };
        rules.push_str(&format!(
            "    {dst} {proto} dport {} dnat to {container_ip}:{}\n",
            p.host_port, p.container_port
        ));
    }
    format!(
        r#"table ip {table}
delete table ip {table}
table ip {table} {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
{rules}  }}
  chain output {{
    type nat hook output priority -100; policy accept;
{rules}  }}
}}
"#
    )
}

/// Deletes `table`; a missing table is not an error.
pub fn delete_table(table: &str) -> Result<()> {
    // `table` first makes the delete a no-op on a missing table.
    cmd::nft(&format!("table ip {table}\ndelete table ip {table}\n"))
}

/// Whether `table` exists.
pub fn table_exists(table: &str) -> bool {
    cmd::run("nft", &["list", "table", "ip", table], None).is_ok()
}
