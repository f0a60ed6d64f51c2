//! Pulls an image into a store and unpacks it (used by `bench/pull.sh`).
//!
//! Usage: `pull STORE_DIR REFERENCE [--quiet]`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use zlayer_image::{ConsoleProgress, ImageStore, PullOptions, PullPolicy};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(reference)) = (args.next(), args.next()) else {
        eprintln!("usage: pull STORE_DIR REFERENCE [--quiet]");
        std::process::exit(2);
    };
    let quiet = args.any(|a| a == "--quiet");
    let store = ImageStore::open(&PathBuf::from(root))?;
    let opts = PullOptions {
        policy: PullPolicy::Always,
        progress: if quiet {
            None
        } else {
            Some(Arc::new(ConsoleProgress::new()))
        },
        ..PullOptions::default()
    };
    let start = Instant::now();
    let rec = store.pull(&reference, &opts).await?;
    let dirs = store.ensure_unpacked(&rec)?;
    if !quiet {
        eprintln!(
            "pulled {} ({} layers, {} bytes) in {:.2?}; {} snapshots",
            rec.manifest_digest,
            rec.layers.len(),
            rec.size,
            start.elapsed(),
            dirs.len()
        );
    }
    Ok(())
}
