//! Compiled seccomp filters, cached on disk.
//!
//! Compiling docker's profile with libseccomp costs ~10 ms of CPU per
//! container (three ABIs, ~400 rules) — a large share of a container start.
//! The profile only changes with the capability set, so the monitor
//! compiles it once per host and profile into classic BPF
//! (`<root>/run/seccomp/<hash>.bpf`), and the container's init loads that
//! program right before `execve` (see [`crate::executor`]). Execs
//! load the same program.
//!
//! The translation follows libcontainer's (which this replaces for the
//! profile): rules whose action equals the default are skipped, unknown
//! syscall names are skipped, a masked comparison is
//! `(arg & value_two) == value`, and several comparisons of one argument
//! become separate rules.

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

/// Size of one `struct sock_filter`.
const INSN: usize = 8;

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> ScmpAction {
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => {
            ScmpAction::Errno(errno.unwrap_or(libc::EPERM as u32) as i32)
        }
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno.unwrap_or(0) as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    }
}

fn arch(a: Arch) -> Option<ScmpArch> {
    Some(match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        _ => return None,
    })
}

fn op(o: LinuxSeccompOperator, value_two: Option<u64>) -> ScmpCompareOp {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value_two.unwrap_or(0)),
    }
}

fn build(profile: &LinuxSeccomp) -> Result<ScmpFilterContext, String> {
    fn e(what: &'static str) -> impl Fn(libseccomp::error::SeccompError) -> String {
        move |err| format!("seccomp {what}: {err}")
    }
    let default = action(profile.default_action(), profile.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).map_err(e("new filter"))?;
    for a in profile
        .architectures()
        .iter()
        .flatten()
        .filter_map(|a| arch(*a))
    {
        if a != ScmpArch::Native && !ctx.is_arch_present(a).unwrap_or(false) {
            ctx.add_arch(a).map_err(e("add arch"))?;
        }
    }
    ctx.set_ctl_nnp(false).map_err(e("nnp"))?;
    for rule in profile.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret());
        if act == default {
            continue;
        }
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let args = rule.args().clone().unwrap_or_default();
            let cmps: Vec<ScmpArgCompare> = args
                .iter()
                .map(|a| {
                    ScmpArgCompare::new(a.index() as u32, op(a.op(), a.value_two()), a.value())
                })
                .collect();
            let mut seen = HashSet::new();
            let dup_index = args.iter().any(|a| !seen.insert(a.index()));
            if cmps.is_empty() {
                ctx.add_rule(act, sc).map_err(e("add rule"))?;
            } else if dup_index {
                for c in &cmps {
                    ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                        .map_err(e("add rule"))?;
                }
            } else {
                ctx.add_rule_conditional(act, sc, &cmps)
                    .map_err(e("add rule"))?;
            }
        }
    }
    Ok(ctx)
}

/// The BPF program of `profile`, from `cache_dir` or freshly compiled (and
/// then cached).
pub fn compiled(profile: &LinuxSeccomp, cache_dir: &Path) -> Result<Vec<u8>, String> {
    let json =
        serde_json::to_vec(profile).map_err(|e| format!("encoding the seccomp profile: {e}"))?;
    let v = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let key = format!(
        "{:016x}-{}-{}.bpf",
        zlayer_sys::hash::fnv1a(&json),
        json.len(),
        v
    );
    let path = cache_dir.join(key);
    if let Ok(bytes) = std::fs::read(&path) {
        if !bytes.is_empty() && bytes.len() % INSN == 0 {
            return Ok(bytes);
        }
    }
    let ctx = build(profile)?;
    std::fs::create_dir_all(cache_dir)
        .map_err(|e| format!("creating {}: {e}", cache_dir.display()))?;
    let tmp = zlayer_sys::atomic::temp_sibling(&path);
    let result = (|| -> Result<Vec<u8>, String> {
        let mut f = std::fs::File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&tmp)
            .map_err(|e| format!("creating {}: {e}", tmp.display()))?;
        ctx.export_bpf(&f)
            .map_err(|e| format!("exporting the seccomp filter: {e}"))?;
        let mut bytes = Vec::new();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        f.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        if bytes.is_empty() || bytes.len() % INSN != 0 {
            return Err(format!(
                "libseccomp exported a malformed program ({} bytes)",
                bytes.len()
            ));
        }
        std::fs::rename(&tmp, &path).map_err(|e| format!("caching the seccomp filter: {e}"))?;
        Ok(bytes)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Decodes `program` (classic BPF as exported by libseccomp) into filter
/// instructions.
pub fn to_filters(program: &[u8]) -> std::io::Result<Vec<libc::sock_filter>> {
    if program.is_empty() || program.len() % INSN != 0 || program.len() / INSN > u16::MAX as usize {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "malformed seccomp program",
        ));
    }
    Ok(program
        .chunks_exact(INSN)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// Installs `filters` as the calling thread's seccomp filter (no
/// allocation). Requires `no_new_privs` (or `CAP_SYS_ADMIN`).
pub fn install(filters: &[libc::sock_filter]) -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: filters.len() as u16,
        filter: filters.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `filters`, alive for the call; the kernel
    // copies the program.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// [`to_filters`] then [`install`].
pub fn load(program: &[u8]) -> std::io::Result<()> {
    install(&to_filters(program)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci_spec_builder::default_capability_names;
    use crate::seccomp_profile::default_profile;

    #[test]
    fn compiles_and_caches() {
        let dir = tempfile::tempdir().unwrap();
        let profile = default_profile(&default_capability_names());
        let a = compiled(&profile, dir.path()).unwrap();
        assert!(a.len() > 100 * INSN, "{} bytes", a.len());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let b = compiled(&profile, dir.path()).unwrap();
        assert_eq!(a, b);
        // Another profile gets its own entry.
        let admin = default_profile(&["CAP_SYS_ADMIN".to_string()]);
        let c = compiled(&admin, dir.path()).unwrap();
        assert_ne!(a, c);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        assert!(load(&[1, 2, 3]).is_err());
    }

    #[test]
    fn filter_denies_in_a_child() {
        let dir = tempfile::tempdir().unwrap();
        let profile = default_profile(&default_capability_names());
        let filters = to_filters(&compiled(&profile, dir.path()).unwrap()).unwrap();
        // SAFETY: the child only makes raw syscalls (no allocation) and exits.
        match unsafe { libc::fork() } {
            0 => unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if install(&filters).is_err() {
                    libc::_exit(10);
                }
                // getpid is allowed, unshare is not (no CAP_SYS_ADMIN in the profile).
                if libc::getpid() <= 0 {
                    libc::_exit(11);
                }
                let r = libc::unshare(libc::CLONE_NEWUTS);
                let errno = *libc::__errno_location();
                libc::_exit(if r == -1 && errno == libc::EPERM {
                    0
                } else {
                    12
                });
            },
            pid => {
                let mut status = 0;
                // SAFETY: waiting for our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert!(libc::WIFEXITED(status), "status {status}");
                assert_eq!(libc::WEXITSTATUS(status), 0);
            }
        }
    }
}
