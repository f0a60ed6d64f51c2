//! Measures load + unpack + rootfs time for a random-data fixture image.
//!
//! `cargo run --release -p zlayer-image --example unpack_bench -- [LAYERS] [MIB] [gzip|zstd|none]`

use std::time::Instant;

use zlayer_image::fixtures::{self, LayerCompression, RandomImageOptions};
use zlayer_image::ImageStore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let layers: usize = args.get(1).map_or(Ok(4), |s| s.parse())?;
    let mib: u64 = args.get(2).map_or(Ok(256), |s| s.parse())?;
    let compression = match args.get(3).map(String::as_str) {
        Some("zstd") => LayerCompression::Zstd,
        Some("none") => LayerCompression::None,
        _ => LayerCompression::Gzip,
    };
    let tmp = tempfile::tempdir()?;
    let t = Instant::now();
    let img = fixtures::random_layout(
        &tmp.path().join("layout"),
        &RandomImageOptions {
            layers,
            total_bytes: mib * 1024 * 1024,
            files_per_layer: 16,
            compression,
            ..Default::default()
        },
    )?;
    println!(
        "build fixture ({layers} layers, {mib} MiB, {compression:?}): {:.2?}",
        t.elapsed()
    );
    let store = ImageStore::open(&tmp.path().join("root"))?;
    let t = Instant::now();
    let rec = store.load(&img.path, None)?.remove(0);
    println!(
        "load (verify + ingest {} MiB of blobs): {:.2?}",
        rec.size >> 20,
        t.elapsed()
    );
    let t = Instant::now();
    store.ensure_unpacked(&rec)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "unpack {} layers: {secs:.2}s = {:.0} MiB/s (uncompressed)",
        rec.layers.len(),
        mib as f64 / secs
    );
    let t = Instant::now();
    let c = tmp.path().join("ctr");
    store.prepare_rootfs(&rec, &c)?;
    println!(
        "prepare_rootfs (overlay, layers cached): {:.2?}",
        t.elapsed()
    );
    store.release_rootfs(&c)?;
    Ok(())
}
