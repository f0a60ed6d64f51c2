//! Blocking helpers over `std::io` streams (used by the guest agent).

use crate::codec::{decode_frame, encode_frame, HEADER_LEN, MAX_FRAME_LEN};
use crate::error::ProtoError;
use crate::message::Frame;
use std::io::{Read, Write};

/// Writes one frame (a single `write_all`, so frames from several threads
/// sharing a locked writer never interleave).
pub fn write_frame<W: Write + ?Sized>(w: &mut W, frame: &Frame) -> Result<(), ProtoError> {
    let bytes = encode_frame(frame)?;
    w.write_all(&bytes)?;
    Ok(())
}

/// Reads exactly one frame. Returns `Ok(None)` on a clean end of stream
/// before the first byte of a frame.
pub fn read_frame<R: Read + ?Sized>(r: &mut R) -> Result<Option<Frame>, ProtoError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ProtoError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_le_bytes(header) as usize;
    if len == 0 {
        return Err(ProtoError::EmptyFrame);
    }
    if len > MAX_FRAME_LEN {
        return Err(ProtoError::FrameTooLarge {
            len: len as u64,
            max: MAX_FRAME_LEN,
        });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    decode_frame(body[0], &body[1..]).map(Some)
}
