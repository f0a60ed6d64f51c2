//! The terminal of a container started with the `com.zlayer.tty` label:
//! libcontainer creates the pty inside the container and sends its master
//! side over the console socket; the monitor then uses the master for the
//! output (logged chunk by chunk, prompts included) and for stdin.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::Duration;
use zlayer_hosting::monitor::{set_window_size, DEFAULT_COLS, DEFAULT_ROWS};

/// How long to wait for libcontainer's connection (it connected before the
/// init became ready, so it is normally already queued).
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts libcontainer's connection on `listener` and receives the pty
/// master it sends (SCM_RIGHTS); sets an 80x24 window size on it.
pub fn receive_master(listener: &UnixListener) -> std::io::Result<OwnedFd> {
    listener.set_nonblocking(true)?;
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ACCEPT_TIMEOUT.as_millis() as i32) };
    if n <= 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "libcontainer never connected to the console socket",
        ));
    }
    let (conn, _) = listener.accept()?;
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(ACCEPT_TIMEOUT))?;
    let mut name = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let mut fd = None;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            for f in fds {
                // SAFETY: the kernel just installed this fd for us.
                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                fd.get_or_insert(owned);
            }
        }
    }
    let master = fd.ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "no terminal fd was sent")
    })?;
    set_window_size(&master, DEFAULT_ROWS, DEFAULT_COLS);
    Ok(master)
}
