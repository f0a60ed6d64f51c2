//! The libcontainer executor used for inits and execs: resets signal
//! dispositions and the signal mask inherited from the monitor (a Rust
//! program ignores SIGPIPE), then runs libcontainer's default `execvp`.

use crate::seccomp_bpf;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use std::sync::Arc;

/// [`DefaultExecutor`] with pristine signal handling for the workload and,
/// when given, a precompiled seccomp filter installed right before `execve`
/// (see [`crate::seccomp_bpf`]).
#[derive(Clone, Default)]
pub struct CleanSignalsExecutor {
    /// The seccomp program (classic BPF) to install, if any.
    pub seccomp: Option<Arc<Vec<u8>>>,
    /// Give the process SIGKILL when its parent dies: the container's init
    /// dies with its monitor (by then libcontainer's intermediate process is
    /// gone and the monitor, a child subreaper, is the init's parent), and
    /// with it the whole pid namespace.
    pub die_with_parent: bool,
}

impl Executor for CleanSignalsExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        reset_signals();
        if self.die_with_parent {
            // SAFETY: plain prctl; set after libcontainer changed the
            // credentials (which clears it).
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            }
        }
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

/// The compiled seccomp program of the container at `paths` (its
/// `seccomp.json` if there is one, else the profile its plan names),
/// through the on-disk cache; `None` when it runs without seccomp.
pub fn seccomp_program(
    paths: &crate::paths::ContainerPaths,
    record: &crate::plan::ContainerPlan,
) -> Result<Option<Arc<Vec<u8>>>, String> {
    use crate::{oci_spec_builder, seccomp_profile};
    let custom: Option<libcontainer::oci_spec::runtime::LinuxSeccomp> =
        zlayer_sys::atomic::read_json(&paths.seccomp()).map_err(|e| e.to_string())?;
    let profile = match (custom, record.seccomp.as_deref()) {
        (Some(p), _) => p,
        (None, Some(seccomp_profile::DOCKER_DEFAULT)) => {
            seccomp_profile::default_profile(&oci_spec_builder::default_capability_names())
        }
        (None, None) => return Ok(None),
        (None, Some(other)) => {
            return Err(format!(
                "unknown seccomp profile {other:?} in launch.json; recreate the container"
            ))
        }
    };
    seccomp_bpf::compiled(&profile, &paths.seccomp_cache()).map(|b| Some(Arc::new(b)))
}
