//! Published ports: TCP and UDP reachable from the host (also on
//! 127.0.0.1), random host ports, and conflicts refused at attach time.
//! Uses bridges zlt6-zlt7 and 10.213.6-7.0/24; traffic stays on this host.

mod network_util;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use network_util::*;
use zlayer_network::{names, NetworkManager};
use zlayer_spec::{NetworkMode, PortMapping, Protocol};

fn map(host_ip: Option<&str>, host_port: Option<u16>, cport: u16, proto: Protocol) -> PortMapping {
    PortMapping {
        host_port,
        container_port: cport,
        protocol: proto,
        host_ip: host_ip.map(str::to_string),
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

#[test]
fn tcp_udp_and_random_ports_reach_the_container_from_loopback() {
    let mut env = Env::new("zlt6", "10.213.6.0/24");
    let ns = Netns::new("zlt6a");
    let id = env.id("zlt6-a");
    let (p_tcp, p_udp, p_all) = (free_port(), free_port(), free_port());
    let ports = vec![
        map(Some("127.0.0.1"), Some(p_tcp), 80, Protocol::Tcp),
        map(None, Some(p_udp), 53, Protocol::Udp),
        map(None, Some(p_all), 81, Protocol::Tcp),
        map(None, None, 82, Protocol::Tcp),
    ];
    let att = env
        .mgr
        .attach(&id, &ns.path(), &NetworkMode::Bridge, &ports, &[])
        .unwrap();
    assert_eq!(att.ports.len(), 4);
    assert_eq!(att.ports[0].host_ip, "127.0.0.1");
    assert_eq!(att.ports[0].host_port, p_tcp);
    assert_eq!(att.ports[1].protocol, Protocol::Udp);
    let random = att.ports[3].host_port;
    assert!(random != 0 && random != p_tcp && random != p_all);
    assert_eq!(env.mgr.lookup(&id).unwrap().unwrap().1, att.ports);

    let s = tcp_server(&ns, 80, "tcp-80");
    assert_eq!(tcp_read(local(p_tcp)).unwrap(), "tcp-80");
    s.join().unwrap();
    let s = udp_server(&ns, 53, "udp-53");
    assert_eq!(udp_ask(local(p_udp)).unwrap(), "udp-53");
    s.join().unwrap();
    // A 0.0.0.0 mapping answers on loopback and on the bridge address.
    let s = tcp_server(&ns, 81, "tcp-81");
    assert_eq!(tcp_read(local(p_all)).unwrap(), "tcp-81");
    s.join().unwrap();
    let s = tcp_server(&ns, 81, "tcp-81b");
    let gw = SocketAddr::from(([10, 213, 6, 1], p_all));
    assert_eq!(tcp_read(gw).unwrap(), "tcp-81b");
    s.join().unwrap();
    let s = tcp_server(&ns, 82, "tcp-82");
    assert_eq!(tcp_read(local(random)).unwrap(), "tcp-82");
    s.join().unwrap();

    // After detach the rules are gone: nothing answers any more.
    env.mgr.detach(&id).unwrap();
    let table = names::container_table(&env.mgr.veth_name("zlt6-a-0", 0));
    assert!(!nft_tables().contains(&table));
    assert!(tcp_read(local(p_tcp)).is_err());
}

#[test]
fn port_conflicts_are_refused_at_attach_time() {
    let mut env = Env::new("zlt7", "10.213.7.0/24");
    let (a, b) = (Netns::new("zlt7a"), Netns::new("zlt7b"));
    let (ida, idb) = (env.id("zlt7-a"), env.id("zlt7-b"));
    let port = free_port();
    env.mgr
        .attach(
            &ida,
            &a.path(),
            &NetworkMode::Bridge,
            &[map(None, Some(port), 80, Protocol::Tcp)],
            &[],
        )
        .unwrap();
    // `check` (what create calls) reports the conflict without attaching.
    let err = env
        .mgr
        .check(
            &idb,
            &NetworkMode::Bridge,
            &[map(None, Some(port), 80, Protocol::Tcp)],
        )
        .unwrap_err();
    assert!(err.to_string().contains("already published"), "{err}");
    let nope = NetworkMode::BridgeNamed("zlt7-nope".into());
    assert!(env.mgr.check(&idb, &nope, &[]).unwrap_err().is_not_found());
    // Same port on a specific address collides with 0.0.0.0.
    let err = env
        .mgr
        .attach(
            &idb,
            &b.path(),
            &NetworkMode::Bridge,
            &[map(Some("127.0.0.1"), Some(port), 8080, Protocol::Tcp)],
            &[],
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("already published by container zlt7-a-0"),
        "{err}"
    );
    // The failed attach left no lease or interface behind.
    assert!(env.mgr.lookup(&idb).unwrap().is_none());
    assert!(!b.addrs().contains("eth0"));
    // UDP on the same number is a different port.
    env.mgr
        .attach(
            &idb,
            &b.path(),
            &NetworkMode::Bridge,
            &[map(None, Some(port), 80, Protocol::Udp)],
            &[],
        )
        .unwrap();
    // A port a host program listens on is refused too.
    let busy = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let err = env
        .mgr
        .attach(
            &idb,
            &b.path(),
            &NetworkMode::Bridge,
            &[map(None, Some(busy_port), 80, Protocol::Tcp)],
            &[],
        )
        .unwrap_err();
    assert!(err.to_string().contains("another program"), "{err}");
    // A second manager on the same state sees the first one's ports.
    let other = NetworkManager::with_options(env.dir.path(), Default::default()).unwrap();
    let ns_c = Netns::new("zlt7c");
    let idc = env.id("zlt7-c");
    let err = other
        .attach(
            &idc,
            &ns_c.path(),
            &NetworkMode::None,
            &[map(None, Some(port), 80, Protocol::Tcp)],
            &[],
        )
        .unwrap_err();
    assert!(err.to_string().contains("--network none"), "{err}");
    let err = env
        .mgr
        .attach(
            &idc,
            &ns_c.path(),
            &NetworkMode::Bridge,
            &[map(Some("::1"), Some(port), 80, Protocol::Tcp)],
            &[],
        )
        .unwrap_err();
    assert!(err.to_string().contains("not an IPv4 address"), "{err}");
}
