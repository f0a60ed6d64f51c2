//! `zlayer network create|ls|rm`, `run --network`, `-p` with `zlayer port`,
//! and a deployment whose services talk by name, through the real `zlayer`
//! binary (embedded, no daemon) on a temp root.
//!
//! Needs `zlayer-shim` and `zlayer-dns` next to `zlayer` (`cargo build
//! --workspace --bins`). Uses its own bridge `zlc8` on 10.219.8.0/24 (user
//! networks from 10.219.116.0/23); DNS upstreams are never asked (every
//! name looked up is zlayer's), so traffic stays on this host.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod support;
use support::*;

/// A data root with the builtin busybox, a bridge of its own; on drop every
/// container is removed, then the networks and the bridge.
struct Env {
    root: tempfile::TempDir,
    bridge: &'static str,
}

impl Env {
    fn new(n: u8) -> Env {
        for bin in ["zlayer-shim", "zlayer-dns"] {
            let p = zlayer_bin().with_file_name(bin);
            assert!(
                p.exists(),
                "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
                p.display()
            );
        }
        let bridge: &'static str = Box::leak(format!("zlc{n}").into_boxed_str());
        let env = Env {
            root: tempfile::Builder::new().prefix("zl-net").tempdir().unwrap(),
            bridge,
        };
        ok(&env.zl(&["image", "builtin"]));
        env
    }

    fn zl(&self, args: &[&str]) -> Output {
        let n = &self.bridge[3..];
        Command::new(zlayer_bin())
            .arg("--root")
            .arg(self.root.path())
            .arg("--embedded")
            .args(args)
            .env("ZLAYER_NET_BRIDGE", self.bridge)
            .env("ZLAYER_NET_SUBNET", format!("10.219.{n}.0/24"))
            .env("ZLAYER_NET_PREFIX", format!("{}n", self.bridge))
            .env(
                "ZLAYER_NET_POOL",
                format!("10.219.{}.0/23", 100 + 2 * n.parse::<u32>().unwrap()),
            )
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ps = self.zl(&["ps", "-a", "-q"]);
        for id in text(&ps.stdout).split_whitespace() {
            let _ = self.zl(&["rm", "-f", id]);
        }
        let ls = self.zl(&["network", "ls", "--format", "json"]);
        if let Ok(serde_json::Value::Array(nets)) = serde_json::from_slice(&ls.stdout) {
            for n in nets {
                let name = n["name"].as_str().unwrap_or_default();
                if name != "bridge" {
                    let _ = self.zl(&["network", "rm", name]);
                }
            }
        }
        // The default network's table and bridge, and DNS responders.
        let dir = self.root.path().join("network");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("dns-") && name.ends_with(".pid") {
                    if let Ok(pid) = std::fs::read_to_string(e.path()) {
                        let _ = Command::new("kill").args(["-9", pid.trim()]).status();
                    }
                }
            }
        }
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &format!("zln_{}", self.bridge)])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", self.bridge])
            .stderr(Stdio::null())
            .status();
    }
}

fn http_get(port: u16) -> std::io::Result<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

const HTTPD: &str =
    "mkdir -p /www && echo served-by-zlayer > /www/index.html && exec httpd -f -p 80 -h /www";

