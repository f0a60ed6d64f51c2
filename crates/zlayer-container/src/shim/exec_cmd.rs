//! `zlayer-shim exec DIR LC_ROOT PROCESS_JSON`: runs one process inside a
//! running container (libcontainer tenant mode: joins its namespaces and
//! cgroup), with this helper's stdio, and reports on fd 3.

use super::errors::{error_chain, user_message};
use super::executor::{seccomp_program, CleanSignalsExecutor};
use super::protocol::ExecStatus;
use crate::paths::ContainerPaths;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;

/// The fd the agent passes the status pipe on.
pub const STATUS_FD: i32 = 3;

fn send(status: &mut File, msg: &ExecStatus) {
    if let Ok(line) = serde_json::to_string(msg) {
        let _ = writeln!(status, "{line}");
    }
}

/// Entry point of `zlayer-shim exec`; returns the process exit code.
pub fn run(paths: &ContainerPaths, process_file: &Path) -> i32 {
    // SAFETY: fd 3 was set up by the agent for us.
    let mut status = unsafe { File::from_raw_fd(STATUS_FD) };
    // SAFETY: fcntl on our own fd; the workload must not inherit it.
    unsafe {
        libc::fcntl(status.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
    }
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        send(
            &mut status,
            &ExecStatus::Failed {
                error: format!("PR_SET_CHILD_SUBREAPER failed: {e}"),
            },
        );
        return 1;
    }
    let record = crate::state_dir::read_json::<crate::state_dir::ContainerRecord>(&paths.record())
        .ok()
        .flatten();
    let seccomp = match record
        .as_ref()
        .ok_or_else(|| "the container's record is missing".to_string())
        .and_then(|r| seccomp_program(paths, r))
    {
        Ok(s) => s,
        Err(error) => {
            let _ = std::fs::remove_file(process_file);
            send(&mut status, &ExecStatus::Failed { error });
            return 1;
        }
    };
    let built = ContainerBuilder::new(paths.lc_id.clone(), SyscallType::default())
        .with_root_path(&paths.lc_root)
        .map(|b| {
            b.with_executor(CleanSignalsExecutor { seccomp })
                .as_tenant()
                .with_process(Some(process_file))
                .with_detach(false)
                .build()
        });
    let _ = std::fs::remove_file(process_file);
    let pid = match built {
        Ok(Ok(pid)) => pid,
        Ok(Err(e)) => {
            send(
                &mut status,
                &ExecStatus::Failed {
                    error: user_message(&error_chain(&e)),
                },
            );
            return 1;
        }
        Err(e) => {
            send(
                &mut status,
                &ExecStatus::Failed {
                    error: error_chain(&e),
                },
            );
            return 1;
        }
    };
    send(&mut status, &ExecStatus::Started { pid: pid.as_raw() });
    let code = loop {
        match nix::sys::wait::waitpid(pid, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => break c,
            Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                send(
                    &mut status,
                    &ExecStatus::Failed {
                        error: format!("waiting for the exec failed: {e}"),
                    },
                );
                return 1;
            }
        }
    };
    send(&mut status, &ExecStatus::Exited { code });
    0
}
