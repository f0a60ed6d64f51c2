//! How a container's main process ended, as recorded by its monitor.

use serde::{Deserialize, Serialize};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// The monitor's `exit.json`: written once, atomically, after the logs are
/// flushed, so a reader that sees it also sees every log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Docker-style exit code: the process's code, or 128+N for signal N.
    pub code: i32,
    /// The signal that killed the process, if any.
    pub signal: Option<i32>,
    /// Set when the engine ended the process (memory watchdog, start
    /// failure); the container's state is then `Failed { reason }`.
    pub reason: Option<String>,
    /// Unix time in milliseconds when the process ended.
    pub finished_at_ms: u64,
}

impl ExitRecord {
    /// The container state this record stands for: `Exited`, or `Failed`
    /// with the reason when the engine ended the workload.
    pub fn state(&self) -> zlayer_runtime::ContainerState {
        match &self.reason {
            Some(reason) => zlayer_runtime::ContainerState::Failed {
                reason: reason.clone(),
                code: Some(self.code),
            },
            None => zlayer_runtime::ContainerState::Exited { code: self.code },
        }
    }

    /// A record for `status`, stamped now.
    pub fn from_status(status: ExitStatus) -> Self {
        ExitRecord {
            code: exit_code_from_status(status),
            signal: status.signal(),
            reason: None,
            finished_at_ms: now_ms(),
        }
    }
}

/// Docker's exit code for a wait status: the code, or 128+N when killed by
/// signal N.
pub fn exit_code_from_status(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 255,
    }
}

pub use zlayer_sys::fs::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(exit_code_from_status(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code_from_status(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code_from_status(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code_from_status(ExitStatus::from_raw(15)), 143);
        let rec = ExitRecord::from_status(ExitStatus::from_raw(15));
        assert_eq!(rec.signal, Some(15));
    }
}
