//! The [`Runtime`] trait: the one interface every isolation implements.

use crate::error::{Result, RuntimeError};
use crate::types::{
    ContainerId, ContainerRecord, ContainerState, ContainerStats, ContainerView, ExecOptions,
    ExecOutput, ImageInfo, LogChunk, LogEntry, LogsStreamOptions, NewContainer, PortMappingEntry,
};
use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use std::net::IpAddr;
use std::time::Duration;
use zlayer_spec::PullPolicy;

/// A stream of log records, ending when the snapshot is exhausted (or, with
/// `follow`, when the container has exited and everything was delivered).
pub type LogsStream = BoxStream<'static, Result<LogEntry>>;

/// A stream of resource samples, one per interval, ending when the container
/// stops.
pub type StatsStream = BoxStream<'static, Result<ContainerStats>>;

/// A running exec whose output arrives as it is produced.
pub struct ExecStream {
    /// stdout/stderr chunks in the order they were read.
    pub output: BoxStream<'static, Result<LogChunk>>,
    /// Resolves to the exit code once the command ended and `output` is drained.
    pub exit_code: futures_util::future::BoxFuture<'static, Result<i32>>,
}

/// Registry credentials, given on the call (they override
/// `~/.docker/config.json`); the image store's type.
pub use zlayer_image::RegistryAuth;

/// Interval of the default [`Runtime::stats_stream`].
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// The containers of a node, whatever isolation each runs under, behind one
/// interface.
///
/// Conventions every implementation follows:
/// - `remove_container` of an unknown container is `Ok(())`; every other
///   call on an unknown container is [`RuntimeError::NotFound`].
/// - `stop_container` and `remove_container` are idempotent.
/// - A method the runtime cannot support returns
///   [`RuntimeError::Unsupported`] with the reason, never a silent success.
/// - Exit codes are docker's: the process's code, or 128+N when it was killed
///   by signal N.
/// - A failed create or start leaves nothing behind (mounts, cgroups,
///   processes, network devices, state directories).
#[async_trait]
pub trait Runtime: Send + Sync {
    /// The name of this runtime, for messages.
    fn name(&self) -> &str;

    /// Makes `image` available locally, pulling it if absent.
    async fn pull_image(&self, image: &str) -> Result<()> {
        self.pull_image_with_policy(image, PullPolicy::IfNotPresent, None)
            .await
    }

    /// Makes `image` available locally according to `policy`.
    async fn pull_image_with_policy(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: Option<&RegistryAuth>,
    ) -> Result<()>;

    /// Creates the container (state `Pending`) under the isolation its spec
    /// or image asks for, and returns its record. Fails when the name or
    /// the container id is taken.
    async fn create_container(&self, new: &NewContainer) -> Result<ContainerRecord>;

    /// Creates container `id` from `spec`, named `service-replica`, with a
    /// fresh id and defaults for everything else.
    async fn create_from_spec(
        &self,
        id: &ContainerId,
        spec: &zlayer_spec::ServiceSpec,
    ) -> Result<ContainerRecord> {
        self.create_container(&NewContainer::new(id.clone(), spec.clone()))
            .await
    }

    /// The record of a container.
    async fn container_record(&self, id: &ContainerId) -> Result<ContainerRecord>;

    /// Starts a created container (state `Running`).
    async fn start_container(&self, id: &ContainerId) -> Result<()>;

    /// Sends the stop signal, waits up to `timeout`, then kills.
    async fn stop_container(&self, id: &ContainerId, timeout: Duration) -> Result<()>;

    /// Sends `signal` (name or number, see [`crate::validate_signal`];
    /// default SIGKILL).
    async fn kill_container(&self, id: &ContainerId, signal: Option<&str>) -> Result<()>;

    /// Stops the container if needed and deletes everything it owns.
    async fn remove_container(&self, id: &ContainerId) -> Result<()>;

    /// The container's current state.
    async fn container_state(&self, id: &ContainerId) -> Result<ContainerState>;

    /// Waits for the container to end; returns its exit code.
    async fn wait_container(&self, id: &ContainerId) -> Result<i32>;

    /// Log records selected by `opts`; with `follow`, keeps streaming until
    /// the container exits, without losing or repeating records across the
    /// snapshot/follow boundary.
    async fn logs_stream(&self, id: &ContainerId, opts: LogsStreamOptions) -> Result<LogsStream>;

    /// The last `tail` log records (stdout and stderr).
    async fn container_logs(&self, id: &ContainerId, tail: usize) -> Result<Vec<LogEntry>> {
        let opts = LogsStreamOptions {
            tail: Some(tail),
            ..Default::default()
        };
        collect_logs(self.logs_stream(id, opts).await?).await
    }

