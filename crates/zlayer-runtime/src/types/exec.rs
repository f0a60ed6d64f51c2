//! Options and results of running a command inside a container.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A command to run in an existing container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOptions {
    /// argv; must not be empty.
    pub command: Vec<String>,
    /// Extra environment, over the container's.
    pub env: BTreeMap<String, String>,
    /// `uid`, `uid:gid` or a user name of the container's /etc/passwd.
    pub user: Option<String>,
    /// Working directory inside the container.
    pub working_dir: Option<String>,
    /// Bytes fed to the command's standard input, then EOF.
    pub stdin: Option<Vec<u8>>,
    /// Allocate a terminal.
    pub tty: bool,
}

impl ExecOptions {
    /// Exec options for `command` with everything else defaulted.
    pub fn command<I, S>(command: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecOptions {
            command: command.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }
}

/// What an exec produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutput {
    /// Exit code (128+N when killed by signal N).
    pub exit_code: i32,
    /// Everything written to standard output.
    pub stdout: String,
    /// Everything written to standard error.
    pub stderr: String,
}
