//! Why a command could not be started, and docker's exit codes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why the command of a container or exec never ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvokeFailure {
    /// No such file, or not on `PATH` (docker: 127).
    CommandNotFound,
    /// It exists but cannot be executed: no `x` permission, a directory,
    /// not a valid executable (docker: 126).
    NotExecutable,
    /// Its working directory does not exist or cannot be entered (docker:
    /// 126, the command cannot be invoked).
    BadWorkingDir,
    /// The user it should run as does not exist (docker: 126).
    UnknownUser,
}

impl InvokeFailure {
    /// Docker's exit code for this failure.
    pub fn exit_code(self) -> i32 {
        match self {
            InvokeFailure::CommandNotFound => EXIT_NOT_FOUND,
            _ => EXIT_CANNOT_INVOKE,
        }
    }

    /// The failure an `execve`/`chdir` errno means, if it is one of these.
    pub fn from_exec_errno(errno: i32) -> Option<InvokeFailure> {
        match errno {
            libc_errno::ENOENT | libc_errno::ENOTDIR => Some(InvokeFailure::CommandNotFound),
            libc_errno::EACCES
            | libc_errno::EPERM
            | libc_errno::ENOEXEC
            | libc_errno::EISDIR
            | libc_errno::ELIBBAD
            | libc_errno::ETXTBSY => Some(InvokeFailure::NotExecutable),
            _ => None,
        }
    }
}

/// The errno values [`InvokeFailure::from_exec_errno`] knows (Linux, all
/// architectures zlayer builds for).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const ENOEXEC: i32 = 8;
    pub const EACCES: i32 = 13;
    pub const ETXTBSY: i32 = 26;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const ELIBBAD: i32 = 80;
}

impl fmt::Display for InvokeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvokeFailure::CommandNotFound => "command not found",
            InvokeFailure::NotExecutable => "not executable",
            InvokeFailure::BadWorkingDir => "bad working directory",
            InvokeFailure::UnknownUser => "unknown user",
        })
    }
}

/// Docker's exit code when the engine itself failed.
pub const EXIT_ENGINE_ERROR: i32 = 125;
/// Docker's exit code when the command cannot be invoked.
pub const EXIT_CANNOT_INVOKE: i32 = 126;
/// Docker's exit code when the command was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_errnos() {
        assert_eq!(InvokeFailure::CommandNotFound.exit_code(), 127);
        assert_eq!(InvokeFailure::NotExecutable.exit_code(), 126);
        assert_eq!(InvokeFailure::BadWorkingDir.exit_code(), 126);
        assert_eq!(
            InvokeFailure::from_exec_errno(2),
            Some(InvokeFailure::CommandNotFound)
        );
        assert_eq!(
            InvokeFailure::from_exec_errno(13),
            Some(InvokeFailure::NotExecutable)
        );
        assert_eq!(InvokeFailure::from_exec_errno(12), None);
    }
}
