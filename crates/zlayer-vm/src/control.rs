//! The host end of the control stream: one connection to the guest's
//! control port (QEMU's chardev socket), demultiplexed by channel.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, Notify};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_vm_proto::{encode_frame, ChannelId, Decoder, Frame, GuestStats, Msg, WORKLOAD_CHANNEL};

/// What channel 0 reported so far.
#[derive(Debug, Default, Clone)]
pub struct WorkloadEvents {
    /// The agent announced itself (protocol version).
    pub ready: Option<u32>,
    /// The workload's pid in the guest.
    pub started: Option<u32>,
    /// The workload's exit code.
    pub exited: Option<i32>,
    /// The last error the agent reported on channel 0.
    pub error: Option<String>,
    /// The workload could not be started, and why.
    pub spawn_failed: Option<(zlayer_vm_proto::SpawnFailure, String)>,
}

#[derive(Default)]
struct Shared {
    channels: Mutex<HashMap<ChannelId, mpsc::UnboundedSender<Msg>>>,
    events: Mutex<WorkloadEvents>,
    stats_waiters: Mutex<VecDeque<oneshot::Sender<GuestStats>>>,
    changed: Notify,
    closed: AtomicBool,
}

/// A live control connection.
pub struct Control {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    shared: Arc<Shared>,
    next_channel: AtomicU32,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Control {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Control {
    /// Connects to the control socket at `path`.
    pub async fn connect(path: &Path) -> Result<Arc<Control>> {
        let stream = UnixStream::connect(path).await.map_err(|e| {
            RuntimeError::Internal(format!(
                "cannot connect to the VM control socket {}: {e}",
                path.display()
            ))
        })?;
        let (mut read, write) = stream.into_split();
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let reader = tokio::spawn(async move {
            let mut decoder = Decoder::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                decoder.push(&buf[..n]);
                loop {
                    match decoder.next_frame() {
                        Ok(Some(frame)) => dispatch(&s, frame),
                        Ok(None) => break,
                        Err(e) if e.is_fatal() => {
                            tracing::warn!(error = %e, "vm: control stream unusable; closing it");
                            s.closed.store(true, Ordering::SeqCst);
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "vm: skipped a bad frame from the guest")
                        }
                    }
                }
                if s.closed.load(Ordering::SeqCst) {
                    break;
                }
            }
            s.closed.store(true, Ordering::SeqCst);
            lock(&s.channels).clear();
            lock(&s.stats_waiters).clear();
            s.changed.notify_waiters();
        });
        Ok(Arc::new(Control {
            writer: tokio::sync::Mutex::new(write),
            shared,
            next_channel: AtomicU32::new(1),
            reader,
        }))
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Sends one frame.
    pub async fn send(&self, channel: ChannelId, msg: Msg) -> Result<()> {
        let bytes = encode_frame(&Frame::new(channel, msg))
            .map_err(|e| RuntimeError::Internal(e.to_string()))?;
        let mut w = self.writer.lock().await;
        w.write_all(&bytes).await.map_err(|e| {
            RuntimeError::Internal(format!("writing to the VM control socket failed: {e}"))
        })
    }

    /// Sends everything `r` yields as `Stdin` on `channel`, then
    /// `StdinEof` when it ends (or fails); stops early when the socket is
    /// gone. The one input pump of workloads, execs and forwarded ports.
    pub async fn pump_input<R: tokio::io::AsyncRead + Unpin>(
        &self,
        channel: ChannelId,
        mut r: R,
        buf_size: usize,
    ) {
        let mut buf = vec![0u8; buf_size];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = self.send(channel, Msg::StdinEof).await;
                    return;
                }
                Ok(n) => {
                    if self
                        .send(channel, Msg::Stdin(buf[..n].to_vec()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Opens a fresh channel and returns its id and the guest's messages on it.
    pub fn open_channel(&self) -> (ChannelId, mpsc::UnboundedReceiver<Msg>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut id = self.next_channel.fetch_add(1, Ordering::SeqCst);
        if id == WORKLOAD_CHANNEL {
            id = self.next_channel.fetch_add(1, Ordering::SeqCst);
        }
        lock(&self.shared.channels).insert(id, tx);
        (id, rx)
    }

    /// Forgets a channel (its receiver gets no more messages).
    pub fn close_channel(&self, id: ChannelId) {
        lock(&self.shared.channels).remove(&id);
    }

    /// A snapshot of the workload channel's events.
    pub fn events(&self) -> WorkloadEvents {
        lock(&self.shared.events).clone()
    }

    /// Waits until `pred` holds for the workload events, the connection
    /// closes, or `timeout` passes; returns the last snapshot.
    pub async fn wait_events(
        &self,
        timeout: Duration,
        pred: impl Fn(&WorkloadEvents) -> bool,
    ) -> WorkloadEvents {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            let ev = self.events();
            if pred(&ev) || self.is_closed() || tokio::time::Instant::now() >= deadline {
                return ev;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// Asks the guest for its figures.
    pub async fn query_stats(&self, timeout: Duration) -> Result<GuestStats> {
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.stats_waiters).push_back(tx);
        self.send(WORKLOAD_CHANNEL, Msg::QueryStats).await?;
        tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| {
                RuntimeError::Internal("the guest agent did not answer QueryStats in time".into())
            })?
            .map_err(|_| RuntimeError::Internal("the VM control connection closed".into()))
    }
}

fn dispatch(s: &Shared, frame: Frame) {
    if frame.channel != WORKLOAD_CHANNEL {
        let tx = lock(&s.channels).get(&frame.channel).cloned();
        if let Some(tx) = tx {
            let _ = tx.send(frame.msg);
        }
        return;
    }
    match frame.msg {
        Msg::Stats(st) => {
            if let Some(w) = lock(&s.stats_waiters).pop_front() {
                let _ = w.send(st);
            }
        }
        msg => {
            let mut ev = lock(&s.events);
            match msg {
                Msg::Ready { version } => ev.ready = Some(version),
                Msg::Started { pid } => ev.started = Some(pid),
                Msg::Exited { code } => ev.exited = Some(code),
                Msg::Error { message } => ev.error = Some(message),
                Msg::SpawnFailed { kind, message } => ev.spawn_failed = Some((kind, message)),
                other => tracing::debug!(msg = other.name(), "vm: unexpected frame on channel 0"),
            }
        }
    }
    s.changed.notify_waiters();
}
