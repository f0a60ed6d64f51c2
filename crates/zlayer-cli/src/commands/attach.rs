//! Streams a container's output to the terminal until it exits, and turns
//! the outcome into docker's exit codes.

use crate::exit;
use futures_util::StreamExt;
use std::io::Write;
use zlayer_engine::{ContainerRecord, Engine, EngineError};
use zlayer_runtime::{ContainerState, LogStream, LogsStreamOptions, RuntimeError};

/// Follows stdout/stderr of `record` to ours and returns its exit code.
pub async fn attach_and_wait(engine: &Engine, record: &ContainerRecord) -> anyhow::Result<u8> {
    let opts = LogsStreamOptions {
        follow: true,
        ..Default::default()
    };
    let mut stream = engine.logs(record, opts).await?;
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    while let Some(entry) = stream.next().await {
        let entry = entry?;
        match entry.stream {
            // A terminal's records are raw bytes, prompts included.
            LogStream::Stdout if record.tty => {
                out.write_all(entry.message.as_bytes())?;
                out.flush()?;
            }
            LogStream::Stdout => writeln!(out, "{}", entry.message)?,
            LogStream::Stderr => {
                out.flush()?;
                writeln!(err, "{}", entry.message)?;
            }
            LogStream::System => {}
        }
    }
    out.flush()?;
    drop(out);
    let code = engine.wait(record).await?;
    if let Ok(ContainerState::Failed { reason }) = engine.state(record).await {
        return Ok(failure_exit_code(&reason, record, code));
    }
    Ok(code.clamp(0, 255) as u8)
}

/// docker's 127 (command not found) or 126 (cannot be invoked) when
/// `reason` says the container's command is the problem; `None` for any
/// other failure (an engine error, 125).
pub fn invocation_exit_code(reason: &str) -> Option<u8> {
    let lower = reason.to_ascii_lowercase();
    let about_command = ["executable", "entrypoint", "command", "$path"]
        .iter()
        .any(|w| lower.contains(w));
    if !about_command {
        return None;
    }
    if lower.contains("not found") || lower.contains("no such file") {
        Some(exit::NOT_FOUND)
    } else if lower.contains("permission denied")
        || lower.contains("does not have correct permissions")
        || lower.contains("not executable")
        || lower.contains("cannot invoke")
    {
        Some(exit::CANNOT_INVOKE)
    } else {
        None
    }
}

/// The exit code of a container that failed (state `Failed`) after its
/// start: 126/127 per [`invocation_exit_code`], else its own code, else 125.
pub fn failure_exit_code(reason: &str, record: &ContainerRecord, code: i32) -> u8 {
    if let Some(c) = invocation_exit_code(reason) {
        eprintln!("zlayer: {}: {reason}", record.name);
        c
    } else if code > 0 {
        code.clamp(0, 255) as u8
    } else {
        eprintln!("zlayer: {}: {reason}", record.name);
        exit::ENGINE_ERROR
    }
}

/// Exit code for a create or start that failed outright.
pub fn start_error_exit_code(err: &EngineError) -> u8 {
    match err {
        EngineError::Runtime(
            RuntimeError::StartFailed { reason, .. } | RuntimeError::CreateFailed { reason, .. },
        ) => invocation_exit_code(reason).unwrap_or(exit::ENGINE_ERROR),
        _ => exit::ENGINE_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_command_failures_get_126_or_127() {
        let cases = [
            ("executable 'nope' not found in $PATH", Some(exit::NOT_FOUND)),
            (
                "entrypoint \"/nope\" not found in the image rootfs (/x); give a path",
                Some(exit::NOT_FOUND),
            ),
            (
                "executable '/etc/passwd' at path '\"/etc/passwd\"' does not have correct permissions",
                Some(exit::CANNOT_INVOKE),
            ),
            (
                "connecting the container to network bridge:n1: network n1 not found",
                None,
            ),
            ("mounting /proc: permission denied", None),
        ];
        for (reason, want) in cases {
            assert_eq!(invocation_exit_code(reason), want, "{reason}");
        }
    }
}
