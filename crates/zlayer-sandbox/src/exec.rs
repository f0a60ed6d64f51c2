//! `exec`: a new process under the container's policy, in its rootfs,
//! started by the monitor (so it belongs to the sandbox: stats, watchdog
//! and stop see it). Its stdio are pipes passed over the control socket.

use futures_util::StreamExt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::SystemTime;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::runtime::ExecStream;
use zlayer_runtime::types::{ContainerId, ExecOptions, LogChunk, LogStream};

use super::control::{self, Reply, Request};
use super::create::{inside, resolve_program};
use super::layout::ContainerPaths;
use super::options::resolve_user;
use super::record::ContainerRecord;

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::Internal(format!("creating a pipe: {e}")))
}

/// Starts `opts` in the running container described by `record`.
pub async fn exec_stream(
    paths: &ContainerPaths,
    id: &ContainerId,
    record: &ContainerRecord,
    opts: &ExecOptions,
) -> Result<ExecStream> {
    zlayer_runtime::runtime::require_command(opts)?;
    if opts.tty {
        return Err(RuntimeError::unsupported(
            "sandbox",
            "exec with a terminal",
            "the sandbox runtime runs exec commands on pipes; drop --tty (-t)",
        ));
    }
    let rootfs = &record.policy.rootfs;
    let cwd = match &opts.working_dir {
        Some(w) if w.starts_with('/') => inside(rootfs, w),
        Some(w) => {
            return Err(RuntimeError::InvalidSpec(format!(
                "exec working directory {w:?} must be an absolute path inside the container"
            )))
        }
        None => record.cwd.clone(),
    };
    let mut env = record.env.clone();
    for (k, v) in &opts.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let program = resolve_program(rootfs, &cwd, &opts.command[0], &path_var).ok_or_else(|| {
        RuntimeError::InvalidSpec(format!(
            "exec: {:?} is not an executable in the container's rootfs",
            opts.command[0]
        ))
    })?;
    let user = match &opts.user {
        Some(u) => Some(resolve_user(u, rootfs)?),
        None => None,
    };
    let (in_r, in_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let req = Request::Exec {
        argv: opts.command.clone(),
        program,
        env,
        cwd,
        user,
    };
    let sock = paths.socket();
    let id_s = id.to_string();
    let conn = tokio::task::spawn_blocking(move || -> Result<std::os::unix::net::UnixStream> {
        let conn = control::connect(&sock).map_err(|e| {
            RuntimeError::InvalidSpec(format!(
                "container {id_s} is not running (its monitor is unreachable: {e})"
            ))
        })?;
        control::send_request(
            &conn,
            &req,
            &[in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
        )
        .map_err(|e| RuntimeError::Internal(format!("sending the exec request: {e}")))?;
        Ok(conn)
    })
    .await
    .map_err(|e| RuntimeError::Internal(format!("exec task: {e}")))??;
    conn.set_nonblocking(true)
        .map_err(|e| RuntimeError::Internal(format!("control socket: {e}")))?;
    let conn = tokio::net::UnixStream::from_std(conn)
        .map_err(|e| RuntimeError::Internal(format!("control socket: {e}")))?;
    let mut lines = tokio::io::BufReader::new(conn).lines();
    let first = next_reply(&mut lines).await?;
    match first {
        Reply::Started { .. } => {}
        Reply::Error { message } => {
            return Err(RuntimeError::InvalidSpec(format!(
                "exec in {id} failed: {message}"
            )));
        }
        other => {
            return Err(RuntimeError::Internal(format!(
                "unexpected monitor reply {other:?}"
            )));
        }
    }
    // Feed stdin, then EOF.
    let data = opts.stdin.clone().unwrap_or_default();
    let mut stdin = tokio::net::unix::pipe::Sender::from_owned_fd(in_w)
        .map_err(|e| RuntimeError::Internal(format!("exec stdin: {e}")))?;
    tokio::spawn(async move {
        let _ = stdin.write_all(&data).await;
    });
    let out = reader(out_r, LogStream::Stdout)?;
    let err = reader(err_r, LogStream::Stderr)?;
    let output = futures_util::stream::select(out, err).boxed();
    let exit_code = Box::pin(async move {
        match next_reply(&mut lines).await? {
            Reply::Exited { code } => Ok(code),
            Reply::Error { message } => Err(RuntimeError::Internal(message)),
            other => Err(RuntimeError::Internal(format!(
                "unexpected monitor reply {other:?}"
            ))),
        }
    });
    Ok(ExecStream { output, exit_code })
}

async fn next_reply(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::net::UnixStream>>,
) -> Result<Reply> {
    let line = lines
        .next_line()
        .await
        .map_err(|e| RuntimeError::Internal(format!("reading the monitor's reply: {e}")))?
        .ok_or_else(|| {
            RuntimeError::Internal("the sandbox monitor closed the exec connection".into())
        })?;
    serde_json::from_str(&line)
        .map_err(|e| RuntimeError::Internal(format!("bad monitor reply {line:?}: {e}")))
}

fn reader(
    fd: OwnedFd,
    stream: LogStream,
) -> Result<futures_util::stream::BoxStream<'static, Result<LogChunk>>> {
    let rx = tokio::net::unix::pipe::Receiver::from_owned_fd(fd)
        .map_err(|e| RuntimeError::Internal(format!("exec output: {e}")))?;
    Ok(
        futures_util::stream::unfold(Some(rx), move |rx| async move {
            let mut rx = rx?;
            let mut buf = vec![0u8; 64 * 1024];
            match rx.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((
                        Ok(LogChunk {
                            timestamp: SystemTime::now(),
                            stream,
                            data: buf,
                        }),
                        Some(rx),
                    ))
                }
                Err(e) => Some((
                    Err(RuntimeError::Internal(format!("reading exec output: {e}"))),
                    None,
                )),
            }
        })
        .boxed(),
    )
}
