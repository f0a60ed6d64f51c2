//! The `zlayer-shim` binary's logic, plus the agent-side pieces that talk
//! to it.
//!
//! Commands (all run as root by the agent, never by users):
//! - `start DIR LC_ROOT`: create + start the container, then become its
//!   monitor ([`start`], [`monitor`]).
//! - `exec DIR LC_ROOT PROCESS_JSON`: run a process in the container
//!   ([`exec_cmd`]).

pub mod client;
pub mod errors;
pub mod exec_cmd;
pub mod executor;
pub mod monitor;
pub mod protocol;
pub mod spawn;
pub mod start;
pub mod tty;

use super::paths::ContainerPaths;
use std::ffi::OsString;
use std::path::PathBuf;

const USAGE: &str = "zlayer-shim is started by the zlayer agent; usage:
  zlayer-shim start DIR LC_ROOT
  zlayer-shim exec DIR LC_ROOT PROCESS_JSON";

/// Runs the shim with `args` (without the program name); returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let args: Vec<PathBuf> = args.into_iter().map(PathBuf::from).collect();
    let cmd = args.first().and_then(|a| a.to_str()).unwrap_or("");
    let paths = |i: usize| -> Option<ContainerPaths> {
        let dir = args.get(i)?.clone();
        let lc_root = args.get(i + 1)?.clone();
        start::is_state_dir(&dir).then_some(())?;
        ContainerPaths::from_dir(dir, lc_root)
    };
    match (cmd, paths(1)) {
        ("start", Some(p)) if args.len() == 3 => start::run(&p),
        ("exec", Some(p)) if args.len() == 4 => exec_cmd::run(&p, &args[3]),
        _ => usage(),
    }
}

fn usage() -> i32 {
    eprintln!("{USAGE}");
    2
}
