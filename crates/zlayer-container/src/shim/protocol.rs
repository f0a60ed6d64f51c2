//! What the agent and a container's monitor say to each other.
//!
//! - Readiness (fd 3 of `zlayer-shim start`, one JSON line): [`Ready`].
//! - Control socket `shim.sock`: the client sends one request line, then:
//!   - `wait`: the monitor answers with an [`ExitReply`] line once the
//!     container's init ended (after logs are flushed and `exit.json` is
//!     written).
//!   - `stdin`: every byte the client sends until it shuts down its write
//!     half goes to the container's stdin; the monitor answers an
//!     [`AckReply`] once all of it was written.
//!   - `close-stdin`: the monitor closes the container's stdin (after
//!     pending data) and answers an [`AckReply`].
//!   - `resize ROWS COLS`: the monitor sets the size of the container's
//!     terminal (the kernel sends SIGWINCH to its foreground process group)
//!     and answers an [`AckReply`]; an error for a container without one.
//! - Exec status (fd 3 of `zlayer-shim exec`, JSON lines): [`ExecStatus`].

use serde::{Deserialize, Serialize};

/// Request line: wait for the exit.
pub const REQ_WAIT: &str = "wait";
/// Request line: stream stdin.
pub const REQ_STDIN: &str = "stdin";
/// Request line: close stdin.
pub const REQ_CLOSE_STDIN: &str = "close-stdin";
/// Request line prefix: `resize ROWS COLS`.
pub const REQ_RESIZE: &str = "resize";

/// Parses the arguments of a `resize ROWS COLS` request line.
pub fn parse_resize(header: &str) -> Option<(u16, u16)> {
    let mut words = header.split_ascii_whitespace();
    if words.next() != Some(REQ_RESIZE) {
        return None;
    }
    let rows = words.next()?.parse().ok()?;
    let cols = words.next()?.parse().ok()?;
    words.next().is_none().then_some((rows, cols))
}

/// The monitor's first and only message on the readiness pipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Ready {
    /// The container's init runs.
    Started {
        /// Its host pid.
        init_pid: i32,
    },
    /// The container could not be created or started.
    Failed {
        /// Why, for the user.
        error: String,
    },
}

/// Answer to `wait`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitReply {
    /// Docker-style exit code.
    pub code: i32,
    /// Set when the container failed (OOM-killed, ...).
    pub reason: Option<String>,
}

/// Answer to `stdin` and `close-stdin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckReply {
    /// Whether it worked.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

/// Messages of `zlayer-shim exec` on its status pipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ExecStatus {
    /// The command runs.
    Started {
        /// Its host pid.
        pid: i32,
    },
    /// The command ended.
    Exited {
        /// Docker-style exit code.
        code: i32,
    },
    /// The command could not be started.
    Failed {
        /// Why.
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_lines() {
        assert_eq!(parse_resize("resize 40 120"), Some((40, 120)));
        assert_eq!(parse_resize("resize 40"), None);
        assert_eq!(parse_resize("resize 40 120 1"), None);
        assert_eq!(parse_resize("resize -1 5"), None);
        assert_eq!(parse_resize("wait"), None);
    }
}
