//! The seccomp filter: a deny list over an allow-by-default base (the
//! filesystem and network are confined by Landlock; seccomp removes the
//! kernel interfaces Landlock does not cover).
//!
//! The BPF program is compiled with `seccompiler` in the parent; the child
//! only loads it (see `launch`).

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

use super::options::NetworkAccess;

/// Syscalls denied (EPERM) unless the spec allows them by name.
pub const DENIED: &[(&str, i64)] = &[
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("kcmp", libc::SYS_kcmp),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("fanotify_init", libc::SYS_fanotify_init),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("acct", libc::SYS_acct),
    ("quotactl", libc::SYS_quotactl),
    ("syslog", libc::SYS_syslog),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("adjtimex", libc::SYS_adjtimex),
    ("sethostname", libc::SYS_sethostname),
    ("setdomainname", libc::SYS_setdomainname),
    ("vhangup", libc::SYS_vhangup),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("setns", libc::SYS_setns),
    #[cfg(target_arch = "x86_64")]
    ("iopl", libc::SYS_iopl),
    #[cfg(target_arch = "x86_64")]
    ("ioperm", libc::SYS_ioperm),
    #[cfg(target_arch = "x86_64")]
    ("uselib", libc::SYS_uselib),
    #[cfg(target_arch = "x86_64")]
    ("_sysctl", libc::SYS__sysctl),
];

/// Name of the group "namespace creation": `unshare`/`clone` with any
/// `CLONE_NEW*` flag, and `clone3` (ENOSYS, so libc falls back to `clone`,
/// whose flags seccomp can inspect).
pub const NAMESPACES: &str = "namespaces";

/// Name of the group "terminal injection": `ioctl` `TIOCSTI`/`TIOCLINUX`.
pub const TIOCSTI: &str = "tiocsti";

/// Name of the group "file metadata changes", denied when the workload runs
/// as uid 0: Landlock does not cover chmod/chown/utimes/xattrs, and uid 0
/// owns nearly every host file, so without this group a capability-less
/// root workload could still `chmod 000 /usr/lib/.../libc.so.6`.
pub const METADATA: &str = "metadata";

/// The syscalls of the [`METADATA`] group.
pub const METADATA_SYSCALLS: &[(&str, i64)] = &[
    #[cfg(target_arch = "x86_64")]
    ("chmod", libc::SYS_chmod),
    ("fchmod", libc::SYS_fchmod),
    ("fchmodat", libc::SYS_fchmodat),
    ("fchmodat2", 452),
    #[cfg(target_arch = "x86_64")]
    ("chown", libc::SYS_chown),
    #[cfg(target_arch = "x86_64")]
    ("lchown", libc::SYS_lchown),
    ("fchown", libc::SYS_fchown),
    ("fchownat", libc::SYS_fchownat),
    #[cfg(target_arch = "x86_64")]
    ("utime", libc::SYS_utime),
    #[cfg(target_arch = "x86_64")]
    ("utimes", libc::SYS_utimes),
    #[cfg(target_arch = "x86_64")]
    ("futimesat", libc::SYS_futimesat),
    ("utimensat", libc::SYS_utimensat),
    ("setxattr", libc::SYS_setxattr),
    ("lsetxattr", libc::SYS_lsetxattr),
    ("fsetxattr", libc::SYS_fsetxattr),
    ("setxattrat", 463),
    ("removexattr", libc::SYS_removexattr),
    ("lremovexattr", libc::SYS_lremovexattr),
    ("fremovexattr", libc::SYS_fremovexattr),
    ("removexattrat", 466),
];

/// Every name the allow-syscalls label accepts.
pub fn deniable_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = DENIED.iter().map(|(n, _)| *n).collect();
    names.push(NAMESPACES);
    names.push(TIOCSTI);
    names.push(METADATA);
    names
}

/// Whether `name` is on the deny list (and may thus be allowed).
pub fn is_deniable(name: &str) -> bool {
    deniable_names().contains(&name)
}

const CLONE_NS_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];
/// `CLONE_NEWTIME` shares its bit with the exit signal of `clone`, so it is
/// only checked for `unshare`.
const CLONE_NEWTIME: u64 = 0x80;

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// What the filter denies: the names still denied, and the network mode.
#[derive(Debug, Clone)]
pub struct FilterSpec<'a> {
    /// Syscall names allowed by the spec (removed from the deny list).
    pub allowed: &'a [String],
    /// Network access (restricts `socket` families/types).
    pub network: NetworkAccess,
    /// The workload runs as uid 0 (the [`METADATA`] group is then denied
    /// unless allowed).
    pub root: bool,
}

fn cond(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    v: u64,
) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, len, op, v).map_err(|e| format!("seccomp condition: {e}"))
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conds).map_err(|e| format!("seccomp rule: {e}"))
}

