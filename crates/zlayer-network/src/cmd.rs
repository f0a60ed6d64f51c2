//! Running the `ip` and `nft` tools.
//!
//! zlayer drives the kernel through iproute2 and nftables' own command line
//! tools rather than a netlink crate: both are installed wherever zlayer
//! runs, batch mode (`-batch -`, `-f -`) turns a whole attach into two or
//! three process spawns, and their error text is what an administrator
//! already knows how to read.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use zlayer_runtime::error::{Result, RuntimeError};

/// Runs `program args...` feeding `stdin`, returning stdout.
///
/// A non-zero exit becomes [`RuntimeError::Network`] carrying the tool's
/// stderr and the script that failed.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        RuntimeError::Network(format!(
            "cannot run `{program}`: {e}; install iproute2, nftables and util-linux (nsenter)"
        ))
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(|e| {
            RuntimeError::Network(format!("writing the script to `{program}` failed: {e}"))
        })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| RuntimeError::Network(format!("waiting for `{program}` failed: {e}")))?;
    if !out.status.success() {
        let script = stdin
            .map(|s| format!("; script was:\n{s}"))
            .unwrap_or_default();
        return Err(RuntimeError::Network(format!(
            "`{program} {}` failed ({}): {}{script}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs an `ip -batch` script in the host's network namespace.
pub fn ip_batch(script: &str) -> Result<()> {
    run("ip", &["-batch", "-"], Some(script)).map(|_| ())
}

/// Runs an `ip -batch` script inside the network namespace at `netns`.
pub fn ip_batch_in(netns: &Path, script: &str) -> Result<()> {
    let ns = format!("--net={}", netns.display());
    run("nsenter", &[&ns, "ip", "-batch", "-"], Some(script)).map(|_| ())
}

/// Loads an nftables script (`nft -f -`).
pub fn nft(script: &str) -> Result<()> {
    run("nft", &["-f", "-"], Some(script)).map(|_| ())
}

/// True when `err` is a tool saying the object does not exist.
pub fn is_missing(err: &RuntimeError) -> bool {
    let text = err.to_string();
    text.contains("Cannot find device")
        || text.contains("No such file or directory")
        || text.contains("does not exist")
}

/// Writes `value` to the sysctl file `path` (under `/proc/sys`).
pub fn sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value)
        .map_err(|e| RuntimeError::Network(format!("cannot set {path} to {value}: {e}")))
}
