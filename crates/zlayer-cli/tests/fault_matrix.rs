//! The fault matrix: every failpoint (`zlayer_failpoints::POINTS`) ×
//! isolation (container, sandbox, vm) × front end (the embedded CLI, the
//! daemon). Each case crashes a zlayer process at its point, then checks
//! what a user would:
//! - the container is wholly there or wholly gone, and `ps -a` tells the
//!   truth: a container it shows running has a monitor that answers
//!   (`exec` works), any other has no process left;
//! - `rm -f` succeeds, and nothing is left behind (the shared leak check:
//!   state dirs, names, mounts, processes, cgroups, veths, leases, partial
//!   blobs);
//! - the node still runs a container under the same name.
//!
//! CI runs every point once per isolation through the embedded CLI, and the
//! daemon front end for the container isolation; `ZLAYER_FAULT_MATRIX=full`
//! runs the daemon front end for every isolation too.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use zlayer_failpoints::{Point, Process, POINTS};
use zlayer_testkit::leaks::{assert_root_clean, pids_holding_files_under, pids_with_cmdline};
use zlayer_testkit::wait::eventually;
use zlayer_testkit::TestDir;

mod support;
use support::{ok, remove_bridges_of, text, zlayer_bin, IMAGE};

/// A busybox loop that exits 0 on TERM.
const SERVE: &str = "echo ready; trap 'exit 0' TERM; while true; do sleep 0.1; done";

/// Which process drives the engine.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Front {
    Embedded,
    Daemon,
}

