//! The behaviour every isolation shares, checked through the real `zlayer`
//! binary (embedded: no daemon) once per isolation: container, sandbox and
//! vm. One list, one implementation: the hosting layer's.
//!
//! - output, exit codes, and docker's 127/126 for a command that is not
//!   there or cannot be invoked;
//! - `run -d --rm` is removed by its monitor, with no CLI or daemon left;
//! - stdin reaches `cat`; `exec` returns its command's code; `logs -f`
//!   ends when the container does;
//! - `stop -t 1` of a command ignoring TERM ends it with 137;
//! - a SIGKILLed CLI loses nothing (the container runs on, its exit code
//!   and all its output are kept);
//! - a SIGKILLed monitor stops its workload at once, the container reads
//!   as failed with 137 and a reason, and `rm` leaves nothing behind
//!   (state dir, mounts, cgroups, veths, QEMU, monitors);
//! - a named volume is shared by all three isolations.
//!
//! The vm cases boot under TCG here (see docs/vm.md); the kernel bundle is
//! built once per target directory by zlayer-testkit.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use zlayer_testkit::wait::eventually;
use zlayer_testkit::TestDir;

mod support;
use support::{ok, remove_bridges_of, text, zlayer_bin, IMAGE};

/// A busybox loop that exits 0 on TERM (a plain `sleep` as PID 1 of a
/// container ignores it).
const SERVE: &str = "trap 'exit 0' TERM; while true; do sleep 0.1; done";

