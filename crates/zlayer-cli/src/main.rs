//! The `zlayer` binary: a thin shell over the zlayer crates (ripgrep style:
//! argument parsing here, the work in the libraries).

mod cli;
mod commands;
mod exit;
mod output;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing(&args.global.log_level);
    match commands::dispatch(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("zlayer: {err:#}");
            exit::ENGINE_ERROR.into()
        }
    }
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