/// One data root, driven through one front end with one isolation.
struct Node {
    dir: TestDir,
    isolation: &'static str,
    front: Front,
    env: Vec<(&'static str, PathBuf)>,
    daemon: Option<Child>,
}

impl Node {
    fn new(isolation: &'static str, front: Front) -> Node {
        let env = if isolation == "vm" {
            zlayer_testkit::kernel::env()
        } else {
            Vec::new()
        };
        let node = Node {
            dir: TestDir::create("zlfm"),
            isolation,
            front,
            env,
            daemon: None,
        };
        ok(&node
            .embedded(&["image", "builtin"])
            .output()
            .expect("zlayer"));
        node
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn socket(&self) -> PathBuf {
        self.root().join("zlayer.sock")
    }

    fn base(&self) -> Command {
        let mut c = Command::new(zlayer_bin());
        c.arg("--root")
            .arg(self.root())
            .arg("--socket")
            .arg(self.socket())
            .env_remove("ZLAYER_EMBEDDED")
            .env_remove(zlayer_failpoints::ENV)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        c
    }

    /// The CLI without a daemon (checks and clean-up).
    fn embedded(&self, args: &[&str]) -> Command {
        let mut c = self.base();
        c.arg("--embedded").args(args);
        c
    }

    /// The CLI through this node's front end.
    fn front_cmd(&self, args: &[&str]) -> Command {
        match self.front {
            Front::Embedded => self.embedded(args),
            Front::Daemon => {
                let mut c = self.base();
                c.args(args);
                c
            }
        }
    }

    fn zl(&self, args: &[&str]) -> Output {
        self.front_cmd(args).output().expect("zlayer")
    }

    /// Starts the daemon, with `failpoint` active in it (and so in the
    /// monitors it starts).
    fn start_daemon(&mut self, failpoint: Option<&str>) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.root().join("daemon.log"))
            .expect("daemon log");
        let mut c = self.base();
        c.args(["daemon", "--docker-socket"])
            .arg(self.root().join("docker.sock"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if let Some(p) = failpoint {
            c.env(zlayer_failpoints::ENV, p);
        }
        self.daemon = Some(c.spawn().expect("start the daemon"));
        let sock = self.socket();
        assert!(
            eventually(Duration::from_secs(20), || {
                std::os::unix::net::UnixStream::connect(&sock).is_ok()
            }),
            "the daemon did not open its socket"
        );
    }

    /// Stops the daemon (SIGKILL) if it still runs; whether it had ended
    /// by itself (crashed at a failpoint).
    fn stop_daemon(&mut self) -> bool {
        let Some(mut d) = self.daemon.take() else {
            return false;
        };
        let crashed = matches!(d.try_wait(), Ok(Some(_)));
        let _ = d.kill();
        let _ = d.wait();
        crashed
    }

    /// `ps -a` as JSON rows.
    fn ps(&self) -> Vec<serde_json::Value> {
        let out = ok(&self
            .embedded(&["--format", "json", "ps", "-a"])
            .output()
            .expect("zlayer"));
        serde_json::from_str(&out).expect("ps JSON")
    }

    /// A long-running container `name` (no failpoint).
    fn serve(&self, name: &str) {
        ok(&self.run_with(None, name, &["sh", "-c", SERVE]));
        assert!(
            eventually(Duration::from_secs(60), || text(
                &self.zl(&["logs", name]).stdout
            )
            .contains("ready")),
            "{name} never became ready"
        );
    }

    /// `run -d --name NAME IMAGE argv` through the front end, with
    /// `failpoint` active in the CLI (embedded; the daemon has its own).
    fn run_with(&self, failpoint: Option<&str>, name: &str, argv: &[&str]) -> Output {
        let mut args = vec!["run", "-d", "--isolation", self.isolation, "--name", name];
        args.push(IMAGE);
        args.extend_from_slice(argv);
        let mut c = self.front_cmd(&args);
        if let (Some(p), Front::Embedded) = (failpoint, self.front) {
            c.env(zlayer_failpoints::ENV, p);
        }
        c.output().expect("zlayer")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_daemon();
        if let Ok(o) = self.embedded(&["ps", "-aq"]).output() {
            for id in text(&o.stdout).split_whitespace() {
                let _ = self.embedded(&["rm", "-f", id]).output();
            }
        }
        zlayer_testkit::leaks::clean_up_root(self.root());
        remove_bridges_of(self.root());
    }
}

/// Whether `isolation` reaches `point` (the others pass it by: the case
/// then checks that nothing went wrong without a crash).
fn reaches(point: &Point, isolation: &str) -> bool {
    match point.name {
        "start.after-cgroup" => isolation == "container",
        "start.after-network" => isolation != "sandbox",
        _ => point.process != Process::Guest || isolation == "vm",
    }
}

/// What a case does to reach its point.
enum Action {
    /// `run -d` of a long-running container.
    Run,
    /// `run -d` of a container that exits at once.
    RunShort,
    /// `rm -f` of a running container.
    Remove,
}

fn action(point: &Point) -> Option<Action> {
    let n = point.name;
    if n.starts_with("create.") || n.starts_with("start.") || n.starts_with("guest.") {
        Some(Action::Run)
    } else if n.starts_with("exit.") {
        Some(Action::RunShort)
    } else if n.starts_with("stop.") || n.starts_with("remove.") {
        Some(Action::Remove)
    } else {
        // Image points: see `image_points_*`.
        None
    }
}

/// One case: crash at `point`, then check the node.
fn case(node: &mut Node, point: &Point) {
    let Some(action) = action(point) else {
        return;
    };
    let name = "fp";
    let expect_crash = reaches(point, node.isolation);
    if node.front == Front::Daemon {
        node.start_daemon(Some(point.name));
    }
    let out = match action {
        Action::Run => node.run_with(Some(point.name), name, &["sh", "-c", SERVE]),
        Action::RunShort => node.run_with(Some(point.name), name, &["sh", "-c", "echo hi; exit 3"]),
        Action::Remove => {
            node.serve(name);
            let mut c = node.front_cmd(&["rm", "-f", name]);
            if node.front == Front::Embedded {
                c.env(zlayer_failpoints::ENV, point.name);
            }
            c.output().expect("zlayer")
        }
    };
    let ctx = format!(
        "{} / {} / {:?}: {}",
        point.name,
        node.isolation,
        node.front,
        text(&out.stderr)
    );
    // The host process died where it should (a monitor's or a guest's
    // crash is seen in the container's state below).
    if expect_crash && point.process == Process::Host {
        match node.front {
            Front::Embedded => {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(
                    out.status.signal(),
                    Some(libc::SIGKILL),
                    "CLI not crashed: {ctx}"
                );
            }
            Front::Daemon => assert!(
                eventually(Duration::from_secs(10), || node
                    .daemon
                    .as_mut()
                    .is_some_and(|d| matches!(d.try_wait(), Ok(Some(_))))),
                "daemon not crashed: {ctx}"
            ),
        }
    }
    if expect_crash && point.name.starts_with("start.") {
        // The monitor died before it reported: the start failed.
        assert!(!out.status.success(), "{ctx}: run succeeded");
    }
    if node.front == Front::Daemon {
        // A daemon that crashed is started again (without the failpoint),
        // as a service manager would.
        node.stop_daemon();
        node.start_daemon(None);
    }
    if matches!(action, Action::RunShort) {
        // The workload ends at once: give it the time to.
        std::thread::sleep(Duration::from_millis(500));
    }
    check_truth(node, name, point, expect_crash, &ctx);
    // `rm -f` works on whatever is left.
    if !node.ps().is_empty() {
        ok(&node.zl(&["rm", "-f", name]));
    }
    assert!(node.ps().is_empty(), "containers left after rm -f: {ctx}");
    // (A live daemon holds files under the root: checked without it.)
    node.stop_daemon();
    assert_root_clean(node.root(), Duration::from_secs(10));
    // The node goes on: the name is free and a container runs.
    if node.front == Front::Daemon {
        node.start_daemon(None);
    }
    let again = node
        .front_cmd(&[
            "run",
            "--rm",
            "--isolation",
            node.isolation,
            "--name",
            name,
            IMAGE,
            "echo",
            "again",
        ])
        .output()
        .expect("zlayer");
    assert!(
        ok(&again).contains("again"),
        "{ctx}: the node cannot run a container any more"
    );
    node.stop_daemon();
    assert_root_clean(node.root(), Duration::from_secs(10));
}

/// `ps -a` tells the truth about container `name` after the crash.
fn check_truth(node: &Node, name: &str, point: &Point, expect_crash: bool, ctx: &str) {
    let rows = node.ps();
    eprintln!(
        "{ctx:.60} -> {:?}",
        rows.first().map(|r| r["status"].clone())
    );
    assert!(rows.len() <= 1, "{ctx}: {rows:?}");
    let Some(row) = rows.first() else {
        // Wholly gone: nothing of it may run.
        return;
    };
    assert_eq!(row["name"], name, "{ctx}");
    let status = row["status"].as_str().unwrap_or_default().to_string();
    let status = if status.starts_with("running") && point.name.starts_with("stop.") {
        // A kill was sent before the crash: the end may take a moment
        // (a VM's QEMU) and must come.
        eventually(Duration::from_secs(15), || {
            !node.ps().first().is_some_and(|r| r["status"] == "running")
        });
        node.ps()
            .first()
            .and_then(|r| r["status"].as_str().map(str::to_string))
            .unwrap_or_default()
    } else {
        status
    };
    if status.starts_with("running") {
        // Running means a monitor that answers and a workload in it.
        let o = node.zl(&["exec", name, "true"]);
        assert!(
            o.status.success(),
            "{ctx}: shown {status} but exec fails: {}",
            text(&o.stderr)
        );
        if expect_crash && point.process != Process::Host {
            panic!("{ctx}: the monitor or guest crashed, yet the container shows {status}");
        }
    } else if expect_crash && point.name.starts_with("exit.") {
        assert!(status.contains("monitor"), "{ctx}: {status}");
        check_nothing_runs(node, name, &status, ctx);
    } else {
        check_nothing_runs(node, name, &status, ctx);
    }
}

/// No process of container `name` is left (the monitor's end is noticed
/// when `ps` observes it; a crashed guest's QEMU exits).
fn check_nothing_runs(node: &Node, name: &str, status: &str, ctx: &str) {
    {
        let state_dir = node.root().join("containers").join(format!("{name}-0"));
        let of_it = || {
            let mut pids = pids_holding_files_under(&state_dir);
            pids.extend(pids_with_cmdline(&[&state_dir.to_string_lossy()]));
            pids.retain(|&p| p != std::process::id() as i32);
            pids
        };
        assert!(
            eventually(Duration::from_secs(15), || {
                let _ = node.ps();
                of_it().is_empty()
            }),
            "{ctx}: shown {status} while processes of it run: {:?}",
            of_it()
                .into_iter()
                .map(zlayer_testkit::leaks::cmdline)
                .collect::<Vec<_>>()
        );
    }
}

fn matrix(isolation: &'static str, front: Front) {
    let mut node = Node::new(isolation, front);
    for point in POINTS {
        case(&mut node, point);
    }
}

fn full() -> bool {
    std::env::var("ZLAYER_FAULT_MATRIX").is_ok_and(|v| v == "full")
}

#[test]
fn container_embedded() {
    matrix("container", Front::Embedded);
}

#[test]
fn sandbox_embedded() {
    matrix("sandbox", Front::Embedded);
}

#[test]
fn vm_embedded() {
    matrix("vm", Front::Embedded);
}

#[test]
fn container_daemon() {
    matrix("container", Front::Daemon);
}

#[test]
fn sandbox_daemon() {
    if full() {
        matrix("sandbox", Front::Daemon);
    }
}

#[test]
fn vm_daemon() {
    if full() {
        matrix("vm", Front::Daemon);
    }
}

/// The image points, through `load` of an archive: a crash mid-blob or
/// before the image record leaves no image, no partial blob after a
/// prune, and a second load works.
#[test]
fn image_points_of_load() {
    let node = Node::new("container", Front::Embedded);
    let archive = node.root().join("image.tar");
    let mut opts = zlayer_image::fixtures::FixtureOptions::named("localhost/fault/load:1");
    // Big enough that a blob is written in several pieces.
    opts.extra_files.push((
        "/data/blob".into(),
        (0..4 << 20)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
        0o644,
    ));
    zlayer_image::fixtures::busybox_image(&opts)
        .expect("fixture")
        .write_docker_archive(&archive)
        .expect("archive");
    for point in POINTS.iter().filter(|p| action(p).is_none()) {
        let mut c = node.embedded(&["load", "-i"]);
        c.arg(&archive).env(zlayer_failpoints::ENV, point.name);
        let out = c.output().expect("zlayer");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGKILL),
            "{}: load not crashed: {}",
            point.name,
            text(&out.stderr)
        );
        let images = ok(&node.embedded(&["images"]).output().expect("zlayer"));
        assert!(
            !images.contains("localhost/fault/load"),
            "{}: half-loaded image listed:\n{images}",
            point.name
        );
        ok(&node.embedded(&["image", "prune"]).output().expect("zlayer"));
        assert_root_clean(node.root(), Duration::from_secs(5));
        let mut c = node.embedded(&["load", "-i"]);
        c.arg(&archive);
        ok(&c.output().expect("zlayer"));
        ok(&node
            .embedded(&["run", "--rm", "localhost/fault/load:1", "true"])
            .output()
            .expect("zlayer"));
        ok(&node
            .embedded(&["rmi", "localhost/fault/load:1"])
            .output()
            .expect("zlayer"));
    }
}