/// Compiles the filter to BPF, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
pub fn build(spec: &FilterSpec<'_>) -> Result<Vec<libc::sock_filter>, String> {
    let allowed = |n: &str| spec.allowed.iter().any(|a| a == n);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (name, nr) in DENIED {
        if !allowed(name) {
            rules.insert(*nr, Vec::new());
        }
    }
    if spec.root && !allowed(METADATA) {
        for (_, nr) in METADATA_SYSCALLS {
            rules.insert(*nr, Vec::new());
        }
    }
    let deny_ns = !allowed(NAMESPACES);
    if deny_ns {
        use SeccompCmpArgLen::Qword;
        let mut clone = Vec::new();
        let mut unshare = Vec::new();
        for flag in CLONE_NS_FLAGS {
            clone.push(rule(vec![cond(
                0,
                Qword,
                SeccompCmpOp::MaskedEq(*flag),
                *flag,
            )?])?);
            unshare.push(rule(vec![cond(
                0,
                Qword,
                SeccompCmpOp::MaskedEq(*flag),
                *flag,
            )?])?);
        }
        unshare.push(rule(vec![cond(
            0,
            Qword,
            SeccompCmpOp::MaskedEq(CLONE_NEWTIME),
            CLONE_NEWTIME,
        )?])?);
        rules.insert(libc::SYS_clone, clone);
        rules.insert(libc::SYS_unshare, unshare);
    }
    if !allowed(TIOCSTI) {
        use SeccompCmpArgLen::Dword;
        // `Ioctl` is u64 on glibc and i32 on musl.
        #[allow(clippy::unnecessary_cast)]
        let (tiocsti, tioclinux) = (libc::TIOCSTI as u64, libc::TIOCLINUX as u64);
        rules.insert(
            libc::SYS_ioctl,
            vec![
                rule(vec![cond(1, Dword, SeccompCmpOp::Eq, tiocsti)?])?,
                rule(vec![cond(1, Dword, SeccompCmpOp::Eq, tioclinux)?])?,
            ],
        );
    }
    let socket_rules = socket_rules(spec.network)?;
    if !socket_rules.is_empty() {
        rules.insert(libc::SYS_socket, socket_rules);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        ARCH,
    )
    .map_err(|e| format!("seccomp filter: {e}"))?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e| format!("compiling the seccomp filter: {e}"))?;
    let mut out = prefix(deny_ns);
    out.extend(program.iter().map(|f| libc::sock_filter {
        code: f.code,
        jt: f.jt,
        jf: f.jf,
        k: f.k,
    }));
    if out.len() > u16::MAX as usize {
        return Err("the seccomp filter is too long".into());
    }
    Ok(out)
}

fn socket_rules(network: NetworkAccess) -> Result<Vec<SeccompRule>, String> {
    use SeccompCmpArgLen::Dword;
    let family = |f: i32| cond(0, Dword, SeccompCmpOp::Eq, f as u64);
    let sock_type = |t: i32| cond(1, Dword, SeccompCmpOp::MaskedEq(0xf), t as u64);
    let mut out = Vec::new();
    match network {
        NetworkAccess::Full => {}
        NetworkAccess::Localhost => {
            for fam in [libc::AF_INET, libc::AF_INET6] {
                for t in [libc::SOCK_DGRAM, libc::SOCK_RAW] {
                    out.push(rule(vec![family(fam)?, sock_type(t)?])?);
                }
            }
            out.push(rule(vec![family(libc::AF_PACKET)?])?);
        }
        NetworkAccess::None => {
            for fam in [libc::AF_INET, libc::AF_INET6, libc::AF_PACKET] {
                out.push(rule(vec![family(fam)?])?);
            }
        }
    }
    Ok(out)
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
#[cfg(target_arch = "x86_64")]
const BPF_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
const RET_ERRNO: u32 = 0x0005_0000;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Hand-written head of the program, before seccompiler's: x32 syscalls
/// (which seccompiler's numbers would not match) are denied, and `clone3`
/// answers ENOSYS when namespace creation is denied.
fn prefix(deny_clone3: bool) -> Vec<libc::sock_filter> {
    let mut body: Vec<libc::sock_filter> = vec![stmt(BPF_LD_W_ABS, 0)];
    #[cfg(target_arch = "x86_64")]
    {
        body.push(jump(BPF_JGE_K, 0x4000_0000, 0, 1));
        body.push(stmt(BPF_RET_K, RET_ERRNO | libc::EPERM as u32));
    }
    if deny_clone3 {
        body.push(jump(BPF_JEQ_K, libc::SYS_clone3 as u32, 0, 1));
        body.push(stmt(BPF_RET_K, RET_ERRNO | libc::ENOSYS as u32));
    }
    // Only for the native architecture; seccompiler's own arch check follows.
    let mut out = vec![
        stmt(BPF_LD_W_ABS, 4),
        jump(BPF_JEQ_K, AUDIT_ARCH, 0, body.len() as u8),
    ];
    out.extend(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_for_every_network_mode() {
        for network in [
            NetworkAccess::Full,
            NetworkAccess::Localhost,
            NetworkAccess::None,
        ] {
            let prog = build(&FilterSpec {
                allowed: &[],
                network,
                root: true,
            })
            .unwrap();
            assert!(prog.len() > 20);
        }
        let allowed = vec!["ptrace".to_string(), NAMESPACES.to_string()];
        let small = build(&FilterSpec {
            allowed: &allowed,
            network: NetworkAccess::Full,
            root: false,
        })
        .unwrap();
        let full = build(&FilterSpec {
            allowed: &[],
            network: NetworkAccess::Full,
            root: true,
        })
        .unwrap();
        assert!(small.len() < full.len());
        assert!(is_deniable("mount") && is_deniable(NAMESPACES) && !is_deniable("read"));
    }
}
