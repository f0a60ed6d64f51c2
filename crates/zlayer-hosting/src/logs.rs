//! JSON-lines container logs: one record per line,
//! `{"ts_ns":<unix nanos>,"stream":"stdout"|"stderr"|"system","msg":"text"}`.
//!
//! The monitor appends records with [`LogWriter`]; readers use
//! [`read_log_from`] (by byte offset, ignoring a torn last line) and
//! [`logs_stream`] (snapshot, then follow by offset, so nothing is lost or
//! repeated at the boundary).

use super::dir_watch::DirWatch;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zlayer_runtime::error::{Result, RuntimeError};
use zlayer_runtime::runtime::LogsStream;
use zlayer_runtime::types::{LogEntry, LogStream, LogsStreamOptions};

/// A partial line longer than this is written as its own record.
pub const MAX_LINE: usize = 16 * 1024;

/// How often a following reader looks for new records when nothing woke it
/// (it waits on inotify events of the log's directory; see
/// [`super::dir_watch`]), and always when inotify is unavailable.
pub const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// How long a following reader polls (after 0.2 ms, doubling up to 8 ms)
/// before it sets up its inotify watch. Closing an inotify instance waits
/// for an SRCU grace period, 4-13 ms measured here: longer than a whole
/// `run --rm IMG true`. Short-lived containers thus end before any watch
/// exists; the ones still running after this get the watch.
pub const EAGER_FOLLOW: Duration = Duration::from_millis(30);

/// Longest sleep of the eager polling phase ([`EAGER_FOLLOW`]).
const EAGER_POLL_MAX: Duration = Duration::from_millis(8);

/// One line of the log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// When the bytes were read, in nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Which output they came from.
    pub stream: LogStream,
    /// The text without its trailing newline (invalid UTF-8 replaced).
    pub msg: String,
}

impl LogRecord {
    /// Converts to the agent's [`LogEntry`].
    pub fn into_entry(self) -> LogEntry {
        LogEntry {
            timestamp: UNIX_EPOCH + Duration::from_nanos(self.ts_ns),
            stream: self.stream,
            message: self.msg,
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Appends records to a log file, splitting raw output into lines.
///
/// A write that fails (a full disk) is taken back whole, so the file never
/// holds a torn record, and the output it carried is counted as lost. The
/// next write that succeeds is preceded by one `system` record saying so:
/// `zlayer: N bytes of output lost: no space left on device` (see
/// [`gap_message`]). The caller keeps reading the workload's output either
/// way, so a full disk neither blocks the workload nor makes the monitor
/// spin.
pub struct LogWriter {
    file: File,
    partial: [Vec<u8>; 3],
    /// Bytes of the file that hold whole records: where a failed write is
    /// cut back to.
    len: u64,
    /// Output dropped since the last write that succeeded.
    lost: Option<Lost>,
}

/// Output the log could not take, not yet reported in it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lost {
    /// Bytes of output (or of engine notes) dropped.
    bytes: u64,
    /// Why, from the first failed write.
    cause: String,
}

/// The `system` record that reports a gap in the log.
pub fn gap_message(bytes: u64, cause: &str) -> String {
    format!("zlayer: {bytes} bytes of output lost: {cause}")
}

/// How a failed log write is described in the gap record.
fn loss_cause(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOSPC) => "no space left on device".into(),
        Some(libc::EDQUOT) => "disk quota exceeded".into(),
        _ => e.to_string(),
    }
}

fn slot(stream: LogStream) -> usize {
    match stream {
        LogStream::Stdout => 0,
        LogStream::Stderr => 1,
        LogStream::System => 2,
    }
}

