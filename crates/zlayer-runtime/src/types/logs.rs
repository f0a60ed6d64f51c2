//! Log records and the options of a log stream.

use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// Which output a log record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// The workload's standard output.
    Stdout,
    /// The workload's standard error.
    Stderr,
    /// Messages of the engine itself (VM console, monitor notes).
    System,
}

/// One log record as stored: a line (or partial line) with its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When the bytes were read from the workload.
    pub timestamp: SystemTime,
    /// Which output they came from.
    pub stream: LogStream,
    /// The text, without its trailing newline.
    pub message: String,
}

/// A raw chunk of output, as streamed by `logs --follow` and exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// When the bytes were read.
    pub timestamp: SystemTime,
    /// Which output they came from.
    pub stream: LogStream,
    /// The bytes, as written by the workload.
    pub data: Vec<u8>,
}

/// What `logs` should return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsStreamOptions {
    /// Keep streaming until the container exits.
    pub follow: bool,
    /// Only the last N records of the snapshot (None: all).
    pub tail: Option<usize>,
    /// Include standard output.
    pub stdout: bool,
    /// Include standard error.
    pub stderr: bool,
    /// Prefix each line with its RFC 3339 timestamp (a presentation hint).
    pub timestamps: bool,
    /// Only records at or after this time.
    pub since: Option<SystemTime>,
}

impl Default for LogsStreamOptions {
    fn default() -> Self {
        LogsStreamOptions {
            follow: false,
            tail: None,
            stdout: true,
            stderr: true,
            timestamps: false,
            since: None,
        }
    }
}

impl LogsStreamOptions {
    /// Whether a record of `stream` passes the stdout/stderr filter.
    pub fn wants(&self, stream: LogStream) -> bool {
        match stream {
            LogStream::Stdout => self.stdout,
            LogStream::Stderr => self.stderr,
            LogStream::System => self.stdout && self.stderr,
        }
    }

    /// Applies the stream filter, `since` and `tail` to a snapshot of records.
    pub fn select(&self, entries: Vec<LogEntry>) -> Vec<LogEntry> {
        let mut kept: Vec<LogEntry> = entries
            .into_iter()
            .filter(|e| self.wants(e.stream))
            .filter(|e| self.since.is_none_or(|s| e.timestamp >= s))
            .collect();
        if let Some(n) = self.tail {
            let skip = kept.len().saturating_sub(n);
            kept.drain(..skip);
        }
        kept
    }
}
