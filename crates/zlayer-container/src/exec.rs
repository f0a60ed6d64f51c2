//! Running commands in a running container: the agent writes an OCI
//! process spec and runs `zlayer-shim exec`, which joins the container's
//! namespaces and cgroup through libcontainer's tenant mode.

use super::paths::ContainerPaths;
use super::shim::protocol::ExecStatus;
use super::state_dir::ContainerRecord;
use super::user::resolve_user;
use futures_util::StreamExt;
use oci_spec::runtime::{Process, Spec, User};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::runtime::ExecStream;
use zlayer_runtime::types::{ExecOptions, ExecOutput, LogChunk, LogStream};

/// Exit code reported when the command does not exist (like a shell).
pub const CODE_NOT_FOUND: i32 = 127;
/// Exit code reported when the command cannot be executed.
pub const CODE_NOT_EXECUTABLE: i32 = 126;

/// Writes the process spec of an exec; returns its path.
pub fn write_process(
    paths: &ContainerPaths,
    record: &ContainerRecord,
    opts: &ExecOptions,
) -> Result<PathBuf> {
    if opts.tty {
        return Err(RuntimeError::unsupported(
            "container",
            "exec with a terminal",
            "terminals are not supported yet; run the command without tty",
        ));
    }
    let spec = Spec::load(paths.oci_config()).map_err(|e| {
        RuntimeError::Internal(format!("reading {}: {e}", paths.oci_config().display()))
    })?;
    let base = spec
        .process()
        .clone()
        .ok_or_else(|| RuntimeError::Internal("config.json has no process".into()))?;
    let mut env: Vec<String> = base
        .env()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|kv| {
            let key = kv.split('=').next().unwrap_or("");
            !opts.env.contains_key(key)
        })
        .collect();
    env.extend(opts.env.iter().map(|(k, v)| format!("{k}={v}")));
    let cwd = match &opts.working_dir {
        Some(d) if !d.starts_with('/') => {
            return Err(RuntimeError::InvalidSpec(format!(
                "exec working directory {d:?} must be an absolute path"
            )))
        }
        Some(d) => PathBuf::from(d),
        None => base.cwd().clone(),
    };
    let mut user = User::default();
    match &opts.user {
        Some(u) => {
            let r = resolve_user(&paths.rootfs(), Some(u))?;
            user.set_uid(r.uid);
            user.set_gid(r.gid);
            user.set_additional_gids((!r.additional_gids.is_empty()).then_some(r.additional_gids));
        }
        None => {
            user.set_uid(record.uid);
            user.set_gid(record.gid);
            user.set_additional_gids(
                (!record.additional_gids.is_empty()).then(|| record.additional_gids.clone()),
            );
        }
    }
    let mut p = Process::default();
    p.set_terminal(Some(false));
    p.set_args(Some(opts.command.clone()));
    p.set_env(Some(env));
    p.set_cwd(cwd);
    p.set_user(user);
    p.set_capabilities(base.capabilities().clone());
    p.set_no_new_privileges(Some(true));
    p.set_rlimits(None);
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = paths.exec_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| RuntimeError::Internal(format!("creating {}: {e}", dir.display())))?;
    let file = dir.join(format!(
        "{}-{}.json",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let json = serde_json::to_vec(&p)
        .map_err(|e| RuntimeError::Internal(format!("encoding exec process: {e}")))?;
    std::fs::write(&file, json)
        .map_err(|e| RuntimeError::Internal(format!("writing {}: {e}", file.display())))?;
    Ok(file)
}

/// Starts `shim exec` and streams its output; the returned future resolves
/// to the exit code once all output was sent.
pub fn spawn(
    shim: &Path,
    paths: &ContainerPaths,
    process_file: PathBuf,
    stdin: Option<Vec<u8>>,
) -> Result<ExecStream> {
    let (status_r, status_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::Internal(format!("creating the exec status pipe: {e}")))?;
    let w_raw = status_w.as_raw_fd();
    let mut cmd = tokio::process::Command::new(shim);
    cmd.arg("exec")
        .arg(&paths.dir)
        .arg(&paths.lc_root)
        .arg(&process_file)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if w_raw == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(w_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        let _ = std::fs::remove_file(&process_file);
        RuntimeError::Internal(format!("launching {} exec failed: {e}", shim.display()))
    })?;
    drop(status_w);
    let (tx, rx) = mpsc::channel::<Result<LogChunk>>(64);
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let child_stdin = child.stdin.take();
    let task = tokio::spawn(async move {
        if let (Some(mut w), Some(data)) = (child_stdin, stdin) {
            tokio::spawn(async move {
                let _ = w.write_all(&data).await;
                let _ = w.shutdown().await;
            });
        }
        let (mut ob, mut eb) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
        while out.is_some() || err.is_some() {
            tokio::select! {
                r = read_some(&mut out, &mut ob), if out.is_some() => {
                    match r {
                        Some(n) => { let _ = tx.send(Ok(chunk(LogStream::Stdout, &ob[..n]))).await; }
                        None => out = None,
                    }
                }
                r = read_some(&mut err, &mut eb), if err.is_some() => {
                    match r {
                        Some(n) => { let _ = tx.send(Ok(chunk(LogStream::Stderr, &eb[..n]))).await; }
                        None => err = None,
                    }
                }
            }
        }
        let _ = child.wait().await;
        let status = tokio::task::spawn_blocking(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut std::fs::File::from(status_r), &mut s);
            s
        })
        .await
        .unwrap_or_default();
        let _ = std::fs::remove_file(&process_file);
        match final_status(&status) {
            Ok(code) => Ok(code),
            Err((code, msg)) if code != 0 => {
                let _ = tx
                    .send(Ok(chunk(LogStream::Stderr, format!("{msg}\n").as_bytes())))
                    .await;
                Ok(code)
            }
            Err((_, msg)) => Err(RuntimeError::Internal(format!("exec failed: {msg}"))),
        }
    });
    let output =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
            .boxed();
    let exit_code = Box::pin(async move {
        task.await
            .map_err(|e| RuntimeError::Internal(format!("exec task failed: {e}")))?
    });
    Ok(ExecStream { output, exit_code })
}

