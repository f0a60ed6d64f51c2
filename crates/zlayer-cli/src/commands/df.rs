//! `zlayer system df`: the disk space zlayer's data takes, by kind.
//!
//! Only what is cheap to find out: image records and the bytes of blobs and
//! snapshots (from the image store), containers and volumes (the trees of
//! their directories, not crossing mounts: a running container's root
//! filesystem and its `run/` tmpfs are not counted), and the partial
//! downloads and interrupted imports that `zlayer image prune` removes.

use super::node::open_engine;
use crate::cli::GlobalArgs;
use crate::output::{human_size, print_json, print_table, Format};
use serde::Serialize;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use zlayer_image::Partial;

/// One row of the table: how many, how many in use (where that means
/// something), how many bytes.
#[derive(Debug, Serialize)]
struct Row {
    total: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    active: Option<usize>,
    size: u64,
}

/// The whole report (`--format json`).
#[derive(Debug, Serialize)]
struct Report {
    images: Row,
    containers: Row,
    volumes: Row,
    /// Partial downloads and imports (`content/ingest/*.partial`) plus
    /// extractions in progress or interrupted.
    partials: Row,
    /// Each partial file with its size.
    partial_files: Vec<Partial>,
}

/// Prints the report.
pub async fn run(g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let engine = open_engine(g)?;
    let containers = engine.list().await?;
    let store = engine.images().clone();
    let root = engine.root().to_path_buf();
    let volumes = engine.volumes().clone();
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<Report> {
        let usage = store.usage()?;
        let used_images: HashSet<_> = containers
            .iter()
            .filter_map(|v| store.lookup(&v.record.image).ok().flatten())
            .map(|r| r.manifest_digest)
            .collect();
        let names = volumes.list();
        let volume_bytes = names
            .iter()
            .filter_map(|n| volumes.path(n).ok())
            .map(|p| tree_size(&p))
            .sum();
        let partial_bytes: u64 = usage.partials.iter().map(|p| p.size).sum();
        Ok(Report {
            images: Row {
                total: usage.images,
                active: Some(used_images.len()),
                size: usage.blob_bytes + usage.snapshot_bytes,
            },
            containers: Row {
                total: containers.len(),
                active: Some(containers.iter().filter(|v| v.state.is_alive()).count()),
                size: tree_size(&root.join("containers")),
            },
            volumes: Row {
                total: names.len(),
                active: None,
                size: volume_bytes,
            },
            partials: Row {
                total: usage.partials.len(),
                active: None,
                size: partial_bytes + usage.unpacking_bytes,
            },
            partial_files: usage.partials,
        })
    })
    .await??;
    match g.format {
        Format::Json => print_json(&report)?,
        Format::Table => print_report(&report),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &Report) {
    let row = |kind: &str, row: &Row| {
        vec![
            kind.to_string(),
            row.total.to_string(),
            row.active.map_or_else(|| "-".into(), |n| n.to_string()),
            human_size(row.size),
        ]
    };
    print_table(
        &["TYPE", "TOTAL", "ACTIVE", "SIZE"],
        &[
            row("Images", &r.images),
            row("Containers", &r.containers),
            row("Local Volumes", &r.volumes),
            row("Partial downloads", &r.partials),
        ],
    );
    if !r.partial_files.is_empty() {
        println!("");
        println!("Partial downloads (`zlayer image prune` removes them):");
        let rows: Vec<Vec<String>> = r
            .partial_files
            .iter()
            .map(|p| vec![p.path.display().to_string(), human_size(p.size)])
            .collect();
        print_table(&["PATH", "SIZE"], &rows);
    }
}

/// Bytes of the regular files under `dir` on `dir`'s own file system
/// (hardlinks counted once; mounts below are not entered).
fn tree_size(dir: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let mut seen = HashSet::new();
    let mut todo = vec![dir.to_path_buf()];
    let mut total = 0;
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(m) = entry.metadata() else { continue };
            if m.dev() != top.dev() {
                continue;
            }
            if m.is_dir() {
                todo.push(entry.path());
            } else if m.is_file() && (m.nlink() == 1 || seen.insert(m.ino())) {
                total += m.len();
            }
        }
    }
    total
}
