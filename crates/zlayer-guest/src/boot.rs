//! From kernel hand-off to a served control port.

use crate::cmdline::{Cmdline, RootfsSource};
use crate::error::{GuestError, Result};
use crate::sys;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zlayer_vm_proto::{CONTROL_PORT_NAME, LOG_PORT_NAME, ROOTFS_TAG};

/// Where the bundle puts the modules and their load order.
pub const MODULES_DIR: &str = "/lib/modules";
/// The file listing module file names, one per line, in load order.
pub const MODULES_LIST: &str = "modules.list";
/// How long to wait for the virtio-serial ports to appear.
const PORT_TIMEOUT: Duration = Duration::from_secs(20);

const MS_RDONLY: libc::c_ulong = libc::MS_RDONLY;
const MS_NOSUID: libc::c_ulong = libc::MS_NOSUID;
const MS_NODEV: libc::c_ulong = libc::MS_NODEV;
const MS_NOEXEC: libc::c_ulong = libc::MS_NOEXEC;
const MS_MOVE: libc::c_ulong = libc::MS_MOVE;

fn mkdir(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| GuestError::io(format!("mkdir {}", p.display()), e))
}

/// The whole life of the agent: boot, then serve until power-off.
pub fn run() -> Result<()> {
    let t0 = Instant::now();
    early_mounts()?;
    let cmdline = Cmdline::parse(&fs::read_to_string("/proc/cmdline").unwrap_or_default());
    if let Some((secs, nanos)) = cmdline.boottime {
        if let Err(e) = sys::set_clock(secs, nanos) {
            eprintln!("zlayer-guest: {e}");
        }
    }
    if cmdline.probe {
        println!("zlayer-guest: probe ok");
        return Err(sys::power_off());
    }
    load_modules(Path::new(MODULES_DIR));
    if cmdline.extra_modules {
        load_modules(&Path::new(MODULES_DIR).join("extra"));
    }
    let t_mod = t0.elapsed();
    if let Err(e) = sys::link_up("lo") {
        eprintln!("zlayer-guest: {e}");
    }
    // A virtio-net device (with the extra modules) comes up too; its
    // addressing is left to the workload.
    if Path::new("/sys/class/net/eth0").exists() {
        if let Err(e) = sys::link_up("eth0") {
            eprintln!("zlayer-guest: {e}");
        }
    }
    if let Some(name) = &cmdline.hostname {
        if let Err(e) = sys::set_hostname(name) {
            eprintln!("zlayer-guest: {e}");
        }
    }
    let ctl_path = find_port(CONTROL_PORT_NAME, PORT_TIMEOUT)?;
    let log_path = find_port(LOG_PORT_NAME, PORT_TIMEOUT)?;
    let ctl = open_port(&ctl_path)?;
    let log = open_port(&log_path)?;
    if cmdline.rootfs == RootfsSource::NineP {
        switch_to_container_root()?;
    }
    // One line on the console: proof of life for `logs`, and boot timing.
    println!(
        "zlayer-guest: ready (modules {} ms, agent {} ms)",
        t_mod.as_millis(),
        t0.elapsed().as_millis()
    );
    crate::server::serve(ctl, log)
}

/// Mounts `/proc`, `/sys` and `/dev` on the initramfs.
pub fn early_mounts() -> Result<()> {
    for (src, dir, fstype, flags) in [
        ("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC),
        ("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC),
        ("devtmpfs", "/dev", "devtmpfs", MS_NOSUID),
    ] {
        mkdir(Path::new(dir))?;
        if let Err(e) = sys::mount(src, Path::new(dir), fstype, flags, "") {
            // devtmpfs may already be mounted by the kernel.
            if !matches!(&e, GuestError::Sys { source, .. } if source.raw_os_error() == Some(libc::EBUSY))
            {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Loads every module named in `dir/modules.list`, in order. Failures are
/// reported on the console and skipped (a built-in driver makes a module
/// unnecessary).
pub fn load_modules(dir: &Path) {
    let Ok(list) = fs::read_to_string(dir.join(MODULES_LIST)) else {
        return;
    };
    for name in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Err(e) = sys::load_module(&dir.join(name)) {
            eprintln!("zlayer-guest: {e}");
        }
    }
}

/// The `/dev` node of the virtio-serial port called `name`, waiting for the
/// driver to create it.
pub fn find_port(name: &str, timeout: Duration) -> Result<PathBuf> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(entries) = fs::read_dir("/sys/class/virtio-ports") {
            for entry in entries.flatten() {
                let port_name = fs::read_to_string(entry.path().join("name")).unwrap_or_default();
                if port_name.trim() == name {
                    let dev = Path::new("/dev").join(entry.file_name());
                    if dev.exists() {
                        return Ok(dev);
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(GuestError::Invalid(format!(
                "virtio-serial port {name} did not appear within {}s; the host must attach it with \
                 `-device virtserialport,name={name}` and the bundle must carry virtio_console",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn open_port(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| GuestError::io(format!("open {}", path.display()), e))
}

/// Mounts the image share read-only under a tmpfs-backed overlay and makes
/// it the root (`MS_MOVE` + `chroot`, like `switch_root`).
pub fn switch_to_container_root() -> Result<()> {
    let base = Path::new("/run/zl");
    let lower = base.join("lower");
    let rw = base.join("rw");
    let root = base.join("root");
    for d in [&lower, &rw, &root] {
        mkdir(d)?;
    }
    sys::mount(
        ROOTFS_TAG,
        &lower,
        "9p",
        MS_RDONLY,
        "trans=virtio,version=9p2000.L,msize=262144,cache=loose",
    )?;
    sys::mount("tmpfs", &rw, "tmpfs", 0, "mode=0755")?;
    mkdir(&rw.join("upper"))?;
    mkdir(&rw.join("work"))?;
    sys::mount(
        "overlay",
        &root,
        "overlay",
        0,
        &format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            rw.join("upper").display(),
            rw.join("work").display()
        ),
    )?;
    for dir in ["proc", "sys", "dev"] {
        let target = root.join(dir);
        mkdir(&target)?;
        sys::mount(&format!("/{dir}"), &target, "", MS_MOVE, "")?;
    }
    let pts = root.join("dev/pts");
    mkdir(&pts)?;
    sys::mount(
        "devpts",
        &pts,
        "devpts",
        MS_NOSUID | MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620",
    )?;
    let shm = root.join("dev/shm");
    mkdir(&shm)?;
    sys::mount("shm", &shm, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")?;
    std::env::set_current_dir(&root)
        .map_err(|e| GuestError::io(format!("chdir {}", root.display()), e))?;
    sys::mount(".", Path::new("/"), "", MS_MOVE, "")?;
    sys::chroot(Path::new("."))?;
    std::env::set_current_dir("/").map_err(|e| GuestError::io("chdir /", e))?;
    Ok(())
}

/// Mounts the 9p share `tag` at `target` (inside the container root).
pub fn mount_share(tag: &str, target: &str, readonly: bool) -> Result<()> {
    if !target.starts_with('/') {
        return Err(GuestError::Invalid(format!(
            "mount target {target:?} must be an absolute path"
        )));
    }
    let t = Path::new(target);
    mkdir(t)?;
    sys::mount(
        tag,
        t,
        "9p",
        if readonly { MS_RDONLY } else { 0 },
        "trans=virtio,version=9p2000.L,msize=262144",
    )
}