async fn read_some<R: tokio::io::AsyncRead + Unpin>(
    r: &mut Option<R>,
    buf: &mut [u8],
) -> Option<usize> {
    match r {
        Some(r) => match r.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => None,
    }
}

fn chunk(stream: LogStream, data: &[u8]) -> LogChunk {
    LogChunk {
        timestamp: SystemTime::now(),
        stream,
        data: data.to_vec(),
    }
}

/// The exit code from the helper's status lines, or (code, message) when
/// the command never ran: 127/126 for a missing / non-executable command
/// (like a shell), 0 for other failures.
fn final_status(text: &str) -> std::result::Result<i32, (i32, String)> {
    let mut last = None;
    for line in text.lines() {
        if let Ok(s) = serde_json::from_str::<ExecStatus>(line) {
            last = Some(s);
        }
    }
    match last {
        Some(ExecStatus::Exited { code }) => Ok(code),
        Some(ExecStatus::Failed { error }) => {
            let code = if error.contains("not found") {
                CODE_NOT_FOUND
            } else if error.contains("permission") {
                CODE_NOT_EXECUTABLE
            } else {
                0
            };
            Err((code, error))
        }
        Some(ExecStatus::Started { .. }) => Err((
            0,
            "the exec helper ended before reporting the exit code".to_string(),
        )),
        None => Err((
            0,
            "the exec helper exited without reporting; is the shim path right?".to_string(),
        )),
    }
}

/// Runs a command to completion and collects its output.
pub async fn collect(stream: ExecStream) -> Result<ExecOutput> {
    let ExecStream {
        mut output,
        exit_code,
    } = stream;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while let Some(c) = output.next().await {
        let c = c?;
        match c.stream {
            LogStream::Stderr => stderr.extend_from_slice(&c.data),
            _ => stdout.extend_from_slice(&c.data),
        }
    }
    let exit_code = exit_code.await?;
    Ok(ExecOutput {
        exit_code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(
            final_status(
                "{\"status\":\"started\",\"pid\":5}\n{\"status\":\"exited\",\"code\":42}\n"
            ),
            Ok(42)
        );
        let nf = final_status(
            "{\"status\":\"failed\",\"error\":\"executable 'x' not found in $PATH\"}\n",
        );
        assert_eq!(nf.unwrap_err().0, 127);
        assert_eq!(
            final_status("{\"status\":\"failed\",\"error\":\"boom\"}")
                .unwrap_err()
                .0,
            0
        );
        assert!(final_status("").is_err());
    }
}
