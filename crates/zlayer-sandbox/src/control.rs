//! The monitor's control socket (`control.sock`): one JSON line per request,
//! replies as JSON lines. `exec` passes the command's stdin/stdout/stderr
//! as file descriptors (SCM_RIGHTS), so output flows straight to the caller.

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};
use std::io::{IoSlice, IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::options::UserIds;

/// A request to the monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Run a command under the container's policy (3 fds attached:
    /// stdin, stdout, stderr).
    Exec {
        /// argv as the command sees it.
        argv: Vec<String>,
        /// Host path of the executable.
        program: PathBuf,
        /// Complete environment.
        env: Vec<(String, String)>,
        /// Host working directory.
        cwd: PathBuf,
        /// User override.
        user: Option<UserIds>,
    },
    /// Close the workload's standard input (EOF).
    CloseStdin,
}

/// A reply from the monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Reply {
    /// The exec'd command runs.
    Started {
        /// Its pid.
        pid: i32,
    },
    /// The exec'd command ended.
    Exited {
        /// Docker-style exit code.
        code: i32,
    },
    /// The request was done.
    Done,
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}

/// Longest socket path used directly; longer ones go through `/proc/self/fd`.
const MAX_DIRECT: usize = 100;

/// Runs `f` with a path naming `sock` that fits in `sockaddr_un`.
fn with_short_path<T>(
    sock: &Path,
    f: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    if sock.as_os_str().len() <= MAX_DIRECT {
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

/// Connects to a container's control socket.
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
        let n = sendmsg::<()>(stream.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None)
            .map_err(std::io::Error::from)?;
        sent += n;
    }
    Ok(())
}

/// Receives one request line and the fds attached to it.
pub fn recv_request(stream: &mut UnixStream) -> std::io::Result<(Request, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg_buf = nix::cmsg_space!([RawFd; 3]);
    let mut fds = Vec::new();
    let n = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_buf),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
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
    let mut line = buf[..n].to_vec();
    while !line.contains(&b'\n') {
        let mut more = [0u8; 4096];
        let m = stream.read(&mut more)?;
        if m == 0 {
            break;
        }
        line.extend_from_slice(&more[..m]);
    }
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    let req = serde_json::from_slice(&line[..end]).map_err(std::io::Error::other)?;
    Ok((req, fds))
}

/// Writes one reply line.
pub fn send_reply(mut stream: &UnixStream, reply: &Reply) -> std::io::Result<()> {
    use std::io::Write;
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}
