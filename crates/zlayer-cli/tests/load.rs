//! The daemon under load (issue 17): the real `zlayer daemon` on a temp
//! root, started with a soft limit of 1024 open files (a login shell's),
//! driven by many stock `docker` CLIs at once:
//!
//! - 200 concurrent `docker run --rm`, each with its own output and exit
//!   code (a few run a missing command: 127, and are removed too);
//! - 100 detached `--rm` containers started concurrently, then
//!   `docker logs -f` on all of them at once while 100 concurrent
//!   `docker exec` (each its own output and exit code) and then 100
//!   concurrent `docker stop` run: every follower sees exactly its
//!   container's output and ends when the container does;
//! - afterwards `ps -a` is empty, the daemon's open fds are back where
//!   they were, and once it stops nothing is left under its root or on the
//!   host (state dirs, mounts, processes, cgroups, veths, leases:
//!   `zlayer_testkit::leaks::assert_root_clean`).
//!
//! Needs root, the workspace binaries next to `zlayer` (`zlayer-shim`) and
//! the docker CLI at /usr/local/bin/docker.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use zlayer_testkit::leaks::assert_root_clean;
use zlayer_testkit::wait::eventually;
use zlayer_testkit::TestDir;

mod support;
use support::{ok, remove_bridges_of, text, zlayer_bin, IMAGE};

const DOCKER: &str = "/usr/local/bin/docker";
/// Concurrent `docker run --rm`.
const RUNS: usize = 200;
/// Of those, every `MISSING_EVERY`th runs a command that does not exist.
const MISSING_EVERY: usize = 25;
/// Containers followed with `logs -f` and exec'd into at once.
const FOLLOWED: usize = 100;
/// How long any one phase may take (2 cores, a debug build, a busy CI).
const PHASE_LIMIT: Duration = Duration::from_secs(90);
/// How many more fds the daemon may hold after the load than before.
const FD_SLACK: usize = 16;

/// Children killed when dropped (a failed test leaves no CLI behind).
struct Procs(Vec<(usize, Child)>);