impl LogWriter {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok(LogWriter {
            file,
            partial: [Vec::new(), Vec::new(), Vec::new()],
            len,
            lost: None,
        })
    }

    /// Appends encoded records carrying `payload` bytes of output: first
    /// the report of an earlier gap, if any, then `out`, each whole or not
    /// at all (see [`LogWriter`]).
    fn append(&mut self, out: &[u8], payload: usize) -> std::io::Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.report_gap() {
            self.count_lost(payload, &e);
            return Err(e);
        }
        self.write_whole(out)
            .inspect_err(|e| self.count_lost(payload, e))
    }

    /// Writes the record of the output lost since the last write that
    /// succeeded, if any was.
    fn report_gap(&mut self) -> std::io::Result<()> {
        let Some(lost) = &self.lost else {
            return Ok(());
        };
        let mut note = Vec::new();
        encode_record(
            &mut note,
            LogStream::System,
            gap_message(lost.bytes, &lost.cause).as_bytes(),
        );
        self.write_whole(&note)?;
        self.lost = None;
        Ok(())
    }

    /// Writes `bytes` at the end, or cuts the file back to its last whole
    /// record when that fails part-way.
    fn write_whole(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    fn count_lost(&mut self, payload: usize, e: &std::io::Error) {
        let lost = self.lost.get_or_insert_with(|| Lost {
            bytes: 0,
            cause: loss_cause(e),
        });
        lost.bytes += payload as u64;
    }

    /// Adds raw output of `stream`; complete lines are written at once, a
    /// trailing partial line waits for its end (or [`MAX_LINE`] bytes).
    pub fn write_chunk(&mut self, stream: LogStream, data: &[u8]) -> std::io::Result<()> {
        let i = slot(stream);
        self.partial[i].extend_from_slice(data);
        let mut start = 0;
        let buf = std::mem::take(&mut self.partial[i]);
        let mut out = Vec::new();
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            encode(&mut out, stream, &buf[start..start + pos]);
            start += pos + 1;
        }
        while buf.len() - start > MAX_LINE {
            encode(&mut out, stream, &buf[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        self.partial[i] = buf[start..].to_vec();
        self.append(&out, start)
    }

    /// Writes whatever partial line `stream` has (at end of output).
    pub fn flush_stream(&mut self, stream: LogStream) -> std::io::Result<()> {
        let i = slot(stream);
        if self.partial[i].is_empty() {
            return Ok(());
        }
        let rest = std::mem::take(&mut self.partial[i]);
        let mut out = Vec::new();
        encode(&mut out, stream, &rest);
        self.append(&out, rest.len())
    }

    /// Adds terminal output of `stream` as one record holding the bytes as
    /// they are (carriage returns and newlines included), so a prompt
    /// without a newline shows at once and a reader can replay the terminal
    /// byte for byte. An incomplete UTF-8 sequence at the end waits for the
    /// next chunk.
    pub fn write_raw(&mut self, stream: LogStream, data: &[u8]) -> std::io::Result<()> {
        let i = slot(stream);
        self.partial[i].extend_from_slice(data);
        let buf = std::mem::take(&mut self.partial[i]);
        let cut = match std::str::from_utf8(&buf) {
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            _ => buf.len(),
        };
        self.partial[i] = buf[cut..].to_vec();
        if cut == 0 {
            return Ok(());
        }
        let mut out = Vec::new();
        encode_record(&mut out, stream, &buf[..cut]);
        self.append(&out, cut)
    }

    /// Writes one complete message (an engine note, usually `System`).
    pub fn write_message(&mut self, stream: LogStream, msg: &str) -> std::io::Result<()> {
        let mut out = Vec::new();
        encode(&mut out, stream, msg.as_bytes());
        self.append(&out, msg.len())
    }

    /// Writes every partial line (records go straight to the file, so
    /// nothing else is buffered; the file is not fsynced).
    pub fn finish(&mut self) -> std::io::Result<()> {
        for s in [LogStream::Stdout, LogStream::Stderr, LogStream::System] {
            self.flush_stream(s)?;
        }
        self.report_gap()
    }
}

fn encode(out: &mut Vec<u8>, stream: LogStream, line: &[u8]) {
    encode_record(out, stream, line.strip_suffix(b"\r").unwrap_or(line));
}

/// Appends one record holding `bytes` unchanged (invalid UTF-8 replaced).
fn encode_record(out: &mut Vec<u8>, stream: LogStream, line: &[u8]) {
    let rec = LogRecord {
        ts_ns: now_ns(),
        stream,
        msg: String::from_utf8_lossy(line).into_owned(),
    };
    // Serializing a struct of plain fields cannot fail.
    if serde_json::to_writer(&mut *out, &rec).is_ok() {
        out.push(b'\n');
    }
}

/// Reads the complete records from byte `offset` on; returns them and the
/// offset just past the last complete line. A missing file reads as empty.
pub fn read_log_from(path: &Path, offset: u64) -> Result<(Vec<LogEntry>, u64)> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(io_err(path, e)),
    };
    read_file_from(&mut file, offset).map_err(|e| io_err(path, e))
}

