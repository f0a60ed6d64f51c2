//! Drives the `container` runtime for `bench/lifecycle.sh`, without the CLI.
//!
//! ```text
//! lifecycle_bench --root DIR [--shim PATH] [--network MODE] setup
//!     load the busybox fixture into DIR
//! lifecycle_bench --root DIR lifecycle N
//!     N × (create + start + wait + remove) of `true`; prints one line per
//!     iteration (milliseconds) and a summary line
//! lifecycle_bench --root DIR bundle OUT
//!     writes an OCI bundle for runc with the same config.json and a copy of
//!     the same rootfs (args `true`)
//! lifecycle_bench --root DIR idle N
//!     starts N `sleep` containers at once, prints the monitors' and this
//!     process's memory, removes them
//! ```
//!
//! Containers use `--network none` (an empty namespace with `lo`, what runc
//! gets from the bundle), unless `--network bridge` (or `host`) asks for
//! another mode: comparing `lifecycle` under `none` and `bridge` gives the
//! cost of attaching and detaching a bridge network.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zlayer_container::oci_spec_builder::default_capability_names;
use zlayer_container::seccomp_profile::default_profile;
use zlayer_container::{ContainerConfig, ContainerLauncher, ContainerPaths};
use zlayer_hosting::HostedRuntime;
use zlayer_image::fixtures::{self, FixtureOptions};
use zlayer_runtime::{ContainerId, Runtime};
use zlayer_spec::{Isolation, ServiceSpec};

type ContainerRuntime = HostedRuntime;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// `println!` that ignores a closed stdout (e.g. piped into `head`), so a
/// run is never cut short half-way, leaving a container behind.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

fn spec(name: &str, script: &[&str]) -> ServiceSpec {
    let mut s = ServiceSpec::minimal(name, fixtures::BUSYBOX_REF);
    s.command.entrypoint = Some(script.iter().map(|a| a.to_string()).collect());
    s.network_mode = NETWORK
        .get()
        .cloned()
        .unwrap_or(zlayer_spec::NetworkMode::None);
    s
}

/// The network mode of every container (`--network`, default `none`).
static NETWORK: std::sync::OnceLock<zlayer_spec::NetworkMode> = std::sync::OnceLock::new();

fn usage() -> ! {
    eprintln!("usage: lifecycle_bench --root DIR [--shim PATH] [--network MODE] (setup | lifecycle N | bundle OUT | idle N)");
    std::process::exit(2)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut root = None;
    let mut shim = zlayer_sys::exe::sibling(zlayer_container::MONITOR_NAME);
    while args.first().is_some_and(|a| a.starts_with("--")) {
        let flag = args.remove(0);
        if args.is_empty() {
            usage();
        }
        let value = args.remove(0);
        match flag.as_str() {
            "--root" => root = Some(PathBuf::from(value)),
            "--shim" => shim = PathBuf::from(value),
            "--network" => {
                let _ = NETWORK.set(value.parse().unwrap_or_else(|_| usage()));
            }
            _ => usage(),
        }
    }
    let Some(root) = root else { usage() };
    if !shim.is_file() {
        // examples live one directory below the binaries
        if let Some(alt) = shim
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("zlayer-shim"))
        {
            shim = alt;
        }
    }
    let mut config = ContainerConfig::new(&root);
    config.monitor = Some(shim);
    let images = zlayer_image::ImageStore::open(&root)?;
    let rt = Arc::new(HostedRuntime::new(
        images,
        vec![Arc::new(ContainerLauncher::new(config)?)],
        Isolation::Container,
    )?);
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let arg = args.get(1).cloned().unwrap_or_default();
    match cmd {
        "setup" => setup(&rt),
        "lifecycle" => lifecycle(&rt, arg.parse().unwrap_or_else(|_| usage())).await,
        "bundle" => bundle(&rt, Path::new(&arg)).await,
        "idle" => idle(&rt, arg.parse().unwrap_or_else(|_| usage())).await,
        _ => usage(),
    }
}

fn setup(rt: &ContainerRuntime) -> Res<()> {
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path().join("busybox");
    fixtures::busybox_layout(&layout, &FixtureOptions::default())?;
    rt.images().load(&layout, Some(fixtures::BUSYBOX_REF))?;
    out!("loaded {}", fixtures::BUSYBOX_REF);
    Ok(())
}

async fn lifecycle(rt: &ContainerRuntime, n: usize) -> Res<()> {
    let spec = spec("bench", &["true"]);
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let id = ContainerId::new(format!("bench{}", std::process::id()), i as u32);
        let t = Instant::now();
        rt.create_from_spec(&id, &spec).await?;
        let created = t.elapsed();
        rt.start_container(&id).await?;
        let started = t.elapsed();
        let code = rt.wait_container(&id).await?;
        let waited = t.elapsed();
        rt.remove_container(&id).await?;
        let d = t.elapsed();
        if code != 0 {
            return Err(format!("`true` exited with {code}").into());
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        out!(
            "iteration {i} {:.3} ms (create {:.1}, start {:.1}, wait {:.1}, remove {:.1})",
            ms(d),
            ms(created),
            ms(started - created),
            ms(waited - started),
            ms(d - waited)
        );
        times.push(d);
    }
    let total: Duration = times.iter().sum();
    times.sort();
    out!(
        "zlayer n={n} total_s={:.3} mean_ms={:.2} median_ms={:.2}",
        total.as_secs_f64(),
        total.as_secs_f64() * 1000.0 / n.max(1) as f64,
        times
            .get(n / 2)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    );
    Ok(())
}

