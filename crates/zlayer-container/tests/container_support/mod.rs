//! Shared helpers of the `container_*` integration tests: a runtime on a
//! fresh data root with the busybox fixture loaded, unique container ids,
//! and leak checks (mounts, cgroups, monitor processes).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zlayer_container::{cgroups::ContainerCgroup, ContainerConfig, ContainerLauncher};
use zlayer_hosting::HostedRuntime;
use zlayer_image::fixtures;
use zlayer_network::{NetworkManager, NetworkOptions};
use zlayer_runtime::*;
use zlayer_spec::{Isolation, ServiceSpec};

/// The runtime the tests drive: a node with the container isolation only.
pub type ContainerRuntime = HostedRuntime;

/// The busybox image every test runs.
pub const IMAGE: &str = fixtures::BUSYBOX_REF;

/// A runtime on its own data root (removed on drop).
pub struct TestEnv {
    /// The test's own bridge network, torn down after the containers and
    /// before the root (fields drop in declaration order).
    pub net: Option<NetGuard>,
    pub rt: Arc<ContainerRuntime>,
    pub root: tempfile::TempDir,
}

/// Network options of a test: its own bridge `zlc<n>` on 10.219.<n>.0/24,
/// user networks from 10.219.<100+2n>.0/23, the `zlayer-dns` built with the
/// tests, and a DNS upstream on loopback where nothing answers (no query
/// leaves the host).
pub fn test_network(n: u8) -> NetworkOptions {
    NetworkOptions {
        default_bridge: format!("zlc{n}"),
        default_subnet: format!("10.219.{n}.0/24").parse().unwrap(),
        bridge_prefix: format!("zlc{n}n"),
        subnet_pool: format!("10.219.{}.0/23", 100 + 2 * u32::from(n))
            .parse()
            .unwrap(),
        dns_binary: Some(
            std::env::current_exe()
                .unwrap()
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .join("zlayer-dns"),
        ),
        dns_upstreams: vec!["127.0.0.1:9".parse().unwrap()],
        mtu: 65535,
    }
}

/// Removes a test's networks, bridges and rules (after its containers).
pub struct NetGuard {
    pub mgr: NetworkManager,
    pub opts: NetworkOptions,
    /// `<root>/network`.
    pub dir: PathBuf,
}

impl Drop for NetGuard {
    fn drop(&mut self) {
        if let Ok(nets) = self.mgr.list_networks() {
            for n in &nets {
                // The DNS responders would outlive the test's root.
                if let Some(pid) = zlayer_network::dns::running(&self.dir, &n.name) {
                    unsafe {
                        libc::kill(pid as i32, libc::SIGKILL);
                    }
                }
                if n.name != "bridge" {
                    let _ = self.mgr.remove_network(&n.name);
                }
            }
        }
        // The default network's bridge and table too.
        if let Some(root) = self.dir.parent() {
            zlayer_testkit::leaks::remove_bridges_of(root);
        }
        let _ = self.mgr.prune();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.opts.default_bridge])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn fixture_layout() -> &'static Path {
    zlayer_testkit::fixture::busybox()
}

/// The monitor binary built with the tests.
pub fn shim_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zlayer-shim"))
}

/// A runtime over `root` (which must already hold the image) with
/// networking `opts` (default: the root's own).
pub fn runtime_with(root: &Path, opts: Option<NetworkOptions>) -> ContainerRuntime {
    let mut config = ContainerConfig::new(root);
    config.monitor = Some(shim_path());
    if let Some(o) = opts {
        config.network = o;
    }
    let images = zlayer_image::ImageStore::open(root).expect("image store");
    HostedRuntime::new(
        images,
        vec![Arc::new(ContainerLauncher::new(config).expect("launcher"))],
        Isolation::Container,
    )
    .expect("runtime")
}

/// A runtime over `root` (which must already hold the image).
pub fn runtime_at(root: &Path) -> ContainerRuntime {
    runtime_with(root, None)
}

impl TestEnv {
    /// A fresh root with the busybox image loaded.
    pub fn new() -> TestEnv {
        let root = tempfile::Builder::new()
            .prefix("zl-ct")
            .tempdir()
            .expect("tempdir");
        let rt = runtime_at(root.path());
        rt.images()
            .load(fixture_layout(), Some(IMAGE))
            .expect("load busybox");
        TestEnv {
            rt: Arc::new(rt),
            root,
            net: None,
        }
    }

