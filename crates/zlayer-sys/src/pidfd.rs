//! Process file descriptors: a handle on a process that becomes readable
//! when it exits, with no race against pid reuse.

use std::os::fd::{FromRawFd, OwnedFd};

/// Opens a pidfd for `pid` (close-on-exec). The caller must know the pid
/// is still the process it means (its own unreaped child, say).
pub fn open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pidfd_of_this_process_opens() {
        super::open(std::process::id() as i32).unwrap();
    }
}
