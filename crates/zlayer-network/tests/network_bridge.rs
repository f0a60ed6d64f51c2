//! Bridge networking: addresses, veth pairs, reachability, teardown and
//! persistence, on namespaces and bridges this test creates (zlt1-zlt2,
//! 10.213.1-2.0/24); no traffic leaves the machine.

mod network_util;

use std::net::{IpAddr, SocketAddr};

use network_util::*;
use zlayer_network::{names, NetworkManager};
use zlayer_spec::NetworkMode;

#[test]
fn two_namespaces_on_one_bridge_reach_each_other_and_detach_cleans_up() {
    let mut env = Env::new("zlt1", "10.213.1.0/24");
    let (a, b) = (Netns::new("zlt1a"), Netns::new("zlt1b"));
    let (ida, idb) = (env.id("zlt1-a"), env.id("zlt1-b"));
    let aliases = vec!["svc".to_string()];
    let att_a = env
        .mgr
        .attach(&ida, &a.path(), &NetworkMode::Bridge, &[], &aliases)
        .unwrap();
    let att_b = env
        .mgr
        .attach(&idb, &b.path(), &NetworkMode::Bridge, &[], &aliases)
        .unwrap();
    let (ip_a, ip_b) = (att_a.ip.unwrap(), att_b.ip.unwrap());
    assert_ne!(ip_a, ip_b);
    assert_eq!(att_a.gateway, Some("10.213.1.1".parse().unwrap()));
    assert!(a.addrs().contains(&format!("{ip_a}/24")), "{}", a.addrs());
    assert!(att_b
        .hosts_file
        .as_ref()
        .unwrap()
        .contains(&format!("{ip_a}\tzlt1-a-0 svc")));

    // b -> a over TCP on the bridge, and the host -> b through the gateway.
    let server = tcp_server(&a, 7000, "from-a");
    let got = b.run(move || tcp_read(SocketAddr::new(ip_a, 7000)).unwrap());
    assert_eq!(got, "from-a");
    server.join().unwrap();
    let server = tcp_server(&b, 7001, "from-b");
    assert_eq!(tcp_read(SocketAddr::new(ip_b, 7001)).unwrap(), "from-b");
    server.join().unwrap();
    // ping (ICMP) a -> b with busybox inside a.
    let ping = std::process::Command::new("ip")
        .args(["netns", "exec", "zlt1a", "busybox", "ping", "-c1", "-W2"])
        .arg(ip_b.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(ping.success(), "ping {ip_b} from a failed");

    // Detach a: its veth, address and lease are gone; b keeps working.
    let veth_count = || {
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .filter(|e| {
                let p = e.as_ref().unwrap().path().join("master");
                std::fs::read_link(p)
                    .map(|t| t.ends_with("zlt1"))
                    .unwrap_or(false)
            })
            .count()
    };
    assert_eq!(veth_count(), 2);
    env.mgr.detach(&ida).unwrap();
    env.mgr.detach(&ida).unwrap(); // idempotent
    assert_eq!(veth_count(), 1);
    assert!(!a.addrs().contains("eth0"), "{}", a.addrs());
    assert!(env.mgr.lookup(&ida).unwrap().is_none());
    assert_eq!(env.mgr.lookup(&idb).unwrap().unwrap().0, ip_b);
}

#[test]
fn leases_survive_a_restart_and_are_never_handed_out_twice() {
    let mut env = Env::new("zlt2", "10.213.2.0/24");
    let nss: Vec<Netns> = (0..3).map(|i| Netns::new(&format!("zlt2n{i}"))).collect();
    let ids: Vec<_> = (0..3).map(|i| env.id(&format!("zlt2-{i}"))).collect();
    let ip0 = env
        .mgr
        .attach(&ids[0], &nss[0].path(), &NetworkMode::Bridge, &[], &[])
        .unwrap()
        .ip
        .unwrap();
    // A new manager (a new `zlayer` process) sees the lease.
    let again = NetworkManager::with_options(env.dir.path(), Default::default()).unwrap();
    assert_eq!(again.lookup(&ids[0]).unwrap().unwrap().0, ip0);
    let ip1 = env
        .mgr
        .attach(&ids[1], &nss[1].path(), &NetworkMode::Bridge, &[], &[])
        .unwrap()
        .ip
        .unwrap();
    assert_ne!(ip0, ip1);
    env.mgr.detach(&ids[0]).unwrap();
    // The freed address is not reused at once.
    let ip2 = env
        .mgr
        .attach(&ids[2], &nss[2].path(), &NetworkMode::Bridge, &[], &[])
        .unwrap()
        .ip
        .unwrap();
    assert!(ip2 != ip0 && ip2 != ip1, "{ip0} {ip1} {ip2}");
    let nets = env.mgr.list_networks().unwrap();
    assert_eq!(nets[0].name, "bridge");
    assert_eq!(nets[0].containers.len(), 2);
    let state = std::fs::read_to_string(env.dir.path().join("network/networks.json")).unwrap();
    assert!(state.contains(&ip1.to_string()) && !state.contains(&format!("\"{ip0}\"")));
}

#[test]
fn none_mode_has_only_loopback_and_host_mode_changes_nothing() {
    let mut env = Env::new("zlt4", "10.213.4.0/24");
    let ns = Netns::new("zlt4a");
    let id = env.id("zlt4-a");
    let att = env
        .mgr
        .attach(&id, &ns.path(), &NetworkMode::None, &[], &[])
        .unwrap();
    assert_eq!(att.ip, None);
    let addrs = ns.addrs();
    assert!(
        addrs.contains("lo") && addrs.contains("UNKNOWN") && !addrs.contains("eth0"),
        "{addrs}"
    );
    let att = env
        .mgr
        .attach(&id, &ns.path(), &NetworkMode::Host, &[], &[])
        .unwrap();
    assert!(att.ip.is_none() && att.hosts_file.is_none());
    let err = env
        .mgr
        .attach(
            &id,
            &ns.path(),
            &NetworkMode::BridgeNamed("zlt4-nope".into()),
            &[],
            &[],
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("zlayer network create zlt4-nope"),
        "{err}"
    );
    assert!(!link_exists("zlt4") || env.mgr.lookup(&id).unwrap().is_none());
    let _: Option<IpAddr> = None;
}

#[test]
fn two_hundred_attach_detach_cycles_leave_nothing_behind() {
    let mut env = Env::new("zlt5", "10.213.5.0/24");
    let ns = Netns::new("zlt5a");
    let id = env.id("zlt5-a");
    let port = free_port();
    let ports = vec![zlayer_spec::PortMapping {
        host_port: Some(port),
        container_port: 80,
        protocol: Default::default(),
        host_ip: Some("127.0.0.1".into()),
    }];
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..200 {
        let p: &[zlayer_spec::PortMapping] = if i % 2 == 0 { &ports } else { &[] };
        let att = env
            .mgr
            .attach(&id, &ns.path(), &NetworkMode::Bridge, p, &[])
            .unwrap();
        seen.insert(att.ip.unwrap());
        env.mgr.detach(&id).unwrap();
    }
    // Round-robin: 200 cycles used many addresses, never one at a time twice.
    assert!(seen.len() > 100, "{}", seen.len());
    assert!(!ns.addrs().contains("eth0"));
    let on_bridge = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter(|e| {
            std::fs::read_link(e.as_ref().unwrap().path().join("master"))
                .map(|t| t.ends_with("zlt5"))
                .unwrap_or(false)
        })
        .count();
    assert_eq!(on_bridge, 0);
    let tables = nft_tables();
    let mine = names::container_table(&env.mgr.veth_name("zlt5-a-0", 0));
    assert!(!tables.contains(&mine), "{tables}");
    let state = std::fs::read_to_string(env.dir.path().join("network/networks.json")).unwrap();
    assert!(state.contains("\"leases\": {}"), "{state}");
}
