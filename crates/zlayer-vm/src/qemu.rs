//! The QEMU command line, starting QEMU as the child of the VM's monitor
//! (it dies with the monitor), and QMP.

use super::config::Accel;
use super::kernel::KernelBundle;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_vm_proto::{CONTROL_PORT_NAME, LOG_PORT_NAME, ROOTFS_TAG};

/// Kernel command line words every boot uses. Measured under TCG: `quiet`
/// and the TSC hints avoid seconds of serial output and the "Marking TSC
/// unstable" stall of microvm guests; `rodata=off`, `mitigations=off`,
/// `cryptomgr.notests`, `audit=0` and `pci=off` skip work a throwaway VM
/// does not need.
pub const BASE_CMDLINE: &str =
    "console=ttyS0 panic=-1 quiet tsc=reliable rodata=off mitigations=off \
                                audit=0 cryptomgr.notests pci=off lsm= random.trust_cpu=on";

/// A host directory shared into the guest over 9p.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Share {
    /// The 9p mount tag.
    pub tag: String,
    /// The host directory.
    pub host: PathBuf,
    /// Mount target in the guest (unused for the root share).
    pub target: String,
    /// Read-only share.
    pub readonly: bool,
}

/// Everything one VM launch needs.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// Accelerator (never `Auto` here).
    pub accel: Accel,
    /// Kernel and initramfs.
    pub bundle: KernelBundle,
    /// Full kernel command line.
    pub cmdline: String,
    /// Guest memory, MiB.
    pub memory_mib: u64,
    /// vCPUs.
    pub vcpus: u32,
    /// The VM's state directory (the console log; the sockets live in its
    /// `run/`).
    pub dir: PathBuf,
    /// The image root filesystem (shared read-only), or `None` to stay on
    /// the initramfs.
    pub rootfs: Option<PathBuf>,
    /// Bind mounts.
    pub binds: Vec<Share>,
    /// A display name (`-name`).
    pub name: String,
}

/// Files of a VM's state directory.
pub mod files {
    /// Serial console output (kernel and agent messages).
    pub const CONSOLE: &str = "console.log";
    /// The log port's socket (workload output, exit record), in `run/`.
    pub const OUTPUT: &str = "run/out.sock";
    /// The control port's socket, in `run/`.
    pub const CONTROL: &str = "run/ctl.sock";
    /// The QMP socket, in `run/`.
    pub const QMP: &str = "run/qmp.sock";
    /// Published ports with the host ports bound (written by the monitor).
    pub const PORTS: &str = "ports.json";
}

/// The words of the QEMU command line for `l`.
pub fn args(l: &Launch) -> Vec<String> {
    let d = |f: &str| l.dir.join(f).to_string_lossy().into_owned();
    let mut a: Vec<String> = vec![
        "-name".into(),
        l.name.clone(),
        "-M".into(),
        "microvm".into(),
        "-accel".into(),
        l.accel.qemu_name().into(),
        "-cpu".into(),
        if l.accel == Accel::Kvm { "host" } else { "max" }.into(),
        "-m".into(),
        format!("{}M", l.memory_mib),
        "-smp".into(),
        l.vcpus.to_string(),
        "-nodefaults".into(),
        "-no-user-config".into(),
        "-display".into(),
        "none".into(),
        "-no-reboot".into(),
        "-kernel".into(),
        l.bundle.kernel.to_string_lossy().into_owned(),
        "-initrd".into(),
        l.bundle.initrd.to_string_lossy().into_owned(),
        "-append".into(),
        l.cmdline.clone(),
        "-chardev".into(),
        format!("file,id=con,path={},append=on", d(files::CONSOLE)),
        "-serial".into(),
        "chardev:con".into(),
        "-device".into(),
        "virtio-serial-device".into(),
        "-chardev".into(),
        format!(
            "socket,id=ctl,path={},server=on,wait=off",
            d(files::CONTROL)
        ),
        "-device".into(),
        format!("virtserialport,chardev=ctl,name={CONTROL_PORT_NAME}"),
        "-chardev".into(),
        format!("socket,id=out,path={},server=on,wait=off", d(files::OUTPUT)),
        "-device".into(),
        format!("virtserialport,chardev=out,name={LOG_PORT_NAME}"),
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", d(files::QMP)),
    ];
    let mut shares: Vec<Share> = Vec::new();
    if let Some(root) = &l.rootfs {
        shares.push(Share {
            tag: ROOTFS_TAG.into(),
            host: root.clone(),
            target: "/".into(),
            readonly: true,
        });
    }
    shares.extend(l.binds.iter().cloned());
    for (i, s) in shares.iter().enumerate() {
        a.push("-fsdev".into());
        a.push(format!(
            "local,id=fs{i},path={},security_model={}{}",
            s.host.to_string_lossy().replace(',', ",,"),
            if i == 0 && l.rootfs.is_some() {
                "none"
            } else {
                "passthrough"
            },
            if s.readonly { ",readonly=on" } else { "" }
        ));
        a.push("-device".into());
        a.push(format!("virtio-9p-device,fsdev=fs{i},mount_tag={}", s.tag));
    }
    a
}

