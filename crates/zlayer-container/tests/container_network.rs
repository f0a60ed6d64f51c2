//! Bridge networking of real containers (busybox): published TCP and UDP
//! ports reached from the host on 127.0.0.1, random host ports, conflicts
//! refused at create, service names, isolated user networks, `none`, and
//! create/remove cycles that leave nothing behind.
//!
//! Each test has its own bridge `zlc<n>` on 10.219.<n>.0/24 (see
//! `test_network`); DNS upstreams point at loopback, so no traffic leaves
//! the host.

mod container_support;

use container_support::*;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use zlayer_network::{names, state, SERVICE_LABEL};
use zlayer_runtime::*;
use zlayer_spec::{NetworkMode, PortMapping, Protocol, ServiceSpec};

fn map(host_ip: Option<&str>, host_port: Option<u16>, cport: u16, proto: Protocol) -> PortMapping {
    PortMapping {
        host_port,
        container_port: cport,
        protocol: proto,
        host_ip: host_ip.map(str::to_string),
    }
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// `GET /` over HTTP/1.0; the whole response.
fn http_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Retries `f` until it returns `Ok` (servers in containers need a moment
/// to listen) or `timeout` passes; the last result.
fn retry<T>(timeout: Duration, mut f: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

async fn run(env: &TestEnv, id: &ContainerId, spec: &ServiceSpec) {
    env.rt.create_from_spec(id, spec).await.unwrap();
    env.rt.start_container(id).await.unwrap();
}

fn bridge_ports(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn nft_tables() -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Panics unless container `id` left no lease, veth or port table: veths
/// of exited containers go with their namespace, so allow a moment.
async fn assert_no_network_left(env: &TestEnv, id: &ContainerId) {
    let dir = env.root.path().join("network");
    let st = state::read_unlocked(&dir).unwrap();
    assert!(
        !st.leases.contains_key(&id.to_string()),
        "lease of {id} left"
    );
    let tables = nft_tables();
    for salt in 0..4 {
        let veth = env
            .net
            .as_ref()
            .unwrap()
            .mgr
            .veth_name(&id.to_string(), salt);
        assert!(
            !tables.contains(&names::container_table(&veth)),
            "port table of {id} left"
        );
        let gone = eventually(Duration::from_secs(3), || {
            !std::path::Path::new("/sys/class/net").join(&veth).exists()
        })
        .await;
        assert!(gone, "veth {veth} of {id} left");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_tcp_ports_serve_httpd_to_the_host_on_loopback() {
    let env = TestEnv::with_network(test_network(1));
    let id = unique_id("web");
    let fixed = free_port();
    let mut spec = sh(
        "web",
        "mkdir -p /www && echo hello-from-httpd > /www/index.html && exec httpd -f -p 80 -h /www",
    );
    spec.port_mappings = vec![
        map(Some("127.0.0.1"), Some(fixed), 80, Protocol::Tcp),
        map(None, None, 80, Protocol::Tcp),
    ];
    run(&env, &id, &spec).await;

    let ip = env.rt.get_container_ip(&id).await.unwrap().expect("an IP");
    let IpAddr::V4(v4) = ip else {
        panic!("IPv4 expected, got {ip}")
    };
    assert!(
        "10.219.1.0/24"
            .parse::<ipnet::Ipv4Net>()
            .unwrap()
            .contains(&v4),
        "{ip} is not on the test bridge"
    );
    let ports = env.rt.port_mappings_container(&id).await.unwrap();
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert_eq!(
        (ports[0].host_ip.as_str(), ports[0].host_port),
        ("127.0.0.1", fixed)
    );
    let random = ports[1].host_port;
    assert!(random != 0 && random != fixed, "random port {random}");
    assert_eq!(ports[1].host_ip, "0.0.0.0");

    for port in [fixed, random] {
        let page = retry(Duration::from_secs(10), || http_get(local(port)))
            .unwrap_or_else(|e| panic!("GET 127.0.0.1:{port}: {e}"));
        assert!(page.contains("hello-from-httpd"), "{page}");
    }
    // Another agent process (a restarted daemon) sees the same network:
    // nothing of it lives in the runtime that started the container.
    let again = runtime_with(env.root.path(), Some(test_network(1)));
    assert_eq!(again.port_mappings_container(&id).await.unwrap(), ports);
    assert_eq!(again.get_container_ip(&id).await.unwrap(), Some(ip));
    drop(again);
    let page = http_get(local(fixed)).unwrap();
    assert!(page.contains("hello-from-httpd"), "{page}");
    // The container knows its own address and names.
    let (_, hosts, _) = env
        .rt
        .exec(&id, &["cat".into(), "/etc/hosts".into()])
        .await
        .unwrap();
    assert!(hosts.contains(&format!("{ip}\t{id}")), "{hosts}");
    // The names the leak check below looks for are the real ones.
    let veth = env.net.as_ref().unwrap().mgr.veth_name(&id.to_string(), 0);
    assert_eq!(bridge_ports("zlc1"), vec![veth]);

    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
    assert_no_network_left(&env, &id).await;
    assert!(http_get(local(fixed)).is_err(), "still served after remove");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_published_port_reaches_the_container() {
    let env = TestEnv::with_network(test_network(2));
    let id = unique_id("udp");
    let port = {
        let s = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
        s.local_addr().unwrap().port()
    };
    let mut spec = sh("udp", "exec sleep 60");
    spec.port_mappings = vec![map(Some("127.0.0.1"), Some(port), 5353, Protocol::Udp)];
    run(&env, &id, &spec).await;
    let ports = env.rt.port_mappings_container(&id).await.unwrap();
    assert_eq!(ports[0].protocol, Protocol::Udp);

    // busybox has no UDP server: a thread of this test joins the
    // container's network namespace and answers there.
    let pid = env.rt.get_container_pid(&id).await.unwrap().unwrap();
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns");
        let s = UdpSocket::bind(("0.0.0.0", 5353)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = s.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping-udp");
        s.send_to(b"pong-udp", from).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let client = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.send_to(b"ping-udp", local(port)).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"pong-udp");
    server.join().unwrap();

    env.rt.remove_container(&id).await.unwrap();
    assert_no_network_left(&env, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_conflicts_and_unknown_networks_fail_at_create() {
    let env = TestEnv::with_network(test_network(3));
    let port = free_port();
    let a = unique_id("owner");
    let mut spec = sh("owner", "exec sleep 60");
    spec.port_mappings = vec![map(None, Some(port), 80, Protocol::Tcp)];
    run(&env, &a, &spec).await;

    // The same host port again: refused by create, nothing made.
    let b = unique_id("clash");
    let mut clash = sh("clash", "true");
    clash.port_mappings = vec![map(Some("127.0.0.1"), Some(port), 8080, Protocol::Tcp)];
    let err = env.rt.create_from_spec(&b, &clash).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, RuntimeError::InvalidSpec(_)) && msg.contains(&port.to_string()),
        "{err:?}"
    );
    assert!(msg.contains(&a.to_string()), "names the owner: {msg}");
    assert_nothing_left(&env, &b);

    // A port a host program holds.
    let held = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let held_port = held.local_addr().unwrap().port();
    let mut busy = sh("clash", "true");
    busy.port_mappings = vec![map(Some("127.0.0.1"), Some(held_port), 80, Protocol::Tcp)];
    let err = env.rt.create_from_spec(&b, &busy).await.unwrap_err();
    assert!(err.to_string().contains("another program"), "{err}");
    assert_nothing_left(&env, &b);

    // The same port over UDP is another port.
    let mut udp = sh("clash", "true");
    udp.port_mappings = vec![map(None, Some(port), 80, Protocol::Udp)];
    env.rt.create_from_spec(&b, &udp).await.unwrap();
    env.rt.remove_container(&b).await.unwrap();

    // An unknown network.
    let mut lost = sh("clash", "true");
    lost.network_mode = NetworkMode::BridgeNamed("nosuchnet".into());
    let err = env.rt.create_from_spec(&b, &lost).await.unwrap_err();
    assert!(
        err.to_string().contains("zlayer network create nosuchnet"),
        "{err}"
    );
    assert_nothing_left(&env, &b);

    env.rt.remove_container(&a).await.unwrap();
    assert_no_network_left(&env, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_none_has_only_loopback() {
    let env = TestEnv::with_network(test_network(7));
    let id = unique_id("none");
    let mut spec = sh(
        "none",
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; ip -o link | cut -d: -f2 | tr -d ' '; \
         cat /sys/class/net/lo/operstate",
    );
    spec.network_mode = NetworkMode::None;
    run(&env, &id, &spec).await;
    assert_eq!(env.rt.wait_container(&id).await.unwrap(), 0);
    assert_eq!(
        stdout_lines(&env.rt, &id).await,
        vec!["lo", "lo", "unknown"],
        "only lo, and up"
    );
    assert_eq!(env.rt.get_container_ip(&id).await.unwrap(), None);
    let st = state::read_unlocked(&env.root.path().join("network")).unwrap();
    assert!(st.leases.is_empty(), "no lease for --network none");
    env.rt.remove_container(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_of_a_service_are_reached_by_its_name() {
    let env = TestEnv::with_network(test_network(4));
    let svc = |name: &str, script: &str| {
        let mut s = sh(&format!("t4-{name}"), script);
        s.labels.insert(SERVICE_LABEL.into(), name.into());
        s
    };
    let mut servers = Vec::new();
    for replica in 1..=2 {
        let id = ContainerId::new(format!("t4web{}", std::process::id() % 100_000), replica);
        let script = format!("while :; do echo pong-{replica} | nc -l -p 8080; done");
        run(&env, &id, &svc("web", &script)).await;
        servers.push(id);
    }
    let client = ContainerId::new(format!("t4cli{}", std::process::id() % 100_000), 1);
    run(
        &env,
        &client,
        &svc(
            "client",
            "nslookup web; n=0; until nc web 8080; do n=$((n+1)); [ $n -gt 100 ] && exit 1; sleep 0.1; done",
        ),
    )
    .await;
    let code = tokio::time::timeout(Duration::from_secs(30), env.rt.wait_container(&client))
        .await
        .expect("client finished")
        .unwrap();
    let out = stdout_lines(&env.rt, &client).await.join("\n");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pong-"), "TCP by service name: {out}");
    // The embedded DNS answers the service name with every replica.
    assert!(out.contains("Server:\t\t10.219.4.1"), "{out}");
    for id in &servers {
        let ip = env.rt.get_container_ip(id).await.unwrap().unwrap();
        assert!(
            out.contains(&format!("Address: {ip}")),
            "{ip} missing: {out}"
        );
    }
    for id in servers.iter().chain([&client]) {
        env.rt.remove_container(id).await.unwrap();
        assert_no_network_left(&env, id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_networks_are_isolated_from_each_other() {
    let env = TestEnv::with_network(test_network(5));
    env.net().create_network("t5a", None).unwrap();
    env.net().create_network("t5b", None).unwrap();
    let on = |net: &str, name: &str, script: &str| {
        let mut s = sh(name, script);
        s.network_mode = NetworkMode::BridgeNamed(net.into());
        s
    };
    let server = unique_id("srv");
    run(
        &env,
        &server,
        &on(
            "t5a",
            "srv",
            "while :; do echo hi-from-a | nc -l -p 8080; done",
        ),
    )
    .await;
    let ip = env.rt.get_container_ip(&server).await.unwrap().unwrap();

    // Same network: by address and by name.
    let peer = unique_id("peer");
    let script = format!(
        "n=0; until nc {ip} 8080; do n=$((n+1)); [ $n -gt 100 ] && exit 1; sleep 0.1; done; \
         sleep 0.2; n=0; until nc srv 8080; do n=$((n+1)); [ $n -gt 100 ] && exit 1; sleep 0.1; done"
    );
    run(&env, &peer, &on("t5a", "peer", &script)).await;
    assert_eq!(env.rt.wait_container(&peer).await.unwrap(), 0);
    assert_eq!(
        stdout_lines(&env.rt, &peer).await,
        vec!["hi-from-a", "hi-from-a"]
    );

    // Other network: the address is unreachable, the name unknown.
    let other = unique_id("other");
    let script = format!("nc -w 2 {ip} 8080 && echo reached; exit 0");
    run(&env, &other, &on("t5b", "other", &script)).await;
    assert_eq!(env.rt.wait_container(&other).await.unwrap(), 0);
    assert!(
        stdout_lines(&env.rt, &other).await.is_empty(),
        "a container of t5b reached t5a"
    );
    // In use: cannot be removed.
    assert!(env.net().remove_network("t5a").is_err());
    for id in [&server, &peer, &other] {
        env.rt.remove_container(id).await.unwrap();
        assert_no_network_left(&env, id).await;
    }
    env.net().remove_network("t5a").unwrap();
    env.net().remove_network("t5b").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_remove_cycles_leave_no_veth_rule_or_lease() {
    const CYCLES: usize = 200;
    let env = TestEnv::with_network(test_network(6));
    let mut plain = sh("cycle", "true");
    plain.command.entrypoint = Some(vec!["true".into()]);
    let mut published = plain.clone();
    published.port_mappings = vec![map(Some("127.0.0.1"), None, 80, Protocol::Tcp)];
    let t = Instant::now();
    let mut ids = Vec::new();
    for i in 0..CYCLES {
        let id = unique_id("cycle");
        // Every 4th publishes a (random) port: its nft table must go too.
        let spec = if i % 4 == 0 { &published } else { &plain };
        run(&env, &id, spec).await;
        assert_eq!(env.rt.wait_container(&id).await.unwrap(), 0);
        env.rt.remove_container(&id).await.unwrap();
        ids.push(id);
    }
    let took = t.elapsed();
    eprintln!(
        "{CYCLES} bridge create/start/wait/remove cycles: {:.2} s ({:.1} ms each)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / CYCLES as f64
    );
    let st = state::read_unlocked(&env.root.path().join("network")).unwrap();
    assert!(st.leases.is_empty(), "leases left: {:?}", st.leases.keys());
    let bridge = "zlc6";
    let clean = eventually(Duration::from_secs(5), || bridge_ports(bridge).is_empty()).await;
    assert!(clean, "veths left on {bridge}: {:?}", bridge_ports(bridge));
    let tables = nft_tables();
    for id in &ids {
        for salt in 0..2 {
            let veth = env
                .net
                .as_ref()
                .unwrap()
                .mgr
                .veth_name(&id.to_string(), salt);
            assert!(
                !tables.contains(&names::container_table(&veth)),
                "port table of {id} left"
            );
        }
    }
}
