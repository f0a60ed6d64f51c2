//! The one error type of the protocol crate.

use thiserror::Error;

/// What can go wrong while encoding or decoding frames.
#[derive(Debug, Error)]
pub enum ProtoError {
    /// A frame announced (or would need) more than [`crate::MAX_FRAME_LEN`] bytes.
    #[error("frame of {len} bytes exceeds the {max}-byte limit; the peer is broken or hostile (the stream is unusable now)")]
    FrameTooLarge {
        /// The announced or required length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A frame announced a length of zero (it must hold at least the tag).
    #[error("empty frame (length 0): every frame needs at least its tag byte")]
    EmptyFrame,
    /// The tag byte names no message.
    #[error("unknown message tag 0x{tag:02x}; the peer speaks another protocol version")]
    UnknownTag {
        /// The tag byte read.
        tag: u8,
    },
    /// The payload does not parse as the message its tag names.
    #[error("payload of a {name} frame (tag 0x{tag:02x}) is malformed: {reason}")]
    BadPayload {
        /// The tag byte.
        tag: u8,
        /// The message the tag names.
        name: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A message could not be serialized.
    #[error("cannot encode a {name} frame: {reason}")]
    Encode {
        /// The message kind.
        name: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The decoder hit a fatal error before and refuses further input.
    #[error("the frame stream is poisoned by an earlier fatal error; reconnect to resynchronise")]
    Poisoned,
    /// Reading or writing the underlying stream failed.
    #[error("control stream I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

impl ProtoError {
    /// True when the stream cannot be used any more (framing was lost or the
    /// transport failed); false when only one frame was bad and skipped.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ProtoError::FrameTooLarge { .. } | ProtoError::Poisoned | ProtoError::Io(_)
        )
    }
}
