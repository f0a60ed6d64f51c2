//! Service discovery: the embedded DNS responder on the bridge answers
//! container and service names of its network and relays other names to
//! an upstream resolver this test runs on 127.0.0.1. Bridge zlt12,
//! 10.213.12.0/24; nothing leaves the machine.

mod network_util;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use network_util::*;
use zlayer_network::{dns, dns_wire};
use zlayer_spec::NetworkMode;

/// A fake upstream answering every A query with 192.0.2.7.
fn fake_upstream() -> SocketAddr {
    let sock = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if let Some(q) = dns_wire::parse_query(&buf[..n]) {
                let r = dns_wire::answer(&buf[..n], &q, &[Ipv4Addr::new(192, 0, 2, 7)], 0);
                let _ = sock.send_to(&r, from);
            }
        }
    });
    addr
}

/// Asks `server` for `name` from inside `ns`, like a stub resolver: the
/// query is sent again after a second without an answer (UDP may lose the
/// first packet of a fresh interface), three tries in all.
fn ask(ns: &Netns, server: Ipv4Addr, name: &'static str) -> (u8, Vec<Ipv4Addr>) {
    ns.run(move || {
        let s = UdpSocket::bind(("0.0.0.0", 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let query = dns_wire::query(7, name, dns_wire::TYPE_A);
        let mut buf = [0u8; 1500];
        for attempt in 1..=3 {
            s.send_to(&query, (server, 53)).unwrap();
            match s.recv_from(&mut buf) {
                Ok((n, _)) => {
                    let mut ips = dns_wire::parse_answer(&buf[..n]).unwrap();
                    ips.1.sort();
                    return ips;
                }
                Err(e) if attempt == 3 => panic!("no answer for {name} from {server}: {e}"),
                Err(_) => {}
            }
        }
        unreachable!()
    })
}

#[test]
fn containers_resolve_services_and_peers_and_other_names_are_forwarded() {
    let upstream = fake_upstream();
    let mut env = Env::with_dns("zlt12", "10.213.12.0/24", vec![upstream]);
    // Names of this run only (namespaces and container names, hence veth
    // names), so nothing left of an earlier run's teardown can match them.
    let run = std::process::id() % 100_000;
    let (a, b, c) = (
        Netns::new(&format!("zlt12a{run}")),
        Netns::new(&format!("zlt12b{run}")),
        Netns::new(&format!("zlt12c{run}")),
    );
    let web = vec!["web".to_string()];
    let (ida, idb, idc) = (
        env.id(&format!("zlt12-a{run}")),
        env.id(&format!("zlt12-b{run}")),
        env.id(&format!("zlt12-c{run}")),
    );
    let att_a = env
        .mgr
        .attach(&ida, &a.path(), &NetworkMode::Bridge, &[], &web)
        .unwrap();
    let att_b = env
        .mgr
        .attach(&idb, &b.path(), &NetworkMode::Bridge, &[], &web)
        .unwrap();
    let att_c = env
        .mgr
        .attach(
            &idc,
            &c.path(),
            &NetworkMode::Bridge,
            &[],
            &["db".to_string()],
        )
        .unwrap();
    let gw = Ipv4Addr::new(10, 213, 12, 1);
    assert_eq!(
        att_c.resolv_conf.as_deref(),
        Some("nameserver 10.213.12.1\n")
    );
    let ip = |att: &zlayer_network::Attachment| match att.ip.unwrap() {
        std::net::IpAddr::V4(v4) => v4,
        other => panic!("{other}"),
    };

    // The service name returns every replica; container names one each.
    let mut both = vec![ip(&att_a), ip(&att_b)];
    both.sort();
    assert_eq!(ask(&c, gw, "web"), (0, both));
    assert_eq!(ask(&a, gw, "db"), (0, vec![ip(&att_c)]));
    let b_name: &'static str = Box::leak(format!("zlt12-b{run}-0").into_boxed_str());
    assert_eq!(ask(&a, gw, b_name), (0, vec![ip(&att_b)]));
    // Other names go to the upstream.
    assert_eq!(
        ask(&a, gw, "example.org"),
        (0, vec![Ipv4Addr::new(192, 0, 2, 7)])
    );

    // A replica removed is no longer returned.
    env.mgr.detach(&idb).unwrap();
    assert_eq!(ask(&c, gw, "web"), (0, vec![ip(&att_a)]));

    // With no container left the responder exits by itself.
    let dir = env.dir.path().join("network");
    assert!(dns::running(&dir, "bridge").is_some());
    env.mgr.detach(&ida).unwrap();
    env.mgr.detach(&idc).unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    while dns::running(&dir, "bridge").is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        dns::running(&dir, "bridge").is_none(),
        "zlayer-dns still running"
    );
}
