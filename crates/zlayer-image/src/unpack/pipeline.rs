//! Decompress-and-hash on one thread, extract on another.

use std::io::{self, Read};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::compression::Compression;
use super::extract::{extract, ExtractOptions, ExtractStats};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};

const CHUNK: usize = 512 * 1024;
const DEPTH: usize = 8;

/// Decompresses `blob` (format auto-detected), extracts it into `dest` in
/// overlay snapshot format, and returns the uncompressed stream's digest
/// (the diff_id) and length plus extraction statistics.
///
/// Decompression and hashing run on their own thread so they overlap with
/// file creation; `layer` names the layer in errors.
pub fn unpack<R: Read + Send>(
    blob: R,
    dest: &Path,
    layer: &str,
    opts: &ExtractOptions,
) -> Result<(Digest, u64, ExtractStats)> {
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(DEPTH);
    std::thread::scope(|s| {
        let producer = s.spawn(move || produce(blob, tx));
        let mut reader = ChannelReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        };
        let extracted = extract(&mut reader, dest, layer, opts).and_then(|stats| {
            // Drain trailing padding so the whole stream is hashed.
            io::copy(&mut reader, &mut io::sink())
                .map_err(|e| unpack_err(layer, format!("reading the layer stream: {e}")))?;
            Ok(stats)
        });
        drop(reader);
        let produced = producer
            .join()
            .map_err(|_| unpack_err(layer, "the decompression thread panicked".into()))?;
        let stats = extracted?;
        let (digest, len) =
            produced.map_err(|e| unpack_err(layer, format!("decompressing: {e}")))?;
        Ok((digest, len, stats))
    })
}

fn unpack_err(layer: &str, reason: String) -> Error {
    Error::Unpack {
        layer: layer.to_string(),
        reason,
    }
}

fn produce<R: Read + Send>(
    blob: R,
    tx: SyncSender<io::Result<Vec<u8>>>,
) -> io::Result<(Digest, u64)> {
    let result = (|| {
        let (_kind, mut decoder) = Compression::decoder(blob)?;
        let mut hasher = Hasher::new();
        loop {
            let mut chunk = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                match decoder.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            if filled == 0 {
                break;
            }
            chunk.truncate(filled);
            hasher.update(&chunk);
            if tx.send(Ok(chunk)).is_err() {
                // The extractor stopped (it failed); its error is reported.
                return Err(io::Error::other("extraction stopped early"));
            }
        }
        let len = hasher.len();
        Ok((hasher.finish(), len))
    })();
    if let Err(e) = &result {
        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
    }
    result
}

struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
