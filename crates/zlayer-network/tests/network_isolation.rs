//! User-defined networks: create/ls/rm, and isolation between networks.
//! Uses bridges zlt8* and the 10.213.8-9.0/24 subnets; traffic stays on
//! this host.

mod network_util;

use std::net::SocketAddr;

use network_util::*;
use zlayer_spec::NetworkMode;

#[test]
fn containers_on_different_networks_cannot_reach_each_other() {
    let mut env = Env::new("zlt8", "10.213.10.0/24");
    let red = env
        .mgr
        .create_network("zlt8-red", Some("10.213.8.0/24".parse().unwrap()))
        .unwrap();
    env.networks.push("zlt8-red".into());
    let blue = env
        .mgr
        .create_network("zlt8-blue", Some("10.213.9.0/24".parse().unwrap()))
        .unwrap();
    env.networks.push("zlt8-blue".into());
    assert!(link_exists(&red.bridge) && link_exists(&blue.bridge));
    assert!(red.bridge.starts_with("zlt8n"));

    // Overlapping subnets and duplicate or reserved names are refused.
    let err = env
        .mgr
        .create_network("zlt8-x", Some("10.213.8.128/25".parse().unwrap()))
        .unwrap_err();
    assert!(err.to_string().contains("overlaps"), "{err}");
    assert!(env.mgr.create_network("zlt8-red", None).is_err());
    assert!(env.mgr.create_network("host", None).is_err());
    assert!(env.mgr.create_network("bad name!", None).is_err());

    let (r1, r2, b1) = (
        Netns::new("zlt8r1"),
        Netns::new("zlt8r2"),
        Netns::new("zlt8b1"),
    );
    let (idr1, idr2, idb1) = (env.id("zlt8-r1"), env.id("zlt8-r2"), env.id("zlt8-b1"));
    let red_mode = NetworkMode::BridgeNamed("zlt8-red".into());
    let blue_mode = NetworkMode::BridgeNamed("zlt8-blue".into());
    let ip_r1 = env
        .mgr
        .attach(&idr1, &r1.path(), &red_mode, &[], &[])
        .unwrap()
        .ip
        .unwrap();
    env.mgr
        .attach(&idr2, &r2.path(), &red_mode, &[], &[])
        .unwrap();
    let att_b1 = env
        .mgr
        .attach(&idb1, &b1.path(), &blue_mode, &[], &[])
        .unwrap();
    assert!(att_b1.ip.unwrap().to_string().starts_with("10.213.9."));

    // Same network: reachable. Other network: dropped.
    let s = tcp_server(&r1, 7100, "red");
    assert_eq!(
        r2.run(move || tcp_read(SocketAddr::new(ip_r1, 7100)).unwrap()),
        "red"
    );
    s.join().unwrap();
    let _s = tcp_server(&r1, 7101, "red");
    let from_blue = b1.run(move || tcp_read(SocketAddr::new(ip_r1, 7101)));
    assert!(from_blue.is_err(), "blue reached red: {from_blue:?}");
    // Unblock the listener so its thread ends.
    let _ = r2.run(move || tcp_read(SocketAddr::new(ip_r1, 7101)));

    // A network in use cannot be removed; once empty it can, and its
    // bridge is gone.
    let nets = env.mgr.list_networks().unwrap();
    let names: Vec<_> = nets.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["bridge", "zlt8-blue", "zlt8-red"]);
    let err = env.mgr.remove_network("zlt8-blue").unwrap_err();
    assert!(err.to_string().contains("in use by zlt8-b1-0"), "{err}");
    env.mgr.detach(&idb1).unwrap();
    env.mgr.remove_network("zlt8-blue").unwrap();
    assert!(!link_exists(&blue.bridge));
    assert!(env
        .mgr
        .remove_network("zlt8-blue")
        .unwrap_err()
        .is_not_found());
    assert!(env.mgr.remove_network("bridge").is_err());
}

#[test]
fn networks_without_subnet_get_a_free_one() {
    let mut env = Env::new("zlt9", "10.213.11.0/24");
    let a = env.mgr.create_network("zlt9-a", None).unwrap();
    env.networks.push("zlt9-a".into());
    let b = env.mgr.create_network("zlt9-b", None).unwrap();
    env.networks.push("zlt9-b".into());
    assert_ne!(a.subnet, b.subnet);
    assert_eq!(a.subnet.prefix_len(), 24);
    assert!("10.214.0.0/16"
        .parse::<ipnet::Ipv4Net>()
        .unwrap()
        .contains(&a.subnet));
}

/// A veth pair (not zlayer's) with an address, deleted on drop.
struct ForeignLink(&'static str);

impl Drop for ForeignLink {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", self.0])
            .status();
    }
}

#[test]
fn default_network_moves_off_a_subnet_routed_elsewhere() {
    // Another engine's bridge (podman's default is also 10.88.0.0/16)
    // already routes the configured default subnet.
    let ip = |args: &[&str]| {
        assert!(std::process::Command::new("ip")
            .args(args)
            .status()
            .unwrap()
            .success());
    };
    let _ = std::process::Command::new("ip")
        .args(["link", "del", "zzforeign0"])
        .stderr(std::process::Stdio::null())
        .status();
    ip(&[
        "link",
        "add",
        "zzforeign0",
        "type",
        "veth",
        "peer",
        "name",
        "zzforeign1",
    ]);
    let _foreign = ForeignLink("zzforeign0");
    ip(&["addr", "add", "10.216.77.1/24", "dev", "zzforeign0"]);
    ip(&["link", "set", "zzforeign0", "up"]);

    let mut env = Env::new("zlt10", "10.216.77.0/24");
    let ns = Netns::new("zlt10a");
    let id = env.id("zlt10-a");
    let att = env
        .mgr
        .attach(&id, &ns.path(), &NetworkMode::Bridge, &[], &[])
        .unwrap();
    let wanted: ipnet::Ipv4Net = "10.216.77.0/24".parse().unwrap();
    let got = att.ip.expect("a bridge attach has an address");
    assert!(
        !matches!(got, std::net::IpAddr::V4(v4) if wanted.contains(&v4)),
        "{got} is on the foreign interface's subnet"
    );
    let default = env.mgr.list_networks().unwrap().into_iter().next().unwrap();
    assert_eq!(
        default.subnet,
        "10.216.78.0/24".parse().unwrap(),
        "the next free /24"
    );
    assert!(ns.addrs().contains("10.216.78."), "{}", ns.addrs());
}
