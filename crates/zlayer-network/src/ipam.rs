//! IPv4 address management: which address a new container gets.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use zlayer_runtime::error::{Result, RuntimeError};

/// The gateway (bridge) address of `subnet`: its first host address.
pub fn gateway(subnet: &Ipv4Net) -> Result<Ipv4Addr> {
    if subnet.prefix_len() > 30 {
        return Err(RuntimeError::InvalidSpec(format!(
            "subnet {subnet} is too small; use a /30 or larger (for example 10.89.0.0/24)"
        )));
    }
    Ok(Ipv4Addr::from(u32::from(subnet.network()) + 1))
}

/// Picks a free address of `subnet`.
///
/// Skips the network, gateway and broadcast addresses and everything in
/// `used`; the search starts at `next` and wraps, so addresses are handed
/// out round-robin. Returns the address and the new `next`.
pub fn allocate(
    subnet: &Ipv4Net,
    used: &BTreeSet<Ipv4Addr>,
    next: Option<Ipv4Addr>,
) -> Result<(Ipv4Addr, Ipv4Addr)> {
    let gw = u32::from(gateway(subnet)?);
    let first = gw + 1;
    let last = u32::from(subnet.broadcast()) - 1;
    let size = last - first + 1;
    let start = next
        .map(u32::from)
        .filter(|n| (first..=last).contains(n))
        .unwrap_or(first);
    for i in 0..size {
        let candidate = first + (start - first + i) % size;
        let ip = Ipv4Addr::from(candidate);
        if !used.contains(&ip) {
            let after = if candidate == last {
                first
            } else {
                candidate + 1
            };
            return Ok((ip, Ipv4Addr::from(after)));
        }
    }
    Err(RuntimeError::Network(format!(
        "no free address left in {subnet} ({size} in use); remove containers or use a \
         network with a larger subnet"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn hands_out_each_address_once_then_fails() {
        let subnet = net("10.213.0.0/29"); // hosts .2 - .6
        let mut used = BTreeSet::new();
        let mut next = None;
        for want in 2..=6u8 {
            let (ip, n) = allocate(&subnet, &used, next).unwrap();
            assert_eq!(ip, Ipv4Addr::new(10, 213, 0, want));
            used.insert(ip);
            next = Some(n);
        }
        let err = allocate(&subnet, &used, next).unwrap_err();
        assert!(err.to_string().contains("no free address"), "{err}");
    }

    #[test]
    fn freed_address_is_reused_last() {
        let subnet = net("10.213.0.0/24");
        let mut used = BTreeSet::new();
        let (a, next) = allocate(&subnet, &used, None).unwrap();
        used.insert(a);
        let (b, next) = allocate(&subnet, &used, Some(next)).unwrap();
        used.insert(b);
        used.remove(&a);
        let (c, _) = allocate(&subnet, &used, Some(next)).unwrap();
        assert_ne!(c, a, "a just-freed address must not come back at once");
        assert_eq!(c, Ipv4Addr::new(10, 213, 0, 4));
    }

    #[test]
    fn wraps_around() {
        let subnet = net("10.213.0.0/29");
        let used: BTreeSet<_> = [Ipv4Addr::new(10, 213, 0, 3)].into();
        let (ip, next) = allocate(&subnet, &used, Some(Ipv4Addr::new(10, 213, 0, 6))).unwrap();
        assert_eq!(ip, Ipv4Addr::new(10, 213, 0, 6));
        assert_eq!(next, Ipv4Addr::new(10, 213, 0, 2));
    }

    #[test]
    fn rejects_tiny_subnet() {
        assert!(gateway(&net("10.0.0.0/31")).is_err());
        assert_eq!(
            gateway(&net("10.88.0.0/16")).unwrap(),
            Ipv4Addr::new(10, 88, 0, 1)
        );
    }
}
