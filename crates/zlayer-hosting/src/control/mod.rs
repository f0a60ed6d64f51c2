//! The one control protocol between a container's monitor and everyone
//! else (CLI, daemon, shims), on the unix socket `run/control.sock`.
//!
//! A client connects, sends one [`Request`] as a JSON line (with file
//! descriptors attached for `exec`), and reads [`Reply`] lines:
//! - `wait`: one `exited` once the workload ended (logs flushed, exit
//!   record written);
//! - `stdin`: every byte the client sends after the request line, until it
//!   shuts down its write half, goes to the workload's stdin; `done` once
//!   all of it was written (an error once the workload is gone);
//! - `close_stdin`: `done` once stdin is closed (a terminal gets ^D);
//! - `resize`: `done` once the terminal has the size (SIGWINCH follows);
//! - `exec` + stdin/stdout/stderr fds: `started`, then `exited` (or
//!   `failed` with a typed [`zlayer_runtime::InvokeFailure`]);
//! - `signal`: `done` once sent;
//! - `stats`: one `stats` sample.
//!
//! Processes of the workload may not use the socket (the monitor checks
//! the peer), and the socket is reachable by root only.

mod client;
mod wire;

pub use client::{Client, ExecSession, Unanswered};
pub use wire::{
    bind, connect, read_reply, recv_request, send_reply, send_request, with_short_path, Received,
};

use crate::launcher::ExecRequest;
use serde::{Deserialize, Serialize};
use zlayer_runtime::{InvokeFailure, StatsSample};

/// A request to a monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Wait for the workload to end.
    Wait,
    /// Stream stdin (raw bytes follow the request line).
    Stdin,
    /// Close the workload's stdin.
    CloseStdin,
    /// Set the terminal size.
    Resize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// Run a command (stdin, stdout and stderr fds attached).
    Exec(ExecRequest),
    /// Send a signal to the workload.
    Signal {
        /// The signal number.
        signal: i32,
    },
    /// One resource usage sample.
    Stats,
}

/// A reply from a monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Reply {
    /// The request was done.
    Done,
    /// An exec'd command runs.
    Started {
        /// Its pid (0 when it has no host pid, inside a VM).
        pid: i32,
    },
    /// The workload (`wait`) or an exec'd command ended.
    Exited {
        /// Docker-style exit code.
        code: i32,
        /// Set when the engine ended it (OOM, watchdog, lost monitor).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The request needs a running workload and it has ended.
    NotRunning,
    /// The request failed.
    Failed {
        /// Set when a command could not be started (126/127).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<InvokeFailure>,
        /// Why, for the user.
        message: String,
    },
    /// A resource usage sample.
    Stats(StatsSample),
}

impl Reply {
    /// A failure that is not about a command.
    pub fn error(message: impl Into<String>) -> Reply {
        Reply::Failed {
            failure: None,
            message: message.into(),
        }
    }
}

/// How an exec ended, as reported on its report pipe (see
/// [`crate::launcher::ExecHandle`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ExecReport {
    /// It ran and ended with `code`.
    Exited {
        /// Docker-style exit code.
        code: i32,
    },
    /// It could not be started.
    Failed {
        /// Set when the command itself was the problem.
        failure: Option<InvokeFailure>,
        /// Why.
        message: String,
    },
}

/// The readiness report of a monitor (one JSON line on its ready pipe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Ready {
    /// The workload runs.
    Started {
        /// Its main pid.
        pid: i32,
    },
    /// It could not be started.
    Failed(crate::launcher::SpawnError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let r = serde_json::to_string(&Request::Resize { rows: 2, cols: 3 }).unwrap();
        assert_eq!(r, r#"{"op":"resize","rows":2,"cols":3}"#);
        let e = Request::Exec(ExecRequest {
            argv: vec!["ls".into()],
            ..Default::default()
        });
        let back: Request = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        let f = Reply::Failed {
            failure: Some(InvokeFailure::CommandNotFound),
            message: "x".into(),
        };
        let s = serde_json::to_string(&f).unwrap();
        assert_eq!(
            s,
            r#"{"event":"failed","failure":"command_not_found","message":"x"}"#
        );
        let ready: Ready = serde_json::from_str(r#"{"status":"started","pid":5}"#).unwrap();
        assert_eq!(ready, Ready::Started { pid: 5 });
    }
}
