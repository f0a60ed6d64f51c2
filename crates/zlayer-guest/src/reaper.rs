//! PID 1's reaper: collects every ended child (workload, exec sessions and
//! orphans re-parented to the agent) and hands exit codes to whoever waits.

use crate::sys::{self, Reaped};
use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Statuses of children nobody registered yet are kept (bounded) for the
/// registration that races with a fast exit.
const MAX_UNCLAIMED: usize = 1024;

#[derive(Default)]
struct Table {
    waiters: HashMap<i32, Sender<i32>>,
    unclaimed: HashMap<i32, i32>,
}

/// Hands out exit codes by pid.
#[derive(Clone, Default)]
pub struct Reaper {
    table: Arc<Mutex<Table>>,
}

impl Reaper {
    /// Starts the reaping thread.
    pub fn start() -> Reaper {
        let reaper = Reaper::default();
        let r = reaper.clone();
        std::thread::spawn(move || r.run());
        reaper
    }

    /// A receiver of `pid`'s exit code (docker style).
    pub fn watch(&self, pid: i32) -> Receiver<i32> {
        let (tx, rx) = channel();
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(code) = t.unclaimed.remove(&pid) {
            let _ = tx.send(code);
        } else {
            t.waiters.insert(pid, tx);
        }
        rx
    }

    fn run(&self) {
        loop {
            match sys::wait_any() {
                Ok(Reaped::Child(pid, code)) => self.deliver(pid, code),
                Ok(Reaped::NoChildren) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    eprintln!("zlayer-guest: reaper: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn deliver(&self, pid: i32, code: i32) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = t.waiters.remove(&pid) {
            let _ = tx.send(code);
        } else {
            if t.unclaimed.len() >= MAX_UNCLAIMED {
                t.unclaimed.clear();
            }
            t.unclaimed.insert(pid, code);
        }
    }
}