    /// [`TestEnv::new`] whose runtime attaches bridge containers with
    /// `opts` (see [`test_network`]); everything is torn down on drop.
    pub fn with_network(opts: NetworkOptions) -> TestEnv {
        let root = tempfile::Builder::new()
            .prefix("zl-ct")
            .tempdir()
            .expect("tempdir");
        let rt = runtime_with(root.path(), Some(opts.clone()));
        rt.images()
            .load(fixture_layout(), Some(IMAGE))
            .expect("load busybox");
        let mgr = NetworkManager::with_options(root.path(), opts.clone()).expect("network");
        let root_dir = root.path().to_path_buf();
        TestEnv {
            rt: Arc::new(rt),
            root,
            net: Some(NetGuard {
                mgr,
                opts,
                dir: root_dir.join("network"),
            }),
        }
    }

    /// The test's network manager (same root and options as the runtime).
    pub fn net(&self) -> &NetworkManager {
        &self.net.as_ref().expect("TestEnv::with_network").mgr
    }
}

impl Drop for TestEnv {
    /// A failed test must not leave containers, mounts or cgroups behind:
    /// remove whatever is left under the root before it is deleted.
    fn drop(&mut self) {
        let rt = self.rt.clone();
        let cleanup = async move {
            if let Ok(all) = rt.list_containers().await {
                for v in all {
                    let _ = rt.remove_container(&v.record.container).await;
                }
            }
            rt.wait_for_deletions();
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => tokio::task::block_in_place(|| h.block_on(cleanup)),
            Err(_) => {
                if let Ok(r) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    r.block_on(cleanup);
                }
            }
        }
    }
}

/// The cgroup of container `id` of `env`'s root.
pub fn cgroup_of(env: &TestEnv, id: &ContainerId) -> ContainerCgroup {
    ContainerCgroup::new(&zlayer_container::cgroup_path(
        env.root.path(),
        &id.to_string(),
    ))
}

/// Whether `id` is among the runtime's containers.
pub async fn listed(rt: &ContainerRuntime, id: &ContainerId) -> bool {
    rt.list_containers()
        .await
        .unwrap()
        .iter()
        .any(|v| v.record.container == *id)
}

/// A unique container id for this test process.
pub fn unique_id(name: &str) -> ContainerId {
    static N: AtomicU32 = AtomicU32::new(0);
    ContainerId::new(
        format!(
            "{name}{}x{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::Relaxed)
        ),
        1,
    )
}

/// A service running `sh -c script` in busybox.
pub fn sh(name: &str, script: &str) -> ServiceSpec {
    let mut s = ServiceSpec::minimal(name, IMAGE);
    s.command.entrypoint = Some(vec!["sh".into(), "-c".into(), script.into()]);
    s
}

#[allow(unused_imports)]
pub use zlayer_testkit::wait::eventually_async as eventually;

/// Panics if anything of container `id` remains: its state dir, a mount
/// under it, its cgroups, or a monitor process naming its state dir.
pub fn assert_nothing_left(env: &TestEnv, id: &ContainerId) {
    let dir = env.root.path().join("containers").join(id.to_string());
    assert!(!dir.exists(), "state dir {} left", dir.display());
    let mounts = zlayer_testkit::leaks::mounts_under(&dir);
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let cg = cgroup_of(env, id);
    assert!(
        cg.existing_dirs().is_empty(),
        "cgroups left: {:?}",
        cg.existing_dirs()
    );
    // A monitor that removed its own container (delete_on_exit) exits just
    // after deleting the state dir: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !monitor_pids(&dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        monitor_pids(&dir).is_empty(),
        "monitor processes left for {}",
        dir.display()
    );
    // libcontainer's state lived in the state dir's `run/` tmpfs: the
    // checks of the dir and of the mounts under it above cover it.
}

/// Pids of processes holding a file under `dir` open (a monitor holds
/// its log and control socket).
pub fn monitor_pids(dir: &Path) -> Vec<i32> {
    zlayer_testkit::leaks::pids_holding_files_under(dir)
}

/// The stdout lines of a container's logs.
pub async fn stdout_lines(rt: &ContainerRuntime, id: &ContainerId) -> Vec<String> {
    rt.get_logs(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.stream == LogStream::Stdout)
        .map(|e| e.message)
        .collect()
}
