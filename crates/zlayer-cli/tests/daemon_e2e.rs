//! End to end: the real `zlayer` binary as a daemon on a temp root and temp
//! sockets, with the container runtime, driven by the stock `docker` CLI
//! and by `zlayer` itself (deploy, down, routing through the daemon), and
//! killed with SIGKILL and restarted.
//!
//! Needs the workspace binaries next to `zlayer` (`zlayer-shim`), as
//! `cargo test --workspace` builds them; and the docker CLI at
//! /usr/local/bin/docker.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "localhost/zlayer/busybox:latest";
const DOCKER: &str = "/usr/local/bin/docker";

fn zlayer_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zlayer"))
}

struct Env {
    root: tempfile::TempDir,
    sock: PathBuf,
    dsock: PathBuf,
    dconf: tempfile::TempDir,
    daemon: Option<Child>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

impl Env {
    fn new() -> Env {
        let shim = zlayer_bin().with_file_name("zlayer-shim");
        assert!(
            shim.exists(),
            "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
            shim.display()
        );
        let root = tempfile::Builder::new().prefix("zl-e2e").tempdir().unwrap();
        let env = Env {
            sock: root.path().join("run/zlayer.sock"),
            dsock: root.path().join("run/docker.sock"),
            root,
            dconf: tempfile::tempdir().unwrap(),
            daemon: None,
        };
        ok(&env.zl(&["image", "builtin"]));
        env
    }

    fn zl_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(zlayer_bin());
        c.arg("--root")
            .arg(self.root.path())
            .arg("--socket")
            .arg(&self.sock)
            .args(args)
            .env_remove("ZLAYER_EMBEDDED")
            .stdin(Stdio::null());
        c
    }

    fn zl(&self, args: &[&str]) -> Output {
        self.zl_cmd(args).output().unwrap()
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.dsock.display()))
            .env("DOCKER_CONFIG", self.dconf.path())
            .env("DOCKER_CLI_HINTS", "false")
            .stdin(Stdio::null())
            .output()
            .expect("docker CLI")
    }

    fn start_daemon(&mut self) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.root.path().join("daemon.log"))
            .unwrap();
        let child = self
            .zl_cmd(&[
                "daemon",
                "--docker-socket",
                self.dsock.to_str().unwrap(),
                "--log-level",
                "info",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        assert!(
            eventually(Duration::from_secs(20), || self.sock.exists()
                && self.dsock.exists()),
            "the daemon did not open its sockets; log:\n{}",
            self.daemon_log()
        );
    }

    fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("daemon.log")).unwrap_or_default()
    }

    fn signal_daemon(&mut self, sig: &str) {
        let mut child = self.daemon.take().expect("a daemon runs");
        Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "daemon did not exit on {sig}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        ok(&self.docker(&["inspect", "-f", format, name]))
            .trim()
            .to_string()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let ids = self.zl(&["--embedded", "ps", "-aq"]);
        for id in text(&ids.stdout).split_whitespace() {
            let _ = self.zl(&["--embedded", "rm", "-f", id]);
        }
    }
}

fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A busybox loop that exits 0 on SIGTERM (a plain `sleep` as PID 1 ignores it).
const SERVE: &str = "trap 'exit 0' TERM; while true; do sleep 0.1; done";

