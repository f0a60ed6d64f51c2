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

mod support;
use support::*;

const DOCKER: &str = "/usr/local/bin/docker";

struct Env {
    root: tempfile::TempDir,
    sock: PathBuf,
    dsock: PathBuf,
    dconf: tempfile::TempDir,
    daemon: Option<Child>,
    /// Extra environment of every zlayer process (the VM kernel bundle).
    vars: Vec<(&'static str, PathBuf)>,
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
            vars: Vec::new(),
        };
        ok(&env.zl(&["image", "builtin"]));
        env
    }

    /// [`Env::new`] with the VM kernel bundle (built once per target dir).
    fn with_vm() -> Env {
        let mut env = Env::new();
        env.vars = zlayer_testkit::kernel::env();
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
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
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
        // Connect, not just look: a daemon killed earlier left its socket
        // files behind.
        let answers = |p: &std::path::Path| std::os::unix::net::UnixStream::connect(p).is_ok();
        assert!(
            eventually(Duration::from_secs(20), || answers(&self.sock)
                && answers(&self.dsock)),
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
        remove_bridges_of(self.root.path());
    }
}

/// Runs `command` on a pseudo-terminal (`script`): each time the output
/// shows the first string of a step, types its second. Returns everything
/// the terminal showed and the command's exit status.
fn drive_terminal(
    command: &str,
    steps: &[(&str, &str)],
    envs: &[(&str, String)],
) -> (String, std::process::ExitStatus) {
    use std::io::{Read, Write};
    let mut child = Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for (wait_for, then_type) in steps {
        // Count from the end of what was seen: a later step's marker must
        // come after the previous input.
        let from = seen.len();
        while !seen[from..].contains(wait_for) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => {
                    let _ = child.kill();
                    panic!("no {wait_for:?} on the terminal; it showed:\n{seen}");
                }
            }
        }
        stdin.write_all(then_type.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the command did not end; the terminal showed:\n{seen}");
        }
        while let Ok(chunk) = rx.try_recv() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    while let Ok(chunk) = rx.recv_timeout(Duration::from_millis(200)) {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    (seen, status)
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

    // `docker run -it` on a pseudo-terminal (script): the shell's prompt,
    // typed commands echoed, the window size passed on, the exit code.
    let (out, status) = drive_terminal(
        &format!("stty rows 33 cols 99; {DOCKER} run -it --rm {IMAGE} sh"),
        &[
            ("/ # ", "echo hi-$((40+2))\r"),
            ("hi-42", "stty size\r"),
            ("33 99", "exit 7\r"),
        ],
        &[
            ("DOCKER_HOST", format!("unix://{}", env.dsock.display())),
            ("DOCKER_CONFIG", env.dconf.path().display().to_string()),
        ],
    );
    assert_eq!(status.code(), Some(7), "{out}");
    assert_eq!(ok(&env.docker(&["ps", "-aq"])), "", "--rm removed it");
    // The same with `zlayer run -it` (its terminal in raw mode: the shell's
    // line editing answers the keys).
    let (out, status) = drive_terminal(
        &format!(
            "stty rows 20 cols 70; {} --root {} --socket {} run -it --rm {IMAGE} sh",
            zlayer_bin().display(),
            env.root.path().display(),
            env.sock.display()
        ),
        &[("/ # ", "stty size\r"), ("20 70", "exit 3\r")],
        &[],
    );
    assert_eq!(status.code(), Some(3), "{out}");

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

/// GETs `/` from 127.0.0.1:`port` (HTTP/1.0); the whole answer.
fn http_get(port: u16) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A VM started by the CLI alone keeps serving its published port through
/// a daemon that starts, is SIGKILLed and restarts; the restarted daemon
/// drives it (logs, exec, stop) and its exit code outlives another kill.
#[test]
fn vm_ports_outlive_the_daemon() {
    let mut env = Env::with_vm();
    ok(&env.zl(&[
        "run",
        "-d",
        "--isolation",
        "vm",
        "--name",
        "web",
        "-p",
        "127.0.0.1::80",
        IMAGE,
        "sh",
        "-c",
        "echo serving; exec httpd -f -p 80 -h /var/www",
    ]));
    let port_line = ok(&env.zl(&["port", "web"]));
    let port: u16 = port_line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no host port in {port_line:?}"));
    let serves = || http_get(port).contains("200 OK");
    assert!(
        eventually(Duration::from_secs(60), serves),
        "the VM's port {port} does not serve"
    );

    env.start_daemon();
    assert_eq!(env.inspect("web", "{{.State.Status}}"), "running");
    env.signal_daemon("KILL");
    assert!(serves(), "the port died with the daemon");

    env.start_daemon();
    assert!(serves());
    assert_eq!(ok(&env.docker(&["logs", "web"])), "serving\n");
    assert_eq!(
        ok(&env.docker(&["exec", "web", "sh", "-c", "echo inside $((6*7))"])),
        "inside 42\n"
    );
    ok(&env.docker(&["stop", "-t", "1", "web"]));
    let status = env.inspect("web", "{{.State.Status}} {{.State.ExitCode}}");
    assert!(status.starts_with("exited "), "{status}");
    assert!(!serves(), "a stopped VM's port is released");
    env.signal_daemon("KILL");
    env.start_daemon();
    assert_eq!(
        env.inspect("web", "{{.State.Status}} {{.State.ExitCode}}"),
        status,
        "the exit code survived the daemon"
    );
    ok(&env.docker(&["rm", "web"]));
    let needle = env.root.path().to_string_lossy().into_owned();
    assert!(
        eventually(Duration::from_secs(5), || {
            zlayer_testkit::leaks::pids_with_cmdline(&["qemu", &needle]).is_empty()
        }),
        "QEMU left after rm"
    );
}

/// `zlayer inspect NAME` as JSON (the first and only element).
fn zl_inspect(env: &Env, name: &str) -> serde_json::Value {
    let o = ok(&env.zl(&["--format", "json", "inspect", name]));
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    v[0].clone()
}

/// Whether a `zlayer supervise` process runs for container id `id`.
fn supervisor_runs(id: &str) -> bool {
    let out = Command::new("pgrep")
        .args(["-f", &format!("supervise {id}")])
        .output()
        .unwrap();
    out.status.success()
}

#[test]
fn restart_policies_without_a_daemon() {
    let mut env = Env::new();
    // No daemon: a per-container supervisor process applies the policy,
    // after the CLI that started the container has exited.
    ok(&env.zl(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        IMAGE,
        "sh",
        "-c",
        "echo try; exit 3",
    ]));
    let id = zl_inspect(&env, "flaky")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        eventually(Duration::from_secs(30), || {
            let v = zl_inspect(&env, "flaky");
            v["restart_count"] == 2 && v["state"]["status"] == "exited"
        }),
        "{}",
        zl_inspect(&env, "flaky")
    );
    assert_eq!(zl_inspect(&env, "flaky")["exit_code"], 3);
    let logs = ok(&env.zl(&["logs", "flaky"]));
    assert_eq!(logs.lines().filter(|l| *l == "try").count(), 3, "{logs}");
    assert!(
        eventually(Duration::from_secs(10), || !supervisor_runs(&id)),
        "the supervisor exits once the policy gave up"
    );

    // `always`, then a user stop: it stays stopped and its supervisor ends.
    ok(&env.zl(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        IMAGE,
        "sh",
        "-c",
        "echo up; sleep 0.3",
    ]));
    let id = zl_inspect(&env, "loop")["id"].as_str().unwrap().to_string();
    assert!(
        eventually(Duration::from_secs(30), || zl_inspect(&env, "loop")
            ["restart_count"]
            .as_u64()
            .is_some_and(|n| n >= 2)),
        "{}",
        zl_inspect(&env, "loop")
    );
    assert!(supervisor_runs(&id));

    // A daemon takes the supervision over: the per-container supervisor
    // steps aside and the daemon keeps restarting it.
    env.start_daemon();
    assert!(
        eventually(Duration::from_secs(15), || !supervisor_runs(&id)),
        "the supervisor steps aside for the daemon"
    );
    let before = zl_inspect(&env, "loop")["restart_count"].as_u64().unwrap();
    assert!(
        eventually(Duration::from_secs(30), || zl_inspect(&env, "loop")
            ["restart_count"]
            .as_u64()
            .is_some_and(|n| n >= before + 2)),
        "the daemon restarts it: {}\n{}",
        zl_inspect(&env, "loop"),
        env.daemon_log()
    );
    ok(&env.zl(&["stop", "loop"]));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(zl_inspect(&env, "loop")["state"]["status"], "exited");
    ok(&env.zl(&["rm", "loop", "flaky"]));
}
