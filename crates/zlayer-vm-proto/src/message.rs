//! The messages of the protocol and their tags.

use serde::{Deserialize, Serialize};

/// Version the guest announces in [`Msg::Ready`]; bumped on incompatible
/// changes.
pub const PROTOCOL_VERSION: u32 = 2;

/// Identifies one session on the multiplexed stream (see the crate docs).
pub type ChannelId = u32;

/// The channel of the workload and of connection-wide messages.
pub const WORKLOAD_CHANNEL: ChannelId = 0;

/// The workload to start (host → guest, channel 0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    /// Program and arguments; `argv[0]` is looked up in `PATH` when it has no `/`.
    pub argv: Vec<String>,
    /// The complete environment (`KEY`, `VALUE`).
    pub env: Vec<(String, String)>,
    /// Working directory (default `/`).
    pub cwd: Option<String>,
    /// User id (default 0).
    pub uid: Option<u32>,
    /// Group id (default: the user's group, else `uid`).
    pub gid: Option<u32>,
    /// A user (and optional `:group`) name the guest resolves against the
    /// image's `/etc/passwd` and `/etc/group`; overrides `uid`/`gid`.
    pub user: Option<String>,
    /// Keep standard input open as a pipe fed by `Stdin` frames; when false
    /// it is `/dev/null`.
    pub open_stdin: bool,
    /// Power the VM off once the workload has exited and its output is
    /// flushed.
    pub poweroff_on_exit: bool,
}

/// A command to run next to the workload (host → guest, fresh channel).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Working directory (default `/`).
    pub cwd: Option<String>,
    /// User id.
    pub uid: Option<u32>,
    /// Group id.
    pub gid: Option<u32>,
    /// A user name (`name`, `name:group`, `uid:group`) resolved in the guest.
    pub user: Option<String>,
}

/// Which output of the workload a [`Msg::Log`] record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Figures the guest reports about itself (answer to `QueryStats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestStats {
    /// `MemTotal` of the guest, bytes.
    pub mem_total_bytes: u64,
    /// `MemAvailable` of the guest, bytes.
    pub mem_available_bytes: u64,
    /// Number of processes in the guest (including the agent).
    pub processes: u64,
}

/// One message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    // ---- host → guest ----
    /// Start the workload (channel 0 only).
    Run(RunRequest),
    /// Start an exec session on this frame's channel.
    Exec(ExecRequest),
    /// Send a signal to the process of this channel.
    Signal {
        /// Linux signal number.
        signum: i32,
    },
    /// Bytes for the standard input (or, on a forward, the TCP stream).
    Stdin(Vec<u8>),
    /// Close standard input (or half-close the forwarded connection).
    StdinEof,
    /// Mount the share `tag` at `target` inside the container root.
    Mount {
        /// The 9p/virtiofs tag of the share.
        tag: String,
        /// Absolute path in the container.
        target: String,
        /// Mount it read-only.
        readonly: bool,
    },
    /// Connect this channel to TCP `port` on the guest's loopback.
    Forward {
        /// The guest port.
        port: u16,
    },
    /// Set the guest's wall clock.
    SetTime {
        /// Seconds since the Unix epoch.
        unix_secs: i64,
        /// Nanoseconds within the second.
        nanos: u32,
    },
    /// Stop everything and power the VM off.
    Shutdown,
    /// End the session of this channel (kill the exec, drop the connection).
    Close,
    /// Ask for a [`Msg::Stats`] answer.
    QueryStats,
    // ---- guest → host ----
    /// The agent is up and serving (first frame after every connect).
    Ready {
        /// [`PROTOCOL_VERSION`] of the guest.
        version: u32,
    },
    /// The process of this channel started.
    Started {
        /// Its pid inside the guest.
        pid: u32,
    },
    /// Standard output bytes (or forwarded TCP data).
    Stdout(Vec<u8>),
    /// Standard error bytes.
    Stderr(Vec<u8>),
    /// The process of this channel ended (128+N when killed by signal N), or
    /// the guest side of a forwarded connection closed.
    Exited {
        /// Exit code, docker style.
        code: i32,
    },
    /// The request on this channel failed.
    Error {
        /// What went wrong, for the user.
        message: String,
    },
    /// Guest figures.
    Stats(GuestStats),
    /// The process of this channel (the workload on channel 0, an exec
    /// otherwise) could not be started, and why as a type.
    SpawnFailed {
        /// Why.
        kind: SpawnFailure,
        /// What was wrong, for the user.
        message: String,
    },
    /// A chunk of the workload's output with the guest's time (log port).
    Log {
        /// Which output.
        stream: OutputStream,
        /// Guest wall-clock time in nanoseconds since the epoch.
        unix_nanos: u64,
        /// The bytes.
        data: Vec<u8>,
    },
}

/// Why a process could not be started in the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpawnFailure {
    /// No such program (or not on `PATH`).
    NotFound,
    /// The program exists but cannot be executed.
    NotExecutable,
    /// The working directory cannot be entered.
    BadWorkingDir,
    /// The user does not exist in the guest's root filesystem.
    UnknownUser,
    /// Anything else.
    Other,
}

/// Who sends a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Host → guest.
    ToGuest,
    /// Guest → host.
    ToHost,
}

/// A message on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The session it belongs to.
    pub channel: ChannelId,
    /// The message.
    pub msg: Msg,
}

impl Frame {
    /// A frame of `msg` on `channel`.
    pub fn new(channel: ChannelId, msg: Msg) -> Self {
        Frame { channel, msg }
    }
}

impl Msg {
    /// The tag byte of this message.
    pub fn tag(&self) -> u8 {
        match self {
            Msg::Run(_) => 0x01,
            Msg::Exec(_) => 0x02,
            Msg::Signal { .. } => 0x03,
            Msg::Stdin(_) => 0x04,
            Msg::StdinEof => 0x05,
            Msg::Mount { .. } => 0x06,
            Msg::Forward { .. } => 0x07,
            Msg::SetTime { .. } => 0x08,
            Msg::Shutdown => 0x09,
            Msg::Close => 0x0a,
            Msg::QueryStats => 0x0b,
            Msg::Ready { .. } => 0x80,
            Msg::Started { .. } => 0x81,
            Msg::Stdout(_) => 0x82,
            Msg::Stderr(_) => 0x83,
            Msg::Exited { .. } => 0x84,
            Msg::Error { .. } => 0x85,
            Msg::Stats(_) => 0x86,
            Msg::Log { .. } => 0x87,
            Msg::SpawnFailed { .. } => 0x88,
        }
    }

    /// The message's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        tag_name(self.tag()).unwrap_or("?")
    }

    /// Who may send it.
    pub fn direction(&self) -> Direction {
        if self.tag() & 0x80 == 0 {
            Direction::ToGuest
        } else {
            Direction::ToHost
        }
    }
}

/// The name of the message with tag `tag`, or `None` for an unknown tag.
pub fn tag_name(tag: u8) -> Option<&'static str> {
    Some(match tag {
        0x01 => "Run",
        0x02 => "Exec",
        0x03 => "Signal",
        0x04 => "Stdin",
        0x05 => "StdinEof",
        0x06 => "Mount",
        0x07 => "Forward",
        0x08 => "SetTime",
        0x09 => "Shutdown",
        0x0a => "Close",
        0x0b => "QueryStats",
        0x80 => "Ready",
        0x81 => "Started",
        0x82 => "Stdout",
        0x83 => "Stderr",
        0x84 => "Exited",
        0x85 => "Error",
        0x86 => "Stats",
        0x87 => "Log",
        0x88 => "SpawnFailed",
        _ => return None,
    })
}
