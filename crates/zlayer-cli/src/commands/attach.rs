//! Streams a container's output to the terminal until it exits, and turns
//! the outcome into docker's exit codes.

use crate::exit;
use futures_util::StreamExt;
use std::io::Write;
use zlayer_agent::{AgentError, ContainerState, LogStream, LogsStreamOptions};
use zlayer_engine::{ContainerRecord, Engine, EngineError};

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

/// docker's 126/127 for a command that cannot be invoked / is not found.
pub fn failure_exit_code(reason: &str, record: &ContainerRecord, code: i32) -> u8 {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("not found") || lower.contains("no such file") {
        eprintln!("zlayer: {}: {reason}", record.name);
        exit::NOT_FOUND
    } else if lower.contains("permission denied") || lower.contains("cannot invoke") {
        eprintln!("zlayer: {}: {reason}", record.name);
        exit::CANNOT_INVOKE
    } else if code > 0 {
        code.clamp(0, 255) as u8
    } else {
        eprintln!("zlayer: {}: {reason}", record.name);
        exit::ENGINE_ERROR
    }
}

/// Exit code for a start that failed outright.
pub fn start_error_exit_code(err: &EngineError) -> u8 {
    match err {
        EngineError::Runtime(AgentError::StartFailed { reason, .. }) => {
            let lower = reason.to_ascii_lowercase();
            if lower.contains("not found") || lower.contains("no such file") {
                exit::NOT_FOUND
            } else if lower.contains("permission denied") {
                exit::CANNOT_INVOKE
            } else {
                exit::ENGINE_ERROR
            }
        }
        _ => exit::ENGINE_ERROR,
    }
}
