//! Thin safe wrappers over the Linux system calls the agent needs. This is
//! the only module with `unsafe` code.

#![allow(unsafe_code)]

use crate::error::{GuestError, Result};
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::Path;

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| GuestError::Invalid(format!("{s:?} contains a NUL byte")))
}

fn path_cstr(p: &Path) -> Result<CString> {
    cstr(&p.to_string_lossy())
}

/// `mount(2)`. `fstype`/`data` may be empty.
pub fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> Result<()> {
    let src = cstr(source)?;
    let tgt = path_cstr(target)?;
    let fst = cstr(fstype)?;
    let dat = cstr(data)?;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            if fstype.is_empty() {
                std::ptr::null()
            } else {
                fst.as_ptr()
            },
            flags,
            if data.is_empty() {
                std::ptr::null()
            } else {
                dat.as_ptr().cast()
            },
        )
    };
    if rc != 0 {
        return Err(GuestError::last_os(format!(
            "mount {source} on {} ({fstype} {data})",
            target.display()
        )));
    }
    Ok(())
}

/// `chroot(2)`.
pub fn chroot(path: &Path) -> Result<()> {
    let p = path_cstr(path)?;
    // SAFETY: valid C string.
    if unsafe { libc::chroot(p.as_ptr()) } != 0 {
        return Err(GuestError::last_os(format!("chroot {}", path.display())));
    }
    Ok(())
}

/// Loads a kernel module from `path` with `finit_module(2)`. An
/// already-loaded module is not an error.
pub fn load_module(path: &Path) -> Result<()> {
    let file = std::fs::File::open(path)
        .map_err(|e| GuestError::io(format!("open {}", path.display()), e))?;
    let params = c"";
    // SAFETY: a valid fd and a valid empty parameter string.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, file.as_raw_fd(), params.as_ptr(), 0) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EEXIST) {
            return Ok(());
        }
        return Err(GuestError::io(
            format!("finit_module {}", path.display()),
            err,
        ));
    }
    Ok(())
}

/// Sets the wall clock.
pub fn set_clock(secs: i64, nanos: u32) -> Result<()> {
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: nanos.min(999_999_999) as libc::c_long,
    };
    // SAFETY: a valid timespec.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
        return Err(GuestError::last_os("clock_settime"));
    }
    Ok(())
}

/// Sets the host name.
pub fn set_hostname(name: &str) -> Result<()> {
    // SAFETY: pointer and length of a valid byte slice.
    if unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) } != 0 {
        return Err(GuestError::last_os(format!("sethostname {name}")));
    }
    Ok(())
}

/// Flushes file systems and powers the machine off. Returns only on failure.
pub fn power_off() -> GuestError {
    // SAFETY: plain system calls without pointers.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    GuestError::last_os("reboot(POWER_OFF)")
}

/// Sends `signum` to `pid`.
pub fn kill(pid: i32, signum: i32) -> Result<()> {
    // SAFETY: plain system call.
    if unsafe { libc::kill(pid, signum) } != 0 {
        return Err(GuestError::last_os(format!("kill({pid}, {signum})")));
    }
    Ok(())
}

/// What `waitpid(-1)` returned.
pub enum Reaped {
    /// A child ended: pid and docker-style exit code.
    Child(i32, i32),
    /// There are no children right now.
    NoChildren,
}

/// Blocks until any child ends.
pub fn wait_any() -> Result<Reaped> {
    let mut status = 0;
    loop {
        // SAFETY: valid pointer to an int.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid > 0 {
            return Ok(Reaped::Child(pid, exit_code(status)));
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return Ok(Reaped::NoChildren),
            _ => return Err(GuestError::io("waitpid", err)),
        }
    }
}

/// Docker's exit code for a wait status: the code, or 128+N for signal N.
pub fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// Brings network interface `name` up (`lo` gets 127.0.0.1 from the kernel).
pub fn link_up(name: &str) -> Result<()> {
    // SAFETY: socket() without pointers; the fd is closed by OwnedFd.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(GuestError::last_os("socket(AF_INET)"));
    }
    // SAFETY: fd is a fresh valid descriptor we own.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(GuestError::Invalid(format!(
            "interface name {name:?} is too long"
        )));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: valid fd and a valid ifreq pointer.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } != 0 {
        return Err(GuestError::last_os(format!("SIOCGIFFLAGS {name}")));
    }
    // SAFETY: the union member written by SIOCGIFFLAGS.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: valid fd and a valid ifreq pointer.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } != 0 {
        return Err(GuestError::last_os(format!("SIOCSIFFLAGS {name}")));
    }
    Ok(())
}

/// The current pid.
pub fn getpid() -> i32 {
    // SAFETY: plain system call.
    unsafe { libc::getpid() }
}
