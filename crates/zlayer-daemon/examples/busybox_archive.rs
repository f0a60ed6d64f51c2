//! Writes the busybox fixture image as a docker-archive tar (for loading the
//! very same image into zlayer, podman or docker in `bench/run.sh`).
//!
//! Usage: `busybox_archive OUT.tar [REFERENCE]` (default reference
//! `localhost/zlayer/busybox:latest`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or("usage: busybox_archive OUT.tar [REFERENCE]")?;
    let reference = args
        .next()
        .unwrap_or_else(|| zlayer_image::fixtures::BUSYBOX_REF.to_string());
    let img = zlayer_image::fixtures::busybox_docker_archive(
        std::path::Path::new(&out),
        &zlayer_image::fixtures::FixtureOptions {
            reference: Some(reference),
            ..Default::default()
        },
    )?;
    println!("{} {}", img.reference, img.manifest_digest);
    Ok(())
}
