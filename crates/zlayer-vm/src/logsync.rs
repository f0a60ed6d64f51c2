//! Turns what QEMU wrote to disk (the log port's frames in `output.log`, the
//! serial console in `console.log`) into the shared JSON-lines log
//! (`log.jsonl`, see `runtimes::common::logs`) and the exit record
//! (`exit.json`). Idempotent and safe across processes (an `flock` guards
//! it, offsets are persisted), so any reader may call [`sync`] first; no
//! pump has to run while the agent is away.

#![allow(unsafe_code)]

use super::qemu::files;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use zlayer_hosting::exit::{now_ms, ExitRecord};
use zlayer_hosting::logs::{LogRecord, MAX_LINE};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::types::LogStream;
use zlayer_sys::atomic::{read_json, write_json_atomic};
use zlayer_vm_proto::{Decoder, Msg, OutputStream};

/// The JSON-lines log of a VM.
pub const LOG_FILE: &str = "log.jsonl";
/// The exit record of the last run.
pub const EXIT_FILE: &str = "exit.json";
const STATE_FILE: &str = "logsync.json";
const LOCK_FILE: &str = "logsync.lock";

#[derive(Debug, Default, Serialize, Deserialize)]
struct SyncState {
    output_offset: u64,
    console_offset: u64,
    partial: [String; 3],
    partial_ts: [u64; 3],
}

struct Flock(#[allow(dead_code)] File);

impl Flock {
    fn acquire(path: &Path) -> Result<Flock> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| RuntimeError::Internal(format!("open {}: {e}", path.display())))?;
        // SAFETY: a valid open descriptor.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(RuntimeError::Internal(format!(
                "flock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            )));
        }
        Ok(Flock(f))
    }
}

fn slot(s: LogStream) -> usize {
    match s {
        LogStream::Stdout => 0,
        LogStream::Stderr => 1,
        LogStream::System => 2,
    }
}

fn now_ns() -> u64 {
    now_ms() * 1_000_000
}

struct Lines<'a> {
    state: &'a mut SyncState,
    out: Vec<u8>,
}

impl Lines<'_> {
    fn record(&mut self, stream: LogStream, ts_ns: u64, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let rec = LogRecord {
            ts_ns,
            stream,
            msg: String::from_utf8_lossy(line).into_owned(),
        };
        if serde_json::to_writer(&mut self.out, &rec).is_ok() {
            self.out.push(b'\n');
        }
    }

    fn chunk(&mut self, stream: LogStream, ts_ns: u64, data: &[u8]) {
        let i = slot(stream);
        let mut buf = std::mem::take(&mut self.state.partial[i]).into_bytes();
        let ts = if buf.is_empty() {
            ts_ns
        } else {
            self.state.partial_ts[i]
        };
        buf.extend_from_slice(data);
        let mut start = 0;
        let mut first = true;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let line = buf[start..start + pos].to_vec();
            self.record(stream, if first { ts } else { ts_ns }, &line);
            first = false;
            start += pos + 1;
        }
        while buf.len() - start > MAX_LINE {
            let line = buf[start..start + MAX_LINE].to_vec();
            self.record(stream, ts_ns, &line);
            start += MAX_LINE;
        }
        // Kept as a string: split only at newlines, so a multi-byte
        // character cut by a frame boundary is repaired by lossy decoding
        // of the whole line later (rare, cosmetic).
        self.state.partial[i] = String::from_utf8_lossy(&buf[start..]).into_owned();
        self.state.partial_ts[i] = if first { ts } else { ts_ns };
    }

    fn flush(&mut self, stream: LogStream) {
        let i = slot(stream);
        let rest = std::mem::take(&mut self.state.partial[i]);
        if !rest.is_empty() {
            let ts = self.state.partial_ts[i];
            self.record(stream, ts, rest.as_bytes());
        }
    }
}