/// Starts QEMU as a child of this process (which must reap it), dying
/// with this process's calling thread (parent-death signal). Returns its pid.
pub fn launch(l: &Launch) -> Result<i32> {
    for f in [files::CONTROL, files::QMP, files::OUTPUT] {
        let _ = std::fs::remove_file(l.dir.join(f));
    }
    let sock = l.dir.join(files::CONTROL);
    if sock.as_os_str().len() >= 100 {
        return Err(RuntimeError::Configuration(format!(
            "the VM state path {} is too long for a unix socket (limit ~100 bytes); use a shorter data root",
            sock.display()
        )));
    }
    let mut cmd = std::process::Command::new(&l.qemu);
    cmd.args(args(l))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: prctl and getppid are async-signal-safe.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != parent {
                libc::_exit(137);
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| {
        RuntimeError::Configuration(format!(
            "cannot run {}: {e}; install QEMU (`apt-get install qemu-system-x86`)",
            l.qemu.display()
        ))
    })?;
    // Not waited for here: the monitor reaps it.
    Ok(child.id() as i32)
}

/// The QEMU version line (`QEMU emulator version 7.2.22 ...`).
pub fn version(qemu: &Path) -> Result<String> {
    let out = std::process::Command::new(qemu)
        .arg("--version")
        .output()
        .map_err(|e| {
            RuntimeError::Configuration(format!(
                "cannot run {}: {e}; install QEMU (`apt-get install qemu-system-x86`)",
                qemu.display()
            ))
        })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string())
}

/// Runs one QMP command (`stop`, `cont`, `quit`, ...) on the VM in `dir`
/// and returns its reply.
pub fn qmp(dir: &Path, command: &str) -> Result<serde_json::Value> {
    let fail =
        |e: String| RuntimeError::Internal(format!("QMP {command} on {}: {e}", dir.display()));
    let stream = UnixStream::connect(dir.join(files::QMP)).map_err(|e| fail(e.to_string()))?;
    let timeout = Some(Duration::from_secs(10));
    stream
        .set_read_timeout(timeout)
        .and_then(|_| stream.set_write_timeout(timeout))
        .map_err(|e| fail(e.to_string()))?;
    let mut w = stream.try_clone().map_err(|e| fail(e.to_string()))?;
    let mut lines = BufReader::new(stream).lines();
    qmp_reply(&mut lines).map_err(fail)?; // greeting
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .map_err(|e| fail(e.to_string()))?;
    qmp_reply(&mut lines).map_err(fail)?;
    w.write_all(format!("{{\"execute\":\"{command}\"}}\n").as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    let reply = qmp_reply(&mut lines).map_err(fail)?;
    if let Some(err) = reply.get("error") {
        return Err(fail(err.to_string()));
    }
    Ok(reply)
}

/// The next QMP reply, skipping asynchronous events.
fn qmp_reply(
    lines: &mut std::io::Lines<BufReader<UnixStream>>,
) -> std::result::Result<serde_json::Value, String> {
    loop {
        let line = lines
            .next()
            .ok_or_else(|| "QEMU closed the QMP socket".to_string())?
            .map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
        if v.get("event").is_none() {
            return Ok(v);
        }
    }
}
