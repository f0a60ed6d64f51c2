//! [`ContainerWorkload`]: a running container inside its monitor. The
//! monitor creates and starts it with libcontainer in its own process (so
//! the init becomes its child: the monitor is a child subreaper), attaches
//! its network, and then drives it.

use super::cgroup_stats;
use super::cgroups::{keyed_value, ContainerCgroup};
use super::errors::error_chain;
use super::executor::{seccomp_program, CleanSignalsExecutor};
use super::freezer;
use super::network;
use super::paths::ContainerPaths;
use super::plan::ContainerPlan;
use super::tty;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use zlayer_hosting::{
    ExecHandle, ExecRequest, SpawnError, StateDir, Workload, WorkloadExit, WorkloadStdio,
};
use zlayer_runtime::StatsSample;

/// A running container.
pub struct ContainerWorkload {
    paths: ContainerPaths,
    plan: ContainerPlan,
    init_pid: i32,
    cgroup: ContainerCgroup,
    stdio: Option<WorkloadStdio>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SpawnError::engine(format!("creating a pipe failed: {e}")))
}

impl ContainerWorkload {
    /// Creates and starts the container of `dir` as `plan` says.
    pub fn start(dir: &StateDir, plan: ContainerPlan) -> Result<Self, SpawnError> {
        let paths =
            ContainerPaths::of(dir.clone()).map_err(|e| SpawnError::engine(e.to_string()))?;
        let argv0 = plan.argv.first().map(String::as_str).unwrap_or("");
        super::command::check(&paths.rootfs(), &plan.cwd, argv0, &plan.path)
            .map_err(|(f, m)| SpawnError::invoke(f, m))?;
        let seccomp = seccomp_program(&paths, &plan).map_err(SpawnError::engine)?;
        let engine = |e: &(dyn std::error::Error + 'static)| SpawnError::engine(error_chain(e));
        let base = ContainerBuilder::new(paths.lc_id.clone(), SyscallType::default())
            .with_root_path(&paths.lc_root)
            .map_err(|e| engine(&e))?
            .with_executor(CleanSignalsExecutor {
                seccomp,
                die_with_parent: true,
            });
        // The monitor's ends of the container's stdio.
        let (pipes, console, builder);
        if plan.tty {
            // libcontainer creates the pty inside the container and sends
            // its master side over this socket.
            let path = paths.console_socket();
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path).map_err(|e| {
                SpawnError::engine(format!(
                    "binding the console socket {} failed: {e}",
                    path.display()
                ))
            })?;
            builder = base.with_console_socket(Some(&path));
            console = Some(l);
            pipes = None;
        } else {
            let (stdin_r, stdin_w) = pipe()?;
            let (stdout_r, stdout_w) = pipe()?;
            let (stderr_r, stderr_w) = pipe()?;
            builder = base
                .with_stdin(stdin_r)
                .with_stdout(stdout_w)
                .with_stderr(stderr_w);
            console = None;
            pipes = Some((stdin_w, stdout_r, stderr_r));
        }
        let mut container = builder
            .as_init(&paths.dir)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(|e| engine(&e))?;
        let init_pid = container
            .pid()
            .map(|p| p.as_raw())
            .ok_or_else(|| SpawnError::engine("libcontainer did not report the init pid"))?;
        let cgroup = ContainerCgroup::new(&plan.cgroup_path);
        zlayer_failpoints::hit("start.after-cgroup");

        // Set once the container is on a bridge: a later failure detaches it.
        let attached = std::cell::Cell::new(false);
        let abort = |e: SpawnError| -> SpawnError {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(init_pid, libc::SIGKILL);
            }
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(init_pid), None);
            if attached.get() {
                let _ = network::detach(&paths, Some(&plan));
            }
            cgroup.kill_all();
            e
        };
        // The network, before the workload runs (`none`: lo up in-process;
        // bridge modes: veth, address, ports, /etc/hosts, /etc/resolv.conf).
        attached.set(
            network::attach(&paths, &plan, init_pid).map_err(|e| abort(SpawnError::engine(e)))?,
        );
        zlayer_failpoints::hit("start.after-network");
        let stdio = match console {
            Some(l) => {
                let master = tty::receive_master(&l).map_err(|e| {
                    abort(SpawnError::engine(format!(
                        "receiving the container's terminal failed: {e}"
                    )))
                })?;
                let _ = std::fs::remove_file(paths.console_socket());
                WorkloadStdio::Terminal { master }
            }
            None => match pipes {
                Some((stdin, stdout, stderr)) => WorkloadStdio::Pipes {
                    stdin,
                    stdout,
                    stderr,
                },
                None => {
                    return Err(abort(SpawnError::engine(
                        "the container's stdio pipes are missing",
                    )))
                }
            },
        };
        container.start().map_err(|e| {
            abort(SpawnError::engine(format!(
                "starting the container failed: {}",
                error_chain(&e)
            )))
        })?;
        Ok(ContainerWorkload {
            paths,
            plan,
            init_pid,
            cgroup,
            stdio: Some(stdio),
        })
    }
}

impl Workload for ContainerWorkload {
    fn pid(&self) -> i32 {
        self.init_pid
    }

    fn take_stdio(&mut self) -> Option<WorkloadStdio> {
        self.stdio.take()
    }

    fn exec(
        &mut self,
        request: &ExecRequest,
        stdio: [OwnedFd; 3],
    ) -> Result<ExecHandle, SpawnError> {
        if freezer::is_frozen(&self.cgroup) {
            return Err(SpawnError::engine(
                "the container is paused; unpause it before exec",
            ));
        }
        super::exec::spawn(&self.paths, &self.plan, request, stdio)
    }

    fn signal(&mut self, signal: i32) -> std::io::Result<()> {
        // SAFETY: kill(2) has no memory-safety preconditions.
        if unsafe { libc::kill(self.init_pid, signal) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
        if signal == libc::SIGKILL {
            // A frozen container cannot die until thawed; and everything in
            // its cgroup goes (a container sharing the host's pid space).
            freezer::thaw_quietly(&self.cgroup);
            self.cgroup.kill_all();
        }
        Ok(())
    }

    fn stats(&mut self) -> Result<StatsSample, String> {
        Ok(cgroup_stats::sample(
            &self.cgroup,
            self.init_pid,
            self.plan.host_network,
        ))
    }

    fn exit(&mut self, code: i32, signal: Option<i32>) -> WorkloadExit {
        WorkloadExit {
            code,
            signal,
            reason: oom_reason(&self.plan, code),
        }
    }

    fn cleanup(&mut self) {
        // Free the address and the published ports before anyone learns of
        // the exit, so a restart or a new container may take them at once.
        let _ = network::detach_exited(&self.paths, &self.plan);
    }
}

/// The failure reason when the kernel OOM-killed a process of the container.
fn oom_reason(plan: &ContainerPlan, code: i32) -> Option<String> {
    let kills = match &plan.oom_events {
        Some(file) => std::fs::read_to_string(file)
            .ok()
            .and_then(|t| keyed_value(&t, "oom_kill")),
        None => ContainerCgroup::new(&plan.cgroup_path).oom_kills(),
    }
    .unwrap_or(0);
    if kills == 0 {
        return None;
    }
    let limit = plan
        .memory_limit
        .map(|b| format!(" of {:.1} MiB", b as f64 / (1024.0 * 1024.0)))
        .unwrap_or_default();
    Some(format!(
        "OOM-killed: the container exceeded its memory limit{limit} and the kernel killed it \
         (exit code {code}); raise resources.memory"
    ))
}