fn read_from(path: &Path, offset: u64) -> Result<Vec<u8>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(RuntimeError::Internal(format!(
                "open {}: {e}",
                path.display()
            )))
        }
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len <= offset {
        return Ok(Vec::new());
    }
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| RuntimeError::Internal(format!("seek {}: {e}", path.display())))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)
        .map_err(|e| RuntimeError::Internal(format!("read {}: {e}", path.display())))?;
    Ok(buf)
}

/// Converts everything new in `dir`'s `output.log` and `console.log`.
/// Returns the exit code when the workload's exit record was (just or
/// earlier) seen.
pub fn sync(dir: &Path) -> Result<Option<i32>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let _lock = Flock::acquire(&dir.join(LOCK_FILE))?;
    let mut state: SyncState = read_json(&dir.join(STATE_FILE))?.unwrap_or_default();
    let before = (state.output_offset, state.console_offset);
    let output = read_from(&dir.join(files::OUTPUT), state.output_offset)?;
    let console = read_from(&dir.join(files::CONSOLE), state.console_offset)?;
    let mut exit: Option<i32> = None;
    let mut lines = Lines {
        state: &mut state,
        out: Vec::new(),
    };
    if !console.is_empty() {
        let complete = console
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|p| p + 1)
            .unwrap_or(0);
        for line in console[..complete].split(|b| *b == b'\n') {
            if !line.is_empty() {
                lines.record(LogStream::System, now_ns(), line);
            }
        }
        lines.state.console_offset += complete as u64;
    }
    if !output.is_empty() {
        let mut decoder = Decoder::new();
        decoder.push(&output);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => match frame.msg {
                    Msg::Log {
                        stream,
                        unix_nanos,
                        data,
                    } => {
                        let s = match stream {
                            OutputStream::Stdout => LogStream::Stdout,
                            OutputStream::Stderr => LogStream::Stderr,
                        };
                        lines.chunk(s, unix_nanos, &data);
                    }
                    Msg::Exited { code } => {
                        lines.flush(LogStream::Stdout);
                        lines.flush(LogStream::Stderr);
                        exit = Some(code);
                    }
                    other => {
                        tracing::debug!(msg = other.name(), "vm: unexpected frame in output.log")
                    }
                },
                Ok(None) => break,
                Err(e) if e.is_fatal() => {
                    tracing::warn!(error = %e, dir = %dir.display(), "vm: output.log is corrupt; skipping the rest");
                    decoder.reset();
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "vm: skipped a bad frame in output.log"),
            }
        }
        let consumed = output.len() - decoder.pending();
        lines.state.output_offset += consumed as u64;
    }
    let out = std::mem::take(&mut lines.out);
    if !out.is_empty() {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(LOG_FILE))
            .map_err(|e| {
                RuntimeError::Internal(format!("open {}: {e}", dir.join(LOG_FILE).display()))
            })?;
        f.write_all(&out).map_err(|e| {
            RuntimeError::Internal(format!("write {}: {e}", dir.join(LOG_FILE).display()))
        })?;
    }
    if let Some(code) = exit {
        write_exit(dir, code, None)?;
    }
    if (state.output_offset, state.console_offset) != before || exit.is_some() {
        write_json_atomic(&dir.join(STATE_FILE), &state)?;
    }
    Ok(read_exit(dir)?.map(|r| r.code))
}

/// Records how the last run ended (after its logs).
pub fn write_exit(dir: &Path, code: i32, reason: Option<String>) -> Result<()> {
    Ok(write_json_atomic(
        &dir.join(EXIT_FILE),
        &ExitRecord {
            code,
            signal: (code > 128).then_some(code - 128),
            reason,
            finished_at_ms: now_ms(),
        },
    )?)
}

/// The exit record of the last run, if it ended.
pub fn read_exit(dir: &Path) -> Result<Option<ExitRecord>> {
    Ok(read_json(&dir.join(EXIT_FILE))?)
}
