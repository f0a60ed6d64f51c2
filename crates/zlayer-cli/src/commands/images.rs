//! `zlayer pull`, `load`, `images`, `rmi`, `image prune`.

use super::container_opts::parse_pull_policy;
use crate::cli::{BuiltinArgs, GlobalArgs, LoadArgs, PullArgs, RmiArgs};
use crate::exit;
use crate::output::{human_size, print_json, print_table, Format};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use zlayer_image::{ConsoleProgress, ImageRecord, ImageStore, PruneReport, PullOptions};

fn open_store(g: &GlobalArgs) -> anyhow::Result<ImageStore> {
    std::fs::create_dir_all(&g.root).map_err(|e| {
        anyhow::anyhow!(
            "cannot create data root {}: {e}; run as root or pass --root DIR",
            g.root.display()
        )
    })?;
    Ok(ImageStore::open(&g.root)?)
}

fn record_json(r: &ImageRecord) -> serde_json::Value {
    serde_json::json!({
        "reference": r.reference,
        "digest": r.digest().to_string(),
        "size": r.size,
        "created": r.created,
        "layers": r.layers.len(),
    })
}

/// `zlayer pull REF`.
pub async fn pull(g: &GlobalArgs, args: PullArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(g)?;
    let opts = PullOptions {
        policy: parse_pull_policy(&args.policy)?,
        insecure: args.insecure,
        auth: None,
        progress: (g.format == Format::Table)
            .then(|| Arc::new(ConsoleProgress::new()) as Arc<dyn zlayer_image::PullProgress>),
    };
    let rec = store.pull(&args.reference, &opts).await?;
    match g.format {
        Format::Json => print_json(&record_json(&rec))?,
        Format::Table => println!("{}: {}", rec.reference, rec.digest()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `zlayer load -i PATH [--tag REF]`.
pub async fn load(g: &GlobalArgs, args: LoadArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(g)?;
    let (input, tag) = (args.input.clone(), args.tag.clone());
    let recs = tokio::task::spawn_blocking(move || store.load(&input, tag.as_deref())).await??;
    match g.format {
        Format::Json => print_json(&recs.iter().map(record_json).collect::<Vec<_>>())?,
        Format::Table => {
            for r in &recs {
                println!("Loaded image: {} ({})", r.reference, r.digest());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `zlayer images`.
pub async fn list(g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(g)?;
    let recs = store.list()?;
    match g.format {
        Format::Json => print_json(&recs.iter().map(record_json).collect::<Vec<_>>())?,
        Format::Table => {
            let rows: Vec<Vec<String>> = recs
                .iter()
                .map(|r| {
                    let stored = SystemTime::UNIX_EPOCH + Duration::from_secs(r.stored_at);
                    vec![
                        r.reference.clone(),
                        r.digest().to_string().chars().take(19).collect(),
                        r.created
                            .clone()
                            .unwrap_or_else(|| crate::output::ago(stored)),
                        human_size(r.size),
                    ]
                })
                .collect();
            print_table(&["REFERENCE", "DIGEST", "CREATED", "SIZE"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `zlayer rmi REF...`.
pub async fn rmi(g: &GlobalArgs, args: RmiArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(g)?;
    let mut failed = false;
    for r in &args.references {
        match store.remove(r) {
            Ok(()) => println!("Untagged: {r}"),
            Err(e) => {
                eprintln!("zlayer: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        exit::ENGINE_ERROR.into()
    } else {
        ExitCode::SUCCESS
    })
}

/// `zlayer image prune`: docker's summary (what went, then `Total
/// reclaimed space: 12.3MB`), or the report as one JSON object.
pub async fn prune(g: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(g)?;
    let report = tokio::task::spawn_blocking(move || store.prune()).await??;
    match g.format {
        Format::Json => print_json(&report)?,
        Format::Table => print_prune(&report),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_prune(r: &PruneReport) {
    let deleted = |title: &str, items: Vec<String>| {
        if !items.is_empty() {
            println!("{title}:");
            for item in items {
                println!("deleted: {item}");
            }
            println!("");
        }
    };
    deleted(
        "Deleted Blobs",
        r.blobs_removed.iter().map(ToString::to_string).collect(),
    );
    deleted(
        "Deleted Snapshots",
        r.snapshots_removed
            .iter()
            .map(ToString::to_string)
            .collect(),
    );
    deleted(
        "Deleted Partial Downloads",
        r.partials_removed
            .iter()
            .map(|p| format!("{} ({})", p.path.display(), human_size(p.size)))
            .collect(),
    );
    println!("Total reclaimed space: {}", human_size(r.bytes_freed));
}

/// `zlayer image builtin`: packs the host's static busybox into an OCI image
/// and stores it, so examples run without any registry.
pub async fn builtin(g: &GlobalArgs, args: BuiltinArgs) -> anyhow::Result<ExitCode> {
    use zlayer_image::fixtures::{busybox_layout, busybox_path, FixtureOptions};
    let store = open_store(g)?;
    let busybox = busybox_path();
    if !busybox.is_file() {
        anyhow::bail!(
            "{} not found; install Debian's busybox-static (`apt-get install busybox-static`)",
            busybox.display()
        );
    }
    let tag = args.tag.clone();
    let recs = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let tmp = tempfile::Builder::new()
            .prefix(".builtin-")
            .tempdir_in(store.root())?;
        let layout = tmp.path().join("layout");
        busybox_layout(&layout, &FixtureOptions::named(&tag))?;
        Ok(store.load(&layout, Some(&tag))?)
    })
    .await??;
    match g.format {
        Format::Json => print_json(&recs.iter().map(record_json).collect::<Vec<_>>())?,
        Format::Table => {
            for r in &recs {
                println!("Built image: {} ({})", r.reference, r.digest());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