/// One data root, driven by the `zlayer` binary with one isolation.
struct Node {
    dir: TestDir,
    isolation: &'static str,
    env: Vec<(&'static str, PathBuf)>,
}

impl Node {
    fn new(isolation: &'static str) -> Node {
        let env = if isolation == "vm" {
            zlayer_testkit::kernel::env()
        } else {
            Vec::new()
        };
        let node = Node {
            dir: TestDir::create("zlbh"),
            isolation,
            env,
        };
        ok(&node.zl(&["image", "builtin"]));
        node
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(zlayer_bin());
        c.arg("--root")
            .arg(self.root())
            .arg("--embedded")
            .arg("--socket")
            .arg(self.root().join("no-daemon.sock"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        c
    }

    fn zl(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run zlayer")
    }

    /// `zlayer run --isolation <ours> <flags> IMAGE <argv>`.
    fn run_cmd(&self, flags: &[&str], argv: &[&str]) -> Command {
        let mut args = vec!["run", "--isolation", self.isolation];
        args.extend_from_slice(flags);
        args.push(IMAGE);
        args.extend_from_slice(argv);
        self.cmd(&args)
    }

    fn run(&self, flags: &[&str], argv: &[&str]) -> Output {
        self.run_cmd(flags, argv).output().expect("run zlayer")
    }

    /// A detached container `name` running [`SERVE`] after printing `ready`.
    fn serve(&self, name: &str) {
        let script = format!("echo ready; {SERVE}");
        ok(&self.run(&["-d", "--name", name], &["sh", "-c", &script]));
        self.wait_for_log(name, "ready");
    }

    fn wait_for_log(&self, name: &str, needle: &str) {
        assert!(
            eventually(Duration::from_secs(60), || text(
                &self.zl(&["logs", name]).stdout
            )
            .contains(needle)),
            "{name} never logged {needle:?}"
        );
    }

    /// `inspect`'s JSON of `name`.
    fn inspect(&self, name: &str) -> serde_json::Value {
        let o = ok(&self.zl(&["inspect", name]));
        let mut v: serde_json::Value = serde_json::from_str(&o).expect("inspect's JSON");
        v[0].take()
    }

    fn state_dir(&self, name: &str) -> PathBuf {
        self.root().join("containers").join(format!("{name}-0"))
    }

    fn monitor_json(&self, name: &str) -> serde_json::Value {
        let bytes = std::fs::read(self.state_dir(name).join("monitor.json")).expect("monitor.json");
        serde_json::from_slice(&bytes).expect("monitor.json parses")
    }

    fn ids(&self) -> String {
        ok(&self.zl(&["ps", "-aq"]))
    }

    /// Nothing of any container is left under this root or on the host
    /// (the shared leak check: state dirs, names, mounts, processes,
    /// cgroups, veths, leases, partial blobs).
    fn assert_nothing_left(&self) {
        assert_eq!(self.ids(), "", "containers left");
        zlayer_testkit::leaks::assert_root_clean(self.root(), Duration::from_secs(5));
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for id in text(&self.zl(&["ps", "-aq"]).stdout).split_whitespace() {
            let _ = self.zl(&["rm", "-f", id]);
        }
        remove_bridges_of(self.root());
    }
}

fn pid_alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            // A zombie has ended; its parent has not reaped it yet.
            s.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn output_and_exit_codes(node: &Node) {
    assert_eq!(ok(&node.run(&["--rm"], &["echo", "hi"])), "hi\n");
    let o = node.run(&["--rm"], &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "out\n");
    assert!(text(&o.stderr).contains("err"), "{}", text(&o.stderr));
    let o = node.run(&["--rm"], &["no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", text(&o.stderr));
    let o = node.run(&["--rm"], &["/etc/passwd"]);
    assert_eq!(o.status.code(), Some(126), "{}", text(&o.stderr));
    // A missing working directory is made, as docker does.
    ok(&node.run(&["--rm", "-w", "/made/by/zlayer"], &["true"]));
    node.assert_nothing_left();
}

fn detached_rm_is_removed_by_its_monitor(node: &Node) {
    let id = ok(&node.run(
        &["-d", "--rm", "--name", "gone"],
        &["sh", "-c", "sleep 1; exit 3"],
    ));
    assert_eq!(id.trim().len(), 64, "{id}");
    // The CLI has exited: only the monitor is left to remove it.
    assert!(
        eventually(Duration::from_secs(60), || node.ids().is_empty()),
        "still listed: {}",
        node.ids()
    );
    node.assert_nothing_left();
}

fn stdin_exec_and_logs(node: &Node) {
    let mut child = node
        .run_cmd(&["-i", "--rm"], &["cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped\nlines\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(ok(&o), "piped\nlines\n");

    node.serve("x");
    assert_eq!(ok(&node.zl(&["exec", "x", "echo", "inside"])), "inside\n");
    let o = node.zl(&["exec", "x", "sh", "-c", "exit 5"]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o.stderr));
    let o = node.zl(&["exec", "x", "no-such-command"]);
    assert_eq!(o.status.code(), Some(127), "{}", text(&o.stderr));
    // An exec's working directory is not made: it cannot be invoked.
    let o = node.zl(&["exec", "-w", "/no/such/dir", "x", "true"]);
    assert_eq!(o.status.code(), Some(126), "{}", text(&o.stderr));
    ok(&node.zl(&["rm", "-f", "x"]));

    let script = "for i in 1 2 3; do echo $i; sleep 0.3; done";
    ok(&node.run(&["-d", "--name", "tick"], &["sh", "-c", script]));
    // Follows until the container ends, then returns.
    assert_eq!(ok(&node.zl(&["logs", "-f", "tick"])), "1\n2\n3\n");
    assert_eq!(ok(&node.zl(&["wait", "tick"])).trim(), "0");
    ok(&node.zl(&["rm", "tick"]));
    node.assert_nothing_left();
}

fn stop_kills_what_ignores_term(node: &Node) {
    let script = "trap '' TERM; echo ready; while true; do sleep 0.1; done";
    ok(&node.run(&["-d", "--name", "stubborn"], &["sh", "-c", script]));
    node.wait_for_log("stubborn", "ready");
    let t = Instant::now();
    ok(&node.zl(&["stop", "-t", "1", "stubborn"]));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "stopped before the grace: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    let v = node.inspect("stubborn");
    assert_eq!(v["exit_code"], 137, "{v}");
    assert_eq!(v["state"]["status"], "exited", "{v}");
    ok(&node.zl(&["rm", "stubborn"]));
    node.assert_nothing_left();
}

fn killed_cli_loses_nothing(node: &Node) {
    let script = "echo a; sleep 2; echo b; exit 4";
    let mut child = node
        .run_cmd(&["--name", "k"], &["sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "a\n");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(node.inspect("k")["state"]["status"], "running");
    assert_eq!(ok(&node.zl(&["wait", "k"])).trim(), "4");
    assert_eq!(ok(&node.zl(&["logs", "k"])), "a\nb\n");
    ok(&node.zl(&["rm", "k"]));
    node.assert_nothing_left();
}

fn killed_monitor_stops_its_workload(node: &Node) {
    node.serve("m");
    let m = node.monitor_json("m");
    let monitor = m["monitor"]["pid"].as_i64().unwrap();
    let workload = m["workload"]["pid"].as_i64().unwrap();
    assert!(pid_alive(workload));
    let killed = Command::new("kill")
        .args(["-KILL", &monitor.to_string()])
        .status();
    assert!(killed.is_ok_and(|s| s.success()));
    assert!(
        eventually(Duration::from_secs(3), || !pid_alive(workload)),
        "the workload (pid {workload}) outlived its monitor"
    );
    let v = node.inspect("m");
    assert_eq!(v["state"]["status"], "failed", "{v}");
    assert_eq!(v["exit_code"], 137, "{v}");
    let reason = v["state"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("monitor"), "{reason}");
    ok(&node.zl(&["rm", "m"]));
    node.assert_nothing_left();
}

macro_rules! behaviour_of {
    ($isolation:ident) => {
        mod $isolation {
            fn node() -> super::Node {
                super::Node::new(stringify!($isolation))
            }

            #[test]
            fn output_and_exit_codes() {
                super::output_and_exit_codes(&node());
            }

            #[test]
            fn detached_rm_is_removed_by_its_monitor() {
                super::detached_rm_is_removed_by_its_monitor(&node());
            }

            #[test]
            fn stdin_exec_and_logs() {
                super::stdin_exec_and_logs(&node());
            }

            #[test]
            fn stop_kills_what_ignores_term() {
                super::stop_kills_what_ignores_term(&node());
            }

            #[test]
            fn killed_cli_loses_nothing() {
                super::killed_cli_loses_nothing(&node());
            }

            #[test]
            fn killed_monitor_stops_its_workload() {
                super::killed_monitor_stops_its_workload(&node());
            }
        }
    };
}

behaviour_of!(container);
behaviour_of!(sandbox);
behaviour_of!(vm);

/// A named volume is one directory on the node, whatever the isolation of
/// the containers that mount it.
#[test]
fn named_volume_is_shared_by_every_isolation() {
    let node = Node::new("vm");
    let run = |isolation: &str, script: &str| {
        let args = [
            "run",
            "--rm",
            "--isolation",
            isolation,
            "-v",
            "shared:/data",
            IMAGE,
            "sh",
            "-c",
            script,
        ];
        ok(&node.zl(&args))
    };
    // A sandbox sees host paths: its image (and the volume targets in it)
    // is at $ZLAYER_ROOTFS, unset in the other isolations.
    let log = "${ZLAYER_ROOTFS}/data/log";
    run("container", &format!("echo container >> {log}"));
    run("sandbox", &format!("echo sandbox >> {log}"));
    assert_eq!(
        run("vm", &format!("echo vm >> {log}; cat {log}")),
        "container\nsandbox\nvm\n"
    );
    let on_host = node.root().join("volumes/shared/_data/log");
    assert_eq!(
        std::fs::read_to_string(on_host).unwrap(),
        "container\nsandbox\nvm\n"
    );
    node.assert_nothing_left();
}

/// Without root the node still runs the sandbox isolation; the container
/// isolation is refused with the reason.
#[test]
fn a_user_without_root_runs_sandboxes() {
    use std::os::unix::process::CommandExt;
    const NOBODY: u32 = 65534;
    let dir = TestDir::create("zlnr");
    std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    let zl = |args: &[&str]| {
        Command::new(zlayer_bin())
            .arg("--root")
            .arg(dir.path())
            .arg("--embedded")
            .args(args)
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .expect("run zlayer as nobody")
    };
    ok(&zl(&["image", "builtin"]));
    let o = zl(&[
        "run",
        "--rm",
        "--isolation",
        "sandbox",
        IMAGE,
        "echo",
        "confined",
    ]);
    assert_eq!(ok(&o), "confined\n");
    let o = zl(&["run", "--rm", IMAGE, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(text(&o.stderr).contains("root"), "{}", text(&o.stderr));
}
