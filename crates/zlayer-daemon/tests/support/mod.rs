//! A daemon on a temp root and temp sockets, in the test process, over a
//! real node (the engine assembled by `Engine::open`); plus helpers to run
//! the real `docker` CLI at it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zlayer_daemon::{AppState, Daemon, DaemonConfig};
use zlayer_engine::{Engine, NodeConfig};
use zlayer_image::ImageStore;

/// The stock docker CLI.
pub const DOCKER: &str = "/usr/local/bin/docker";

/// A running test daemon.
pub struct TestDaemon {
    pub root: tempfile::TempDir,
    pub sock: PathBuf,
    pub docker_sock: PathBuf,
    pub state: AppState,
    docker_config: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// Loads the busybox fixture into `store` as `busybox:latest`.
pub fn load_busybox(store: &ImageStore) {
    zlayer_testkit::fixture::load_busybox(store, zlayer_testkit::fixture::BUSYBOX);
}

impl TestDaemon {
    /// Starts a daemon over a real node on a fresh root.
    pub async fn start() -> TestDaemon {
        let root = tempfile::Builder::new().prefix("zl-dmn").tempdir().unwrap();
        let engine = Arc::new(Engine::open(root.path(), NodeConfig::default()).unwrap());
        load_busybox(engine.images());
        let sock = root.path().join("run/zlayer.sock");
        let docker_sock = root.path().join("run/docker.sock");
        let daemon = Daemon::new(
            engine,
            DaemonConfig {
                socket: sock.clone(),
                docker_socket: Some(docker_sock.clone()),
                group: None,
            },
        )
        .unwrap();
        let state = daemon.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            daemon
                .serve(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        for _ in 0..200 {
            let answers = |p: &Path| std::os::unix::net::UnixStream::connect(p).is_ok();
            if answers(&docker_sock) && answers(&sock) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        TestDaemon {
            root,
            sock,
            docker_sock,
            state,
            docker_config: tempfile::tempdir().unwrap(),
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// Runs `docker ARGS` against the daemon, with `stdin` as input.
    pub async fn docker_in(&self, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
        docker_at(&self.docker_sock, self.docker_config.path(), args, stdin).await
    }

    /// Runs `docker ARGS` against the daemon.
    pub async fn docker(&self, args: &[&str]) -> std::process::Output {
        self.docker_in(args, None).await
    }

    /// Stops the daemon (graceful shutdown).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), h)
                .await
                .expect("daemon stops within 10 s")
                .unwrap();
        }
    }
}

impl Drop for TestDaemon {
    /// A test (failed or not) leaves no monitors, mounts or bridges of its
    /// root behind.
    fn drop(&mut self) {
        // Containers the test left: removed through the engine (their
        // cgroups and network go with them), on a runtime of its own.
        let engine = self.state.engine.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                for v in engine.list().await.unwrap_or_default() {
                    let _ = engine.remove(&v.record, true).await;
                }
            });
        })
        .join();
        zlayer_testkit::leaks::clean_up_root(self.root.path());
    }
}

/// Runs the docker CLI at `sock` with a private config dir.
pub async fn docker_at(
    sock: &Path,
    config: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(DOCKER);
    cmd.args(args)
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", config)
        .env("DOCKER_CLI_HINTS", "false")
        .env_remove("DOCKER_API_VERSION")
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("docker CLI at /usr/local/bin/docker");
    if let (Some(data), Some(mut si)) = (stdin, child.stdin.take()) {
        si.write_all(data).await.unwrap();
        drop(si);
    }
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("docker {args:?} did not finish within 60 s"))
        .unwrap()
}

/// stdout as text.
pub fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success, printing both streams otherwise.
pub fn ok(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "failed ({:?}): stdout={} stderr={}",
        o.status,
        out(o),
        err(o)
    );
    out(o)
}

/// One raw HTTP request to a unix socket: (status, body).
pub async fn http(sock: &Path, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    use http_body_util::{BodyExt, Full};
    let stream = tokio::net::UnixStream::connect(sock).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("Host", "docker")
        .header("Content-Type", "application/json")
        .body(Full::new(bytes::Bytes::from(
            body.unwrap_or("").to_string(),
        )))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}
