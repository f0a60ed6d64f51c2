//! Configuration of the [`super::VmLauncher`].

use std::path::PathBuf;
use std::time::Duration;

/// Which QEMU accelerator to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM when a probe guest boots under it in time, else TCG (the probe's
    /// verdict is cached on disk per kernel and QEMU version).
    #[default]
    Auto,
    /// Hardware virtualisation through `/dev/kvm`.
    Kvm,
    /// QEMU's software emulation (works everywhere, slower).
    Tcg,
}

impl Accel {
    /// The `-accel` name.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg | Accel::Auto => "tcg",
        }
    }
}

/// How the `vm` runtime runs its microVMs.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// The vm isolation's directory under the data root (`<root>/vm`):
    /// `kernel/` for the installed kernel bundle, `accel.json` for the
    /// probe cache.
    pub root: PathBuf,
    /// Kernel to boot (else `ZLAYER_VM_KERNEL`, else `<root>/kernel/vmlinux`).
    pub kernel: Option<PathBuf>,
    /// Initramfs to boot (else `ZLAYER_VM_INITRD`, else
    /// `<root>/kernel/initramfs.cpio`).
    pub initrd: Option<PathBuf>,
    /// The QEMU binary.
    pub qemu_binary: PathBuf,
    /// Accelerator choice.
    pub accel: Accel,
    /// Guest memory when the spec sets none, MiB.
    pub default_memory_mib: u64,
    /// vCPUs when the spec sets none.
    pub default_vcpus: u32,
    /// How long a boot (QEMU start → agent ready) may take.
    pub boot_timeout: Duration,
    /// How long the KVM probe guest may take to boot and power off.
    pub probe_timeout: Duration,
    /// Extra words appended to the kernel command line.
    pub extra_cmdline: String,
    /// The monitor binary; `None`: next to this executable (or one
    /// directory up), or on `PATH`.
    pub monitor: Option<PathBuf>,
}

impl VmConfig {
    /// A configuration with defaults under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        VmConfig {
            root: root.into(),
            kernel: None,
            initrd: None,
            qemu_binary: PathBuf::from("qemu-system-x86_64"),
            accel: Accel::Auto,
            default_memory_mib: 512,
            default_vcpus: 2,
            boot_timeout: Duration::from_secs(90),
            probe_timeout: Duration::from_secs(3),
            extra_cmdline: String::new(),
            monitor: None,
        }
    }

    /// Directory of the installed kernel bundle.
    pub fn kernel_dir(&self) -> PathBuf {
        self.root.join("kernel")
    }
}
