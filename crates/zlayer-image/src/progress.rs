//! Pull progress reporting: the [`PullProgress`] trait the puller calls, and
//! [`ConsoleProgress`], an implementation for the command line.
//!
//! On a terminal `ConsoleProgress` draws one bar per layer (bytes and rate);
//! otherwise it prints one plain line per layer when the layer is done.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Digest;

/// Receives progress events from [`crate::ImageStore::pull`].
///
/// Events for different layers arrive concurrently and from several threads;
/// implementations must be cheap and must not block.
pub trait PullProgress: Send + Sync {
    /// The image manifest `manifest` of `reference` was resolved; `layers`
    /// layer events follow.
    fn resolved(&self, _reference: &str, _manifest: &Digest, _layers: usize) {}

    /// A layer download of `size` bytes starts; `offset` bytes are already
    /// present from an interrupted earlier download (resume).
    fn layer_started(&self, layer: &Digest, size: u64, offset: u64);

    /// `bytes` more bytes of `layer` arrived.
    fn layer_bytes(&self, layer: &Digest, bytes: u64);

    /// A transient failure interrupted `layer`; it continues from `offset`.
    fn layer_retrying(&self, _layer: &Digest, _offset: u64, _reason: &str) {}

    /// `layer` is complete and verified in the content store; `cached` is
    /// true when it was already there and nothing was downloaded.
    fn layer_finished(&self, layer: &Digest, cached: bool);

    /// `layer` has been extracted into its snapshot directory.
    fn layer_extracted(&self, layer: &Digest);

    /// The pull of image manifest `manifest` completed.
    fn finished(&self, _manifest: &Digest) {}
}

/// A [`PullProgress`] that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl PullProgress for NoProgress {
    fn layer_started(&self, _: &Digest, _: u64, _: u64) {}
    fn layer_bytes(&self, _: &Digest, _: u64) {}
    fn layer_finished(&self, _: &Digest, _: bool) {}
    fn layer_extracted(&self, _: &Digest) {}
}

struct LayerState {
    bar: Option<ProgressBar>,
    size: u64,
    offset: u64,
    received: u64,
    started: Instant,
    download_time: Option<Duration>,
    cached: bool,
}

enum Output {
    Bars(MultiProgress),
    Lines(Mutex<Box<dyn Write + Send>>),
}

/// Progress for humans on stderr: per-layer bars on a terminal, one plain
/// line per completed layer otherwise.
pub struct ConsoleProgress {
    output: Output,
    layers: Mutex<HashMap<Digest, LayerState>>,
}

impl std::fmt::Debug for ConsoleProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleProgress")
            .field("bars", &matches!(self.output, Output::Bars(_)))
            .finish()
    }
}

impl Default for ConsoleProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleProgress {
    /// Bars when stderr is a terminal, plain lines on stderr otherwise.
    pub fn new() -> Self {
        if std::io::stderr().is_terminal() {
            Self::bars()
        } else {
            Self::lines(Box::new(std::io::stderr()))
        }
    }

    /// Always draws bars on stderr.
    pub fn bars() -> Self {
        ConsoleProgress {
            output: Output::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            layers: Mutex::new(HashMap::new()),
        }
    }

    /// Writes one plain line per completed layer to `out`.
    pub fn lines(out: Box<dyn Write + Send>) -> Self {
        ConsoleProgress {
            output: Output::Lines(Mutex::new(out)),
            layers: Mutex::new(HashMap::new()),
        }
    }

    fn with_layer(&self, layer: &Digest, f: impl FnOnce(&mut LayerState)) {
        let mut map = match self.layers.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let entry = map.entry(layer.clone()).or_insert_with(|| LayerState {
            bar: None,
            size: 0,
            offset: 0,
            received: 0,
            started: Instant::now(),
            download_time: None,
            cached: false,
        });
        f(entry);
    }

