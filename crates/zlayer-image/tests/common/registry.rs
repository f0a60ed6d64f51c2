//! Test helper: a real Docker distribution registry (`/usr/bin/docker-registry`)
//! on a free loopback port, with filesystem storage in a temp directory and
//! optional htpasswd auth. The process is killed when the value is dropped.
//!
//! Include with `#[path = "common/registry.rs"] mod registry_helper;`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `docker-registry` serving plain HTTP on 127.0.0.1.
pub struct TestRegistry {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The storage root directory (survives restarts when passed to [`TestRegistry::start_on`]).
    pub storage: PathBuf,
    /// `(user, password)` when htpasswd auth is on.
    pub creds: Option<(String, String)>,
    _work: tempfile::TempDir,
    _storage_dir: Option<tempfile::TempDir>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl TestRegistry {
    /// A registry with fresh storage and no auth.
    pub fn start() -> Self {
        Self::start_inner(None, None)
    }

    /// A registry with fresh storage that requires `user`/`password` (htpasswd, bcrypt).
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        Self::start_inner(None, Some((user, password)))
    }

    /// A registry (no auth) serving the existing storage directory `storage`.
    pub fn start_on(storage: &Path) -> Self {
        Self::start_inner(Some(storage), None)
    }

    fn start_inner(storage: Option<&Path>, auth: Option<(&str, &str)>) -> Self {
        let work = tempfile::tempdir().expect("tempdir");
        let (storage, storage_dir) = match storage {
            Some(p) => (p.to_path_buf(), None),
            None => {
                let d = tempfile::tempdir().expect("tempdir");
                (d.path().to_path_buf(), Some(d))
            }
        };
        let auth_yaml = match auth {
            Some((user, password)) => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("run htpasswd (apache2-utils)");
                assert!(out.status.success(), "htpasswd failed");
                let path = work.path().join("htpasswd");
                std::fs::write(&path, &out.stdout).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: zlayer-test\n    path: {}\n",
                    path.display()
                )
            }
            None => String::new(),
        };
        // A port can be taken between probing and binding: try a few.
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {addr}\n{auth_yaml}",
                storage.display()
            );
            let cfg_path = work.path().join("config.yml");
            std::fs::write(&cfg_path, config).expect("write registry config");
            let log_path = work.path().join("registry.log");
            let log = std::fs::File::create(&log_path).expect("create registry log");
            let mut child = Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(&cfg_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .expect("start /usr/bin/docker-registry (package docker-registry)");
            if wait_ready(&addr, &mut child, &log_path) {
                return TestRegistry {
                    child: Some(child),
                    addr,
                    storage,
                    creds: auth.map(|(u, p)| (u.to_string(), p.to_string())),
                    _work: work,
                    _storage_dir: storage_dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start");
    }

    /// `ADDR/name` (e.g. `127.0.0.1:5000/app:1`).
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{}", self.addr, name)
    }

    /// Pushes `oci:LAYOUT:TAG` to `ADDR/DEST` with skopeo (`--all` keeps indexes).
    pub fn push_layout(&self, layout: &Path, tag: &str, dest: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "--insecure-policy",
            "copy",
            "--all",
            "--preserve-digests",
            "-q",
            "--dest-tls-verify=false",
        ]);
        if let Some((u, p)) = &self.creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        cmd.arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}", self.reference(dest)));
        let out = cmd.output().expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The file in the registry's storage that holds blob `digest` (`sha256:<hex>`).
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Kills the registry now (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A handle that can kill the registry process from another thread.
    pub fn killer(&self) -> Killer {
        Killer {
            pid: self.child.as_ref().map(|c| c.id()),
        }
    }

    /// Whether anything accepts connections on the registry's address.
    pub fn accepting(&self) -> bool {
        let addr: SocketAddr = self.addr.parse().expect("addr");
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    }
}

/// Kills the registry's process by id (SIGKILL); the owner reaps it later.
#[derive(Clone, Copy)]
pub struct Killer {
    pid: Option<u32>,
}

impl Killer {
    /// Sends SIGKILL to the registry process.
    pub fn kill(&self) {
        if let Some(pid) = self.pid {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `GET /v2/` until the registry answers (200 or 401) or exits.
fn wait_ready(addr: &str, child: &mut Child, log: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    let sock: SocketAddr = addr.parse().expect("addr");
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            let err = std::fs::read_to_string(log).unwrap_or_default();
            eprintln!("docker-registry exited early: {err}");
            return false;
        }
        if let Ok(mut s) = TcpStream::connect_timeout(&sock, Duration::from_millis(200)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let req = format!("GET /v2/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() {
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf) {
                    let head = String::from_utf8_lossy(&buf[..n]);
                    if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.1 401") {
                        return true;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
