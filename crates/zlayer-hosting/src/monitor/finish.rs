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