    fn new_bar(&self, layer: &Digest, size: u64, offset: u64) -> Option<ProgressBar> {
        let Output::Bars(multi) = &self.output else {
            return None;
        };
        let style = ProgressStyle::with_template(
            "{prefix:.bold} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = multi.add(ProgressBar::new(size).with_style(style));
        bar.set_prefix(layer.short().to_string());
        bar.set_position(offset);
        if offset > 0 {
            bar.set_message(format!("(resumed at {})", HumanBytes(offset)));
        }
        Some(bar)
    }

    fn line(&self, text: String) {
        match &self.output {
            Output::Lines(out) => {
                let mut out = match out.lock() {
                    Ok(o) => o,
                    Err(poisoned) => poisoned.into_inner(),
                };
                // Progress output is best effort: a closed stderr must not fail the pull.
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
            Output::Bars(multi) => {
                let _ = multi.println(text);
            }
        }
    }
}

/// Formats "12.0 MiB in 1.20s (10.0 MiB/s)".
fn describe_download(bytes: u64, took: Duration) -> String {
    let secs = took.as_secs_f64().max(0.001);
    format!(
        "{} in {:.2}s ({}/s)",
        HumanBytes(bytes),
        secs,
        HumanBytes((bytes as f64 / secs) as u64)
    )
}

impl PullProgress for ConsoleProgress {
    fn resolved(&self, reference: &str, manifest: &Digest, layers: usize) {
        if matches!(self.output, Output::Bars(_)) {
            self.line(format!("{reference}: {manifest} ({layers} layers)"));
        }
    }

    fn layer_started(&self, layer: &Digest, size: u64, offset: u64) {
        let bar = self.new_bar(layer, size, offset);
        self.with_layer(layer, |s| {
            s.size = size;
            s.offset = offset;
            s.received = 0;
            s.started = Instant::now();
            if let Some(old) = std::mem::replace(&mut s.bar, bar) {
                old.finish_and_clear();
            }
        });
    }

    fn layer_bytes(&self, layer: &Digest, bytes: u64) {
        self.with_layer(layer, |s| {
            s.received += bytes;
            if let Some(bar) = &s.bar {
                bar.inc(bytes);
            }
        });
    }

    fn layer_retrying(&self, layer: &Digest, offset: u64, reason: &str) {
        self.with_layer(layer, |s| {
            if let Some(bar) = &s.bar {
                bar.set_position(offset);
                bar.set_message(format!("retrying: {reason}"));
            }
        });
    }

    fn layer_finished(&self, layer: &Digest, cached: bool) {
        self.with_layer(layer, |s| {
            s.cached = cached;
            s.download_time = Some(s.started.elapsed());
            if let Some(bar) = &s.bar {
                bar.set_message("extracting");
            }
        });
    }

    fn layer_extracted(&self, layer: &Digest) {
        let mut text = None;
        self.with_layer(layer, |s| {
            if let Some(bar) = s.bar.take() {
                bar.finish_with_message("done");
                return;
            }
            let what = if s.cached {
                "already present".to_string()
            } else {
                let resumed = if s.offset > 0 {
                    format!(", resumed at {}", HumanBytes(s.offset))
                } else {
                    String::new()
                };
                format!(
                    "downloaded {}{resumed}",
                    describe_download(s.received, s.download_time.unwrap_or_default())
                )
            };
            text = Some(format!("layer {}: {what}, extracted", layer.short()));
        });
        if let Some(t) = text {
            self.line(t);
        }
    }

    fn finished(&self, _manifest: &Digest) {
        // The finished bars stay on screen as the record of the pull.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_mode_prints_one_line_per_layer() {
        let sink = Sink::default();
        let p = ConsoleProgress::lines(Box::new(sink.clone()));
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        p.layer_started(&a, 3 << 20, 1 << 20);
        p.layer_bytes(&a, 1 << 20);
        p.layer_bytes(&a, 1 << 20);
        p.layer_finished(&a, false);
        p.layer_finished(&b, true);
        assert!(
            sink.0.lock().unwrap().is_empty(),
            "nothing before extraction"
        );
        p.layer_extracted(&a);
        p.layer_extracted(&b);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with(&format!("layer {}: downloaded 2.00 MiB in ", a.short())));
        assert!(
            lines[0].contains("/s), resumed at 1.00 MiB, extracted"),
            "{text}"
        );
        assert_eq!(
            lines[1],
            format!("layer {}: already present, extracted", b.short())
        );
    }

    #[test]
    fn hidden_bars_do_not_panic() {
        let p = ConsoleProgress {
            output: Output::Bars(MultiProgress::with_draw_target(ProgressDrawTarget::hidden())),
            layers: Mutex::new(HashMap::new()),
        };
        let a = Digest::of(b"a");
        p.resolved("r", &a, 1);
        p.layer_started(&a, 10, 0);
        p.layer_bytes(&a, 10);
        p.layer_retrying(&a, 5, "reset");
        p.layer_finished(&a, false);
        p.layer_extracted(&a);
        p.finished(&a);
        NoProgress.layer_started(&a, 1, 0);
    }
}