/// Writes `OUT/config.json` and `OUT/rootfs` from a created (not started)
/// container, adapted for runc: its own cgroup, copied /etc files, and the
/// seccomp profile inline (masked comparisons in runc's argument order).
async fn bundle(rt: &ContainerRuntime, out: &Path) -> Res<()> {
    let id = ContainerId::new(format!("bundle{}", std::process::id()), 0);
    rt.create_from_spec(&id, &spec("bundle", &["true"])).await?;
    let paths = ContainerPaths::of(rt.state_dir(&id)?)?;
    let result = (|| -> Res<()> {
        std::fs::create_dir_all(out)?;
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(paths.rootfs())
            .arg(out.join("rootfs"))
            .status()?;
        if !status.success() {
            return Err("copying the rootfs failed".into());
        }
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(paths.oci_config())?)?;
        config["root"]["path"] = "rootfs".into();
        config["linux"]["cgroupsPath"] = "/zlayer-runc-bench".into();
        if let Some(mounts) = config["mounts"].as_array_mut() {
            for m in mounts.iter_mut() {
                let src = m["source"].as_str().unwrap_or("").to_string();
                if src.starts_with(&paths.dir.to_string_lossy().to_string()) {
                    let name = Path::new(&src).file_name().unwrap_or_default().to_owned();
                    std::fs::copy(&src, out.join(&name))?;
                    m["source"] = out.join(&name).to_string_lossy().to_string().into();
                }
            }
        }
        // zlayer compiles the profile once and installs it in its executor;
        // runc gets the same profile in config.json.
        let profile = default_profile(&default_capability_names());
        config["linux"]["seccomp"] = serde_json::to_value(&profile)?;
        if let Some(rules) = config["linux"]["seccomp"]["syscalls"].as_array_mut() {
            for r in rules.iter_mut() {
                if let Some(args) = r["args"].as_array_mut() {
                    for a in args.iter_mut() {
                        if a["op"] == "SCMP_CMP_MASKED_EQ" {
                            let (v, v2) = (a["value"].clone(), a["valueTwo"].clone());
                            a["value"] = v2;
                            a["valueTwo"] = v;
                        }
                    }
                }
            }
        }
        std::fs::write(out.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
        Ok(())
    })();
    rt.remove_container(&id).await?;
    result?;
    out!("bundle written to {}", out.display());
    Ok(())
}

fn status_kib(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn idle(rt: &Arc<ContainerRuntime>, n: usize) -> Res<()> {
    let ids: Vec<ContainerId> = (0..n)
        .map(|i| ContainerId::new(format!("idle{}", std::process::id()), i as u32))
        .collect();
    let t = Instant::now();
    let tasks = ids.iter().map(|id| {
        let rt = rt.clone();
        let id = id.clone();
        tokio::spawn(async move {
            rt.create_from_spec(&id, &spec("idle", &["sleep", "300"]))
                .await?;
            rt.start_container(&id).await.map(|_| ())
        })
    });
    let results = futures_util::future::join_all(tasks).await;
    let started = t.elapsed();
    let mut failures = 0;
    for r in results {
        if !matches!(r, Ok(Ok(()))) {
            failures += 1;
        }
    }
    // Let the monitors settle into their idle loop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut rss, mut pss, mut count) = (0u64, 0u64, 0u64);
    for id in &ids {
        let dir = rt.state_dir(id)?;
        if let Ok(Some(m)) = zlayer_hosting::records::read_monitor(&dir) {
            rss += status_kib(m.monitor.pid, "VmRSS:");
            pss += pss_kib(m.monitor.pid);
            count += 1;
        }
    }
    let me = std::process::id() as i32;
    out!(
        "idle n={n} started={count} failures={failures} start_all_s={:.2} \
         shim_rss_sum_kib={rss} shim_rss_per_container_kib={} shim_pss_per_container_kib={} \
         agent_rss_kib={} agent_pss_kib={}",
        started.as_secs_f64(),
        rss / count.max(1),
        pss / count.max(1),
        status_kib(me, "VmRSS:"),
        pss_kib(me)
    );
    let removals = ids.iter().map(|id| {
        let rt = rt.clone();
        let id = id.clone();
        tokio::spawn(async move { rt.remove_container(&id).await })
    });
    for r in futures_util::future::join_all(removals).await {
        r??;
    }
    Ok(())
}
