//! Published ports: busybox httpd in the guest, reached on host loopback.

mod vm_support;

use std::io::{Read, Write};
use std::time::Duration;
use vm_support::{no_qemu_left, Env};
use zlayer_runtime::{ContainerId, Runtime};
use zlayer_spec::{PortMapping, Protocol};
use zlayer_vm::Accel;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_port_reaches_busybox_httpd_in_the_guest() {
    let env = Env::new(Accel::Tcg);
    let rt = &env.rt;
    let id = ContainerId::new("web", 1);
    let host_port = free_port();
    let mut spec = env.spec(
        "web",
        &["sh", "-c", "mkdir -p /www && echo served-from-vm > /www/index.html && exec httpd -f -p 8080 -h /www"],
    );
    spec.port_mappings = vec![PortMapping {
        host_port: Some(host_port),
        container_port: 8080,
        protocol: Protocol::Tcp,
        host_ip: Some("127.0.0.1".into()),
    }];
    rt.create_from_spec(&id, &spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let maps = rt.port_mappings_container(&id).await.unwrap();
    assert_eq!(maps.len(), 1);
    assert_eq!(
        (
            maps[0].host_ip.as_str(),
            maps[0].host_port,
            maps[0].container_port
        ),
        ("127.0.0.1", host_port, 8080)
    );
    let mut body = None;
    for _ in 0..100 {
        if let Some(resp) = tokio::task::spawn_blocking(move || get(host_port))
            .await
            .unwrap()
        {
            if resp.contains("served-from-vm") {
                body = Some(resp);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let body = body.expect("127.0.0.1 never served the guest's page");
    assert!(
        body.starts_with("HTTP/1.") && body.contains("200"),
        "{body}"
    );
    // Several connections in parallel.
    let handles: Vec<_> = (0..4)
        .map(|_| tokio::task::spawn_blocking(move || get(host_port)))
        .collect();
    for h in handles {
        assert!(h
            .await
            .unwrap()
            .unwrap_or_default()
            .contains("served-from-vm"));
    }
    rt.remove_container(&id).await.unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", host_port)).is_err(),
        "listener left behind"
    );
    assert!(no_qemu_left(env.dir.path()));
}

#[tokio::test]
async fn udp_mappings_are_refused_at_create() {
    let env = Env::new(Accel::Tcg);
    let mut spec = env.spec("udp", &["true"]);
    spec.port_mappings = vec![PortMapping {
        host_port: Some(5353),
        container_port: 53,
        protocol: Protocol::Udp,
        host_ip: None,
    }];
    let err = env
        .rt
        .create_from_spec(&ContainerId::new("udp", 1), &spec)
        .await
        .unwrap_err();
    assert!(
        matches!(err, zlayer_runtime::RuntimeError::Unsupported { .. }),
        "{err}"
    );
    assert!(!env
        .rt
        .state_dir(&ContainerId::new("udp", 1))
        .unwrap()
        .dir
        .exists());
}
