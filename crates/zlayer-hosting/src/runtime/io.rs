//! Logs, exec, stdin, stats and what `ps`/`inspect` read.

use super::HostedRuntime;
use crate::launcher::{ExecRequest, NetworkView};
use crate::layout::StateDir;
use crate::phase::Phase;
use crate::records;
use futures_util::StreamExt;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zlayer_runtime::{
    require_command, ContainerId, ContainerRecord, ContainerState, ContainerStats, ContainerView,
    ExecOptions, ExecStream, LogChunk, LogStream, LogsStream, LogsStreamOptions, Result,
    RuntimeError, StatsStream, STATS_INTERVAL,
};

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::Internal(format!("creating a pipe: {e}")))
}

fn not_running(record: &ContainerRecord, phase: &Phase, what: &str) -> RuntimeError {
    RuntimeError::WrongState {
        id: record.name.clone(),
        state: phase.state(record).to_string(),
        hint: format!("it is not running; {what}"),
    }
}

/// Whether a log follower may stop: the container ended, was removed, or
/// its monitor is gone.
fn finished(dir: &StateDir) -> bool {
    if dir.exit().exists() || !dir.record().exists() {
        return true;
    }
    match records::read_monitor(dir) {
        Ok(Some(m)) => !m.monitor_alive(),
        Ok(None) => false,
        Err(_) => true,
    }
}

impl HostedRuntime {
    /// The running container's state dir and record, or why not.
    fn running(
        &self,
        id: &ContainerId,
        what: &str,
    ) -> Result<(
        StateDir,
        ContainerRecord,
        crate::monitor_record::MonitorRecord,
    )> {
        let (dir, record) = self.load(id)?;
        match self.observe(&dir, &record)? {
            Phase::Running(m) => Ok((dir, record, m)),
            other => Err(not_running(&record, &other, what)),
        }
    }

    pub(super) async fn state(&self, id: &ContainerId) -> Result<ContainerState> {
        let (dir, record) = self.load(id)?;
        Ok(self.observe(&dir, &record)?.state(&record))
    }

    pub(super) async fn logs(
        &self,
        id: &ContainerId,
        opts: LogsStreamOptions,
    ) -> Result<LogsStream> {
        let (dir, record) = self.load(id)?;
        // A follower of a running container is woken by its monitor's
        // answer to a `Wait` (sent once the exit is recorded and the log
        // flushed), not at its next poll.
        let ended: Option<crate::logs::EndSignal> = match self.observe(&dir, &record)? {
            Phase::Running(_) | Phase::Paused(_) if opts.follow => {
                let client = crate::control::Client::new(dir.socket());
                Some(Box::pin(async move {
                    let _ = client.wait().await;
                }))
            }
            _ => None,
        };
        let log = dir.log();
        // The log is in the state dir, where the exit is recorded: one
        // directory to watch.
        crate::logs::logs_stream_watching(log, None, opts, Arc::new(move || finished(&dir)), ended)
    }

