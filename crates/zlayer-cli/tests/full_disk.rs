//! A full disk, through the real `zlayer` binary (embedded, no daemon) on
//! a data root that is a small tmpfs:
//!
//! - `load` of an image larger than the free space fails with one error
//!   that names the file it could not write and says the disk is full,
//!   leaves no partial and no blob behind, and the image already stored
//!   still runs;
//! - an unpack that runs out of space fails the same way and leaves no
//!   half-made snapshot;
//! - a container whose log cannot be written keeps running, and once space
//!   returns its log says once how much output was lost; a create on the
//!   full disk fails once, naming the file, and leaves nothing behind;
//! - `image prune` prints what it removed and the space reclaimed (and
//!   JSON for scripts), partial downloads included; `system df` shows them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use zlayer_image::fixtures::{random_image, LayerCompression, RandomImageOptions};
use zlayer_testkit::wait::eventually;
use zlayer_testkit::TestDir;

mod support;
use support::{ok, remove_bridges_of, text, zlayer_bin, IMAGE};

/// The size of the data root's tmpfs.
const DISK: &str = "12m";

/// A data root on its own tmpfs of [`DISK`], with scratch space beside it
/// (on the ordinary disk). Unmounted, and whatever a failed test left
/// running under it killed, on drop.
struct SmallDisk {
    dir: TestDir,
    root: PathBuf,
}

impl SmallDisk {
    fn new() -> SmallDisk {
        let dir = TestDir::create("zlfd");
        let root = dir.path().join("root");
        std::fs::create_dir(&root).expect("create the root's mount point");
        let o = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={DISK},mode=0755"),
                "tmpfs",
            ])
            .arg(&root)
            .output()
            .expect("run mount");
        assert!(o.status.success(), "mount a tmpfs: {}", text(&o.stderr));
        let disk = SmallDisk { dir, root };
        ok(&disk.zl(&["image", "builtin"]));
        disk
    }

    fn scratch(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(zlayer_bin());
        c.arg("--root")
            .arg(&self.root)
            .arg("--embedded")
            .arg("--socket")
            .arg(self.dir.path().join("no-daemon.sock"))
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn zl(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run zlayer")
    }

    /// Fills the root's file system with a file, leaving `leave` bytes
    /// free; returns the file (deleting it gives the space back).
    fn fill(&self, leave: u64) -> PathBuf {
        let path = self.scratch_on_root("fill");
        let mut f = std::fs::File::create(&path).expect("create the fill file");
        let chunk = vec![0u8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let len = f.metadata().expect("stat the fill file").len();
        f.set_len(len.saturating_sub(leave))
            .expect("truncate the fill file");
        path
    }

    fn scratch_on_root(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The `*.partial` files of the content store.
    fn partials(&self) -> Vec<String> {
        names(&self.root.join("content/ingest"))
            .into_iter()
            .filter(|n| n.ends_with(".partial"))
            .collect()
    }

    /// The shared leak check, less the root's own tmpfs.
    fn assert_clean(&self) {
        let own = format!("mount {}", self.root.display());
        let clean = eventually(Duration::from_secs(5), || {
            zlayer_testkit::leaks::root_leaks(&self.root)
                .iter()
                .all(|l| *l == own)
        });
        let left: Vec<String> = zlayer_testkit::leaks::root_leaks(&self.root)
            .into_iter()
            .filter(|l| *l != own)
            .collect();
        assert!(clean, "left behind: {left:?}");
    }

    fn blobs(&self) -> Vec<String> {
        names(&self.root.join("content/blobs/sha256"))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        for id in text(&self.zl(&["ps", "-aq"]).stdout).split_whitespace() {
            let _ = self.zl(&["rm", "-f", id]);
        }
        remove_bridges_of(&self.root);
        zlayer_testkit::leaks::clean_up_root(&self.root);
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.root)
            .stderr(Stdio::null())
            .status();
    }
}

/// Sorted entry names of `dir` (none when it does not exist).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// An oci-archive at `path` of busybox plus two layers of `bytes` of
/// random (incompressible) data in all.
fn random_archive(path: &Path, reference: &str, bytes: u64) {
    let opts = RandomImageOptions {
        reference: reference.into(),
        layers: 2,
        total_bytes: bytes,
        files_per_layer: 4,
        compression: LayerCompression::Gzip,
        seed: 17,
    };
    random_image(&opts)
        .expect("build the random image")
        .write_oci_archive(path)
        .expect("write the random image");
}

/// Asserts `o` failed with docker's 125 and one line on stderr that says
/// the disk is full once and names a file under `under`; returns the line.
fn assert_one_disk_full_error(o: &Output, under: &Path) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("zlayer: ")).collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    let line = lines[0];
    assert_eq!(
        line.matches("No space left on device").count(),
        1,
        "the cause said once: {line}"
    );
    assert!(
        line.contains(&under.display().to_string()),
        "names the file under {}: {line}",
        under.display()
    );
    line.to_string()
}

