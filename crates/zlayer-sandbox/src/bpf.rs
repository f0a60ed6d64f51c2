//! A small classic-BPF assembler for the sandbox's seccomp filter.
//!
//! The kernel converts and JIT-compiles a seccomp program when it is
//! loaded, at a cost that grows with its length (~0.5 µs per instruction
//! here, on every sandbox start). A general compiler emits a 64-bit
//! comparison block per argument rule and a jump block per syscall; the
//! deny list needs far less: one `jeq` per denied syscall into a shared
//! return, and one `jset` for all namespace flags. This assembler lets
//! [`super::seccomp`] lay the program out by hand with named targets,
//! and resolves them into the 8-bit forward offsets classic BPF has.

use std::collections::HashMap;

/// `BPF_LD | BPF_W | BPF_ABS`: load a 32-bit word of `seccomp_data`.
const LD_W_ABS: u16 = 0x20;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
const JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGE | BPF_K`.
const JGE_K: u16 = 0x35;
/// `BPF_JMP | BPF_JSET | BPF_K`.
const JSET_K: u16 = 0x45;
/// `BPF_JMP | BPF_JA`.
const JA: u16 = 0x05;
/// `BPF_ALU | BPF_AND | BPF_K`.
const AND_K: u16 = 0x54;
/// `BPF_RET | BPF_K`.
const RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
pub mod data {
    /// The syscall number.
    pub const NR: u32 = 0;
    /// The `AUDIT_ARCH_*` of the calling convention.
    pub const ARCH: u32 = 4;

    /// The low 32 bits of argument `i` (little-endian targets).
    pub const fn arg_low(i: u32) -> u32 {
        16 + 8 * i
    }
}

/// Where a jump goes: the next instruction, or a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Fall through.
    Next,
    /// The instruction bound to this label.
    Label(&'static str),
}

#[derive(Debug, Clone, Copy)]
struct Insn {
    code: u16,
    k: u32,
    jt: Target,
    jf: Target,
}

/// A program under construction.
#[derive(Debug, Default)]
pub struct Program {
    insns: Vec<Insn>,
    labels: HashMap<&'static str, usize>,
}

impl Program {
    /// An empty program.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.insns.push(Insn { code, k, jt, jf });
    }

    /// Binds `name` to the next instruction.
    pub fn label(&mut self, name: &'static str) {
        self.labels.insert(name, self.insns.len());
    }

    /// `A = seccomp_data[offset]` (32 bits).
    pub fn load(&mut self, offset: u32) {
        self.push(LD_W_ABS, offset, Target::Next, Target::Next);
    }

    /// `A &= mask`.
    pub fn and(&mut self, mask: u32) {
        self.push(AND_K, mask, Target::Next, Target::Next);
    }

    /// Goes to `then` when `A == k`, else falls through.
    pub fn jump_if_eq(&mut self, k: u32, then: Target) {
        self.push(JEQ_K, k, then, Target::Next);
    }

    /// Falls through when `A == k`, else goes to `otherwise`.
    pub fn jump_unless_eq(&mut self, k: u32, otherwise: Target) {
        self.push(JEQ_K, k, Target::Next, otherwise);
    }

    /// Goes to `then` when `A >= k` (unsigned), else falls through.
    pub fn jump_if_ge(&mut self, k: u32, then: Target) {
        self.push(JGE_K, k, then, Target::Next);
    }

    /// Goes to `then` when `A & mask != 0`, else to `otherwise`.
    pub fn jump_if_any_bit(&mut self, mask: u32, then: Target, otherwise: Target) {
        self.push(JSET_K, mask, then, otherwise);
    }

    /// Goes to `to`.
    pub fn jump(&mut self, to: Target) {
        self.push(JA, 0, to, Target::Next);
    }

    /// Ends with the seccomp action `action` (`SECCOMP_RET_*`, with data).
    pub fn ret(&mut self, action: u32) {
        self.push(RET_K, action, Target::Next, Target::Next);
    }

    /// Resolves the labels. Fails when a label is unbound, a jump goes
    /// backwards or too far for classic BPF, or the program is too long.
    pub fn assemble(self) -> Result<Vec<libc::sock_filter>, String> {
        // The kernel's BPF_MAXINSNS.
        if self.insns.len() > 4096 {
            return Err(format!(
                "the seccomp program has {} instructions, more than the kernel's 4096",
                self.insns.len()
            ));
        }
        let offset = |at: usize, t: Target, wide: bool| -> Result<u32, String> {
            let to = match t {
                Target::Next => return Ok(0),
                Target::Label(name) => *self
                    .labels
                    .get(name)
                    .ok_or_else(|| format!("seccomp program: label {name:?} is not bound"))?,
            };
            let off = to
                .checked_sub(at + 1)
                .ok_or_else(|| format!("seccomp program: jump to {t:?} goes backwards"))?;
            if !wide && off > u8::MAX as usize {
                return Err(format!(
                    "seccomp program: jump to {t:?} is {off} instructions long (255 at most)"
                ));
            }
            Ok(off as u32)
        };
        let mut out = Vec::with_capacity(self.insns.len());
        for (at, i) in self.insns.iter().enumerate() {
            let f = if i.code == JA {
                libc::sock_filter {
                    code: i.code,
                    jt: 0,
                    jf: 0,
                    k: offset(at, i.jt, true)?,
                }
            } else {
                libc::sock_filter {
                    code: i.code,
                    jt: offset(at, i.jt, false)? as u8,
                    jf: offset(at, i.jf, false)? as u8,
                    k: i.k,
                }
            };
            out.push(f);
        }
        if out.last().is_none_or(|f| f.code != RET_K) {
            return Err("seccomp program: the last instruction must return".into());
        }
        Ok(out)
    }
}

/// Runs `prog` on a syscall as the kernel would and returns its action:
/// the reference the filter's tests check decisions with.
#[cfg(test)]
pub fn run(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u32; 16];
    data[0] = nr;
    data[1] = arch;
    for (i, a) in args.iter().enumerate() {
        data[4 + 2 * i] = *a as u32;
        data[5 + 2 * i] = (*a >> 32) as u32;
    }
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let f = prog[pc];
        pc += 1;
        match f.code {
            LD_W_ABS => a = data[f.k as usize / 4],
            AND_K => a &= f.k,
            JA => pc += f.k as usize,
            JEQ_K | JGE_K | JSET_K => {
                let taken = match f.code {
                    JEQ_K => a == f.k,
                    JGE_K => a >= f.k,
                    _ => a & f.k != 0,
                };
                pc += if taken { f.jt } else { f.jf } as usize;
            }
            RET_K => return f.k,
            // `BPF_JMP | BPF_JGT | BPF_K`, which seccompiler's programs use.
            0x25 => pc += if a > f.k { f.jt } else { f.jf } as usize,
            code => panic!("instruction {code:#x} not interpreted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_forward_labels() {
        let mut p = Program::new();
        p.load(data::NR);
        p.jump_if_eq(7, Target::Label("deny"));
        p.jump_if_any_bit(0x10, Target::Label("deny"), Target::Next);
        p.ret(1);
        p.label("deny");
        p.ret(2);
        let prog = p.assemble().unwrap();
        assert_eq!(prog[1].jt, 2);
        assert_eq!(prog[2].jt, 1);
        assert_eq!(run(&prog, 0, 7, [0; 6]), 2);
        assert_eq!(run(&prog, 0, 0x11, [0; 6]), 2);
        assert_eq!(run(&prog, 0, 1, [0; 6]), 1);
    }

    #[test]
    fn refuses_bad_programs() {
        let mut p = Program::new();
        p.label("back");
        p.load(data::NR);
        p.jump_if_eq(1, Target::Label("back"));
        p.ret(0);
        assert!(p.assemble().unwrap_err().contains("backwards"));

        let mut p = Program::new();
        p.jump_if_eq(1, Target::Label("nowhere"));
        p.ret(0);
        assert!(p.assemble().unwrap_err().contains("not bound"));

        let mut p = Program::new();
        p.jump_if_eq(1, Target::Label("far"));
        for _ in 0..300 {
            p.load(data::NR);
        }
        p.label("far");
        p.ret(0);
        assert!(p.assemble().unwrap_err().contains("255 at most"));

        let mut p = Program::new();
        p.load(data::NR);
        assert!(p.assemble().unwrap_err().contains("must return"));
    }
}
