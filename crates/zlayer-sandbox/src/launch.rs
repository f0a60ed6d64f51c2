//! Starting a process under a policy.
//!
//! Everything that allocates or reads files happens in the parent
//! ([`Prepared::new`]: the Landlock ruleset fd, the seccomp BPF, limits).
//! The child, between clone and exec, only makes async-signal-safe syscalls:
//! `sigprocmask`/`signal` (defaults back), `setsid` (and `ioctl(TIOCSCTTY)`
//! with a terminal), `setrlimit`, `setgroups`/`setgid`/`setuid`, `prctl`
//! (securebits, capability bounding set, ambient set, no_new_privs), `capset`,
//! `landlock_restrict_self` and `seccomp`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::landlock_rules::{self, PreparedLandlock};
use super::policy::Policy;
use super::seccomp::{self, FilterSpec};

/// A policy turned into what the child needs.
#[derive(Debug)]
pub struct Prepared {
    landlock: PreparedLandlock,
    bpf: Vec<libc::sock_filter>,
    user: Option<(u32, u32)>,
    nproc: Option<u64>,
    drop_caps: bool,
    cap_last: u32,
}

const SECBITS: libc::c_ulong = 0b10_1111; // NOROOT(+LOCKED), NO_SETUID_FIXUP(+LOCKED), KEEP_CAPS_LOCKED
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

impl Prepared {
    /// Builds the Landlock ruleset and the seccomp program of `policy`.
    pub fn new(policy: &Policy) -> Result<Self, String> {
        let landlock = landlock_rules::prepare(policy)?;
        let bpf = seccomp::build(&FilterSpec {
            allowed: &policy.allowed_syscalls,
            network: policy.network,
            root: policy.root,
        })?;
        let user = policy.user.map(|u| (u.uid, u.gid));
        // SAFETY: geteuid cannot fail.
        let target_uid = user
            .map(|u| u.0)
            .unwrap_or_else(|| unsafe { libc::geteuid() });
        let nproc = policy
            .nproc
            .map(|n| n.min(current_hard_limit(libc::RLIMIT_NPROC)));
        let cap_last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(40)
            .min(63);
        Ok(Prepared {
            landlock,
            bpf,
            user,
            nproc,
            drop_caps: target_uid == 0,
            cap_last,
        })
    }

    /// What the kernel could not enforce (degraded mode), if anything.
    pub fn degraded(&self) -> &[String] {
        &self.landlock.degraded
    }

    /// The kernel's Landlock ABI.
    pub fn landlock_abi(&self) -> i64 {
        self.landlock.abi
    }

    /// Starts `program` (a host path) with `argv` (argv[0] as the workload
    /// should see it), exactly `env`, in `cwd`, confined, with `stdio` as
    /// its standard streams; returns its pid (the caller reaps it).
    ///
    /// With `tty`, `stdio[0]` must be a terminal: it becomes the
    /// controlling terminal of the child's new session.
    ///
    /// The child shares this process's memory until it execs
    /// (`CLONE_VM | CLONE_VFORK`, as `posix_spawn` does): no page tables are
    /// copied and no copy-on-write faults follow, which a `fork` of the
    /// monitor cost on every start (see `docs/sandbox.md`).
    pub fn spawn(
        &self,
        program: &Path,
        argv: &[String],
        env: &[(String, String)],
        cwd: &Path,
        tty: bool,
        stdio: [OwnedFd; 3],
    ) -> Result<i32, LaunchError> {
        let prog = c_string(program.as_os_str().as_bytes(), "the program path")?;
        let mut args: Vec<CString> = Vec::with_capacity(argv.len().max(1));
        match argv.first() {
            Some(first) => args.push(c_string(first.as_bytes(), "argv[0]")?),
            None => args.push(prog.clone()),
        }
        for a in argv.iter().skip(1) {
            args.push(c_string(a.as_bytes(), "an argument")?);
        }
        let mut envs: Vec<CString> = Vec::with_capacity(env.len());
        for (k, v) in env {
            envs.push(c_string(
                format!("{k}={v}").as_bytes(),
                "an environment variable",
            )?);
        }
        let cwd = c_string(cwd.as_os_str().as_bytes(), "the working directory")?;
        let argv_ptrs = null_terminated(&args);
        let envp_ptrs = null_terminated(&envs);
        let mut job = ChildJob {
            program: prog.as_ptr(),
            argv: argv_ptrs.as_ptr(),
            envp: envp_ptrs.as_ptr(),
            cwd: cwd.as_ptr(),
            stdio: [
                stdio[0].as_raw_fd(),
                stdio[1].as_raw_fd(),
                stdio[2].as_raw_fd(),
            ],
            setup: ChildSetup {
                ll_fd: self
                    .landlock
                    .fd
                    .as_ref()
                    .map(|f| f.as_raw_fd())
                    .unwrap_or(-1),
                user: self.user,
                nproc: self.nproc,
                drop_caps: self.drop_caps,
                cap_last: self.cap_last,
                tty,
                // SAFETY: getpid cannot fail.
                parent: unsafe { libc::getpid() },
            },
            bpf: self.bpf.as_ptr(),
            bpf_len: self.bpf.len(),
            failure: None,
        };
        let stack =
            ChildStack::new().map_err(|e| LaunchError::new("allocating the child's stack", e))?;
        // All signals stay blocked from before the clone until the child
        // has reset its handlers (it shares our memory: one of our handlers
        // running in it would run on our data).
        // SAFETY: plain signal-mask calls on stack values.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        }
        // SAFETY: the child runs `child_main` on its own stack with a
        // pointer to `job`, which outlives it: CLONE_VFORK suspends us until
        // the child has exec'd or exited. The child only makes raw syscalls.
        let pid = unsafe {
            libc::clone(
                child_main,
                stack.top(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (&mut job as *mut ChildJob).cast(),
            )
        };
        let clone_error = std::io::Error::last_os_error();
        // SAFETY: restores the mask saved above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        drop(stack);
        drop(stdio);
        if pid < 0 {
            return Err(LaunchError::new("clone", clone_error));
        }
        // The child wrote `failure` before it exited, and we resumed only
        // after that (CLONE_VFORK).
        // SAFETY: reads our own `job`, written through the pointer above.
        let failure = unsafe { std::ptr::read_volatile(&job.failure) };
        if let Some(f) = failure {
            // It exited with 127 without exec'ing: reap it here.
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            return Err(LaunchError::new(
                f.step,
                std::io::Error::from_raw_os_error(f.errno),
            ));
        }
        Ok(pid)
    }
}

/// Why [`Prepared::spawn`] failed: the step and its error.
#[derive(Debug)]
pub struct LaunchError {
    /// The step that failed (`execve`, `entering the working directory`...).
    pub step: &'static str,
    /// Its error.
    pub error: std::io::Error,
}

impl LaunchError {
    fn new(step: &'static str, error: std::io::Error) -> Self {
        LaunchError { step, error }
    }

