//! Network namespace setup done by the monitor before the workload starts:
//! `lo` up for `--network none` (bridge modes: see [`super::network`]).

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Brings `lo` up in the network namespace of `pid`.
pub fn bring_up_loopback(pid: i32) -> std::io::Result<()> {
    let ns = File::open(format!("/proc/{pid}/ns/net"))?;
    // setns(CLONE_NEWNET) changes only the calling thread, so a short-lived
    // thread does it and the monitor stays in the host namespace.
    std::thread::spawn(move || -> std::io::Result<()> {
        // SAFETY: `ns` is an open namespace fd.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        set_link_up("lo")
    })
    .join()
    .map_err(|_| std::io::Error::other("the loopback setup thread panicked"))?
}

/// Sets `IFF_UP` on interface `name` of the calling thread's namespace.
fn set_link_up(name: &str) -> std::io::Result<()> {
    // SAFETY: socket(2) with constant arguments; the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2).
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
