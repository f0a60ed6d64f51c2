//! Starting a process under a policy.
//!
//! Everything that allocates or reads files happens in the parent
//! ([`Prepared::new`]: the Landlock ruleset fd, the seccomp BPF, limits).
//! The child, between fork and exec, only makes async-signal-safe syscalls:
//! `sigprocmask`/`signal` (defaults back), `setsid` (and `ioctl(TIOCSCTTY)`
//! with a terminal), `setrlimit`, `setgroups`/`setgid`/`setuid`, `prctl`
//! (securebits, capability bounding set, ambient set, no_new_privs), `capset`,
//! `landlock_restrict_self` and `seccomp`.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

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

    /// A command running `program` (a host path) with `argv` (argv[0] as
    /// the workload should see it), exactly `env`, in `cwd`, confined.
    ///
    /// With `tty`, the child's stdin must be a terminal: it becomes the
    /// controlling terminal of the child's new session.
    pub fn command(
        &self,
        program: &Path,
        argv: &[String],
        env: &[(String, String)],
        cwd: &Path,
        tty: bool,
    ) -> Command {
        let mut cmd = Command::new(program);
        if let Some(first) = argv.first() {
            cmd.arg0(first);
        }
        cmd.args(argv.iter().skip(1))
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(cwd);
        let ll_fd = self
            .landlock
            .fd
            .as_ref()
            .map(|f| f.as_raw_fd())
            .unwrap_or(-1);
        let bpf = self.bpf.clone();
        let setup = ChildSetup {
            ll_fd,
            user: self.user,
            nproc: self.nproc,
            drop_caps: self.drop_caps,
            cap_last: self.cap_last,
            tty,
        };
        // SAFETY: the closure runs in the forked child and only makes raw
        // syscalls on values prepared before the fork; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || confine(setup, &bpf));
        }
        cmd
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

fn check(ret: libc::c_long) -> std::io::Result<()> {
    if ret < 0 {
        Err(std::io::Error::last_os_error())
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
}

/// Runs in the child between fork and exec: async-signal-safe syscalls only.
fn confine(setup: ChildSetup, bpf: &[libc::sock_filter]) -> std::io::Result<()> {
    let ChildSetup {
        ll_fd,
        user,
        nproc,
        drop_caps,
        cap_last,
        tty,
    } = setup;
    // SAFETY: plain syscalls on stack values and on the pre-built BPF slice.
    unsafe {
        // The monitor blocks signals for its signalfd and ignores SIGPIPE;
        // the workload starts with the defaults.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        check(
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) as libc::c_long,
        )?;
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        check(libc::setsid() as libc::c_long)?;
        if tty {
            check(libc::ioctl(0, libc::TIOCSCTTY, 0) as libc::c_long)?;
        }
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        check(libc::setrlimit(libc::RLIMIT_CORE, &zero) as libc::c_long)?;
        if let Some(n) = nproc {
            let rl = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            check(libc::setrlimit(libc::RLIMIT_NPROC, &rl) as libc::c_long)?;
        }
        if let Some((uid, gid)) = user {
            check(libc::setgroups(0, std::ptr::null()) as libc::c_long)?;
            check(libc::setgid(gid) as libc::c_long)?;
            check(libc::setuid(uid) as libc::c_long)?;
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
            check(libc::syscall(
                libc::SYS_capset,
                &mut header as *mut CapHeader,
                data.as_ptr(),
            ))?;
        }
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) as libc::c_long)?;
        if ll_fd >= 0 {
            check(libc::syscall(libc::SYS_landlock_restrict_self, ll_fd, 0u32))?;
        }
        if !bpf.is_empty() {
            let prog = libc::sock_fprog {
                len: bpf.len() as libc::c_ushort,
                filter: bpf.as_ptr() as *mut libc::sock_filter,
            };
            check(libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0u32,
                &prog as *const libc::sock_fprog,
            ))?;
        }
    }
    Ok(())
}
