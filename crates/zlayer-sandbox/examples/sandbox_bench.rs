//! One sandbox run for benchmarks: stores `--rootfs` as an image in the
//! node's image store (a no-op after the first time), then create + start +
//! wait + remove of `-- CMD...` through the node's hosted runtime.
//! Exits with the workload's exit code.
//!
//! ```text
//! sandbox_bench --data /tmp/sbx --rootfs /tmp/rootfs -- /bin/true
//! ```
//! The monitor binary `zlayer-sandbox-shim` must sit next to this example's
//! directory (`cargo build --release -p zlayer-sandbox --bins --example sandbox_bench`).
//! With `SANDBOX_BENCH_PHASES=1` it prints the wall time of each phase (µs)
//! on stderr: `new register create start wait remove drop`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zlayer_hosting::HostedRuntime;
use zlayer_runtime::{ContainerId, NewContainer, Runtime};
use zlayer_sandbox::{SandboxConfig, SandboxLauncher};
use zlayer_spec::{Isolation, ServiceSpec};

const IMAGE: &str = "localhost/bench/rootfs:latest";

fn usage() -> ! {
    eprintln!("usage: sandbox_bench --data DIR --rootfs DIR -- CMD [ARGS...]");
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut data, mut rootfs, mut cmd) = (None, None, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--data" => data = args.next().map(PathBuf::from),
            "--rootfs" => rootfs = args.next().map(PathBuf::from),
            "--" => {
                cmd = args.by_ref().collect();
            }
            _ => usage(),
        }
    }
    let (Some(data), Some(rootfs)) = (data, rootfs) else {
        usage()
    };
    if cmd.is_empty() {
        usage();
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sandbox_bench: {e}");
            std::process::exit(1);
        }
    };
    match rt.block_on(run(data, rootfs, cmd)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("sandbox_bench: {e}");
            std::process::exit(1);
        }
    }
}

/// Wall-clock phase timer, printing only when `SANDBOX_BENCH_PHASES` is set.
struct Phases {
    on: bool,
    last: Instant,
    out: Vec<String>,
}

impl Phases {
    fn new() -> Self {
        Phases {
            on: std::env::var_os("SANDBOX_BENCH_PHASES").is_some(),
            last: Instant::now(),
            out: Vec::new(),
        }
    }
    fn mark(&mut self, name: &str) {
        if self.on {
            let now = Instant::now();
            self.out
                .push(format!("{name}={}", (now - self.last).as_micros()));
            self.last = now;
        }
    }
}

impl Drop for Phases {
    fn drop(&mut self) {
        if self.on {
            eprintln!("{}", self.out.join(" "));
        }
    }
}

async fn run(data: PathBuf, rootfs: PathBuf, cmd: Vec<String>) -> zlayer_runtime::Result<i32> {
    let mut phases = Phases::new();
    let images = zlayer_image::ImageStore::open(&data)
        .map_err(|e| zlayer_runtime::RuntimeError::Configuration(e.to_string()))?;
    let runtime = HostedRuntime::new(
        images,
        vec![Arc::new(SandboxLauncher::new(SandboxConfig::new(&data)))],
        Isolation::Sandbox,
    )?;
    phases.mark("new");
    register(&runtime, &rootfs)?;
    phases.mark("register");
    let id = ContainerId::new(format!("bench-{}", std::process::id()), 0);
    let mut spec = ServiceSpec::minimal("bench", IMAGE);
    spec.command.entrypoint = Some(cmd);
    // Like `zlayer run --rm`: removed right after, so its record is not
    // flushed to disk (an ephemeral container).
    let mut new = NewContainer::new(id.clone(), spec);
    new.ephemeral = true;
    runtime.create_container(&new).await?;
    phases.mark("create");
    runtime.start_container(&id).await?;
    phases.mark("start");
    let code = tokio::time::timeout(Duration::from_secs(60), runtime.wait_container(&id))
        .await
        .map_err(|_| {
            zlayer_runtime::RuntimeError::Internal("the workload did not end in 60 s".into())
        })??;
    phases.mark("wait");
    runtime.remove_container(&id).await?;
    phases.mark("remove");
    drop(runtime);
    phases.mark("drop");
    Ok(code)
}

/// Stores `rootfs` as [`IMAGE`] unless the store has it.
fn register(runtime: &HostedRuntime, rootfs: &std::path::Path) -> zlayer_runtime::Result<()> {
    let store = runtime.images();
    let err = |e: zlayer_image::Error| zlayer_runtime::RuntimeError::Internal(e.to_string());
    if store.lookup(IMAGE).map_err(err)?.is_some() {
        return Ok(());
    }
    let layout = rootfs.with_extension("layout");
    let _ = std::fs::remove_dir_all(&layout);
    zlayer_image::fixtures::directory_image(IMAGE, rootfs)
        .and_then(|i| i.write_layout(&layout))
        .map_err(err)?;
    store.load(&layout, Some(IMAGE)).map_err(err)?;
    let _ = std::fs::remove_dir_all(&layout);
    Ok(())
}
