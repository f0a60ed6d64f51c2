//! Agent side of the monitor's control socket.

use super::protocol::{AckReply, ExitReply, REQ_CLOSE_STDIN, REQ_RESIZE, REQ_STDIN, REQ_WAIT};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use zlayer_runtime::error::{Result, RuntimeError};

/// Waits for the container to exit. `Ok(None)` when no monitor answers
/// (it already exited, or died): the caller then reads `exit.json`.
pub async fn wait_exit(socket: &Path) -> Result<Option<ExitReply>> {
    let Ok(mut stream) = UnixStream::connect(socket).await else {
        return Ok(None);
    };
    if stream
        .write_all(format!("{REQ_WAIT}\n").as_bytes())
        .await
        .is_err()
    {
        return Ok(None);
    }
    let mut line = String::new();
    let mut reader = BufReader::new(stream);
    match reader.read_line(&mut line).await {
        Ok(n) if n > 0 => Ok(serde_json::from_str(line.trim()).ok()),
        _ => Ok(None),
    }
}

async fn request(socket: &Path, header: &str, body: &[u8]) -> Result<()> {
    let mut stream = UnixStream::connect(socket).await.map_err(|e| {
        RuntimeError::InvalidSpec(format!(
            "the container is not running (its monitor socket {} is gone: {e})",
            socket.display()
        ))
    })?;
    let io = |e: std::io::Error| {
        RuntimeError::Internal(format!("talking to the container monitor: {e}"))
    };
    stream
        .write_all(format!("{header}\n").as_bytes())
        .await
        .map_err(io)?;
    if !body.is_empty() {
        stream.write_all(body).await.map_err(io)?;
    }
    if header == REQ_STDIN {
        stream.shutdown().await.map_err(io)?;
    }
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .await
        .map_err(io)?;
    let reply: AckReply = serde_json::from_str(line.trim()).map_err(|_| {
        RuntimeError::InvalidSpec("the container exited before its stdin could be written".into())
    })?;
    if reply.ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidSpec(reply.error.unwrap_or_else(
            || "the monitor refused the request".into(),
        )))
    }
}

/// Writes `data` to the container's stdin (returns once it was written to
/// the pipe).
pub async fn write_stdin(socket: &Path, data: &[u8]) -> Result<()> {
    request(socket, REQ_STDIN, data).await
}

/// Closes the container's stdin.
pub async fn close_stdin(socket: &Path) -> Result<()> {
    request(socket, REQ_CLOSE_STDIN, &[]).await
}

/// Sets the size of the container's terminal.
pub async fn resize(socket: &Path, rows: u16, cols: u16) -> Result<()> {
    request(socket, &format!("{REQ_RESIZE} {rows} {cols}"), &[]).await
}
