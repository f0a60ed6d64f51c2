//! Benchmark and helper for the `vm` isolation (the CLI is wired by the
//! `zlayer` binary; this example needs only the library).
//!
//! ```text
//! vm_bench build-kernel OUT_DIR          # guest from this workspace + Debian kernel
//! vm_bench run   [--runs N] [--accel auto|tcg|kvm] [--root DIR] [--vcpus N] [--memory-mib M]
//! vm_bench idle  [--accel ...] [--root DIR]                       # QEMU RSS of an idle VM
//! ```
//! The kernel bundle comes from `ZLAYER_VM_KERNEL`/`ZLAYER_VM_INITRD` or
//! `--bundle DIR` (default `target/vm-cache/bundle`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zlayer_hosting::HostedRuntime;
use zlayer_image::fixtures::{self, FixtureOptions};
use zlayer_image::ImageStore;
use zlayer_runtime::{ContainerId, Runtime};
use zlayer_spec::Isolation;
use zlayer_vm::{self as vm, Accel, KernelBundle, VmConfig, VmLauncher};

type VmRuntime = HostedRuntime;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

fn build_kernel(out: &Path) -> Res<()> {
    let ws = workspace();
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| "cargo".into());
    let guest = vm::build_guest_binary(&cargo, &ws, &target().join("vm-cache/guest"), &[])?;
    let t0 = Instant::now();
    let bundle = vm::build_kernel_bundle(out, &vm::BundleOptions::new(guest))?;
    println!(
        "kernel bundle: {} and {} ({} ms)",
        bundle.kernel.display(),
        bundle.initrd.display(),
        t0.elapsed().as_millis()
    );
    Ok(())
}

fn setup(args: &[String]) -> Res<(VmRuntime, Accel, String, PathBuf)> {
    let root = PathBuf::from(arg(args, "--root").unwrap_or_else(|| "/tmp/zlvm-bench".into()));
    let bundle_dir = arg(args, "--bundle")
        .map(PathBuf::from)
        .unwrap_or_else(|| target().join("vm-cache/bundle"));
    let accel = match arg(args, "--accel").as_deref() {
        Some("tcg") => Accel::Tcg,
        Some("kvm") => Accel::Kvm,
        _ => Accel::Auto,
    };
    std::fs::create_dir_all(&root)?;
    let store = ImageStore::open(&root)?;
    let layout = root.join("layout");
    let img = if layout.exists() {
        fixtures::BUSYBOX_REF.to_string()
    } else {
        fixtures::busybox_layout(&layout, &FixtureOptions::default())?.reference
    };
    if store.lookup(&img)?.is_none() {
        store.load(&layout, None)?;
    }
    let mut cfg = VmConfig::new(root.join("vm"));
    if std::env::var_os(vm::KERNEL_ENV).is_none() {
        let b = KernelBundle::in_dir(&bundle_dir);
        cfg.kernel = Some(b.kernel);
        cfg.initrd = Some(b.initrd);
    }
    cfg.accel = accel;
    if let Some(v) = arg(args, "--vcpus").and_then(|v| v.parse().ok()) {
        cfg.default_vcpus = v;
    }
    if let Some(m) = arg(args, "--memory-mib").and_then(|v| v.parse().ok()) {
        cfg.default_memory_mib = m;
    }
    if cfg.monitor.is_none() {
        // examples live one directory below the binaries
        cfg.monitor = zlayer_sys::exe::find_helper(vm::MONITOR_NAME);
    }
    let launcher = VmLauncher::new(cfg);
    let accel = launcher.accelerator()?;
    let rt = HostedRuntime::new(store, vec![Arc::new(launcher)], Isolation::Vm)?;
    Ok((rt, accel, img, root))
}

async fn run(args: &[String]) -> Res<()> {
    let (rt, accel, img, _) = setup(args)?;
    let runs: usize = arg(args, "--runs")
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let mut times = Vec::new();
    for i in 0..runs {
        let id = ContainerId::new("bench", i as u32);
        let mut spec = zlayer_spec::ServiceSpec::minimal("bench", img.clone());
        spec.command.entrypoint = Some(vec!["true".into()]);
        let t0 = Instant::now();
        rt.create_from_spec(&id, &spec).await?;
        let created = t0.elapsed();
        rt.start_container(&id).await?;
        let started = t0.elapsed();
        let code = rt.wait_container(&id).await?;
        let wall = t0.elapsed();
        let console =
            std::fs::read_to_string(rt.state_dir(&id)?.dir.join("console.log")).unwrap_or_default();
        let ready = console
            .lines()
            .find(|l| l.contains("zlayer-guest: ready"))
            .unwrap_or("")
            .to_string();
        rt.remove_container(&id).await?;
        assert_eq!(code, 0, "`true` exited {code}");
        println!(
            "run {i}: {} ms (create {} ms, start incl. boot {} ms, exit {} ms) [{ready}]",
            wall.as_millis(),
            created.as_millis(),
            (started - created).as_millis(),
            (wall - started).as_millis()
        );
        times.push(wall);
    }
    times.sort();
    let median = times[times.len() / 2];
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "RESULT run-true accel={} runs={runs} min_ms={} median_ms={} mean_ms={} max_ms={}",
        accel.qemu_name(),
        times[0].as_millis(),
        median.as_millis(),
        mean.as_millis(),
        times[times.len() - 1].as_millis()
    );
    Ok(())
}

async fn idle(args: &[String]) -> Res<()> {
    let (rt, accel, img, _) = setup(args)?;
    let id = ContainerId::new("idle", 0);
    let mut spec = zlayer_spec::ServiceSpec::minimal("idle", img);
    spec.command.entrypoint = Some(vec!["sleep".into(), "600".into()]);
    rt.create_from_spec(&id, &spec).await?;
    rt.start_container(&id).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = rt.get_container_pid(&id).await?.ok_or("no QEMU pid")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let stats = rt.get_container_stats(&id).await?;
    rt.remove_container(&id).await?;
    println!(
        "RESULT idle accel={} qemu_rss_mib={:.1} guest_used_mib={:.1} guest_mem_mib={}",
        accel.qemu_name(),
        rss_kb as f64 / 1024.0,
        stats.memory_used_bytes as f64 / 1048576.0,
        stats.memory_limit_bytes / 1048576
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("build-kernel") => {
            build_kernel(Path::new(args.get(1).ok_or("usage: build-kernel OUT_DIR")?))
        }
        Some("run") => run(&args).await,
        Some("idle") => idle(&args).await,
        _ => Err("usage: vm_bench build-kernel OUT | run [--runs N] [--accel A] | idle".into()),
    }
}