#[test]
fn load_larger_than_the_disk_fails_once_leaves_nothing_and_stored_images_still_run() {
    let disk = SmallDisk::new();
    let blobs_before = disk.blobs();
    let big = disk.scratch("big.tar");
    random_archive(&big, "localhost/zlayer/big:latest", 20 << 20);
    let o = disk.zl(&["load", "-i", big.to_str().expect("utf-8 path")]);
    let line = assert_one_disk_full_error(&o, &disk.root.join("content"));
    assert!(line.contains("the disk is full"), "{line}");
    assert_eq!(disk.partials(), Vec::<String>::new(), "no partial left");
    assert_eq!(
        disk.blobs(),
        blobs_before,
        "no blob of the failed load left"
    );
    let images = ok(&disk.zl(&["images"]));
    assert!(
        !images.contains("big"),
        "the big image is not listed: {images}"
    );
    assert_eq!(ok(&disk.zl(&["run", "--rm", IMAGE, "echo", "hi"])), "hi\n");
    disk.assert_clean();
}

#[test]
fn unpack_out_of_space_fails_once_and_leaves_no_half_made_snapshot() {
    let disk = SmallDisk::new();
    // Busybox's snapshot is made while there is room.
    assert_eq!(ok(&disk.zl(&["run", "--rm", IMAGE, "true"])), "");
    let archive = disk.scratch("random.tar");
    random_archive(&archive, "localhost/zlayer/random:unpack", 1 << 20);
    ok(&disk.zl(&["load", "-i", archive.to_str().expect("utf-8 path")]));
    let fill = disk.fill(256 * 1024);
    let o = disk.zl(&[
        "run",
        "--rm",
        "localhost/zlayer/random:unpack",
        "echo",
        "hi",
    ]);
    assert_one_disk_full_error(&o, &disk.root);
    assert_eq!(
        names(&disk.root.join("snapshots/tmp")),
        Vec::<String>::new(),
        "no half-made snapshot"
    );
    std::fs::remove_file(&fill).expect("give the space back");
    assert_eq!(
        ok(&disk.zl(&[
            "run",
            "--rm",
            "localhost/zlayer/random:unpack",
            "echo",
            "hi"
        ])),
        "hi\n"
    );
    disk.assert_clean();
}

