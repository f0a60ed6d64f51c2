//! Streams a container's output to the terminal until it exits, and turns
//! the outcome into docker's exit codes.

use crate::exit;
use futures_util::StreamExt;
use std::io::Write;
use zlayer_engine::{ContainerRecord, Engine, EngineError};
use zlayer_runtime::{ContainerState, LogStream, LogsStreamOptions};

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
    if let Ok(ContainerState::Failed { reason, .. }) = engine.state(record).await {
        return Ok(failure_exit_code(&reason, record, code));
    }
    Ok(code.clamp(0, 255) as u8)
}

/// The exit code of a container that the engine ended (state `Failed`):
/// its own code when it has one (a watchdog's kill is 137), else 125.
pub fn failure_exit_code(reason: &str, record: &ContainerRecord, code: i32) -> u8 {
    eprintln!("zlayer: {}: {reason}", record.name);
    if code > 0 {
        code.clamp(0, 255) as u8
    } else {
        exit::ENGINE_ERROR
    }
}

/// Exit code for a create or start that failed outright: docker's 127 or
/// 126 when the command could not be invoked, else 125. The mapping itself
/// is [`EngineError::exit_code`].
pub fn start_error_exit_code(err: &EngineError) -> u8 {
    err.exit_code().clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use zlayer_runtime::{InvokeFailure, RuntimeError};

    #[test]
    fn only_typed_invocation_failures_get_126_or_127() {
        let not_found = EngineError::Runtime(RuntimeError::invoke(
            InvokeFailure::CommandNotFound,
            "executable 'nope' not found in $PATH",
        ));
        assert_eq!(start_error_exit_code(&not_found), 127);
        let denied = EngineError::Runtime(RuntimeError::invoke(
            InvokeFailure::NotExecutable,
            "/etc/passwd: permission denied",
        ));
        assert_eq!(start_error_exit_code(&denied), 126);
        // A message that merely reads like one is still an engine error.
        let other = EngineError::Runtime(RuntimeError::StartFailed {
            id: "x".into(),
            reason: "executable not found: network n1 not found".into(),
        });
        assert_eq!(start_error_exit_code(&other), exit::ENGINE_ERROR);
    }
}
