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
