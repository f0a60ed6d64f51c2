//! Kernel object names derived from zlayer names.
//!
//! Interface names are limited to 15 bytes, so container and network names
//! are hashed (FNV-1a, stable across Rust versions) into short suffixes.

use zlayer_sys::hash::fnv1a;

/// Host-side veth name of a container: `zv` + 10 hex digits.
///
/// `salt` lets the caller pick another name when one is taken.
pub fn veth_name(container: &str, salt: u32) -> String {
    let h = fnv1a(format!("{container}/{salt}").as_bytes());
    format!("zv{:010x}", h & 0xff_ffff_ffff)
}

/// 5 hex digits naming data root `root` in its bridges' names (see
/// [`super::NetworkOptions::for_root`]); from its canonical path when it
/// exists.
pub fn root_tag(root: &std::path::Path) -> String {
    let path = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    format!(
        "{:05x}",
        fnv1a(path.as_os_str().as_encoded_bytes()) & 0xf_ffff
    )
}

/// nftables table holding a container's port rules.
pub fn container_table(veth: &str) -> String {
    format!("zlc_{veth}")
}

/// nftables table holding a network's NAT and isolation rules.
pub fn network_table(bridge: &str) -> String {
    format!("zln_{}", bridge.replace(['-', '.'], "_"))
}

/// Bridge name of a user-defined network: `prefix` + 8 hex digits.
pub fn bridge_name(prefix: &str, network: &str) -> String {
    let h = fnv1a(network.as_bytes());
    format!("{prefix}{:08x}", h & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_interface_limit() {
        assert_eq!(veth_name("web-1", 0).len(), 12);
        assert_ne!(veth_name("web-1", 0), veth_name("web-1", 1));
        assert_eq!(bridge_name("zlb", "frontend").len(), 11);
        assert_eq!(network_table("zl-a.b"), "zln_zl_a_b");
        let tag = root_tag(std::path::Path::new("/no/such/root"));
        assert_eq!(tag.len(), 5);
        assert_ne!(tag, root_tag(std::path::Path::new("/no/such/root2")));
    }
}
