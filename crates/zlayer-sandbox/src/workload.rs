//! [`SandboxWorkload`]: a running sandbox, as its monitor drives it.

use std::os::fd::OwnedFd;
use std::time::{Duration, SystemTime};
use zlayer_hosting::{ExecHandle, ExecRequest, SpawnError, StateDir, Workload, WorkloadStdio};
use zlayer_runtime::{InvokeFailure, StatsSample};
use zlayer_sys::procfs;

use super::create::{inside, resolve_program};
use super::launch::{LaunchError, Prepared};
use super::options::resolve_user;
use super::plan::SandboxPlan;
use super::policy::Policy;

/// Watchdog period when a memory limit is set.
pub const WATCHDOG_INTERVAL: Duration = Duration::from_millis(100);

/// A sandbox's workload, started by [`SandboxWorkload::start`].
pub struct SandboxWorkload {
    plan: SandboxPlan,
    prepared: Prepared,
    main_pid: i32,
    me: i32,
    stdio: Option<WorkloadStdio>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SpawnError::engine(format!("creating a pipe: {e}")))
}

/// The spawn error a failed launch of `program` is.
fn launch_error(program: &std::path::Path, e: LaunchError) -> SpawnError {
    let message = format!("executing {} failed: {e}", program.display());
    match e.invoke_failure() {
        Some(f) => SpawnError::invoke(f, message),
        None => SpawnError::engine(message),
    }
}

impl SandboxWorkload {
    /// Prepares the policy (Landlock ruleset, seccomp program) and starts
    /// the main process confined, on pipes or a terminal.
    pub fn start(_dir: &StateDir, plan: SandboxPlan) -> Result<Self, SpawnError> {
        if let Some(e) = &plan.unresolved {
            return Err(e.clone());
        }
        let prepared = Prepared::new(&plan.policy).map_err(SpawnError::engine)?;
        let (child, stdio) = if plan.tty {
            // A terminal: the slave is the workload's stdin, stdout and
            // stderr; the monitor keeps the master.
            let pty = nix::pty::openpty(None, None)
                .map_err(|e| SpawnError::engine(format!("allocating a pty: {e}")))?;
            let dup = |fd: &OwnedFd| {
                fd.try_clone()
                    .map_err(|e| SpawnError::engine(format!("pty: {e}")))
            };
            let out = dup(&pty.slave)?;
            let err = dup(&pty.slave)?;
            zlayer_hosting::monitor::set_window_size(
                &pty.master,
                zlayer_hosting::monitor::DEFAULT_ROWS,
                zlayer_hosting::monitor::DEFAULT_COLS,
            );
            (
                [pty.slave, out, err],
                WorkloadStdio::Terminal { master: pty.master },
            )
        } else {
            let (in_r, in_w) = pipe()?;
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            (
                [in_r, out_w, err_w],
                WorkloadStdio::Pipes {
                    stdin: in_w,
                    stdout: out_r,
                    stderr: err_r,
                },
            )
        };
        let main_pid = prepared
            .spawn(
                &plan.program,
                &plan.argv,
                &plan.env,
                &plan.cwd,
                plan.tty,
                child,
            )
            .map_err(|e| launch_error(&plan.program, e))?;
        Ok(SandboxWorkload {
            plan,
            prepared,
            main_pid,
            me: std::process::id() as i32,
            stdio: Some(stdio),
        })
    }

