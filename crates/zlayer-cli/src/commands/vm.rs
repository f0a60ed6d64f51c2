//! `zlayer vm build-kernel` and `zlayer vm install-kernel`.

use crate::cli::{BuildKernelArgs, GlobalArgs, InstallKernelArgs};
use crate::output::{print_json, Format};
use std::path::PathBuf;
use std::process::ExitCode;
use zlayer_image::{ImageStore, PullOptions};
use zlayer_vm::{
    build_kernel_bundle, install_bundle_from_image, BundleOptions, KernelBundle, VmConfig,
};

/// Where the vm runtime of this root looks for its kernel.
fn kernel_dir(g: &GlobalArgs) -> PathBuf {
    VmConfig::new(g.root.join("vm")).kernel_dir()
}

fn report(g: &GlobalArgs, bundle: &KernelBundle) -> anyhow::Result<()> {
    match g.format {
        Format::Json => print_json(&serde_json::json!({
            "kernel": bundle.kernel, "initrd": bundle.initrd,
        })),
        Format::Table => {
            println!("kernel: {}", bundle.kernel.display());
            println!("initrd: {}", bundle.initrd.display());
            Ok(())
        }
    }
}

/// Builds the bundle from Debian's kernel package and the static guest agent.
pub async fn build_kernel(g: &GlobalArgs, args: BuildKernelArgs) -> anyhow::Result<ExitCode> {
    let guest = match args.guest {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("zlayer-guest"))
            .ok_or_else(|| anyhow::anyhow!("cannot locate the zlayer executable's directory"))?,
    };
    if !guest.is_file() {
        anyhow::bail!(
            "guest agent {} not found; build it with `RUSTFLAGS='-C target-feature=+crt-static' \
             cargo build --release -p zlayer-guest --target x86_64-unknown-linux-gnu` and pass --guest PATH",
            guest.display()
        );
    }
    let out = args.out.unwrap_or_else(|| kernel_dir(g));
    let mut opts = BundleOptions::new(guest);
    opts.deb = args.deb;
    let bundle = tokio::task::spawn_blocking(move || build_kernel_bundle(&out, &opts)).await??;
    report(g, &bundle)?;
    Ok(ExitCode::SUCCESS)
}

/// Pulls a kernel bundle artifact and installs it where the runtime looks.
pub async fn install_kernel(g: &GlobalArgs, args: InstallKernelArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&g.root)?;
    let store = ImageStore::open(&g.root)?;
    let opts = PullOptions {
        insecure: args.insecure,
        ..Default::default()
    };
    store.pull(&args.reference, &opts).await?;
    let dest = kernel_dir(g);
    let reference = args.reference.clone();
    let bundle =
        tokio::task::spawn_blocking(move || install_bundle_from_image(&store, &reference, &dest))
            .await??;
    report(g, &bundle)?;
    Ok(ExitCode::SUCCESS)
}
