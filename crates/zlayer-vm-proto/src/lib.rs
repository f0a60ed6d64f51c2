//! The control protocol between zlayer's `vm` runtime (host) and its guest
//! agent (`zlayer-guest`, PID 1 inside every microVM).
//!
//! # Wire format
//!
//! A byte stream of frames:
//!
//! ```text
//! +----------------+--------+------------------------------------------+
//! | len: u32 (LE)  | tag:u8 | payload: postcard((channel: u32, body))   |
//! +----------------+--------+------------------------------------------+
//!                  \___________________ len bytes ____________________/
//! ```
//!
//! `len` counts the tag and the payload (so it is at least 1) and is at most
//! [`MAX_FRAME_LEN`] (16 MiB). The tag says which [`Msg`] variant the payload
//! holds; the payload is the postcard encoding of the frame's channel id
//! followed by that variant's fields. The decoder rejects unknown tags,
//! payloads that do not parse as the tag's variant and payloads with trailing
//! bytes; a bad frame is skipped whole, so a hostile or buggy peer can make
//! the decoder return errors but never panic, allocate more than one frame or
//! lose sync (an over-long length is fatal: the stream is then poisoned).
//!
//! # Channels (multiplexing)
//!
//! One byte stream carries many sessions; every frame names its channel:
//!
//! - channel [`WORKLOAD_CHANNEL`] (0) is the workload: `Run`, its `Signal`,
//!   `Stdin`/`StdinEof`, `Started`, `Exited`;
//! - the host opens any other channel by sending `Exec` (a process) or
//!   `Forward` (a TCP connection to a guest port) on a fresh id; the guest
//!   answers on the same id (`Started`, `Stdout`, `Stderr`, `Exited`, or
//!   `Error`), and the id is free again after `Exited`/`Error` or after the
//!   host's `Close`;
//! - connection-wide messages (`SetTime`, `Mount`, `Shutdown`, `QueryStats`,
//!   `Ready`, `Stats`) use channel 0.
//!
//! On a `Forward` channel the byte messages carry the TCP stream: `Stdin`
//! is host→guest data, `StdinEof` a half-close, `Stdout` guest→host data,
//! and `Exited` the end of the guest side of the connection.
//!
//! The workload's output does not travel on the control stream: the guest
//! writes it as [`Msg::Log`] frames (with the guest's timestamp) to a second
//! port, which the VM's monitor on the host reads.

mod codec;
mod error;
mod io;
mod message;

pub use codec::{decode_frame, encode_frame, Decoder, HEADER_LEN, MAX_FRAME_LEN};
pub use error::ProtoError;
pub use io::{read_frame, write_frame};
pub use message::{
    ChannelId, Direction, ExecRequest, Frame, GuestStats, Msg, OutputStream, RunRequest,
    SpawnFailure, PROTOCOL_VERSION, WORKLOAD_CHANNEL,
};

/// Name of the virtio-serial port that carries the control stream.
pub const CONTROL_PORT_NAME: &str = "zlayer.ctl";
/// Name of the virtio-serial port that carries the workload's output
/// ([`Msg::Log`] and the final [`Msg::Exited`]); the VM's monitor reads it.
pub const LOG_PORT_NAME: &str = "zlayer.log";
/// The vsock port the guest listens on when the host offers vsock instead of
/// virtio-serial.
pub const VSOCK_CONTROL_PORT: u32 = 1024;
/// 9p/virtiofs tag of the image root filesystem share.
pub const ROOTFS_TAG: &str = "zlroot";
