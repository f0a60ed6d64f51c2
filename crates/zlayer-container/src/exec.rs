//! Running a command in a running container, from its monitor: the
//! command is checked (typed 126/127), its OCI process spec written, and a
//! forked helper joins the container's namespaces and cgroup through
//! libcontainer's tenant mode, waits for the command and exits with its
//! code. A failure before the command runs is reported on the exec's report
//! pipe.

use super::errors::{error_chain, user_message};
use super::executor::{seccomp_program, CleanSignalsExecutor};
use super::paths::ContainerPaths;
use super::plan::ContainerPlan;
use super::user::resolve_user;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use oci_spec::runtime::{Process, Spec, User};
use std::fs::File;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use zlayer_hosting::control::ExecReport;
use zlayer_hosting::{ExecHandle, ExecRequest, SpawnError};
use zlayer_runtime::InvokeFailure;

/// Writes the OCI process spec of an exec; returns its path.
pub fn write_process(
    paths: &ContainerPaths,
    plan: &ContainerPlan,
    req: &ExecRequest,
) -> Result<PathBuf, SpawnError> {
    let spec = Spec::load(paths.oci_config()).map_err(|e| {
        SpawnError::engine(format!("reading {}: {e}", paths.oci_config().display()))
    })?;
    let base = spec
        .process()
        .clone()
        .ok_or_else(|| SpawnError::engine("config.json has no process"))?;
    let mut env: Vec<String> = base
        .env()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|kv| {
            let key = kv.split('=').next().unwrap_or("");
            !req.env.iter().any(|(k, _)| k == key)
        })
        .collect();
    env.extend(req.env.iter().map(|(k, v)| format!("{k}={v}")));
    let cwd = match &req.workdir {
        Some(d) if !d.starts_with('/') => {
            return Err(SpawnError::invoke(
                InvokeFailure::BadWorkingDir,
                format!("exec working directory {d:?} must be an absolute path"),
            ))
        }
        Some(d) => PathBuf::from(d),
        None => base.cwd().clone(),
    };
    let path = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(&plan.path)
        .to_string();
    let argv0 = req.argv.first().map(String::as_str).unwrap_or("");
    super::command::check(&paths.rootfs(), &cwd.to_string_lossy(), argv0, &path)
        .map_err(|(f, m)| SpawnError::invoke(f, m))?;
    let mut user = User::default();
    match &req.user {
        Some(u) => {
            let r = resolve_user(&paths.rootfs(), Some(u))
                .map_err(|e| SpawnError::invoke(InvokeFailure::UnknownUser, e.to_string()))?;
            user.set_uid(r.uid);
            user.set_gid(r.gid);
            user.set_additional_gids((!r.additional_gids.is_empty()).then_some(r.additional_gids));
        }
        None => {
            user.set_uid(plan.uid);
            user.set_gid(plan.gid);
            user.set_additional_gids(
                (!plan.additional_gids.is_empty()).then(|| plan.additional_gids.clone()),
            );
        }
    }
    let mut p = Process::default();
    p.set_terminal(Some(false));
    p.set_args(Some(req.argv.clone()));
    p.set_env(Some(env));
    p.set_cwd(cwd);
    p.set_user(user);
    p.set_capabilities(base.capabilities().clone());
    p.set_no_new_privileges(Some(true));
    p.set_rlimits(None);
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = paths.exec_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| SpawnError::engine(format!("creating {}: {e}", dir.display())))?;
    let file = dir.join(format!(
        "{}-{}.json",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let json = serde_json::to_vec(&p)
        .map_err(|e| SpawnError::engine(format!("encoding the exec process: {e}")))?;
    std::fs::write(&file, json)
        .map_err(|e| SpawnError::engine(format!("writing {}: {e}", file.display())))?;
    Ok(file)
}

/// Starts `req` in the container with `stdio` as its streams: a forked
/// helper child of the monitor runs it (see the module docs).
pub fn spawn(
    paths: &ContainerPaths,
    plan: &ContainerPlan,
    req: &ExecRequest,
    stdio: [OwnedFd; 3],
) -> Result<ExecHandle, SpawnError> {
    let process_file = write_process(paths, plan, req)?;
    let seccomp = seccomp_program(paths, plan).map_err(SpawnError::engine)?;
    let (report_r, report_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SpawnError::engine(format!("creating the exec report pipe: {e}")))?;
    // SAFETY: the monitor is single-threaded; the child only runs
    // `run_helper`, which never returns.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            run_helper(paths, &process_file, seccomp, stdio, report_w)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(report_w);
            Ok(ExecHandle {
                pid: Some(child.as_raw()),
                report: Some(File::from(report_r)),
            })
        }
        Err(e) => {
            let _ = std::fs::remove_file(&process_file);
            Err(SpawnError::engine(format!("forking the exec helper: {e}")))
        }
    }
}

/// The helper: stdio on 0-2, the report pipe on 3, nothing else open;
/// runs the process and exits with its code.
fn run_helper(
    paths: &ContainerPaths,
    process_file: &Path,
    seccomp: Option<std::sync::Arc<Vec<u8>>>,
    stdio: [OwnedFd; 3],
    report: OwnedFd,
) -> ! {
    let raw: Vec<i32> = stdio.into_iter().map(|f| f.into_raw_fd()).collect();
    let report = report.into_raw_fd();
    // SAFETY: descriptor plumbing in the freshly forked child, which owns
    // every descriptor named here.
    unsafe {
        // Out of the way of 0-3 first, so one dup2 cannot clobber a source.
        let moved: Vec<i32> = raw
            .iter()
            .chain(std::iter::once(&report))
            .map(|fd| libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10))
            .collect();
        for (target, fd) in moved.iter().enumerate() {
            libc::dup2(*fd, target as i32);
        }
        libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC);
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
    }
    // SAFETY: fd 3 is the report pipe, ours alone now.
    let mut report = File::from(unsafe { OwnedFd::from_raw_fd(3) });
    let fail = |report: &mut File, failure: Option<InvokeFailure>, message: String| -> ! {
        zlayer_hosting::monitor::write_report(report, &ExecReport::Failed { failure, message });
        // SAFETY: leaves without running the monitor's destructors.
        unsafe { libc::_exit(1) }
    };
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        fail(
            &mut report,
            None,
            format!("PR_SET_CHILD_SUBREAPER failed: {e}"),
        );
    }
    let built = ContainerBuilder::new(paths.lc_id.clone(), SyscallType::default())
        .with_root_path(&paths.lc_root)
        .map(|b| {
            b.with_executor(CleanSignalsExecutor {
                seccomp,
                die_with_parent: true,
            })
            .as_tenant()
            .with_process(Some(process_file))
            .with_detach(false)
            .build()
        });
    let _ = std::fs::remove_file(process_file);
    let pid = match built {
        Ok(Ok(pid)) => pid,
        Ok(Err(e)) => fail(&mut report, None, user_message(&error_chain(&e))),
        Err(e) => fail(&mut report, None, error_chain(&e)),
    };
    let code = loop {
        match nix::sys::wait::waitpid(pid, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => break c,
            Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => fail(
                &mut report,
                None,
                format!("waiting for the exec failed: {e}"),
            ),
        }
    };
    zlayer_hosting::monitor::write_report(&mut report, &ExecReport::Exited { code });
    // SAFETY: as above.
    unsafe { libc::_exit(code & 0xff) }
}
