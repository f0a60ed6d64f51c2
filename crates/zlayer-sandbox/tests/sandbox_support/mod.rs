//! Shared helpers of the sandbox integration tests: a busybox rootfs, a
//! runtime in a temporary directory, specs and polling helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zlayer_hosting::HostedRuntime;
use zlayer_runtime::{ContainerId, ContainerState, Runtime};
use zlayer_sandbox::{SandboxConfig, SandboxLauncher};
use zlayer_spec::{Isolation, ServiceSpec};

/// The runtime the tests drive: a node with the sandbox isolation only.
pub type SandboxRuntime = HostedRuntime;

/// Busybox applets linked into the test rootfs.
pub const APPLETS: &[&str] = &[
    "sh", "echo", "sleep", "cat", "ls", "true", "false", "env", "mount", "unshare", "nc", "kill",
    "tail", "head", "touch", "id", "mkdir", "rm", "dd", "wc", "pwd", "test", "printf", "grep",
];

/// The image name the tests register.
pub const IMAGE: &str = "localhost/busybox:test";

/// Builds, under `parent`, a directory shaped like an image:
/// `bin/busybox` (Debian's busybox-static) with relative applet symlinks,
/// `etc/passwd`, `mnt/`, and one absolute link (`usr/bin/env`).
pub fn busybox_rootfs(parent: &Path) -> PathBuf {
    let base = parent.join("busybox-rootfs");
    std::fs::create_dir_all(base.join("bin")).unwrap();
    std::fs::create_dir_all(base.join("etc")).unwrap();
    std::fs::create_dir_all(base.join("usr/bin")).unwrap();
    std::fs::create_dir_all(base.join("mnt")).unwrap();
    std::fs::copy("/bin/busybox", base.join("bin/busybox"))
        .expect("busybox-static must be installed");
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", base.join("bin").join(a)).unwrap();
    }
    // An absolute link, as image layers have them: the clone must rewrite
    // it to stay inside the rootfs.
    std::os::unix::fs::symlink("/bin/busybox", base.join("usr/bin/env")).unwrap();
    std::fs::write(
        base.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n",
    )
    .unwrap();
    base
}

pub use zlayer_testkit::TestDir;

/// The monitor under test: this build's, or `$ZLAYER_SANDBOX_SHIM` (to run
/// the suite against another build of it, e.g. the static one from
/// `scripts/build-static`).
pub fn shim_path() -> std::path::PathBuf {
    std::env::var_os("ZLAYER_SANDBOX_SHIM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_zlayer-sandbox-shim").into())
}

/// The data root of a test runtime in `tmp`.
pub fn data_root(tmp: &Path) -> PathBuf {
    tmp.join("data")
}

/// A runtime over a fresh temporary directory (kept alive by the guard).
pub fn runtime(gpu_access: bool) -> (SandboxRuntime, TestDir) {
    let tmp = TestDir::create("zl-sbx");
    let rt = runtime_at(&data_root(tmp.path()), gpu_access);
    (rt, tmp)
}

/// A runtime over the data root `root`.
pub fn runtime_at(root: &Path, gpu_access: bool) -> SandboxRuntime {
    let images = zlayer_image::ImageStore::open(root).unwrap();
    let mut config = SandboxConfig::new(root);
    config.gpu_access = gpu_access;
    config.monitor = Some(shim_path());
    HostedRuntime::new(
        images,
        vec![Arc::new(SandboxLauncher::new(config))],
        Isolation::Sandbox,
    )
    .unwrap()
}

/// Stores the tree under `dir` as image `reference` in the runtime's image
/// store.
pub fn register(rt: &SandboxRuntime, reference: &str, dir: &Path) {
    let layout = dir.with_extension("layout");
    let _ = std::fs::remove_dir_all(&layout);
    zlayer_image::fixtures::directory_image(reference, dir)
        .unwrap()
        .write_layout(&layout)
        .unwrap();
    rt.images().load(&layout, Some(reference)).unwrap();
    let _ = std::fs::remove_dir_all(&layout);
}

/// A runtime with the busybox image registered.
pub async fn ready_runtime(gpu_access: bool) -> (SandboxRuntime, TestDir) {
    let (rt, tmp) = runtime(gpu_access);
    let src = busybox_rootfs(tmp.path());
    register(&rt, IMAGE, &src);
    (rt, tmp)
}

/// A spec running `argv` from the busybox image.
pub fn spec(name: &str, argv: &[&str]) -> ServiceSpec {
    let mut s = ServiceSpec::minimal(name, IMAGE);
    s.command.entrypoint = Some(argv.iter().map(|a| a.to_string()).collect());
    s
}

/// A spec with one tcp endpoint named `http` on port 8080.
pub fn spec_with_endpoint(name: &str, argv: &[&str]) -> ServiceSpec {
    let mut s = spec(name, argv);
    s.endpoints.push(zlayer_spec::EndpointSpec {
        name: "http".into(),
        protocol: zlayer_spec::Protocol::Tcp,
        port: 8080,
        expose: Default::default(),
    });
    s
}

/// A container id.
pub fn cid(name: &str) -> ContainerId {
    ContainerId::new(name, 1)
}

/// Polls until the state matches `pred` or `timeout` passes.
pub async fn wait_state(
    rt: &dyn Runtime,
    id: &ContainerId,
    timeout: Duration,
    pred: impl Fn(&ContainerState) -> bool,
) -> ContainerState {
    let start = Instant::now();
    loop {
        let st = rt.container_state(id).await.unwrap();
        if pred(&st) || start.elapsed() > timeout {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The container's directory.
pub fn cdir(rt: &SandboxRuntime, id: &ContainerId) -> PathBuf {
    rt.state_dir(id).unwrap().dir
}

/// Reads the policy file.
pub fn policy(rt: &SandboxRuntime, id: &ContainerId) -> String {
    std::fs::read_to_string(cdir(rt, id).join("sandbox.policy")).unwrap()
}

/// Runs `argv` in a fresh container to completion; returns (code, logs).
pub async fn run_to_end(rt: &SandboxRuntime, name: &str, s: &ServiceSpec) -> (i32, String) {
    let id = cid(name);
    rt.create_from_spec(&id, s).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let code = tokio::time::timeout(Duration::from_secs(20), rt.wait_container(&id))
        .await
        .expect("container did not end")
        .unwrap();
    let logs = rt.get_logs(&id).await.unwrap();
    let text = logs
        .iter()
        .map(|e| e.message.clone())
        .collect::<Vec<_>>()
        .join("\n");
    rt.remove_container(&id).await.unwrap();
    (code, text)
}

/// The host port of the container's first endpoint (its `PORT`).
pub async fn port_of(rt: &SandboxRuntime, id: &ContainerId) -> u16 {
    rt.port_mappings_container(id).await.unwrap()[0].host_port
}