    /// Every log record so far.
    async fn get_logs(&self, id: &ContainerId) -> Result<Vec<LogEntry>> {
        collect_logs(self.logs_stream(id, LogsStreamOptions::default()).await?).await
    }

    /// Runs `cmd` in the container; returns (exit code, stdout, stderr).
    async fn exec(&self, id: &ContainerId, cmd: &[String]) -> Result<(i32, String, String)> {
        let out = self
            .exec_with_opts(id, &ExecOptions::command(cmd.iter().cloned()))
            .await?;
        Ok((out.exit_code, out.stdout, out.stderr))
    }

    /// Runs a command with env, user, workdir and stdin options.
    /// An empty command is [`RuntimeError::InvalidSpec`] mentioning "empty".
    async fn exec_with_opts(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecOutput>;

    /// Runs a command and streams its output as it is produced.
    async fn exec_stream(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecStream> {
        let out = self.exec_with_opts(id, opts).await?;
        Ok(exec_output_as_stream(out))
    }

    /// One sample of resource usage; an error before the container started.
    async fn get_container_stats(&self, id: &ContainerId) -> Result<ContainerStats>;

    /// A sample every [`STATS_INTERVAL`] until the container stops.
    async fn stats_stream(&self, id: &ContainerId) -> Result<StatsStream>;

    /// The host PID of the container's init process, while it runs.
    async fn get_container_pid(&self, id: &ContainerId) -> Result<Option<u32>>;

    /// The container's IP address, when it has one of its own.
    async fn get_container_ip(&self, id: &ContainerId) -> Result<Option<IpAddr>>;

    /// Its published ports, with the host ports actually bound.
    async fn port_mappings_container(&self, id: &ContainerId) -> Result<Vec<PortMappingEntry>>;

    /// Writes to the workload's standard input.
    async fn write_stdin(&self, id: &ContainerId, data: &[u8]) -> Result<()>;

    /// Closes the workload's standard input (EOF).
    async fn close_stdin(&self, id: &ContainerId) -> Result<()>;

    /// Sets the size of the workload's terminal (`rows` x `cols`); the
    /// foreground process gets SIGWINCH. Only for a container created with
    /// a terminal (label `com.zlayer.tty`).
    async fn resize_terminal(&self, id: &ContainerId, rows: u16, cols: u16) -> Result<()> {
        let _ = (id, rows, cols);
        Err(RuntimeError::unsupported(
            self.name(),
            "a terminal",
            "only the container isolation gives a workload a terminal; run without -t",
        ))
    }

    /// Freezes every process of the container.
    async fn pause_container(&self, id: &ContainerId) -> Result<()>;

    /// Thaws a paused container.
    async fn unpause_container(&self, id: &ContainerId) -> Result<()>;

    /// Images this runtime can run without pulling.
    async fn list_images(&self) -> Result<Vec<ImageInfo>>;

    /// Every container, including ones created by an earlier process, with
    /// its state (oldest first).
    async fn list_containers(&self) -> Result<Vec<ContainerView>>;

    /// Whether the container `id` exists.
    async fn has_container(&self, id: &ContainerId) -> Result<bool> {
        match self.container_record(id).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Drains a log stream into a vector.
pub async fn collect_logs(mut stream: LogsStream) -> Result<Vec<LogEntry>> {
    let mut out = Vec::new();
    while let Some(entry) = stream.next().await {
        out.push(entry?);
    }
    Ok(out)
}

/// Wraps a finished exec's output as an [`ExecStream`].
pub fn exec_output_as_stream(out: ExecOutput) -> ExecStream {
    use crate::types::LogStream;
    let now = std::time::SystemTime::now();
    let chunks: Vec<Result<LogChunk>> = [
        (LogStream::Stdout, out.stdout),
        (LogStream::Stderr, out.stderr),
    ]
    .into_iter()
    .filter(|(_, text)| !text.is_empty())
    .map(|(stream, text)| {
        Ok(LogChunk {
            timestamp: now,
            stream,
            data: text.into_bytes(),
        })
    })
    .collect();
    let code = out.exit_code;
    ExecStream {
        output: futures_util::stream::iter(chunks).boxed(),
        exit_code: Box::pin(async move { Ok(code) }),
    }
}

/// Rejects an empty exec command with the conventional error.
pub fn require_command(opts: &ExecOptions) -> Result<()> {
    if opts.command.is_empty() || opts.command.iter().all(|a| a.is_empty()) {
        return Err(RuntimeError::InvalidSpec(
            "exec command is empty; give the program to run, e.g. `exec ID sh -c 'echo hi'`".into(),
        ));
    }
    Ok(())
}