#[test]
fn network_commands_run_network_and_port() {
    let env = Env::new(8);
    // create / ls / rm
    assert_eq!(ok(&env.zl(&["network", "create", "t8a"])).trim(), "t8a");
    ok(&env.zl(&["network", "create", "--subnet", "10.219.117.0/24", "t8b"]));
    let dup = env.zl(&["network", "create", "t8a"]);
    assert!(
        !dup.status.success() && text(&dup.stderr).contains("already exists"),
        "{}",
        text(&dup.stderr)
    );
    let bad = env.zl(&["network", "create", "--subnet", "10.219.300.0/24", "t8c"]);
    assert!(
        !bad.status.success() && text(&bad.stderr).contains("--subnet"),
        "{}",
        text(&bad.stderr)
    );
    let table = ok(&env.zl(&["network", "ls"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{table}");
    assert!(lines[1].starts_with("bridge"), "default first: {table}");
    assert!(
        table.contains("t8b") && table.contains("10.219.117.0/24"),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&env.zl(&["network", "ls", "--format", "json"]))).unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["bridge", "t8a", "t8b"]);

    // -p with a fixed and a random host port; `zlayer port` reports both.
    let fixed = TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fixed_arg = format!("127.0.0.1:{fixed}:80");
    ok(&env.zl(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "t8a",
        "-p",
        &fixed_arg,
        "-p",
        "80",
        IMAGE,
        "sh",
        "-c",
        HTTPD,
    ]));
    let port_out = ok(&env.zl(&["port", "web"]));
    let mut hosts = Vec::new();
    for line in port_out.lines() {
        let (cport, host) = line.split_once(" -> ").expect(line);
        assert_eq!(cport, "80/tcp", "{port_out}");
        let (ip, p) = host.rsplit_once(':').unwrap();
        hosts.push((ip.to_string(), p.parse::<u16>().unwrap()));
    }
    assert_eq!(hosts.len(), 2, "{port_out}");
    assert_eq!(hosts[0], ("127.0.0.1".to_string(), fixed), "{port_out}");
    assert_eq!(hosts[1].0, "0.0.0.0", "{port_out}");
    for (_, p) in &hosts {
        let mut page = String::new();
        let served = eventually(Duration::from_secs(10), || {
            page = http_get(*p).unwrap_or_default();
            page.contains("served-by-zlayer")
        });
        assert!(served, "127.0.0.1:{p}: {page}");
    }
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&env.zl(&["inspect", "web"]))).unwrap();
    let ip = inspect[0]["ip"].as_str().expect("inspect shows the IP");
    assert!(ip.starts_with("10.219.116."), "{ip}");

    // Another container of t8a reaches web by name; one of t8b cannot.
    // (busybox's static wget crashes resolving names; nc does not.)
    let fetch = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc web 80 && echo fetched";
    let same = ok(&env.zl(&["run", "--rm", "--network", "t8a", IMAGE, "sh", "-c", fetch]));
    assert!(same.contains("served-by-zlayer"), "{same}");
    let other_fetch =
        format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} 80 && echo fetched; true");
    let other = ok(&env.zl(&[
        "run",
        "--rm",
        "--network",
        "t8b",
        IMAGE,
        "sh",
        "-c",
        &other_fetch,
    ]));
    assert!(!other.contains("fetched"), "t8b reached t8a: {other}");

    // In use: not removable; after rm, gone.
    assert!(!env.zl(&["network", "rm", "t8a"]).status.success());
    ok(&env.zl(&["rm", "-f", "web"]));
    assert!(http_get(fixed).is_err(), "still published after rm");
    ok(&env.zl(&["network", "rm", "t8a", "t8b"]));
    let missing = env.zl(&["run", "--rm", "--network", "t8a", IMAGE, "true"]);
    assert!(
        text(&missing.stderr).contains("zlayer network create t8a"),
        "{}",
        text(&missing.stderr)
    );

    // --network none: only lo.
    let none = ok(&env.zl(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    ]));
    assert_eq!(none.trim(), "lo");
}

#[test]
fn deployment_services_talk_by_name() {
    let env = Env::new(9);
    let spec = format!(
        r#"version: v1
deployment: t9
services:
  web:
    image: {{ name: "{IMAGE}" }}
    command: {{ entrypoint: ["sh", "-c", "trap 'exit 0' TERM; while true; do echo pong-$(hostname) | nc -l -p 8080; done"] }}
    scale: {{ mode: fixed, replicas: 2 }}
  client:
    image: {{ name: "{IMAGE}" }}
    command: {{ entrypoint: ["sh", "-c", "nslookup web; n=0; until nc web 8080; do n=$((n+1)); [ $n -gt 100 ] && exit 1; sleep 0.1; done; trap 'exit 0' TERM; while true; do sleep 0.1; done"] }}
    depends: [ {{ service: web, condition: started, timeout: 10s }} ]
"#
    );
    let file = env.root.path().join("t9.yaml");
    std::fs::write(&file, spec).unwrap();
    let out = ok(&env.zl(&["deploy", "-f", file.to_str().unwrap()]));
    assert!(out.contains("3 created"), "{out}");
    let mut logs = String::new();
    let talked = eventually(Duration::from_secs(20), || {
        logs = text(&env.zl(&["logs", "t9-client-1"]).stdout);
        logs.contains("pong-")
    });
    assert!(talked, "client never reached web by name: {logs}");
    // Both replicas answer the service name.
    for replica in ["t9-web-1", "t9-web-2"] {
        let v: serde_json::Value =
            serde_json::from_str(&ok(&env.zl(&["inspect", replica]))).unwrap();
        let ip = v[0]["ip"].as_str().expect("replica IP");
        assert!(logs.contains(&format!("Address: {ip}")), "{ip}: {logs}");
    }
    ok(&env.zl(&["down", "t9"]));
    let st: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.root.path().join("network/networks.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        st["leases"],
        serde_json::json!({}),
        "leases left after down"
    );
}
