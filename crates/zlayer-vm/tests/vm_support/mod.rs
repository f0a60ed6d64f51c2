//! Shared setup of the VM integration tests: the kernel bundle is built once
//! per target directory (`<target>/vm-cache/bundle`, reused across tests and
//! runs), the guest from this workspace, the kernel from Debian's package.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use zlayer_hosting::HostedRuntime;
use zlayer_image::fixtures::{self, FixtureOptions};
use zlayer_image::ImageStore;
use zlayer_runtime::{ContainerId, Runtime};
use zlayer_spec::Isolation;
use zlayer_vm::{self as vm, Accel, KernelBundle, VmConfig, VmLauncher};

/// The runtime the tests drive: a node with the vm isolation only.
pub type VmRuntime = HostedRuntime;

/// `<target>` (the directory holding `debug/` of this test binary).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

fn flock(path: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    f
}

/// The kernel bundle, built on first use.
pub fn bundle() -> KernelBundle {
    static BUNDLE: OnceLock<KernelBundle> = OnceLock::new();
    static BUILD: Mutex<()> = Mutex::new(());
    if let Some(b) = BUNDLE.get() {
        return b.clone();
    }
    let _g = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(b) = BUNDLE.get() {
        return b.clone();
    }
    let cache = target_dir().join("vm-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let _lock = flock(&cache.join("build.lock"));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| "cargo".into());
    // Cargo itself decides whether the guest needs rebuilding.
    let guest = vm::build_guest_binary(&cargo, &workspace, &cache.join("guest"))
        .expect("build the guest agent");
    let deb_dir = cache.join("deb");
    std::fs::create_dir_all(&deb_dir).unwrap();
    let deb = match find_deb(&deb_dir) {
        Some(d) => d,
        None => vm::download_kernel_deb("linux-image-amd64", &deb_dir)
            .or_else(|_| {
                let _ = std::process::Command::new("apt-get")
                    .args(["update", "-qq"])
                    .status();
                vm::download_kernel_deb("linux-image-amd64", &deb_dir)
            })
            .expect("apt-get download linux-image-amd64"),
    };
    let out = cache.join("bundle");
    let stamp = out.join("guest.stamp");
    let guest_key = format!(
        "{:?}",
        std::fs::metadata(&guest).and_then(|m| m.modified()).ok()
    );
    let bundle = KernelBundle::in_dir(&out);
    if !(bundle.exists()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(guest_key.as_str()))
    {
        let mut opts = vm::BundleOptions::new(&guest);
        opts.deb = Some(deb);
        vm::build_kernel_bundle(&out, &opts).expect("build the kernel bundle");
        std::fs::write(&stamp, &guest_key).unwrap();
    }
    let _ = BUNDLE.set(bundle.clone());
    bundle
}

fn find_deb(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("linux-image-")
                    && n.ends_with(".deb")
                    && !n.starts_with("linux-image-amd64_")
            })
        })
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
        let layout =
            fixtures::busybox_layout(&dir.path().join("layout"), &FixtureOptions::default())
                .unwrap();
        let rt = runtime_at(dir.path(), Self::config(dir.path(), &bundle, accel));
        rt.images().load(&layout.path, None).unwrap();
        Env {
            dir,
            rt: Arc::new(rt),
            image: layout.reference,
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
    /// A failed test must not leak VMs: kill every QEMU of this root.
    fn drop(&mut self) {
        let needle = self.dir.path().to_string_lossy().to_string();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("qemu") && cmd.contains(&needle) {
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        // Unmount rootfs overlays left by a failed test.
        let _ = zlayer_hosting::mounts::unmount_all_under(self.dir.path());
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
    let needle = root.to_string_lossy().to_string();
    std::fs::read_dir("/proc").unwrap().flatten().all(|e| {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        !(String::from_utf8_lossy(&cmd).contains(&needle)
            && String::from_utf8_lossy(&cmd).contains("qemu"))
    })
}
