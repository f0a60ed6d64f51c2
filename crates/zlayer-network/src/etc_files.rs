//! Contents of `/etc/hosts` and `/etc/resolv.conf` for an attached container.

use std::net::Ipv4Addr;

/// `/etc/hosts`: loopback names, the container's own names on `ip`, and
/// `peers` (address, names) known at attach time.
pub fn hosts(own: Option<(Ipv4Addr, &[String])>, peers: &[(Ipv4Addr, Vec<String>)]) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some((ip, names)) = own {
        if !names.is_empty() {
            s.push_str(&format!("{ip}\t{}\n", names.join(" ")));
        }
    }
    for (ip, names) in peers {
        if !names.is_empty() {
            s.push_str(&format!("{ip}\t{}\n", names.join(" ")));
        }
    }
    s
}

/// `/etc/resolv.conf`: `nameserver` if given (zlayer's DNS on the bridge),
/// else the host's resolvers minus loopback ones, which a container in its
/// own network namespace cannot reach.
pub fn resolv_conf(host_resolv: &str, nameserver: Option<Ipv4Addr>) -> String {
    let mut out = String::new();
    if let Some(ns) = nameserver {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    let mut servers = 0;
    for line in host_resolv.lines() {
        let t = line.trim();
        if let Some(addr) = t.strip_prefix("nameserver") {
            let addr = addr.trim();
            if nameserver.is_some() || addr.starts_with("127.") || addr == "::1" {
                continue;
            }
            servers += 1;
        }
        if t.starts_with("nameserver") || t.starts_with("search") || t.starts_with("options") {
            out.push_str(t);
            out.push('\n');
        }
    }
    if nameserver.is_none() && servers == 0 {
        // The host only has a local stub resolver: fall back to a public one
        // is not our call to make; leave the container without DNS servers
        // but say why.
        out.insert_str(
            0,
            "# the host's resolvers are all on loopback, unreachable from this container\n",
        );
    }
    out
}

/// How many non-loopback `nameserver` lines `host_resolv` has (the ones a
/// container in its own namespace can reach).
pub fn host_servers(host_resolv: &str) -> usize {
    host_resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .map(str::trim)
        .filter(|a| !a.starts_with("127.") && *a != "::1")
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_own_and_peer_names() {
        let own = vec!["web-1".to_string(), "web".to_string()];
        let h = hosts(
            Some((Ipv4Addr::new(10, 0, 0, 2), &own)),
            &[(Ipv4Addr::new(10, 0, 0, 3), vec!["db".into()])],
        );
        assert!(h.contains("10.0.0.2\tweb-1 web\n"));
        assert!(h.contains("10.0.0.3\tdb\n"));
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
    }

    #[test]
    fn resolv_drops_loopback_servers() {
        let r = resolv_conf(
            "nameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch lan\n",
            None,
        );
        assert_eq!(r, "nameserver 192.0.2.1\nsearch lan\n");
        let r = resolv_conf("nameserver 192.0.2.1\n", Some(Ipv4Addr::new(10, 88, 0, 1)));
        assert_eq!(r, "nameserver 10.88.0.1\n");
    }
}