    /// SIGKILLs every descendant of the monitor (repeatedly, to catch forks
    /// in flight), reaping as it goes.
    fn kill_tree(&self) {
        for _ in 0..20 {
            let procs: Vec<_> = procfs::descendants_fast(self.me)
                .into_iter()
                .filter(|p| p.state != 'Z')
                .collect();
            if procs.is_empty() {
                return;
            }
            for p in &procs {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe {
                    libc::kill(p.pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Workload for SandboxWorkload {
    fn pid(&self) -> i32 {
        self.main_pid
    }

    fn take_stdio(&mut self) -> Option<WorkloadStdio> {
        self.stdio.take()
    }

    fn notes(&self) -> Vec<String> {
        self.prepared
            .degraded()
            .iter()
            .map(|d| format!("sandbox degraded: {d}"))
            .collect()
    }

    fn exec(&mut self, req: &ExecRequest, stdio: [OwnedFd; 3]) -> Result<ExecHandle, SpawnError> {
        let plan = &self.plan;
        let rootfs = &plan.policy.rootfs;
        let cwd = match &req.workdir {
            Some(w) if w.starts_with('/') => inside(rootfs, w),
            Some(w) => {
                return Err(SpawnError::invoke(
                    InvokeFailure::BadWorkingDir,
                    format!(
                        "exec working directory {w:?} must be an absolute path inside the container"
                    ),
                ))
            }
            None => plan.cwd.clone(),
        };
        let mut env = plan.env.clone();
        for (k, v) in &req.env {
            env.retain(|(ek, _)| ek != k);
            env.push((k.clone(), v.clone()));
        }
        let path_var = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let argv0 = &req.argv[0];
        let program = resolve_program(rootfs, &cwd, argv0, &path_var).ok_or_else(|| {
            SpawnError::invoke(
                InvokeFailure::CommandNotFound,
                format!("exec: {argv0:?} is not an executable in the container"),
            )
        })?;
        let user = match &req.user {
            Some(u) => Some(
                resolve_user(u, rootfs)
                    .map_err(|e| SpawnError::invoke(InvokeFailure::UnknownUser, e.to_string()))?,
            ),
            None => None,
        };
        let other;
        let prepared = if user.is_some() && user != plan.policy.user {
            let policy = Policy {
                user,
                root: user.map_or(plan.policy.root, |u| u.uid == 0),
                ..plan.policy.clone()
            };
            other = Prepared::new(&policy).map_err(SpawnError::engine)?;
            &other
        } else {
            &self.prepared
        };
        let pid = prepared
            .spawn(&program, &req.argv, &env, &cwd, false, stdio)
            .map_err(|e| launch_error(&program, e))?;
        Ok(ExecHandle {
            pid: Some(pid),
            report: None,
        })
    }

    fn signal(&mut self, signal: i32) -> std::io::Result<()> {
        if signal == libc::SIGKILL {
            self.kill_tree();
            return Ok(());
        }
        // SAFETY: kill(2) has no memory-safety preconditions.
        let r = unsafe { libc::kill(-self.main_pid, signal) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
        Ok(())
    }

    fn stats(&mut self) -> Result<StatsSample, String> {
        let procs = procfs::descendants_fast(self.me);
        let u = procfs::usage(&procs);
        Ok(StatsSample {
            timestamp: SystemTime::now(),
            cpu_total_ns: u.cpu_ns,
            cpu_system_ns: procfs::host_cpu_ns(),
            online_cpus: procfs::online_cpus(),
            memory_used_bytes: u.rss_bytes,
            memory_limit_bytes: self
                .plan
                .policy
                .memory_limit
                .unwrap_or_else(procfs::host_memory_bytes),
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            blkio_read_bytes: u.read_bytes,
            blkio_write_bytes: u.write_bytes,
            pids_current: u.threads,
            pids_limit: self.plan.pids_limit.filter(|n| *n > 0).map(|n| n as u64),
        })
    }

    fn watch_interval(&self) -> Option<Duration> {
        self.plan.policy.memory_limit.map(|_| WATCHDOG_INTERVAL)
    }

    fn watch(&mut self) -> Option<String> {
        let limit = self.plan.policy.memory_limit?;
        let rss = procfs::rss_bytes(&procfs::descendants_fast(self.me));
        if rss <= limit {
            return None;
        }
        let reason = format!(
            "memory limit {} exceeded (rss {}); the watchdog killed the process tree",
            human(limit),
            human(rss)
        );
        self.kill_tree();
        Some(reason)
    }

    fn cleanup(&mut self) {
        // The container ends with its main process.
        self.kill_tree();
    }
}

fn human(bytes: u64) -> String {
    const MI: u64 = 1 << 20;
    if bytes >= MI {
        format!("{}Mi", bytes / MI)
    } else {
        format!("{bytes} bytes")
    }
}
