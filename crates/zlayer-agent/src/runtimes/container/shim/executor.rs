//! The libcontainer executor used for inits and execs: resets signal
//! dispositions and the signal mask inherited from the monitor (a Rust
//! program ignores SIGPIPE), then runs libcontainer's default `execvp`.

use crate::runtimes::container::seccomp_bpf;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use std::sync::Arc;

/// [`DefaultExecutor`] with pristine signal handling for the workload and,
/// when given, a precompiled seccomp filter installed right before `execve`
/// (see [`crate::runtimes::container::seccomp_bpf`]).
#[derive(Clone, Default)]
pub struct CleanSignalsExecutor {
    /// The seccomp program (classic BPF) to install, if any.
    pub seccomp: Option<Arc<Vec<u8>>>,
}

impl Executor for CleanSignalsExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        reset_signals();
        if let Some(program) = &self.seccomp {
            // libcontainer already set no_new_privs and dropped capabilities.
            seccomp_bpf::load(program).map_err(|e| {
                ExecutorError::Other(format!("installing the seccomp filter failed: {e}"))
            })?;
        }
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

/// Every catchable signal back to its default action, none blocked.
pub fn reset_signals() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: resetting a disposition to SIG_DFL has no memory-safety
        // preconditions; invalid numbers just fail.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    // SAFETY: an empty, initialised sigset_t is passed by pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// The compiled seccomp program of the container at `paths` (from its
/// `seccomp.json`, through the on-disk cache); `None` when it has no profile.
pub fn seccomp_program(
    paths: &crate::runtimes::container::paths::ContainerPaths,
) -> Result<Option<Arc<Vec<u8>>>, String> {
    let profile: Option<libcontainer::oci_spec::runtime::LinuxSeccomp> =
        crate::runtimes::container::state_dir::read_json(&paths.seccomp())
            .map_err(|e| e.to_string())?;
    match profile {
        None => Ok(None),
        Some(p) => seccomp_bpf::compiled(&p, &paths.seccomp_cache()).map(|b| Some(Arc::new(b))),
    }
}