#[test]
fn docker_cli_runs_real_containers() {
    let mut env = Env::new();
    env.start_daemon();

    assert_eq!(
        ok(&env.docker(&["run", "--rm", IMAGE, "echo", "hi"])),
        "hi\n"
    );
    assert_eq!(ok(&env.docker(&["ps", "-aq"])), "", "--rm removed it");

    let o = env.docker(&[
        "run",
        "--name",
        "three",
        IMAGE,
        "sh",
        "-c",
        "echo out; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "out\n");
    assert_eq!(
        env.inspect("three", "{{.State.ExitCode}} {{.State.Status}}"),
        "3 exited"
    );

    let id = ok(&env.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        IMAGE,
        "sh",
        "-c",
        &format!("echo started; {SERVE}"),
    ]));
    assert_eq!(id.trim().len(), 64);
    let ps = ok(&env.docker(&["ps", "--format", "{{.Names}}|{{.Status}}|{{.Image}}"]));
    assert!(
        ps.lines()
            .any(|l| l.starts_with("web|Up") && l.ends_with(IMAGE)),
        "{ps}"
    );
    assert!(eventually(Duration::from_secs(5), || text(
        &env.docker(&["logs", "web"]).stdout
    ) == "started\n"));
    assert_eq!(
        ok(&env.docker(&["exec", "web", "sh", "-c", "echo inside $((2+3))"])),
        "inside 5\n"
    );
    assert_eq!(
        env.docker(&["exec", "web", "sh", "-c", "exit 5"])
            .status
            .code(),
        Some(5)
    );
    ok(&env.docker(&["stop", "web"]));
    assert_eq!(
        env.inspect("web", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    ok(&env.docker(&["rm", "web"]));

    ok(&env.docker(&[
        "run",
        "-d",
        "--name",
        "tick",
        IMAGE,
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.2; done",
    ]));
    assert_eq!(ok(&env.docker(&["logs", "-f", "tick"])), "1\n2\n3\n");
    assert_eq!(ok(&env.docker(&["wait", "tick"])).trim(), "0");
    ok(&env.docker(&["rm", "tick", "three"]));

    let images = ok(&env.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(images.lines().any(|l| l == IMAGE), "{images}");

    // No runtime has a pty mode yet: -t is refused, clearly, not faked.
    let o = Command::new("script")
        .args([
            "-qec",
            &format!("{DOCKER} run -it --rm {IMAGE} sh"),
            "/dev/null",
        ])
        .env("DOCKER_HOST", format!("unix://{}", env.dsock.display()))
        .env("DOCKER_CONFIG", env.dconf.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let all = text(&o.stdout) + &text(&o.stderr);
    assert!(all.contains("terminal (-t) is not supported"), "{all}");

    // `zlayer run/stop/rm` go through the daemon when it runs.
    let o = env
        .zl_cmd(&["run", "-d", "--name", "viacli", IMAGE, "sh", "-c", SERVE])
        .env("ZLAYER_LOG", "zlayer=debug")
        .output()
        .unwrap();
    ok(&o);
    assert!(
        text(&o.stderr).contains("using the zlayer daemon"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(env.inspect("viacli", "{{.State.Status}}"), "running");
    ok(&env.zl(&["stop", "viacli"]));
    assert_eq!(
        env.inspect("viacli", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0"
    );
    ok(&env.zl(&["rm", "viacli"]));
    assert_eq!(
        ok(&env.zl(&["run", "--rm", IMAGE, "echo", "from zlayer"])),
        "from zlayer\n"
    );

    env.signal_daemon("TERM");
    assert!(
        !env.sock.exists() && !env.dsock.exists(),
        "sockets removed on shutdown"
    );
}

#[test]
fn deploy_reapply_and_down() {
    let mut env = Env::new();
    env.start_daemon();
    let spec = |web_mode: &str, api_replicas: u32| {
        format!(
            r#"version: v1
deployment: shop
services:
  web:
    image: {{ name: "{IMAGE}" }}
    command: {{ entrypoint: ["sh", "-c", "{SERVE}"] }}
    env: {{ MODE: {web_mode} }}
    depends: [ {{ service: api, condition: started, timeout: 10s }} ]
  api:
    image: {{ name: "{IMAGE}" }}
    command: {{ entrypoint: ["sh", "-c", "{SERVE}"] }}
    scale: {{ mode: fixed, replicas: {api_replicas} }}
    depends: [ {{ service: db, condition: healthy, timeout: 20s }} ]
  db:
    image: {{ name: "{IMAGE}" }}
    command: {{ entrypoint: ["sh", "-c", "sleep 0.5; touch /tmp/ready; {SERVE}"] }}
    health: {{ interval: 200ms, retries: 3, check: {{ type: command, command: "test -f /tmp/ready" }} }}
"#
        )
    };
    let file = env.root.path().join("shop.yaml");
    std::fs::write(&file, spec("prod", 2)).unwrap();
    let f = file.to_str().unwrap();
    let o = ok(&env.zl(&["deploy", "-f", f]));
    assert!(o.contains("4 created"), "{o}");
    let ids = |env: &Env| -> Vec<(String, String)> {
        let o = ok(&env.zl(&["ps", "--deployment", "shop", "--format", "json"]));
        let v: serde_json::Value = serde_json::from_str(&o).unwrap();
        let mut out: Vec<(String, String)> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let first = ids(&env);
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["shop-api-1", "shop-api-2", "shop-db-1", "shop-web-1"]
    );
    // The dependency was healthy before api started: its status is on disk.
    assert!(eventually(Duration::from_secs(5), || env
        .inspect("shop-db-1", "{{.State.Health.Status}}")
        == "healthy"));
    assert!(eventually(Duration::from_secs(5), || {
        let ps = ok(&env.zl(&["ps", "--deployment", "shop"]));
        ps.lines()
            .any(|l| l.contains("running (healthy)") && l.ends_with("shop-db-1"))
    }));
    // Started by the deployment: the api replicas began after db was healthy.
    let o = ok(&env.zl(&["deploy", "-f", f]));
    assert!(o.contains("nothing to change"), "{o}");
    assert_eq!(ids(&env), first);

    std::fs::write(&file, spec("dev", 3)).unwrap();
    let o = ok(&env.zl(&["deploy", "-f", f]));
    assert!(
        o.contains("replaced shop-web-1") && o.contains("created shop-api-3"),
        "{o}"
    );
    assert!(o.contains("1 created, 1 replaced"), "{o}");
    let second = ids(&env);
    for (name, id) in &first {
        let now = second.iter().find(|(n, _)| n == name).map(|(_, i)| i);
        if name == "shop-web-1" {
            assert_ne!(now, Some(id), "web was replaced");
        } else {
            assert_eq!(now, Some(id), "{name} was kept");
        }
    }
    let o = ok(&env.zl(&["down", "shop"]));
    assert_eq!(
        o.lines().filter(|l| l.starts_with("removed ")).count(),
        5,
        "{o}"
    );
    assert_eq!(ok(&env.zl(&["ps", "-a", "-q"])), "");
    // The daemon did the work (the CLI handed it over).
    let log = env.daemon_log();
    assert!(
        log.contains("created shop-db-1") && log.contains("replaced shop-web-1"),
        "{log}"
    );

    // Without a daemon the same works embedded.
    env.signal_daemon("TERM");
    std::fs::write(&file, spec("prod", 1)).unwrap();
    let o = ok(&env.zl(&["deploy", "-f", f]));
    assert!(o.contains("3 created"), "{o}");
    let o = ok(&env.zl(&["down", "shop"]));
    assert_eq!(
        o.lines().filter(|l| l.starts_with("removed ")).count(),
        3,
        "{o}"
    );
}

#[test]
fn daemon_survives_sigkill_and_resumes_supervision() {
    let mut env = Env::new();
    env.start_daemon();
    ok(&env.docker(&[
        "run",
        "-d",
        "--name",
        "keep",
        IMAGE,
        "sh",
        "-c",
        &format!("echo one; {SERVE}"),
    ]));
    assert_eq!(
        env.docker(&[
            "run",
            "--name",
            "done3",
            IMAGE,
            "sh",
            "-c",
            "echo bye; exit 3"
        ])
        .status
        .code(),
        Some(3)
    );
    ok(&env.docker(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:3",
        IMAGE,
        "sh",
        "-c",
        "echo try; sleep 0.3; exit 1",
    ]));
    ok(&env.docker(&[
        "run",
        "-d",
        "--name",
        "unless",
        "--restart",
        "unless-stopped",
        IMAGE,
        "sh",
        "-c",
        SERVE,
    ]));
    ok(&env.docker(&["stop", "unless"]));
    assert!(
        eventually(Duration::from_secs(20), || env
            .inspect("flaky", "{{.RestartCount}}")
            != "0"),
        "the restart policy restarted flaky; log:\n{}",
        env.daemon_log()
    );

    env.signal_daemon("KILL");
    // The containers do not depend on the daemon.
    let ps = ok(&env.zl(&["--embedded", "ps", "--format", "json"]));
    assert!(ps.contains("\"keep\""), "{ps}");

    env.start_daemon();
    assert_eq!(env.inspect("keep", "{{.State.Status}}"), "running");
    assert_eq!(ok(&env.docker(&["logs", "keep"])), "one\n");
    assert_eq!(
        env.inspect("done3", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 3"
    );
    assert_eq!(ok(&env.docker(&["logs", "done3"])), "bye\n");
    // on-failure:3 resumes where it was and gives up after 3 restarts.
    assert!(
        eventually(Duration::from_secs(30), || env
            .inspect("flaky", "{{.RestartCount}} {{.State.Status}}")
            == "3 exited"),
        "flaky: {}; log:\n{}",
        env.inspect("flaky", "{{.RestartCount}} {{.State.Status}}"),
        env.daemon_log()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        env.inspect("flaky", "{{.RestartCount}} {{.State.ExitCode}}"),
        "3 1"
    );
    // A user stop holds across the daemon restart for unless-stopped.
    assert_eq!(env.inspect("unless", "{{.State.Status}}"), "exited");
    // The restarted daemon supervises again: --rm is honoured.
    assert_eq!(
        ok(&env.docker(&["run", "--rm", IMAGE, "echo", "again"])),
        "again\n"
    );
    env.signal_daemon("TERM");
    let ps = ok(&env.zl(&["--embedded", "ps", "--format", "json"]));
    assert!(
        ps.contains("\"keep\""),
        "a graceful shutdown leaves containers running: {ps}"
    );
}
