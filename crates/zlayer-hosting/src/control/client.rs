//! The client side of the control protocol, for async callers.

use super::wire::{connect, send_request};
use super::{Reply, Request};
use crate::launcher::ExecRequest;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use zlayer_runtime::{Result, RuntimeError, StatsSample};

/// Talks to the monitor behind one control socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum Unanswered {
    /// No monitor listens (it has ended, or never started).
    NoMonitor(std::io::Error),
    /// The monitor closed the connection without a reply (it ended).
    Closed,
}

fn not_running(e: &Unanswered) -> RuntimeError {
    RuntimeError::NotRunning(match e {
        Unanswered::NoMonitor(e) => {
            format!("the container is not running (no monitor answers: {e})")
        }
        Unanswered::Closed => "the container ended while the request was served".into(),
    })
}

/// A connection with a request sent, reading replies.
struct Conversation {
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    write: tokio::net::unix::OwnedWriteHalf,
}

impl Conversation {
    async fn next(&mut self) -> std::result::Result<Reply, Unanswered> {
        match self.lines.next_line().await {
            Ok(Some(line)) => serde_json::from_str(&line).map_err(|_| Unanswered::Closed),
            _ => Err(Unanswered::Closed),
        }
    }
}

impl Client {
    /// A client of the monitor listening on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Client {
            socket: socket.into(),
        }
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn open(
        &self,
        req: &Request,
        fds: &[std::os::fd::RawFd],
    ) -> std::result::Result<Conversation, Unanswered> {
        // A local connect and one small write never block for long.
        let stream = connect(&self.socket).map_err(Unanswered::NoMonitor)?;
        send_request(&stream, req, fds).map_err(|_| Unanswered::Closed)?;
        stream
            .set_nonblocking(true)
            .map_err(|_| Unanswered::Closed)?;
        let stream = UnixStream::from_std(stream).map_err(|_| Unanswered::Closed)?;
        let (read, write) = stream.into_split();
        Ok(Conversation {
            lines: BufReader::new(read).lines(),
            write,
        })
    }

    async fn simple(&self, req: Request) -> Result<Reply> {
        let mut c = self.open(&req, &[]).await.map_err(|e| not_running(&e))?;
        c.next().await.map_err(|e| not_running(&e))
    }

    /// Waits for the workload to end: its exit code and reason, or
    /// `Unanswered` when no monitor runs (it ended before, or died).
    pub async fn wait(&self) -> std::result::Result<(i32, Option<String>), Unanswered> {
        let mut c = self.open(&Request::Wait, &[]).await?;
        match c.next().await? {
            Reply::Exited { code, reason } => Ok((code, reason)),
            _ => Err(Unanswered::Closed),
        }
    }

    /// Writes `data` to the workload's stdin; returns once it was written.
    pub async fn write_stdin(&self, data: &[u8]) -> Result<()> {
        let mut c = self
            .open(&Request::Stdin, &[])
            .await
            .map_err(|e| not_running(&e))?;
        let io = |e: std::io::Error| {
            RuntimeError::InvalidSpec(format!("the container's stdin is gone: {e}"))
        };
        c.write.write_all(data).await.map_err(io)?;
        c.write.shutdown().await.map_err(io)?;
        done(c.next().await.map_err(|e| not_running(&e))?)
    }

    /// Closes the workload's stdin.
    pub async fn close_stdin(&self) -> Result<()> {
        done(self.simple(Request::CloseStdin).await?)
    }

    /// Sets the terminal size.
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        done(self.simple(Request::Resize { rows, cols }).await?)
    }

    /// Sends `signal` to the workload.
    pub async fn signal(&self, signal: i32) -> Result<()> {
        done(self.simple(Request::Signal { signal }).await?)
    }

    /// One resource usage sample.
    pub async fn stats(&self) -> Result<StatsSample> {
        match self.simple(Request::Stats).await? {
            Reply::Stats(s) => Ok(s),
            other => Err(failure(other)),
        }
    }

    /// Starts `req` with `stdio` (stdin, stdout, stderr) as its streams.
    pub async fn exec(&self, req: ExecRequest, stdio: [OwnedFd; 3]) -> Result<ExecSession> {
        let raw: Vec<_> = stdio.iter().map(|f| f.as_raw_fd()).collect();
        let mut c = self
            .open(&Request::Exec(req), &raw)
            .await
            .map_err(|e| not_running(&e))?;
        // The monitor has its own copies now.
        drop(stdio);
        match c.next().await.map_err(|e| not_running(&e))? {
            Reply::Started { pid } => Ok(ExecSession {
                conversation: c,
                pid,
            }),
            other => Err(failure(other)),
        }
    }
}

/// A running exec.
pub struct ExecSession {
    conversation: Conversation,
    /// Its host pid (0 inside a VM).
    pub pid: i32,
}

impl ExecSession {
    /// Waits for the command to end; its exit code.
    pub async fn finish(mut self) -> Result<i32> {
        match self.conversation.next().await {
            Ok(Reply::Exited { code, .. }) => Ok(code),
            Ok(other) => Err(failure(other)),
            Err(_) => Err(RuntimeError::Internal(
                "the container's monitor ended during the exec".into(),
            )),
        }
    }
}

fn done(reply: Reply) -> Result<()> {
    match reply {
        Reply::Done => Ok(()),
        other => Err(failure(other)),
    }
}

/// The error a non-success reply stands for.
fn failure(reply: Reply) -> RuntimeError {
    match reply {
        Reply::Failed {
            failure: Some(f),
            message,
        } => RuntimeError::invoke(f, message),
        Reply::Failed {
            failure: None,
            message,
        } => RuntimeError::InvalidSpec(message),
        Reply::NotRunning => RuntimeError::NotRunning("the container is not running".into()),
        other => RuntimeError::Internal(format!("unexpected reply from the monitor: {other:?}")),
    }
}
