//! What supervisors saw happen to containers, broadcast to whoever waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, Notify};

use crate::health::HealthStatus;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// It was started (by the user or a restart policy).
    Started,
    /// Its init exited with this code.
    Exited(i32),
    /// It was removed (catalog record gone).
    Removed,
    /// Its health status changed.
    Health(HealthStatus),
}

/// One event about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The container's 64-hex id.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
}

#[derive(Default)]
struct Attachers {
    counts: Mutex<HashMap<String, usize>>,
    changed: Notify,
}

/// A broadcast of [`Event`]s plus a count of attached output streams per
/// container (an auto-removed container is removed only once its attached
/// clients have read everything).
#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Event>,
    attachers: Arc<Attachers>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    /// A hub keeping up to 1024 undelivered events per subscriber.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        EventHub {
            tx,
            attachers: Arc::new(Attachers::default()),
        }
    }

    /// Tells every subscriber.
    pub fn publish(&self, id: &str, kind: EventKind) {
        tracing::debug!(container = id, ?kind, "event");
        let _ = self.tx.send(Event {
            id: id.to_string(),
            kind,
        });
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Registers an attached output stream of container `id` until dropped.
    pub fn attach(&self, id: &str) -> AttachGuard {
        if let Ok(mut counts) = self.attachers.counts.lock() {
            *counts.entry(id.to_string()).or_default() += 1;
        }
        AttachGuard {
            id: id.to_string(),
            attachers: self.attachers.clone(),
        }
    }

    fn attached(&self, id: &str) -> usize {
        self.attachers
            .counts
            .lock()
            .map(|c| c.get(id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Waits until no stream is attached to `id`, at most `limit`.
    pub async fn wait_detached(&self, id: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.attachers.changed.notified();
            if self.attached(id) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(
                    container = id,
                    "attached clients still reading after {limit:?}; removing anyway"
                );
                return;
            }
        }
    }
}

/// Keeps a container counted as attached; see [`EventHub::attach`].
pub struct AttachGuard {
    id: String,
    attachers: Arc<Attachers>,
}

impl Drop for AttachGuard {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.attachers.counts.lock() {
            if let Some(n) = counts.get_mut(&self.id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(&self.id);
                }
            }
        }
        self.attachers.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn publish_subscribe_and_attach_counts() {
        let hub = EventHub::new();
        let mut rx = hub.subscribe();
        hub.publish("a", EventKind::Exited(3));
        assert_eq!(
            rx.recv().await.unwrap(),
            Event {
                id: "a".into(),
                kind: EventKind::Exited(3)
            }
        );
        let guard = hub.attach("a");
        let hub2 = hub.clone();
        let waiter = tokio::spawn(async move {
            hub2.wait_detached("a", Duration::from_secs(10)).await;
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        drop(guard);
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap();
        // Nothing attached: returns at once.
        hub.wait_detached("b", Duration::from_secs(10)).await;
    }
}
