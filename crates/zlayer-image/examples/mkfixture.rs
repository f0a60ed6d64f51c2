//! Writes a benchmark image as an OCI layout: a busybox base layer plus N
//! gzip layers of random data (used by `bench/pull.sh`).
//!
//! Usage: `mkfixture OUT_DIR [--layers N] [--mib M] [--tag TAG]`
//! (defaults: 4 random layers, 200 MiB of random data, tag `bench`).
//! Prints the manifest digest.

use std::path::PathBuf;

use zlayer_image::fixtures::{
    busybox_rootfs, EntryMeta, FixtureConfig, ImageBuilder, LayerBuilder, LayerCompression,
};

/// Files per random layer.
const FILES_PER_LAYER: usize = 8;

/// Deterministic incompressible bytes (xorshift64).
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next() else {
        eprintln!("usage: mkfixture OUT_DIR [--layers N] [--mib M] [--tag TAG]");
        std::process::exit(2);
    };
    let (mut layers, mut mib, mut tag) = (4usize, 200usize, "bench".to_string());
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--layers" => layers = value.parse()?,
            "--mib" => mib = value.parse()?,
            "--tag" => tag = value,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let mut image = ImageBuilder::new(
        &format!("localhost/zlayer/bench:{tag}"),
        FixtureConfig::standard("bench"),
    )?;
    let mut base = LayerBuilder::new();
    busybox_rootfs(&mut base)?;
    image.layer(&base.finish()?, LayerCompression::Gzip)?;
    let per_file = (mib << 20) / layers.max(1) / FILES_PER_LAYER;
    for i in 0..layers {
        let mut layer = LayerBuilder::new();
        layer.dir(&format!("random{i}"), &EntryMeta::mode(0o755))?;
        for f in 0..FILES_PER_LAYER {
            let data = random_bytes(per_file, (i * FILES_PER_LAYER + f + 1) as u64);
            layer.file(
                &format!("random{i}/file{f}.bin"),
                &data,
                &EntryMeta::mode(0o644),
            )?;
        }
        image.layer(&layer.finish()?, LayerCompression::Gzip)?;
    }
    let img = image.write_layout(&PathBuf::from(out))?;
    println!("{}", img.manifest_digest);
    Ok(())
}
