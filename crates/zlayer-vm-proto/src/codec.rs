//! Encoding frames to bytes and decoding them back, incrementally.

use crate::error::ProtoError;
use crate::message::{
    tag_name, ChannelId, ExecRequest, Frame, GuestStats, Msg, OutputStream, RunRequest,
    SpawnFailure,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest allowed value of a frame's length field (tag + payload): 16 MiB.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Bytes before the tag: the little-endian `u32` length.
pub const HEADER_LEN: usize = 4;

fn payload<T: Serialize>(
    name: &'static str,
    channel: ChannelId,
    body: &T,
) -> Result<Vec<u8>, ProtoError> {
    postcard::to_allocvec(&(channel, body)).map_err(|e| ProtoError::Encode {
        name,
        reason: e.to_string(),
    })
}

/// Encodes `frame` as `len | tag | payload`.
///
/// Fails when the frame would exceed [`MAX_FRAME_LEN`]; split large byte
/// messages before encoding them.
pub fn encode_frame(frame: &Frame) -> Result<Vec<u8>, ProtoError> {
    let ch = frame.channel;
    let name = frame.msg.name();
    let body = match &frame.msg {
        Msg::Run(r) => payload(name, ch, r)?,
        Msg::Exec(e) => payload(name, ch, e)?,
        Msg::Signal { signum } => payload(name, ch, signum)?,
        Msg::Stdin(b) | Msg::Stdout(b) | Msg::Stderr(b) => payload(name, ch, b)?,
        Msg::StdinEof | Msg::Shutdown | Msg::Close | Msg::QueryStats => payload(name, ch, &())?,
        Msg::Mount {
            tag,
            target,
            readonly,
        } => payload(name, ch, &(tag, target, readonly))?,
        Msg::Forward { port } => payload(name, ch, port)?,
        Msg::SetTime { unix_secs, nanos } => payload(name, ch, &(unix_secs, nanos))?,
        Msg::Ready { version } => payload(name, ch, version)?,
        Msg::Started { pid } => payload(name, ch, pid)?,
        Msg::Exited { code } => payload(name, ch, code)?,
        Msg::Error { message } => payload(name, ch, message)?,
        Msg::Stats(s) => payload(name, ch, s)?,
        Msg::SpawnFailed { kind, message } => payload(name, ch, &(kind, message))?,
        Msg::Log {
            stream,
            unix_nanos,
            data,
        } => payload(name, ch, &(stream, unix_nanos, data))?,
    };
    let len = body.len() + 1;
    if len > MAX_FRAME_LEN {
        return Err(ProtoError::FrameTooLarge {
            len: len as u64,
            max: MAX_FRAME_LEN,
        });
    }
    let mut out = Vec::with_capacity(HEADER_LEN + len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.push(frame.msg.tag());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Parses `bytes` as exactly one `T`, rejecting trailing bytes.
fn strict<T: DeserializeOwned>(
    tag: u8,
    name: &'static str,
    bytes: &[u8],
) -> Result<(ChannelId, T), ProtoError> {
    let bad = |reason: String| ProtoError::BadPayload { tag, name, reason };
    let (value, rest) =
        postcard::take_from_bytes::<(ChannelId, T)>(bytes).map_err(|e| bad(e.to_string()))?;
    if !rest.is_empty() {
        return Err(bad(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

/// Decodes the body of one frame (`tag` and `payload`, without the length).
pub fn decode_frame(tag: u8, payload: &[u8]) -> Result<Frame, ProtoError> {
    let name = tag_name(tag).ok_or(ProtoError::UnknownTag { tag })?;
    let p = payload;
    let (channel, msg) = match tag {
        0x01 => strict::<RunRequest>(tag, name, p).map(|(c, r)| (c, Msg::Run(r)))?,
        0x02 => strict::<ExecRequest>(tag, name, p).map(|(c, e)| (c, Msg::Exec(e)))?,
        0x03 => strict::<i32>(tag, name, p).map(|(c, signum)| (c, Msg::Signal { signum }))?,
        0x04 => strict::<Vec<u8>>(tag, name, p).map(|(c, b)| (c, Msg::Stdin(b)))?,
        0x05 => strict::<()>(tag, name, p).map(|(c, ())| (c, Msg::StdinEof))?,
        0x06 => {
            strict::<(String, String, bool)>(tag, name, p).map(|(c, (tag, target, readonly))| {
                (
                    c,
                    Msg::Mount {
                        tag,
                        target,
                        readonly,
                    },
                )
            })?
        }
        0x07 => strict::<u16>(tag, name, p).map(|(c, port)| (c, Msg::Forward { port }))?,
        0x08 => strict::<(i64, u32)>(tag, name, p)
            .map(|(c, (unix_secs, nanos))| (c, Msg::SetTime { unix_secs, nanos }))?,
        0x09 => strict::<()>(tag, name, p).map(|(c, ())| (c, Msg::Shutdown))?,
        0x0a => strict::<()>(tag, name, p).map(|(c, ())| (c, Msg::Close))?,
        0x0b => strict::<()>(tag, name, p).map(|(c, ())| (c, Msg::QueryStats))?,
        0x80 => strict::<u32>(tag, name, p).map(|(c, version)| (c, Msg::Ready { version }))?,
        0x81 => strict::<u32>(tag, name, p).map(|(c, pid)| (c, Msg::Started { pid }))?,
        0x82 => strict::<Vec<u8>>(tag, name, p).map(|(c, b)| (c, Msg::Stdout(b)))?,
        0x83 => strict::<Vec<u8>>(tag, name, p).map(|(c, b)| (c, Msg::Stderr(b)))?,
        0x84 => strict::<i32>(tag, name, p).map(|(c, code)| (c, Msg::Exited { code }))?,
        0x85 => strict::<String>(tag, name, p).map(|(c, message)| (c, Msg::Error { message }))?,
        0x86 => strict::<GuestStats>(tag, name, p).map(|(c, s)| (c, Msg::Stats(s)))?,
        0x88 => strict::<(SpawnFailure, String)>(tag, name, p)
            .map(|(c, (kind, message))| (c, Msg::SpawnFailed { kind, message }))?,
        0x87 => strict::<(OutputStream, u64, Vec<u8>)>(tag, name, p).map(
            |(c, (stream, unix_nanos, data))| {
                (
                    c,
                    Msg::Log {
                        stream,
                        unix_nanos,
                        data,
                    },
                )
            },
        )?,
        _ => return Err(ProtoError::UnknownTag { tag }),
    };
    Ok(Frame { channel, msg })
}

/// An incremental decoder: feed it bytes as they arrive with
/// [`Decoder::push`], take frames out with [`Decoder::next_frame`].
///
/// A frame whose tag or payload is bad is consumed and reported as an error;
/// the next call continues with the following frame. A length above
/// [`MAX_FRAME_LEN`] (or zero) poisons the decoder: framing cannot be trusted
/// after it, and every later call returns [`ProtoError::Poisoned`].
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    poisoned: bool,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Forgets buffered bytes and any poison (after a reconnect).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.poisoned = false;
    }

    /// Bytes buffered but not yet decoded.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame: `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtoError> {
        if self.poisoned {
            return Err(ProtoError::Poisoned);
        }
        let avail = &self.buf[self.start..];
        if avail.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len == 0 {
            self.poisoned = true;
            return Err(ProtoError::EmptyFrame);
        }
        if len > MAX_FRAME_LEN {
            self.poisoned = true;
            return Err(ProtoError::FrameTooLarge {
                len: len as u64,
                max: MAX_FRAME_LEN,
            });
        }
        if avail.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let tag = avail[HEADER_LEN];
        let result = decode_frame(tag, &avail[HEADER_LEN + 1..HEADER_LEN + len]);
        self.start += HEADER_LEN + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        result.map(Some)
    }
}
