//! Docker's multiplexed stream: each chunk framed as
//! `[stream, 0, 0, 0, len_be32]` + bytes (stream 0 stdin, 1 stdout,
//! 2 stderr). Used for logs, attach and exec without a TTY; with a TTY the
//! bytes go raw.

use bytes::{Buf, Bytes, BytesMut};

/// Which stream a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Standard input (never sent by the daemon).
    Stdin = 0,
    /// Standard output.
    Stdout = 1,
    /// Standard error.
    Stderr = 2,
}

/// Media type of framed output.
pub const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
/// Media type of raw (TTY) output.
pub const RAW: &str = "application/vnd.docker.raw-stream";

/// One frame (`data` may be empty only for a zero-length frame).
pub fn frame(kind: StreamKind, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + data.len());
    out.extend_from_slice(&[kind as u8, 0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out.freeze()
}

/// Output for a client: framed, or raw for a TTY.
pub fn encode(tty: bool, kind: StreamKind, data: &[u8]) -> Bytes {
    if tty {
        Bytes::copy_from_slice(data)
    } else {
        frame(kind, data)
    }
}

/// Splits a byte stream back into frames (for clients and tests).
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    /// Adds bytes; returns the frames now complete.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<(u8, Bytes)>, String> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        while self.buf.len() >= 8 {
            let kind = self.buf[0];
            if kind > 3 || self.buf[1..4] != [0, 0, 0] {
                return Err(format!("bad frame header {:?}", &self.buf[..8]));
            }
            let len =
                u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + len {
                break;
            }
            self.buf.advance(8);
            out.push((kind, self.buf.split_to(len).freeze()));
        }
        Ok(out)
    }

    /// Bytes of an unfinished frame left over.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_pieces() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&frame(StreamKind::Stdout, b"hi\n"));
        wire.extend_from_slice(&frame(StreamKind::Stderr, b"oops\n"));
        wire.extend_from_slice(&frame(StreamKind::Stdout, b""));
        assert_eq!(&wire[..8], &[1, 0, 0, 0, 0, 0, 0, 3]);
        let mut d = FrameDecoder::default();
        let mut frames = Vec::new();
        for chunk in wire.chunks(3) {
            frames.extend(d.push(chunk).unwrap());
        }
        assert_eq!(d.pending(), 0);
        assert_eq!(
            frames,
            vec![
                (1, Bytes::from_static(b"hi\n")),
                (2, Bytes::from_static(b"oops\n")),
                (1, Bytes::new())
            ]
        );
        assert!(FrameDecoder::default()
            .push(&[9, 9, 9, 9, 0, 0, 0, 0])
            .is_err());
        assert_eq!(&encode(true, StreamKind::Stdout, b"raw")[..], b"raw");
    }
}