    /// The command-level failure this is (docker's 126/127), if it is one.
    pub fn invoke_failure(&self) -> Option<zlayer_runtime::InvokeFailure> {
        let errno = self.error.raw_os_error()?;
        match self.step {
            "execve" => zlayer_runtime::InvokeFailure::from_exec_errno(errno),
            "entering the working directory" => Some(zlayer_runtime::InvokeFailure::BadWorkingDir),
            _ => None,
        }
    }
}

impl std::fmt::Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.step {
            "execve" => write!(f, "{}", self.error),
            step => write!(f, "{step}: {}", self.error),
        }
    }
}

fn c_string(bytes: &[u8], what: &str) -> Result<CString, LaunchError> {
    CString::new(bytes).map_err(|_| {
        LaunchError::new(
            "preparing the arguments",
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{what} contains a NUL byte"),
            ),
        )
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The stack the child runs on until it execs, with a guard page below.
struct ChildStack {
    base: *mut libc::c_void,
}

const CHILD_STACK: usize = 256 * 1024;

impl ChildStack {
    fn new() -> std::io::Result<Self> {
        // SAFETY: a fresh anonymous mapping; pages are only faulted in as
        // the child touches them.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                CHILD_STACK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the lowest page of our own mapping becomes the guard.
        unsafe { libc::mprotect(base, 4096, libc::PROT_NONE) };
        Ok(ChildStack { base })
    }

    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of our mapping (stacks grow down).
        unsafe { self.base.cast::<u8>().add(CHILD_STACK).cast() }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in `new`, no longer in use.
        unsafe { libc::munmap(self.base, CHILD_STACK) };
    }
}

/// Everything the child needs, prepared (allocated) before the clone.
struct ChildJob {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdio: [i32; 3],
    setup: ChildSetup,
    bpf: *const libc::sock_filter,
    bpf_len: usize,
    /// Written by the child when a step fails (then it exits with 127).
    failure: Option<Failure>,
}

/// A failed step of the child and its errno.
#[derive(Debug, Clone, Copy)]
struct Failure {
    step: &'static str,
    errno: i32,
}

/// The child's entry point: sets up, confines and execs; on failure it
/// records the step in the shared [`ChildJob`] and exits with 127.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildJob`, alive while we run.
    let job = unsafe { &mut *arg.cast::<ChildJob>() };
    let failure = child_exec(job);
    job.failure = Some(failure);
    // SAFETY: leaves without running anything of the parent's (no atexit).
    unsafe { libc::_exit(127) }
}