/// [`read_log_from`] on an open file (which keeps working after the file
/// was unlinked, e.g. by `remove` of a `--rm` container).
pub fn read_file_from(file: &mut File, offset: u64) -> std::io::Result<(Vec<LogEntry>, u64)> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    let complete = match buf.iter().rposition(|b| *b == b'\n') {
        Some(pos) => pos + 1,
        None => 0,
    };
    let entries = buf[..complete]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<LogRecord>(l).ok())
        .map(LogRecord::into_entry)
        .collect();
    Ok((entries, offset + complete as u64))
}

fn io_err(path: &Path, e: std::io::Error) -> RuntimeError {
    RuntimeError::Internal(format!("reading log {} failed: {e}", path.display()))
}

/// A log stream over `path` for `opts`. With `follow`, it keeps reading new
/// records until `finished()` is true and everything written before that was
/// delivered. The file is read through one open descriptor, so a follower
/// still reaches the end after the file was removed.
pub fn logs_stream(
    path: PathBuf,
    opts: LogsStreamOptions,
    finished: Arc<dyn Fn() -> bool + Send + Sync>,
) -> Result<LogsStream> {
    logs_stream_watching(path, None, opts, finished, None)
}

/// A future that completes when the container has ended (for example when
/// its monitor's pidfd becomes readable): it wakes a follower at once
/// instead of at its next poll.
pub type EndSignal = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// [`logs_stream`] for a runtime that records the end somewhere else than
/// the log's directory: `state_dir` is watched too, so the follower sees
/// the exit at once. `ended`, when given, wakes the follower as soon as the
/// container ends.
pub fn logs_stream_watching(
    path: PathBuf,
    state_dir: Option<PathBuf>,
    opts: LogsStreamOptions,
    finished: Arc<dyn Fn() -> bool + Send + Sync>,
    ended: Option<EndSignal>,
) -> Result<LogsStream> {
    let mut file = open_if_exists(&path)?;
    let (entries, offset) = match file.as_mut() {
        Some(f) => read_file_from(f, 0).map_err(|e| io_err(&path, e))?,
        None => (Vec::new(), 0),
    };
    let snapshot = opts.select(entries);
    let head = futures_util::stream::iter(snapshot.into_iter().map(Ok));
    if !opts.follow {
        return Ok(head.boxed());
    }
    let dirs: Vec<PathBuf> = path
        .parent()
        .map(Path::to_path_buf)
        .into_iter()
        .chain(state_dir)
        .collect();
    let state = Follow {
        path,
        dirs,
        watch: None,
        eager_left: EAGER_FOLLOW,
        eager_delay: Duration::from_micros(200),
        file,
        offset,
        opts,
        finished,
        ended,
        done: false,
    };
    let tail = futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            // Read the flag first: the monitor flushes logs before it marks
            // the container finished, so a read after seeing it is complete.
            let was_finished = (st.finished)();
            if st.file.is_none() {
                match open_if_exists(&st.path) {
                    Ok(f) => st.file = f,
                    Err(e) => {
                        st.done = true;
                        return Some((vec![Err(e)], st));
                    }
                }
            }
            if let Some(f) = st.file.as_mut() {
                match read_file_from(f, st.offset) {
                    Ok((entries, next)) => {
                        st.offset = next;
                        let batch: Vec<Result<LogEntry>> = entries
                            .into_iter()
                            .filter(|e| st.opts.wants(e.stream))
                            .filter(|e| st.opts.since.is_none_or(|s| e.timestamp >= s))
                            .map(Ok)
                            .collect();
                        if !batch.is_empty() {
                            st.done = was_finished;
                            return Some((batch, st));
                        }
                    }
                    Err(e) => {
                        st.done = true;
                        let err = io_err(&st.path, e);
                        return Some((vec![Err(err)], st));
                    }
                }
            }
            if was_finished {
                return None;
            }
            if !st.eager_left.is_zero() {
                let nap = st.eager_delay.min(st.eager_left);
                st.nap(tokio::time::sleep(nap)).await;
                st.eager_left -= nap;
                st.eager_delay = (st.eager_delay * 2).min(EAGER_POLL_MAX);
                if st.eager_left.is_zero() {
                    let dirs: Vec<&Path> = st.dirs.iter().map(PathBuf::as_path).collect();
                    st.watch = DirWatch::new_many(&dirs);
                }
                // Read again (also right after the watch is set up: a write
                // just before it would otherwise wait for FOLLOW_POLL).
                continue;
            }
            match st.watch.take() {
                Some(w) => {
                    st.nap(w.changed(FOLLOW_POLL)).await;
                    st.watch = Some(w);
                }
                None => st.nap(tokio::time::sleep(FOLLOW_POLL)).await,
            }
        }
    })
    .flat_map(futures_util::stream::iter);
    Ok(head.chain(tail).boxed())
}

