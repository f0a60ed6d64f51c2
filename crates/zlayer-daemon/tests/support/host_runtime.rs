//! A test-only [`Runtime`] that runs each container's command as a plain
//! host process (the image is ignored). It lets the API tests drive real
//! processes, pipes, signals and exit codes through the daemon without the
//! container runtime.
#![allow(dead_code)]

use async_trait::async_trait;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::watch;
use zlayer_runtime::*;
use zlayer_spec::{PullPolicy, ServiceSpec};

struct Entry {
    spec: ServiceSpec,
    state: ContainerState,
    pid: Option<u32>,
    logs: Arc<Mutex<Vec<LogEntry>>>,
    exited: watch::Sender<Option<i32>>,
    stdin: Option<Arc<tokio::sync::Mutex<Option<ChildStdin>>>>,
}

/// Host processes as containers.
#[derive(Default)]
pub struct HostRuntime {
    entries: Arc<Mutex<HashMap<ContainerId, Entry>>>,
    /// How long `create_container` takes before the container exists (a
    /// slow create, like a real runtime's on a loaded host).
    create_delay: Duration,
}

type Entries = Arc<Mutex<HashMap<ContainerId, Entry>>>;

fn with<T>(entries: &Entries, id: &ContainerId, f: impl FnOnce(&mut Entry) -> T) -> Result<T> {
    let mut m = entries.lock().unwrap();
    m.get_mut(id).map(f).ok_or_else(|| nf(id))
}

fn nf(id: &ContainerId) -> RuntimeError {
    RuntimeError::container_not_found(id)
}

impl HostRuntime {
    /// A runtime whose creates take `delay`.
    pub fn with_create_delay(delay: Duration) -> Self {
        HostRuntime {
            create_delay: delay,
            ..Default::default()
        }
    }

    fn with<T>(&self, id: &ContainerId, f: impl FnOnce(&mut Entry) -> T) -> Result<T> {
        with(&self.entries, id, f)
    }

    fn argv(spec: &ServiceSpec) -> Vec<String> {
        let mut v: Vec<String> = spec.command.entrypoint.clone().unwrap_or_default();
        v.extend(spec.command.args.clone().unwrap_or_default());
        if v.is_empty() {
            v.push("sh".into());
        }
        v
    }
}

fn pump<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    r: R,
    stream: LogStream,
    logs: Arc<Mutex<Vec<LogEntry>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            logs.lock().unwrap().push(LogEntry {
                timestamp: SystemTime::now(),
                stream,
                message: line,
            });
        }
    })
}

#[async_trait]
impl Runtime for HostRuntime {
    fn name(&self) -> &str {
        "container"
    }

    async fn pull_image_with_policy(
        &self,
        _: &str,
        _: PullPolicy,
        _: Option<&RegistryAuth>,
    ) -> Result<()> {
        Ok(())
    }

    async fn create_container(&self, id: &ContainerId, spec: &ServiceSpec) -> Result<()> {
        tokio::time::sleep(self.create_delay).await;
        let (tx, _) = watch::channel(None);
        self.entries.lock().unwrap().insert(
            id.clone(),
            Entry {
                spec: spec.clone(),
                state: ContainerState::Pending,
                pid: None,
                logs: Arc::new(Mutex::new(Vec::new())),
                exited: tx,
                stdin: None,
            },
        );
        Ok(())
    }