/// Runs in the child: async-signal-safe syscalls only; returns only on
/// failure.
fn child_exec(job: &ChildJob) -> Failure {
    // SAFETY: raw syscalls on values prepared by the parent.
    unsafe {
        // Our handlers must not run in the child; SIGPIPE (ignored by
        // the monitor) goes back to the default for the workload.
        for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_DFL);
        }
        // Standard streams: move any descriptor below 3 out of the way
        // first, so that one dup2 cannot overwrite another's source.
        let mut fds = job.stdio;
        for fd in fds.iter_mut() {
            if *fd < 3 {
                *fd = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 3);
                if *fd < 0 {
                    return Failure::last("duplicating a standard stream");
                }
            }
        }
        for (target, fd) in fds.iter().enumerate() {
            if libc::dup2(*fd, target as i32) < 0 {
                return Failure::last("setting up a standard stream");
            }
        }
        if libc::chdir(job.cwd) < 0 {
            return Failure::last("entering the working directory");
        }
        let bpf = std::slice::from_raw_parts(job.bpf, job.bpf_len);
        if let Err(f) = confine(job.setup, bpf) {
            return f;
        }
        // Unblocked only now (the mask survives execve): the workload
        // starts with no signal blocked.
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(job.program, job.argv, job.envp);
        Failure::last("execve")
    }
}

impl Failure {
    fn last(step: &'static str) -> Failure {
        Failure {
            step,
            errno: std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL),
        }
    }
}

fn current_hard_limit(resource: libc::__rlimit_resource_t) -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(resource, &mut rl) } == 0 {
        rl.rlim_max
    } else {
        0
    }
}

fn check(ret: libc::c_long, step: &'static str) -> Result<(), Failure> {
    if ret < 0 {
        Err(Failure::last(step))
    } else {
        Ok(())
    }
}

/// What the child applies to itself, prepared in the parent.
#[derive(Debug, Clone, Copy)]
struct ChildSetup {
    ll_fd: i32,
    user: Option<(u32, u32)>,
    nproc: Option<u64>,
    drop_caps: bool,
    cap_last: u32,
    tty: bool,
    /// The monitor: the child dies with it (parent-death signal).
    parent: i32,
}

/// Runs in the child between clone and exec: async-signal-safe syscalls only.
fn confine(setup: ChildSetup, bpf: &[libc::sock_filter]) -> Result<(), Failure> {
    let ChildSetup {
        ll_fd,
        user,
        nproc,
        drop_caps,
        cap_last,
        tty,
        parent,
    } = setup;
    // SAFETY: plain syscalls on stack values and on the pre-built BPF slice.
    unsafe {
        check(libc::setsid() as libc::c_long, "setsid")?;
        if tty {
            check(
                libc::ioctl(0, libc::TIOCSCTTY, 0) as libc::c_long,
                "taking the terminal",
            )?;
        }
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        check(
            libc::setrlimit(libc::RLIMIT_CORE, &zero) as libc::c_long,
            "setrlimit(RLIMIT_CORE)",
        )?;
        if let Some(n) = nproc {
            let rl = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            check(
                libc::setrlimit(libc::RLIMIT_NPROC, &rl) as libc::c_long,
                "setrlimit(RLIMIT_NPROC)",
            )?;
        }
        if let Some((uid, gid)) = user {
            check(
                libc::setgroups(0, std::ptr::null()) as libc::c_long,
                "setgroups",
            )?;
            check(libc::setgid(gid) as libc::c_long, "setgid")?;
            check(libc::setuid(uid) as libc::c_long, "setuid")?;
        }
        // Dies with the monitor (set after the credential change, which
        // clears it); if the monitor already died, the check sees it.
        check(
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) as libc::c_long,
            "setting the parent-death signal",
        )?;
        if libc::getppid() != parent {
            libc::_exit(137);
        }
        if drop_caps {
            // Without CAP_SETPCAP these fail; the bounding set is then
            // already as small as it can get, so errors are not fatal.
            libc::prctl(libc::PR_SET_SECUREBITS, SECBITS, 0, 0, 0);
            for cap in 0..=cap_last {
                libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0);
            }
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            );
            let mut header = CapHeader {
                version: CAP_V3,
                pid: 0,
            };
            let data = [CapData {
                effective: 0,
                permitted: 0,
                inheritable: 0,
            }; 2];
            check(
                libc::syscall(
                    libc::SYS_capset,
                    &mut header as *mut CapHeader,
                    data.as_ptr(),
                ),
                "capset",
            )?;
        }
        check(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) as libc::c_long,
            "no_new_privs",
        )?;
        if ll_fd >= 0 {
            check(
                libc::syscall(libc::SYS_landlock_restrict_self, ll_fd, 0u32),
                "landlock_restrict_self",
            )?;
        }
        if !bpf.is_empty() {
            let prog = libc::sock_fprog {
                len: bpf.len() as libc::c_ushort,
                filter: bpf.as_ptr() as *mut libc::sock_filter,
            };
            check(
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0u32,
                    &prog as *const libc::sock_fprog,
                ),
                "installing the seccomp filter",
            )?;
        }
    }
    Ok(())
}
