//! Framing of the control protocol: JSON lines over a unix stream socket,
//! with file descriptors attached to a request (SCM_RIGHTS).

use super::{Reply, Request};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Longest request line accepted.
pub const MAX_REQUEST: usize = 256 * 1024;

/// Runs `f` with a path naming `sock` that fits in `sockaddr_un`: `sock`
/// itself, or `/proc/self/fd/<dirfd>/<name>` when it is too long.
pub fn with_short_path<T>(
    sock: &Path,
    f: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    if sock.as_os_str().len() <= 100 {
        return f(sock);
    }
    let dir = sock
        .parent()
        .ok_or_else(|| std::io::Error::other("socket path has no directory"))?;
    let name = sock
        .file_name()
        .ok_or_else(|| std::io::Error::other("socket path has no file name"))?;
    let dirfd = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dirfd.as_raw_fd())).join(name);
    f(&short)
}

/// Binds the control socket (replacing a stale one), owner-only.
pub fn bind(sock: &Path) -> std::io::Result<UnixListener> {
    let _ = std::fs::remove_file(sock);
    let l = with_short_path(sock, |p| UnixListener::bind(p))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Connects to a control socket.
pub fn connect(sock: &Path) -> std::io::Result<UnixStream> {
    with_short_path(sock, |p| UnixStream::connect(p))
}

/// Sends a request line with `fds` attached.
pub fn send_request(stream: &UnixStream, req: &Request, fds: &[RawFd]) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(req).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut sent = 0;
    while sent < line.len() {
        let iov = [IoSlice::new(&line[sent..])];
        let cmsg = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage] = if sent == 0 && !fds.is_empty() {
            &cmsg
        } else {
            &[]
        };
        match sendmsg::<()>(stream.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None) {
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A request as received: the request, the fds attached to it, and the
/// bytes that followed its line in the same read (stdin data).
pub struct Received {
    /// The request.
    pub request: Request,
    /// Attached file descriptors.
    pub fds: Vec<OwnedFd>,
    /// Bytes after the request line.
    pub rest: Vec<u8>,
}

/// Reads one request line (blocking; the caller sets a read timeout).
pub fn recv_request(stream: &mut UnixStream) -> std::io::Result<Received> {
    let mut buf = vec![0u8; 4096];
    let mut line: Vec<u8> = Vec::new();
    let mut fds = Vec::new();
    loop {
        let mut cmsg_buf = nix::cmsg_space!([RawFd; 3]);
        let n = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = match recvmsg::<()>(
                stream.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_buf),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            for c in msg.cmsgs().map_err(std::io::Error::from)? {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    // SAFETY: the kernel just installed these fds for us.
                    fds.extend(
                        raw.into_iter()
                            .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                    );
                }
            }
            msg.bytes
        };
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the client closed before its request line ended",
            ));
        }
        line.extend_from_slice(&buf[..n]);
        if let Some(end) = line.iter().position(|b| *b == b'\n') {
            let rest = line.split_off(end + 1);
            line.pop();
            let request = serde_json::from_slice(&line).map_err(std::io::Error::other)?;
            return Ok(Received { request, fds, rest });
        }
        if line.len() > MAX_REQUEST {
            return Err(std::io::Error::other("request line too long"));
        }
    }
}

/// Writes one reply line (blocking, with the stream's write timeout).
pub fn send_reply(mut stream: &UnixStream, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

/// Reads one reply line from a blocking stream.
pub fn read_reply(stream: &mut UnixStream) -> std::io::Result<Option<Reply>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) => return Ok(None),
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    serde_json::from_slice(&line)
        .map(Some)
        .map_err(std::io::Error::other)
}
