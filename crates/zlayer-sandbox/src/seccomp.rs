//! The seccomp filter: a deny list over an allow-by-default base (the
//! filesystem and network are confined by Landlock; seccomp removes the
//! kernel interfaces Landlock does not cover).
//!
//! The program is laid out by hand with [`super::bpf`], in the monitor,
//! and only loaded by the workload's child (see `launch`). Its length is
//! what the kernel's load costs scale with: one `jeq` per denied syscall
//! into a shared return, one `jset` for all namespace flags (~105
//! instructions, where seccompiler emitted ~520 for the same rules, a
//! ~0.2 ms longer load at every start). The tests check that it decides
//! every syscall exactly as seccompiler's program of the same rules does.

use super::bpf::{data, Program, Target};
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

/// `AUDIT_ARCH_*` of the native syscall convention.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
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

/// `SECCOMP_RET_*` actions.
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
/// Syscall numbers of the x32 ABI have this bit set.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Compiles the filter to classic BPF, ready for
/// `seccomp(SECCOMP_SET_MODE_FILTER)`. Every jump goes forward:
///
/// ```text
///   other architecture      → kill the process
///   x32 syscall numbers     → EPERM (the numbers below would not match)
///   clone3                  → ENOSYS (libc falls back to clone, whose
///                             flags the filter can read)
///   clone, unshare, ioctl,
///   socket                  → their argument checks
///   each denied syscall     → EPERM
///   anything else           → allow
/// ```
pub fn build(spec: &FilterSpec<'_>) -> Result<Vec<libc::sock_filter>, String> {
    use Target::Label;
    let allowed = |n: &str| spec.allowed.iter().any(|a| a == n);
    let mut denied: Vec<u32> = DENIED
        .iter()
        .filter(|(name, _)| !allowed(name))
        .map(|(_, nr)| *nr as u32)
        .collect();
    if spec.root && !allowed(METADATA) {
        denied.extend(METADATA_SYSCALLS.iter().map(|(_, nr)| *nr as u32));
    }
    denied.sort_unstable();
    denied.dedup();
    let deny_ns = !allowed(NAMESPACES);
    let deny_tiocsti = !allowed(TIOCSTI);
    let ns_mask = CLONE_NS_FLAGS.iter().fold(0u64, |m, f| m | f) as u32;

    let mut p = Program::new();
    p.load(data::ARCH);
    p.jump_unless_eq(AUDIT_ARCH, Label("kill"));
    p.load(data::NR);
    #[cfg(target_arch = "x86_64")]
    p.jump_if_ge(X32_SYSCALL_BIT, Label("deny"));
    if deny_ns {
        p.jump_if_eq(libc::SYS_clone3 as u32, Label("enosys"));
        p.jump_if_eq(libc::SYS_clone as u32, Label("clone"));
        p.jump_if_eq(libc::SYS_unshare as u32, Label("unshare"));
    }
    if deny_tiocsti {
        p.jump_if_eq(libc::SYS_ioctl as u32, Label("ioctl"));
    }
    if spec.network != NetworkAccess::Full {
        p.jump_if_eq(libc::SYS_socket as u32, Label("socket"));
    }
    for nr in &denied {
        p.jump_if_eq(*nr, Label("deny"));
    }
    p.jump(Label("allow"));

    if deny_ns {
        // All CLONE_NEW* flags are in the low word of the flags argument.
        p.label("clone");
        p.load(data::arg_low(0));
        p.jump_if_any_bit(ns_mask, Label("deny"), Label("allow"));
        p.label("unshare");
        p.load(data::arg_low(0));
        p.jump_if_any_bit(
            ns_mask | CLONE_NEWTIME as u32,
            Label("deny"),
            Label("allow"),
        );
    }
    if deny_tiocsti {
        // The request is an int: its low word.
        p.label("ioctl");
        p.load(data::arg_low(1));
        p.jump_if_eq(libc::TIOCSTI as u32, Label("deny"));
        p.jump_if_eq(libc::TIOCLINUX as u32, Label("deny"));
        p.jump(Label("allow"));
    }
    match spec.network {
        NetworkAccess::Full => {}
        NetworkAccess::Localhost => {
            // Loopback TCP goes through Landlock's port rules; UDP, raw
            // and packet sockets are refused here.
            p.label("socket");
            p.load(data::arg_low(0));
            p.jump_if_eq(libc::AF_PACKET as u32, Label("deny"));
            p.jump_if_eq(libc::AF_INET as u32, Label("socket_type"));
            p.jump_if_eq(libc::AF_INET6 as u32, Label("socket_type"));
            p.jump(Label("allow"));
            p.label("socket_type");
            p.load(data::arg_low(1));
            // The type without SOCK_NONBLOCK / SOCK_CLOEXEC.
            p.and(0xf);
            p.jump_if_eq(libc::SOCK_DGRAM as u32, Label("deny"));
            p.jump_if_eq(libc::SOCK_RAW as u32, Label("deny"));
            p.jump(Label("allow"));
        }
        NetworkAccess::None => {
            p.label("socket");
            p.load(data::arg_low(0));
            for family in [libc::AF_INET, libc::AF_INET6, libc::AF_PACKET] {
                p.jump_if_eq(family as u32, Label("deny"));
            }
            p.jump(Label("allow"));
        }
    }
    p.label("allow");
    p.ret(RET_ALLOW);
    p.label("deny");
    p.ret(RET_ERRNO | libc::EPERM as u32);
    p.label("enosys");
    p.ret(RET_ERRNO | libc::ENOSYS as u32);
    p.label("kill");
    p.ret(RET_KILL_PROCESS);
    p.assemble()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf;
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
        SeccompRule, TargetArch,
    };
    use std::collections::BTreeMap;

    #[cfg(target_arch = "x86_64")]
    const ARCH: TargetArch = TargetArch::x86_64;
    #[cfg(target_arch = "aarch64")]
    const ARCH: TargetArch = TargetArch::aarch64;

    /// The same rules compiled by seccompiler (the filter's earlier
    /// implementation), with the hand-written head it had: the reference
    /// the compact program must decide exactly like.
    fn reference(spec: &FilterSpec<'_>) -> Vec<libc::sock_filter> {
        use SeccompCmpArgLen::{Dword, Qword};
        let cond = |arg, len, op, v| SeccompCondition::new(arg, len, op, v).unwrap();
        let rule = |c: Vec<SeccompCondition>| SeccompRule::new(c).unwrap();
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
            let masked = |f: u64| rule(vec![cond(0, Qword, SeccompCmpOp::MaskedEq(f), f)]);
            let clone: Vec<_> = CLONE_NS_FLAGS.iter().map(|f| masked(*f)).collect();
            let mut unshare = clone.clone();
            unshare.push(masked(CLONE_NEWTIME));
            rules.insert(libc::SYS_clone, clone);
            rules.insert(libc::SYS_unshare, unshare);
        }
        if !allowed(TIOCSTI) {
            #[allow(clippy::unnecessary_cast)]
            let (tiocsti, tioclinux) = (libc::TIOCSTI as u64, libc::TIOCLINUX as u64);
            rules.insert(
                libc::SYS_ioctl,
                vec![
                    rule(vec![cond(1, Dword, SeccompCmpOp::Eq, tiocsti)]),
                    rule(vec![cond(1, Dword, SeccompCmpOp::Eq, tioclinux)]),
                ],
            );
        }
        let family = |f: i32| cond(0, Dword, SeccompCmpOp::Eq, f as u64);
        let sock_type = |t: i32| cond(1, Dword, SeccompCmpOp::MaskedEq(0xf), t as u64);
        let mut socket = Vec::new();
        match spec.network {
            NetworkAccess::Full => {}
            NetworkAccess::Localhost => {
                for fam in [libc::AF_INET, libc::AF_INET6] {
                    for t in [libc::SOCK_DGRAM, libc::SOCK_RAW] {
                        socket.push(rule(vec![family(fam), sock_type(t)]));
                    }
                }
                socket.push(rule(vec![family(libc::AF_PACKET)]));
            }
            NetworkAccess::None => {
                for fam in [libc::AF_INET, libc::AF_INET6, libc::AF_PACKET] {
                    socket.push(rule(vec![family(fam)]));
                }
            }
        }
        if !socket.is_empty() {
            rules.insert(libc::SYS_socket, socket);
        }
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            ARCH,
        )
        .unwrap();
        let program: BpfProgram = filter.try_into().unwrap();
        // The earlier head: x32 numbers denied, clone3 ENOSYS, for the
        // native architecture only (seccompiler's arch check follows).
        let stmt = |code, k| libc::sock_filter {
            code,
            jt: 0,
            jf: 0,
            k,
        };
        let jump = |code, k, jt, jf| libc::sock_filter { code, jt, jf, k };
        let mut body = vec![stmt(0x20, 0)];
        #[cfg(target_arch = "x86_64")]
        {
            body.push(jump(0x35, 0x4000_0000, 0, 1));
            body.push(stmt(0x06, RET_ERRNO | libc::EPERM as u32));
        }
        if deny_ns {
            body.push(jump(0x15, libc::SYS_clone3 as u32, 0, 1));
            body.push(stmt(0x06, RET_ERRNO | libc::ENOSYS as u32));
        }
        let mut out = vec![stmt(0x20, 4), jump(0x15, AUDIT_ARCH, 0, body.len() as u8)];
        out.extend(body);
        out.extend(program.iter().map(|f| libc::sock_filter {
            code: f.code,
            jt: f.jt,
            jf: f.jf,
            k: f.k,
        }));
        out
    }

    /// Every spec shape the policy can produce.
    fn specs(allowed: &[Vec<String>]) -> Vec<FilterSpec<'_>> {
        let mut out = Vec::new();
        for a in allowed {
            for network in [
                NetworkAccess::Full,
                NetworkAccess::Localhost,
                NetworkAccess::None,
            ] {
                for root in [false, true] {
                    out.push(FilterSpec {
                        allowed: a,
                        network,
                        root,
                    });
                }
            }
        }
        out
    }

    #[test]
    fn decides_every_syscall_like_the_seccompiler_program() {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let allowed = vec![
            owned(&[]),
            owned(&["ptrace", "mount", NAMESPACES]),
            owned(&[TIOCSTI, METADATA, "bpf"]),
            deniable_names().iter().map(|s| s.to_string()).collect(),
        ];
        let ns = CLONE_NS_FLAGS
            .iter()
            .copied()
            .chain([CLONE_NEWTIME, 0, libc::SIGCHLD as u64])
            .chain([
                (libc::CLONE_VM | libc::CLONE_VFORK) as u64,
                1 << 40,
                u64::MAX,
            ]);
        let mut first_args: Vec<u64> = ns.collect();
        first_args.extend(
            [
                libc::AF_INET,
                libc::AF_INET6,
                libc::AF_PACKET,
                libc::AF_UNIX,
            ]
            .map(|f| f as u64),
        );
        #[allow(clippy::unnecessary_cast)]
        let second_args: Vec<u64> = vec![
            0,
            libc::TIOCSTI as u64,
            libc::TIOCLINUX as u64,
            libc::TCGETS as u64,
            (1 << 32) | libc::TIOCSTI as u64,
            libc::SOCK_STREAM as u64,
            libc::SOCK_DGRAM as u64,
            (libc::SOCK_RAW | libc::SOCK_CLOEXEC) as u64,
            (libc::SOCK_DGRAM | libc::SOCK_NONBLOCK) as u64,
        ];
        let with_args = [
            libc::SYS_clone,
            libc::SYS_unshare,
            libc::SYS_ioctl,
            libc::SYS_socket,
        ];
        let mut checked = 0u64;
        for spec in specs(&allowed) {
            let ours = build(&spec).unwrap();
            let theirs = reference(&spec);
            assert!(
                ours.len() <= theirs.len()
                    && (!spec.allowed.is_empty() || ours.len() * 3 < theirs.len()),
                "{} instructions against seccompiler's {}",
                ours.len(),
                theirs.len()
            );
            let mut decide = |arch: u32, nr: u32, args: [u64; 6]| {
                let (a, b) = (
                    bpf::run(&ours, arch, nr, args),
                    bpf::run(&theirs, arch, nr, args),
                );
                assert_eq!(a, b, "{spec:?}: arch {arch:#x} syscall {nr} args {args:x?}");
                checked += 1;
            };
            for nr in (0..480u32).chain((0..480).map(|n| n | 0x4000_0000)) {
                if with_args.contains(&(nr as i64)) {
                    for a0 in &first_args {
                        for a1 in &second_args {
                            decide(AUDIT_ARCH, nr, [*a0, *a1, 0, 0, 0, 0]);
                        }
                    }
                } else {
                    decide(AUDIT_ARCH, nr, [0; 6]);
                    decide(AUDIT_ARCH, nr, [u64::MAX; 6]);
                }
                // Another calling convention (i386's) is killed.
                decide(0x4000_0003, nr, [0; 6]);
            }
        }
        assert!(checked > 10_000);
    }

    #[test]
    fn decisions() {
        let prog = build(&FilterSpec {
            allowed: &[],
            network: NetworkAccess::Localhost,
            root: true,
        })
        .unwrap();
        let run = |nr: i64, a0: u64, a1: u64| {
            bpf::run(&prog, AUDIT_ARCH, nr as u32, [a0, a1, 0, 0, 0, 0])
        };
        let eperm = RET_ERRNO | libc::EPERM as u32;
        assert_eq!(run(libc::SYS_read, 0, 0), RET_ALLOW);
        assert_eq!(run(libc::SYS_ptrace, 0, 0), eperm);
        assert_eq!(run(libc::SYS_chmod, 0, 0), eperm);
        assert_eq!(run(libc::SYS_clone3, 0, 0), RET_ERRNO | libc::ENOSYS as u32);
        assert_eq!(run(libc::SYS_clone, libc::CLONE_NEWNET as u64, 0), eperm);
        assert_eq!(run(libc::SYS_clone, libc::SIGCHLD as u64, 0), RET_ALLOW);
        assert_eq!(run(libc::SYS_unshare, CLONE_NEWTIME, 0), eperm);
        #[allow(clippy::unnecessary_cast)]
        let tiocsti = libc::TIOCSTI as u64;
        assert_eq!(run(libc::SYS_ioctl, 0, tiocsti), eperm);
        let udp = libc::SOCK_DGRAM as u64;
        assert_eq!(run(libc::SYS_socket, libc::AF_INET as u64, udp), eperm);
        assert_eq!(
            run(
                libc::SYS_socket,
                libc::AF_INET as u64,
                libc::SOCK_STREAM as u64
            ),
            RET_ALLOW
        );
        assert_eq!(run(libc::SYS_socket, libc::AF_UNIX as u64, udp), RET_ALLOW);
        assert_eq!(bpf::run(&prog, 0x4000_0003, 0, [0; 6]), RET_KILL_PROCESS);
    }

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
