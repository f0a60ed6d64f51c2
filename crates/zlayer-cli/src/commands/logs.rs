//! `zlayer logs`.

use super::node::open_engine;
use crate::cli::{GlobalArgs, LogsArgs};
use crate::output::{print_json, rfc3339, Format};
use futures_util::StreamExt;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};
use zlayer_runtime::{LogStream, LogsStreamOptions};
use zlayer_spec::DurationSpec;

/// Prints (and with `-f` follows) a container's logs.
pub async fn run(g: &GlobalArgs, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let engine = open_engine(g)?;
    let record = engine.resolve(&args.container)?;
    let tail =
        match args.tail.as_deref() {
            None | Some("all") => None,
            Some(n) => Some(n.parse::<usize>().map_err(|_| {
                anyhow::anyhow!("--tail {n:?}: expected a number of lines or \"all\"")
            })?),
        };
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let opts = LogsStreamOptions {
        follow: args.follow,
        tail,
        timestamps: args.timestamps,
        since,
        ..Default::default()
    };
    let mut stream = engine.logs(&record, opts).await?;
    let mut json = Vec::new();
    while let Some(entry) = stream.next().await {
        let entry = entry?;
        if g.format == Format::Json {
            json.push(serde_json::json!({
                "time": rfc3339(entry.timestamp),
                "stream": entry.stream,
                "message": entry.message,
            }));
            continue;
        }
        let line = if args.timestamps {
            format!("{} {}", rfc3339(entry.timestamp), entry.message)
        } else {
            entry.message
        };
        match entry.stream {
            LogStream::Stderr => writeln!(std::io::stderr(), "{line}")?,
            // A terminal's records are raw bytes (CR LF line ends included).
            _ if record.tty => {
                let mut out = std::io::stdout();
                out.write_all(line.as_bytes())?;
                out.flush()?;
            }
            _ => writeln!(std::io::stdout(), "{line}")?,
        }
    }
    if g.format == Format::Json {
        print_json(&json)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `10s`/`5m` ago, or a Unix timestamp in seconds.
fn parse_since(s: &str) -> anyhow::Result<SystemTime> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    }
    let d = DurationSpec::parse(s)
        .and_then(|d| d.duration())
        .map_err(|e| anyhow::anyhow!("--since {s:?}: {e}; or give a Unix timestamp"))?;
    Ok(SystemTime::now() - d)
}