    async fn start_container(&self, id: &ContainerId) -> Result<()> {
        let (spec, logs, exited) =
            self.with(id, |e| (e.spec.clone(), e.logs.clone(), e.exited.clone()))?;
        let argv = Self::argv(&spec);
        if self.with(id, |e| e.state.clone())? != ContainerState::Pending {
            return Err(RuntimeError::InvalidSpec(format!(
                "container {id} has already run"
            )));
        }
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(spec.env.clone())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| RuntimeError::StartFailed {
            id: id.to_string(),
            reason: format!("{}: {e}", argv[0]),
        })?;
        let out = pump(
            child.stdout.take().unwrap(),
            LogStream::Stdout,
            logs.clone(),
        );
        let err = pump(
            child.stderr.take().unwrap(),
            LogStream::Stderr,
            logs.clone(),
        );
        let stdin = Arc::new(tokio::sync::Mutex::new(child.stdin.take()));
        let pid = child.id();
        self.with(id, |e| {
            e.state = ContainerState::Running;
            e.pid = pid;
            e.stdin = Some(stdin);
        })?;
        let entries = self.entries.clone();
        let id2 = id.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = out.await;
            let _ = err.await;
            use std::os::unix::process::ExitStatusExt;
            let code = match status {
                Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
                Err(_) => -1,
            };
            let _ = with(&entries, &id2, |e| {
                e.state = ContainerState::Exited { code };
                e.pid = None;
            });
            // `send` would drop the value while nobody is subscribed yet
            // (a waiter subscribing later would then wait forever).
            exited.send_replace(Some(code));
        });
        Ok(())
    }

    async fn stop_container(&self, id: &ContainerId, timeout: Duration) -> Result<()> {
        let Some(pid) = self.with(id, |e| e.pid)? else {
            return Ok(());
        };
        signal(pid, libc::SIGTERM);
        if tokio::time::timeout(timeout, self.wait_container(id))
            .await
            .is_err()
        {
            signal(pid, libc::SIGKILL);
            let _ = self.wait_container(id).await;
        }
        Ok(())
    }

    async fn kill_container(&self, id: &ContainerId, signal: Option<&str>) -> Result<()> {
        let sig = validate_signal(signal.unwrap_or("KILL"))?;
        let pid = self
            .with(id, |e| e.pid)?
            .ok_or_else(|| RuntimeError::InvalidSpec("not running".into()))?;
        self::signal(pid, sig);
        Ok(())
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        if let Ok(Some(pid)) = self.with(id, |e| e.pid) {
            signal(pid, libc::SIGKILL);
        }
        self.entries.lock().unwrap().remove(id);
        Ok(())
    }

    async fn container_state(&self, id: &ContainerId) -> Result<ContainerState> {
        self.with(id, |e| e.state.clone())
    }

    async fn wait_container(&self, id: &ContainerId) -> Result<i32> {
        let mut rx = self.with(id, |e| e.exited.subscribe())?;
        loop {
            if let Some(code) = *rx.borrow() {
                return Ok(code);
            }
            rx.changed().await.map_err(|_| nf(id))?;
        }
    }

    async fn logs_stream(&self, id: &ContainerId, opts: LogsStreamOptions) -> Result<LogsStream> {
        let (logs, exited) = self.with(id, |e| (e.logs.clone(), e.exited.subscribe()))?;
        let snapshot: Vec<LogEntry> = logs.lock().unwrap().clone();
        let start = snapshot.len();
        let first = opts.select(snapshot);
        if !opts.follow {
            return Ok(futures_util::stream::iter(first.into_iter().map(Ok)).boxed());
        }
        let follow =
            futures_util::stream::unfold((start, exited, false), move |(mut pos, rx, done)| {
                let logs = logs.clone();
                let opts = opts.clone();
                async move {
                    if done {
                        return None;
                    }
                    loop {
                        let batch: Vec<LogEntry> = logs.lock().unwrap()[pos..].to_vec();
                        if !batch.is_empty() {
                            pos += batch.len();
                            let batch: Vec<Result<LogEntry>> = batch
                                .into_iter()
                                .filter(|e| opts.wants(e.stream))
                                .map(Ok)
                                .collect();
                            return Some((futures_util::stream::iter(batch), (pos, rx, false)));
                        }
                        if rx.borrow().is_some() {
                            return None;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
            .flatten();
        Ok(futures_util::stream::iter(first.into_iter().map(Ok))
            .chain(follow)
            .boxed())
    }

    async fn exec_with_opts(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecOutput> {
        require_command(opts)?;
        self.with(id, |_| ())?;
        let mut cmd = Command::new(&opts.command[0]);
        cmd.args(&opts.command[1..])
            .envs(opts.env.clone())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| RuntimeError::StartFailed {
            id: id.to_string(),
            reason: format!("{}: {e}", opts.command[0]),
        })?;
        if let Some(mut si) = child.stdin.take() {
            if let Some(data) = &opts.stdin {
                let _ = si.write_all(data).await;
            }
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| RuntimeError::Internal(e.to_string()))?;
        Ok(ExecOutput {
            exit_code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn get_container_stats(&self, id: &ContainerId) -> Result<ContainerStats> {
        let pid = self.with(id, |e| e.pid)?;
        Ok(sample(pid))
    }

    async fn stats_stream(&self, id: &ContainerId) -> Result<StatsStream> {
        let entries = self.entries.clone();
        let id = id.clone();
        Ok(futures_util::stream::unfold(0u32, move |n| {
            let (id, entries) = (id.clone(), entries.clone());
            async move {
                if n > 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                match with(&entries, &id, |e| (e.state.is_alive(), e.pid)) {
                    Ok((true, pid)) => Some((Ok(sample(pid)), n + 1)),
                    _ => None,
                }
            }
        })
        .boxed())
    }

    async fn get_container_pid(&self, id: &ContainerId) -> Result<Option<u32>> {
        self.with(id, |e| e.pid)
    }

    async fn get_container_ip(&self, id: &ContainerId) -> Result<Option<IpAddr>> {
        self.with(id, |_| None)
    }

    async fn port_mappings_container(&self, id: &ContainerId) -> Result<Vec<PortMappingEntry>> {
        self.with(id, |_| Vec::new())
    }

    async fn write_stdin(&self, id: &ContainerId, data: &[u8]) -> Result<()> {
        let si = self
            .with(id, |e| e.stdin.clone())?
            .ok_or_else(|| RuntimeError::InvalidSpec("no stdin".into()))?;
        let mut g = si.lock().await;
        match g.as_mut() {
            Some(w) => w
                .write_all(data)
                .await
                .map_err(|e| RuntimeError::Internal(e.to_string())),
            None => Err(RuntimeError::InvalidSpec("stdin closed".into())),
        }
    }

    async fn close_stdin(&self, id: &ContainerId) -> Result<()> {
        if let Some(si) = self.with(id, |e| e.stdin.clone())? {
            si.lock().await.take();
        }
        Ok(())
    }

    async fn pause_container(&self, id: &ContainerId) -> Result<()> {
        let pid = self
            .with(id, |e| e.pid)?
            .ok_or_else(|| RuntimeError::InvalidSpec("not running".into()))?;
        signal(pid, libc::SIGSTOP);
        self.with(id, |e| e.state = ContainerState::Paused)
    }

    async fn unpause_container(&self, id: &ContainerId) -> Result<()> {
        let pid = self
            .with(id, |e| e.pid)?
            .ok_or_else(|| RuntimeError::InvalidSpec("not running".into()))?;
        signal(pid, libc::SIGCONT);
        self.with(id, |e| e.state = ContainerState::Running)
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        Ok(Vec::new())
    }

    async fn list_containers(&self) -> Result<Vec<ContainerId>> {
        Ok(self.entries.lock().unwrap().keys().cloned().collect())
    }
}

fn sample(pid: Option<u32>) -> ContainerStats {
    StatsSample {
        timestamp: SystemTime::now(),
        cpu_total_ns: 1_000_000,
        cpu_system_ns: 10_000_000,
        online_cpus: 2,
        memory_used_bytes: 1 << 20,
        memory_limit_bytes: 1 << 30,
        net_rx_bytes: 0,
        net_tx_bytes: 0,
        blkio_read_bytes: 0,
        blkio_write_bytes: 0,
        pids_current: u64::from(pid.is_some()),
        pids_limit: None,
    }
}

fn signal(pid: u32, sig: i32) {
    if let Ok(sig) = nix::sys::signal::Signal::try_from(sig) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
    }
}
