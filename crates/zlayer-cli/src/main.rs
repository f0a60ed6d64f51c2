//! The `zlayer` binary: a thin shell over the zlayer crates (ripgrep style:
//! argument parsing here, the work in the libraries).

/// `println!` on stdout that never panics: a closed pipe (`zlayer ps |
/// head -1`) ends the command quietly, as it does any Unix tool (see
/// [`output::write_stdout`]). Shadows the standard macro in this crate.
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*), true)
    };
}

/// `print!` without a newline, like [`println!`] above.
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*), false)
    };
}

mod cli;
mod commands;
mod exit;
mod output;
mod report;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = cli::Cli::parse();
    // Everything below (state dirs, OCI bundles, monitors started in
    // other directories) needs the data root as an absolute path.
    if let Ok(abs) = std::path::absolute(&args.global.root) {
        args.global.root = abs;
    }
    init_tracing(&args.global.log_level);
    match commands::dispatch(args) {
        Ok(code) => code,
        // The reader of our output went away: nothing to report.
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("zlayer: {}", report::error_line(&err));
            exit_code_of(&err)
        }
    }
}

/// Docker's exit code for a failed command: 126/127 when an engine error
/// says the command of a container or exec could not be invoked (typed,
/// see `EngineError::exit_code`), else 125.
fn exit_code_of(err: &anyhow::Error) -> ExitCode {
    let typed = err.chain().find_map(|e| {
        e.downcast_ref::<zlayer_engine::EngineError>()
            .map(|e| e.exit_code())
            .or_else(|| {
                e.downcast_ref::<zlayer_runtime::RuntimeError>()
                    .map(|e| e.exit_code())
            })
    });
    typed
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(exit::ENGINE_ERROR)
        .into()
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ZLAYER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