    pub(super) async fn exec(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecStream> {
        require_command(opts)?;
        if opts.tty {
            return Err(RuntimeError::unsupported(
                "zlayer",
                "exec with a terminal",
                "run the command without -t",
            ));
        }
        let (dir, _, _) = self.running(id, "start it before exec")?;
        let (stdin_r, stdin_w) = pipe()?;
        let (stdout_r, stdout_w) = pipe()?;
        let (stderr_r, stderr_w) = pipe()?;
        let request = ExecRequest {
            argv: opts.command.clone(),
            env: opts
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            user: opts.user.clone(),
            workdir: opts.working_dir.clone(),
        };
        let session = Self::client(&dir)
            .exec(request, [stdin_r, stdout_w, stderr_w])
            .await?;
        let stdin = opts.stdin.clone();
        tokio::spawn(async move {
            let Ok(mut w) = tokio::net::unix::pipe::Sender::from_owned_fd(stdin_w) else {
                return;
            };
            if let Some(data) = stdin {
                let _ = w.write_all(&data).await;
            }
            // Dropping the sender is the command's end of input.
        });
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<LogChunk>>(64);
        let readers = [(stdout_r, LogStream::Stdout), (stderr_r, LogStream::Stderr)]
            .into_iter()
            .map(|(fd, stream)| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let Ok(mut r) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
                        return;
                    };
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        match r.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                let chunk = LogChunk {
                                    timestamp: SystemTime::now(),
                                    stream,
                                    data: buf[..n].to_vec(),
                                };
                                if tx.send(Ok(chunk)).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                })
            })
            .collect::<Vec<_>>();
        drop(tx);
        let exit_code = Box::pin(async move {
            let code = session.finish().await;
            for r in readers {
                let _ = r.await;
            }
            code
        });
        let output =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|c| (c, rx)) },
            )
            .boxed();
        Ok(ExecStream { output, exit_code })
    }

    pub(super) async fn stats(&self, id: &ContainerId) -> Result<ContainerStats> {
        let (dir, _, _) =
            self.running(id, "statistics exist only while it runs; start it first")?;
        Self::client(&dir).stats().await
    }

    pub(super) async fn stats_stream_of(&self, id: &ContainerId) -> Result<StatsStream> {
        let first = self.stats(id).await?;
        let (dir, _) = self.load(id)?;
        let client = Self::client(&dir);
        let rest = futures_util::stream::unfold(client, |client| async move {
            tokio::time::sleep(STATS_INTERVAL).await;
            match client.stats().await {
                Ok(s) => Some((Ok(s), client)),
                Err(_) => None,
            }
        });
        Ok(futures_util::stream::iter([Ok(first)]).chain(rest).boxed())
    }

    pub(super) async fn pid(&self, id: &ContainerId) -> Result<Option<u32>> {
        let (dir, record) = self.load(id)?;
        Ok(self
            .observe(&dir, &record)?
            .live()
            .map(|m| m.workload.pid as u32))
    }

    pub(super) async fn network(&self, id: &ContainerId) -> Result<NetworkView> {
        let (dir, record) = self.load(id)?;
        self.launcher(record.isolation)?.network(&dir, &record)
    }

    pub(super) async fn write_stdin(&self, id: &ContainerId, data: &[u8]) -> Result<()> {
        let (dir, _, _) = self.running(id, "its stdin is gone")?;
        Self::client(&dir).write_stdin(data).await
    }

    pub(super) async fn close_stdin(&self, id: &ContainerId) -> Result<()> {
        let (dir, record) = self.load(id)?;
        if self.observe(&dir, &record)?.live().is_none() {
            return Ok(());
        }
        Self::client(&dir).close_stdin().await
    }

    pub(super) async fn resize(&self, id: &ContainerId, rows: u16, cols: u16) -> Result<()> {
        let (dir, _, _) = self.running(id, "its terminal is gone")?;
        Self::client(&dir).resize(rows, cols).await
    }

    pub(super) async fn record(&self, id: &ContainerId) -> Result<ContainerRecord> {
        Ok(self.load(id)?.1)
    }

    /// Every container with its state, oldest first.
    pub(super) async fn list(&self) -> Result<Vec<ContainerView>> {
        let mut out = Vec::new();
        for (dir, record) in self.all_records() {
            let phase = match self.observe(&dir, &record) {
                Ok(p) => p,
                // Removed while we listed.
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            if !dir.record().exists() {
                continue;
            }
            out.push(ContainerView {
                pid: phase.live().map(|m| m.workload.pid as u32),
                state: phase.state(&record),
                record,
            });
        }
        Ok(out)
    }

    /// Rewrites the record of a container (restart count, `--rm` set by a
    /// front end after create).
    pub fn update_record(
        &self,
        id: &ContainerId,
        update: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord> {
        let (dir, mut record) = self.load(id)?;
        update(&mut record);
        records::write_record(&dir, &record, true)?;
        Ok(record)
    }

    /// The container named `name`, through the name index.
    pub fn by_name(&self, name: &str) -> Option<ContainerRecord> {
        let target = self.names.lookup(name)?;
        let dir = StateDir::new(self.layout.containers_dir().join(target));
        records::read_record(&dir)
            .ok()
            .flatten()
            .filter(|r| r.name == name)
    }

    /// Every container's record (no state), oldest first.
    pub fn records(&self) -> Vec<ContainerRecord> {
        self.all_records().into_iter().map(|(_, r)| r).collect()
    }
}
