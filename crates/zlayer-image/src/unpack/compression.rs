//! Compression detection and decoders.

use std::io::{self, BufRead, BufReader, Read};

/// Compression formats a layer blob may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (one or more members).
    Gzip,
    /// Zstandard (one or more frames).
    Zstd,
}

impl Compression {
    /// Detects the format from the first bytes of the blob.
    ///
    /// Returns an error for bzip2 and xz, which OCI layers do not use.
    pub fn detect(head: &[u8]) -> io::Result<Self> {
        Ok(match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [b'B', b'Z', b'h', ..] => return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bzip2-compressed layers are not supported (use gzip, zstd or an uncompressed tar)",
            )),
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "xz-compressed layers are not supported (use gzip, zstd or an uncompressed tar)",
            )),
            _ => Compression::None,
        })
    }

    /// Wraps `reader` in a decoder for the detected format.
    pub fn decoder<'a, R: Read + Send + 'a>(
        reader: R,
    ) -> io::Result<(Self, Box<dyn Read + Send + 'a>)> {
        let mut buffered = BufReader::with_capacity(256 * 1024, reader);
        let head = buffered.fill_buf()?;
        let kind = Compression::detect(head)?;
        let decoder: Box<dyn Read + Send + 'a> = match kind {
            Compression::None => Box::new(buffered),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        };
        Ok((kind, decoder))
    }
}