struct Follow {
    path: PathBuf,
    /// Directories to watch once the eager phase is over.
    dirs: Vec<PathBuf>,
    watch: Option<DirWatch>,
    /// What is left of [`EAGER_FOLLOW`].
    eager_left: Duration,
    /// The next eager sleep.
    eager_delay: Duration,
    file: Option<File>,
    offset: u64,
    opts: LogsStreamOptions,
    finished: Arc<dyn Fn() -> bool + Send + Sync>,
    /// Completes when the container ends; dropped once it has.
    ended: Option<EndSignal>,
    done: bool,
}

impl Follow {
    /// Waits for `wake` or the end of the container, whichever comes first.
    async fn nap(&mut self, wake: impl std::future::Future<Output = ()>) {
        let Some(end) = self.ended.as_mut() else {
            return wake.await;
        };
        tokio::select! {
            _ = wake => {}
            _ = end => self.ended = None,
        }
    }
}

fn open_if_exists(path: &Path) -> Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn lines_partials_and_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut w = LogWriter::open(&p).unwrap();
        w.write_chunk(LogStream::Stdout, b"one\ntw").unwrap();
        w.write_chunk(LogStream::Stderr, b"err\n").unwrap();
        let (e, off) = read_log_from(&p, 0).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].message, "one");
        assert_eq!(e[1].stream, LogStream::Stderr);
        w.write_chunk(LogStream::Stdout, b"o\r\nlast").unwrap();
        w.finish().unwrap();
        let (e2, off2) = read_log_from(&p, off).unwrap();
        let msgs: Vec<_> = e2.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(msgs, ["two", "last"]);
        assert_eq!(read_log_from(&p, off2).unwrap().0.len(), 0);
        // A torn last line is not returned and not skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"ts_ns\":1")
            .unwrap();
        let (e3, off3) = read_log_from(&p, off2).unwrap();
        assert!(e3.is_empty());
        assert_eq!(off3, off2);
        assert_eq!(
            read_log_from(&dir.path().join("missing"), 0)
                .unwrap()
                .0
                .len(),
            0
        );
    }

    #[test]
    fn terminal_output_is_kept_raw_and_utf8_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut w = LogWriter::open(&p).unwrap();
        w.write_raw(LogStream::Stdout, b"hi\r\n$ ").unwrap();
        // "é" split across two reads.
        w.write_raw(LogStream::Stdout, b"caf\xc3").unwrap();
        w.write_raw(LogStream::Stdout, b"\xa9").unwrap();
        w.finish().unwrap();
        let (e, _) = read_log_from(&p, 0).unwrap();
        let msgs: Vec<_> = e.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(msgs, ["hi\r\n$ ", "caf", "\u{e9}"]);
    }

    #[test]
    fn a_full_disk_drops_output_whole_and_the_gap_is_recorded_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log");
        let mut w = LogWriter::open(&path).unwrap();
        w.write_chunk(LogStream::Stdout, b"before\n").unwrap();
        // /dev/full fails every write with ENOSPC, as a full disk does.
        let good = std::mem::replace(
            &mut w.file,
            File::options().write(true).open("/dev/full").unwrap(),
        );
        let e = w
            .write_chunk(LogStream::Stdout, b"lost 1\nlost 2\n")
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert!(w.write_message(LogStream::System, "note").is_err());
        w.file = good;
        w.write_chunk(LogStream::Stdout, b"after\n").unwrap();
        w.write_chunk(LogStream::Stdout, b"more\n").unwrap();
        let (entries, _) = read_log_from(&path, 0).unwrap();
        let msgs: Vec<_> = entries.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "before",
                "zlayer: 18 bytes of output lost: no space left on device",
                "after",
                "more"
            ]
        );
        assert_eq!(entries[1].stream, LogStream::System);
    }

    #[test]
    fn a_gap_still_open_at_the_end_is_recorded_by_finish() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log");
        let mut w = LogWriter::open(&path).unwrap();
        let good = std::mem::replace(
            &mut w.file,
            File::options().write(true).open("/dev/full").unwrap(),
        );
        assert!(w.write_chunk(LogStream::Stderr, b"x\n").is_err());
        w.file = good;
        w.finish().unwrap();
        w.finish().unwrap();
        let (entries, _) = read_log_from(&path, 0).unwrap();
        let msgs: Vec<_> = entries.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            msgs,
            ["zlayer: 2 bytes of output lost: no space left on device"]
        );
    }

    #[test]
    fn long_lines_are_split() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut w = LogWriter::open(&p).unwrap();
        w.write_chunk(LogStream::Stdout, &vec![b'x'; MAX_LINE * 2 + 5])
            .unwrap();
        w.finish().unwrap();
        let (e, _) = read_log_from(&p, 0).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[2].message.len(), 5);
    }

    #[tokio::test]
    async fn follow_sees_everything_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut w = LogWriter::open(&p).unwrap();
        w.write_chunk(LogStream::Stdout, b"a\n").unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let opts = LogsStreamOptions {
            follow: true,
            ..Default::default()
        };
        let stream =
            logs_stream(p.clone(), opts, Arc::new(move || d2.load(Ordering::SeqCst))).unwrap();
        let writer = tokio::spawn(async move {
            for i in 0..5 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                w.write_chunk(LogStream::Stdout, format!("l{i}\n").as_bytes())
                    .unwrap();
            }
            w.finish().unwrap();
            done.store(true, Ordering::SeqCst);
        });
        let got = zlayer_runtime::runtime::collect_logs(stream).await.unwrap();
        writer.await.unwrap();
        let msgs: Vec<_> = got.iter().map(|e| e.message.clone()).collect();
        assert_eq!(msgs, ["a", "l0", "l1", "l2", "l3", "l4"]);
    }
}