#[test]
fn a_full_disk_loses_output_not_the_container_and_the_log_records_the_gap_once() {
    let disk = SmallDisk::new();
    let script = "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.02; done";
    ok(&disk.zl(&["run", "-d", "--name", "talker", IMAGE, "sh", "-c", script]));
    let logs = || text(&disk.zl(&["logs", "talker"]).stdout);
    assert!(
        eventually(Duration::from_secs(30), || logs().contains("line 3\n")),
        "talker never logged: {}",
        logs()
    );
    let fill = disk.fill(0);
    // Output goes on and is lost: the log stops growing once the page its
    // last record is in is full (how long that takes depends on where the
    // page ends), while the talker keeps writing a line every 20 ms.
    let lines = || logs().lines().count();
    let mut last = (lines(), 0);
    assert!(
        eventually(Duration::from_secs(60), || {
            std::thread::sleep(Duration::from_millis(300));
            let now = lines();
            last = if now == last.0 {
                (now, last.1 + 1)
            } else {
                (now, 0)
            };
            last.1 >= 3
        }),
        "the log kept growing on a full disk"
    );

    // A create on the full disk fails once, naming the file, and leaves
    // nothing behind.
    let o = disk.zl(&["run", "--rm", "--name", "late", IMAGE, "true"]);
    assert_one_disk_full_error(&o, &disk.root.join("containers"));
    let visible: Vec<String> = names(&disk.root.join("containers"))
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(visible, ["talker-0"], "the failed create left nothing");

    std::fs::remove_file(&fill).expect("give the space back");
    let gap = "bytes of output lost: no space left on device";
    assert!(
        eventually(Duration::from_secs(30), || logs().contains(gap)),
        "the gap was never recorded: {}",
        logs()
    );
    let running = ok(&disk.zl(&["ps"]));
    assert!(running.contains("talker"), "talker still runs: {running}");
    // Output after the gap is logged, and the gap is said once.
    let after = logs();
    let last: u64 = after
        .lines()
        .filter_map(|l| l.strip_prefix("line "))
        .filter_map(|n| n.parse().ok())
        .max()
        .expect("numbered lines");
    assert!(
        eventually(Duration::from_secs(30), || logs()
            .contains(&format!("line {}\n", last + 5))),
        "output after the gap is logged"
    );
    let all = logs();
    assert_eq!(all.matches(gap).count(), 1, "{all}");
    let gap_line = all.lines().find(|l| l.contains(gap)).unwrap_or_default();
    let lost: u64 = gap_line
        .trim_start_matches("zlayer: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(lost > 0, "{gap_line}");
    // Every line that is there is whole: numbered lines in order.
    let numbers: Vec<u64> = all
        .lines()
        .filter_map(|l| l.strip_prefix("line "))
        .map(|n| n.parse().expect("a whole line"))
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{all}");
    ok(&disk.zl(&["rm", "-f", "talker"]));
    disk.assert_clean();
}

/// Writes a partial download of `bytes` bytes as a pull that stopped
/// half-way leaves it; returns its path.
fn partial_download(root: &Path, bytes: usize) -> PathBuf {
    let path = root.join(format!("content/ingest/{}.partial", "ab".repeat(32)));
    std::fs::write(&path, vec![1u8; bytes]).expect("write a partial download");
    path
}

fn blob_bytes(root: &Path) -> u64 {
    let dir = root.join("content/blobs/sha256");
    names(&dir)
        .iter()
        .map(|n| std::fs::metadata(dir.join(n)).map_or(0, |m| m.len()))
        .sum()
}

#[test]
fn prune_prints_what_it_removed_and_the_space_reclaimed() {
    let disk = SmallDisk::new();
    ok(&disk.zl(&["rmi", IMAGE]));
    let partial = partial_download(&disk.root, 1_000_000);
    let df = ok(&disk.zl(&["system", "df"]));
    assert!(df.starts_with("TYPE"), "{df}");
    assert!(
        df.contains(&partial.display().to_string()) && df.contains("1MB"),
        "df lists the partial: {df}"
    );
    let df: serde_json::Value =
        serde_json::from_str(&ok(&disk.zl(&["system", "df", "--format", "json"])))
            .expect("df's JSON");
    assert_eq!(df["partials"]["total"], 1, "{df}");
    assert_eq!(df["partials"]["size"], 1_000_000, "{df}");
    assert_eq!(df["images"]["total"], 0, "{df}");

    let blobs = disk.blobs();
    let out = ok(&disk.zl(&["image", "prune"]));
    assert!(!out.contains("PruneReport"), "{out}");
    assert!(out.contains("Deleted Blobs:"), "{out}");
    for b in &blobs {
        assert!(out.contains(&format!("deleted: sha256:{b}")), "{b}: {out}");
    }
    assert!(out.contains("Deleted Partial Downloads:"), "{out}");
    assert!(out.contains(&partial.display().to_string()), "{out}");
    let total = out
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("a total line last: {out}"));
    assert!(total.ends_with("MB"), "{total}");
    assert_eq!(disk.partials(), Vec::<String>::new());
    assert_eq!(disk.blobs(), Vec::<String>::new());

    // The same for scripts: one JSON object, the bytes exact.
    ok(&disk.zl(&["image", "builtin"]));
    ok(&disk.zl(&["rmi", IMAGE]));
    let partial = partial_download(&disk.root, 4096);
    let expected = blob_bytes(&disk.root) + 4096;
    let report: serde_json::Value =
        serde_json::from_str(&ok(&disk.zl(&["image", "prune", "--format", "json"])))
            .expect("prune's JSON");
    assert_eq!(report["bytes_freed"], expected, "{report}");
    assert_eq!(
        report["partials_removed"][0]["path"],
        partial.display().to_string(),
        "{report}"
    );
    assert_eq!(
        report["blobs_removed"].as_array().map(Vec::len),
        Some(blobs.len())
    );
}
