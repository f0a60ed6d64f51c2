//! The end of a monitor: the exit record, answers, auto-remove.

use super::diag;
use super::event_loop::Monitor;
use crate::exit::{now_ms, ExitRecord};
use crate::launcher::Launcher;
use crate::records;
use zlayer_runtime::LogStream;

impl<L: Launcher> Monitor<'_, L> {
    /// Records the exit (after the log is flushed), answers everyone, and
    /// removes the container when it was created with `--rm`.
    pub(super) fn finish(mut self) {
        self.reap();
        // Nothing of this run outlives its exit record: an exec helper
        // still joining the workload (it would make its cgroup again after
        // the removal) and orphans the monitor adopted as subreaper.
        kill_children();
        self.reap();
        let _ = self.log.finish();
        let (code, signal) = self.main_status.unwrap_or((255, None));
        let mut exit = self.workload.exit(code, signal);
        if self.main_status.is_none() {
            exit.reason = Some("the monitor lost track of the workload's main process".into());
        }
        if let Some(reason) = self.kill_reason.take() {
            exit.reason = Some(reason);
        }
        let rec = ExitRecord {
            code: exit.code,
            signal: exit.signal,
            reason: exit.reason.clone(),
            finished_at_ms: now_ms(),
        };
        zlayer_failpoints::hit("exit.before-record");
        if let Err(e) = records::write_exit(&self.dir, &rec) {
            diag(&e.to_string());
        }
        let _ = std::fs::remove_file(self.dir.paused());
        self.answer_all(exit.code, exit.reason);
        self.listener = None;
        let _ = std::fs::remove_file(self.dir.socket());
        if self.record.spec.lifecycle.delete_on_exit {
            self.clients.clear();
            if let Err(e) = crate::removal::remove_container(self.launcher, &self.dir, &self.record)
            {
                let _ = self
                    .log
                    .write_message(LogStream::System, &format!("auto-remove failed: {e}"));
                diag(&format!("auto-remove failed: {e}"));
            }
        }
    }
}

/// SIGKILLs and reaps every child of this process (a few rounds: a child
/// may fork while it dies, and its orphans come back to us, the
/// subreaper).
fn kill_children() {
    let me = std::process::id() as i32;
    for _ in 0..8 {
        let kids = zlayer_sys::procfs::children(me).unwrap_or_default();
        if kids.is_empty() {
            return;
        }
        for pid in &kids {
            // SAFETY: kill(2) of our own child.
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
            }
        }
        for pid in kids {
            let mut status = 0;
            // SAFETY: waitpid of our own child with a valid pointer.
            unsafe {
                libc::waitpid(pid, &mut status, 0);
            }
        }
    }
}