impl Procs {
    /// Waits for every child (at most `limit` in all): each one's index and
    /// output, in index order.
    fn outputs(mut self, limit: Duration) -> Vec<(usize, Output)> {
        let deadline = Instant::now() + limit;
        let mut done = Vec::new();
        while !self.0.is_empty() {
            let mut i = 0;
            while i < self.0.len() {
                if self.0[i].1.try_wait().expect("try_wait").is_some() {
                    let (n, child) = self.0.swap_remove(i);
                    done.push((n, child.wait_with_output().expect("output")));
                } else {
                    i += 1;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} commands still running after {limit:?}: {:?}",
                self.0.len(),
                self.0.iter().map(|(n, _)| n).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        done.sort_by_key(|(n, _)| *n);
        done
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A daemon on a temp root and the docker CLI pointed at it; Drop stops
/// it and removes whatever a failed test left (TestDir then unmounts and
/// kills what is left under the root).
struct Node {
    dconf: TestDir,
    daemon: Option<Child>,
    dir: TestDir,
}

impl Node {
    fn new() -> Node {
        let shim = zlayer_bin().with_file_name("zlayer-shim");
        assert!(
            shim.exists(),
            "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
            shim.display()
        );
        let mut node = Node {
            dir: TestDir::create("zlld"),
            dconf: TestDir::create("zlldc"),
            daemon: None,
        };
        ok(&node.zl(&["--embedded", "image", "builtin"]));
        node.start_daemon();
        node
    }

    fn root(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn dsock(&self) -> PathBuf {
        self.root().join("run/docker.sock")
    }

    fn zl_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(zlayer_bin());
        c.arg("--root")
            .arg(self.root())
            .arg("--socket")
            .arg(self.root().join("run/zlayer.sock"))
            .args(args)
            .env_remove("ZLAYER_EMBEDDED")
            .stdin(Stdio::null());
        c
    }

    fn zl(&self, args: &[&str]) -> Output {
        self.zl_cmd(args).output().expect("run zlayer")
    }

    /// Starts the daemon with a soft limit of 1024 open files (or the hard
    /// limit, if lower), as from a login shell: it must raise it itself.
    fn start_daemon(&mut self) {
        let soft = hard_open_files_limit().min(1024);
        let mut c = Command::new("prlimit");
        c.arg(format!("--nofile={soft}:"))
            .arg("--")
            .arg(zlayer_bin());
        c.arg("--root")
            .arg(self.root())
            .arg("--socket")
            .arg(self.root().join("run/zlayer.sock"))
            .arg("daemon")
            .arg("--docker-socket")
            .arg(self.dsock())
            .env_remove("ZLAYER_EMBEDDED")
            .stdin(Stdio::null());
        let log = std::fs::File::create(self.log_path()).expect("create the daemon's log");
        c.stdout(log.try_clone().expect("dup the log")).stderr(log);
        self.daemon = Some(c.spawn().expect("start prlimit zlayer daemon"));
        let sock = self.dsock();
        assert!(
            eventually(Duration::from_secs(30), || {
                std::os::unix::net::UnixStream::connect(&sock).is_ok()
            }),
            "the daemon did not open {}",
            sock.display()
        );
    }

    fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().expect("a daemon runs").id()
    }

    /// The daemon's output (beside the root: the leak check looks at what
    /// is under it).
    fn log_path(&self) -> PathBuf {
        self.dconf.path().join("daemon.log")
    }

    /// Stops the daemon with SIGTERM; its log.
    fn stop_daemon(&mut self) -> String {
        let Some(child) = self.daemon.take() else {
            return String::new();
        };
        let pid = child.id().to_string();
        ok(&Command::new("kill")
            .args(["-TERM", &pid])
            .output()
            .expect("kill"));
        let o = Procs(vec![(0, child)]).outputs(Duration::from_secs(30));
        assert!(
            o[0].1.status.success(),
            "the daemon ended with {:?}",
            o[0].1.status
        );
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.dsock().display()))
            .env("DOCKER_CONFIG", self.dconf.path())
            .env("DOCKER_CLI_HINTS", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args).output().expect("docker CLI")
    }

    /// Spawns `docker ARGS(i)` for every i in `range`, all at once.
    fn docker_all(
        &self,
        range: std::ops::Range<usize>,
        args: impl Fn(usize) -> Vec<String>,
    ) -> Procs {
        let mut procs = Procs(Vec::new());
        for i in range {
            let a = args(i);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            procs
                .0
                .push((i, self.docker_cmd(&a).spawn().expect("spawn docker CLI")));
        }
        procs
    }

    fn listed(&self) -> String {
        ok(&self.docker(&["ps", "-aq"]))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let ids = self.zl(&["--embedded", "ps", "-aq"]);
        for id in text(&ids.stdout).split_whitespace() {
            let _ = self.zl(&["--embedded", "rm", "-f", id]);
        }
        remove_bridges_of(self.root());
    }
}

/// This process's hard limit on open files.
fn hard_open_files_limit() -> u64 {
    limits_of("self").map(|(_, hard)| hard).unwrap_or(1024)
}

/// The soft and hard `Max open files` of process `pid` ("self" for us).
fn limits_of(pid: &str) -> Option<(u64, u64)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut nums = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(u64::MAX));
    Some((nums.next()?, nums.next()?))
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Panics listing every command that did not do what `expect` wants.
fn check_all(what: &str, outputs: &[(usize, Output)], expect: impl Fn(usize, &Output) -> bool) {
    let bad: Vec<String> = outputs
        .iter()
        .filter(|(i, o)| !expect(*i, o))
        .map(|(i, o)| {
            format!(
                "#{i}: {:?}, stdout {:?}, stderr {:?}",
                o.status.code(),
                text(&o.stdout),
                text(&o.stderr)
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: {} of {} failed:\n{}",
        bad.len(),
        outputs.len(),
        bad.join("\n")
    );
}

#[test]
fn the_daemon_under_load() {
    let mut node = Node::new();
    let pid = node.daemon_pid();
    let limits = limits_of(&pid.to_string()).expect("the daemon's limits");
    assert_eq!(
        limits.0, limits.1,
        "the daemon runs with a soft open files limit below its hard one"
    );
    // Warm up (first use of the image's snapshot), then count its fds.
    assert_eq!(
        ok(&node.docker(&["run", "--rm", IMAGE, "echo", "warm"])),
        "warm\n"
    );
    assert!(eventually(Duration::from_secs(10), || node
        .listed()
        .is_empty()));
    let fds_before = open_fds(pid);

    // 200 concurrent `docker run --rm`.
    let t = Instant::now();
    let runs = node.docker_all(0..RUNS, |i| {
        let cmd = if i % MISSING_EVERY == 0 {
            "no-such-command"
        } else {
            "echo"
        };
        ["run", "--rm", IMAGE, cmd, &format!("out-{i}")]
            .map(String::from)
            .to_vec()
    });
    let outputs = runs.outputs(PHASE_LIMIT);
    check_all("docker run --rm", &outputs, |i, o| {
        if i % MISSING_EVERY == 0 {
            o.status.code() == Some(127) && o.stdout.is_empty()
        } else {
            o.status.success() && text(&o.stdout) == format!("out-{i}\n")
        }
    });
    eprintln!("{RUNS} concurrent docker run --rm: {:?}", t.elapsed());
    assert!(
        eventually(Duration::from_secs(20), || node.listed().is_empty()),
        "left after the runs: {}",
        node.listed()
    );

    // 100 detached --rm containers that say goodbye on SIGTERM.
    let t = Instant::now();
    let detached = node.docker_all(0..FOLLOWED, |i| {
        let script = format!(
            "trap 'echo bye-{i}; exit 0' TERM; echo ready-{i}; while true; do sleep 0.1; done"
        );
        [
            "run",
            "-d",
            "--rm",
            "--name",
            &format!("f{i}"),
            IMAGE,
            "sh",
            "-c",
            &script,
        ]
        .map(String::from)
        .to_vec()
    });
    let outputs = detached.outputs(PHASE_LIMIT);
    check_all("docker run -d --rm", &outputs, |_, o| {
        o.status.success() && text(&o.stdout).trim().len() == 64
    });
    eprintln!("{FOLLOWED} concurrent docker run -d: {:?}", t.elapsed());

    // `logs -f` on all of them at once; 100 concurrent execs (their output
    // and exit codes), then 100 concurrent stops end the containers.
    let t = Instant::now();
    let followers = node.docker_all(0..FOLLOWED, |i| {
        ["logs", "-f", &format!("f{i}")].map(String::from).to_vec()
    });
    let execs = node.docker_all(0..FOLLOWED, |i| {
        let script = format!("echo exec-{i}; exit 3");
        ["exec", &format!("f{i}"), "sh", "-c", &script]
            .map(String::from)
            .to_vec()
    });
    let outputs = execs.outputs(PHASE_LIMIT);
    check_all("docker exec", &outputs, |i, o| {
        o.status.code() == Some(3) && text(&o.stdout) == format!("exec-{i}\n")
    });
    eprintln!("{FOLLOWED} concurrent docker exec: {:?}", t.elapsed());
    let stops = node.docker_all(0..FOLLOWED, |i| {
        ["stop", &format!("f{i}")].map(String::from).to_vec()
    });
    let outputs = stops.outputs(PHASE_LIMIT);
    check_all("docker stop", &outputs, |i, o| {
        o.status.success() && text(&o.stdout) == format!("f{i}\n")
    });
    let outputs = followers.outputs(PHASE_LIMIT);
    check_all("docker logs -f", &outputs, |i, o| {
        o.status.success() && text(&o.stdout) == format!("ready-{i}\nbye-{i}\n")
    });
    eprintln!(
        "... then {FOLLOWED} concurrent docker stop: {:?}",
        t.elapsed()
    );

    assert!(
        eventually(Duration::from_secs(20), || node.listed().is_empty()),
        "left after the followed containers ended: {}",
        node.listed()
    );
    assert!(
        eventually(Duration::from_secs(10), || open_fds(pid)
            <= fds_before + FD_SLACK),
        "the daemon held {fds_before} fds before the load and {} after",
        open_fds(pid)
    );
    let log = node.stop_daemon();
    assert_root_clean(node.root(), Duration::from_secs(10));
    assert!(
        !log.contains("Too many open files"),
        "the daemon ran out of file descriptors:\n{log}"
    );
}
