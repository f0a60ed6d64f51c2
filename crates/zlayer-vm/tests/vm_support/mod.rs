//! Shared setup of the VM integration tests: a VM-only node over a fresh
//! root with busybox loaded; the kernel bundle is `zlayer-testkit`'s.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use zlayer_hosting::HostedRuntime;
use zlayer_image::ImageStore;
use zlayer_runtime::{ContainerId, Runtime};
use zlayer_spec::Isolation;
use zlayer_vm::{Accel, KernelBundle, VmConfig, VmLauncher};

/// The runtime the tests drive: a node with the vm isolation only.
pub type VmRuntime = HostedRuntime;

/// The kernel bundle (built once per target directory).
pub fn bundle() -> KernelBundle {
    zlayer_testkit::kernel::bundle()
}

/// A runtime over a fresh root with the busybox fixture loaded.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub rt: Arc<VmRuntime>,
    pub image: String,
}

/// A runtime over the data root `root` with `config`.
pub fn runtime_at(root: &Path, config: VmConfig) -> VmRuntime {
    let images = ImageStore::open(root).unwrap();
    HostedRuntime::new(
        images,
        vec![Arc::new(VmLauncher::new(config))],
        Isolation::Vm,
    )
    .unwrap()
}

impl Env {
    pub fn new(accel: Accel) -> Env {
        let bundle = bundle();
        // Short paths: unix socket names are limited to ~100 bytes.
        let dir = tempfile::Builder::new()
            .prefix("zlvm")
            .tempdir_in("/tmp")
            .unwrap();
        let rt = runtime_at(dir.path(), Self::config(dir.path(), &bundle, accel));
        zlayer_testkit::fixture::load_busybox(rt.images(), zlayer_testkit::fixture::BUSYBOX);
        Env {
            dir,
            rt: Arc::new(rt),
            image: zlayer_testkit::fixture::BUSYBOX.into(),
        }
    }

    pub fn config(root: &Path, bundle: &KernelBundle, accel: Accel) -> VmConfig {
        let mut c = VmConfig::new(root.join("vm"));
        c.kernel = Some(bundle.kernel.clone());
        c.initrd = Some(bundle.initrd.clone());
        c.accel = accel;
        c.default_memory_mib = 256;
        c.default_vcpus = 1;
        c.monitor = Some(env!("CARGO_BIN_EXE_zlayer-vm-shim").into());
        c
    }

    /// A second runtime over the same root (a restarted agent).
    pub fn reopen(&self) -> VmRuntime {
        runtime_at(
            self.dir.path(),
            Self::config(self.dir.path(), &bundle(), Accel::Tcg),
        )
    }

    pub fn spec(&self, name: &str, argv: &[&str]) -> zlayer_spec::ServiceSpec {
        let mut spec = zlayer_spec::ServiceSpec::minimal(name, self.image.clone());
        spec.command.entrypoint = Some(argv.iter().map(|s| s.to_string()).collect());
        spec
    }
}

impl Drop for Env {
    /// A failed test must not leak VMs or mounts.
    fn drop(&mut self) {
        zlayer_testkit::leaks::clean_up_root(self.dir.path());
    }
}

/// Waits until the logs contain `needle`.
pub async fn wait_for_log(
    rt: &VmRuntime,
    id: &ContainerId,
    needle: &str,
    timeout: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if let Ok(logs) = rt.get_logs(id).await {
            if logs.iter().any(|l| l.message.contains(needle)) {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// No QEMU process of this test root is left.
pub fn no_qemu_left(root: &Path) -> bool {
    zlayer_testkit::leaks::pids_with_cmdline(&["qemu", &root.to_string_lossy()]).is_empty()
}
