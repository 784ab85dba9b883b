//! OpenSSL's probe points: on which instruction of its read and write functions the uprobes go, so that
//! the kernel emulates the probed instruction instead of single-stepping it (see `code` for what that
//! costs). Debian's `SSL_read` and `SSL_write` start with `sub`, so nginx paid for three single steps
//! a request (two reads and a write), and so did every other process calling them through the library
//! (wrk, in the bench).
//!
//! `SSL_read` and `SSL_read_ex` both hand their arguments to one internal function (`ssl_read_internal`
//! in OpenSSL 1.1.1 to 3.1, with `SSL_read_ex`'s signature and results), and likewise the two writes
//! (`ssl_write_internal`, which from 3.2 on takes a flags argument as well: the register check below
//! refuses it); as Debian builds them, those start by pushing registers. So where a file's code has
//! that shape, the read and write probes go on the internal function under the `_ex` codes, in place
//! of the four exported functions. The shape is checked, not assumed: `SSL_read_ex` must pass its four
//! argument registers on untouched to the first function it calls, `SSL_read` must call the same one,
//! and that one's entry must be emulated. Anything else keeps the exported functions. Every probe point
//! also moves past a leading `endbr64` (or other instructions that change only the flags) to an
//! emulated instruction behind it: the arguments are still in their registers there and the return
//! address on top of the stack, which is what a return probe takes when it is hit.

use iced_x86::{Instruction, Mnemonic, OpKind, Register};
use object::Object;
use watcher_common::tls_function;

use super::code::{changes_only_flags, cheap_point, decode};

/// The probe points of an OpenSSL file, from `(code, address)` of the functions it defines (the codes
/// of [`tls_function`]): `(code, address)`, sorted.
pub fn probe_points(elf: &object::File<'_>, functions: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut points = functions.to_vec();
    if elf.architecture() == object::Architecture::X86_64 {
        for (plain, ex) in [
            (tls_function::READ, tls_function::READ_EX),
            (tls_function::WRITE, tls_function::WRITE_EX),
        ] {
            let address = |code| functions.iter().find(|(f, _)| *f == code).map(|p| p.1);
            if let Some(inner) = address(plain)
                .zip(address(ex))
                .and_then(|(plain, ex)| shared_callee(elf, plain, ex))
            {
                points.retain(|(f, _)| *f != plain && *f != ex);
                points.push((ex, inner));
            }
        }
        for (_, address) in &mut points {
            if let Some(cheap) = emulated_entry(elf, *address) {
                *address = cheap;
            }
        }
    }
    points.sort_unstable();
    points
}

/// The function that the `_ex` function at `ex` passes its arguments on to, if the plain function at
/// `plain` calls it too and its entry is emulated.
fn shared_callee(elf: &object::File<'_>, plain: u64, ex: u64) -> Option<u64> {
    let mut callee = None;
    for instruction in decode(elf, ex)? {
        if let Some(target) = direct_call(&instruction) {
            callee = Some(target);
            break;
        }
        if !keeps_arguments(&instruction) {
            return None;
        }
    }
    let callee = callee?;
    emulated_entry(elf, callee)?;
    decode(elf, plain)?
        .any(|i| direct_call(&i) == Some(callee))
        .then_some(callee)
}

/// Where a probe on the function at `address` is emulated, not single-stepped, with the arguments and
/// the return address where they were at its entry.
fn emulated_entry(elf: &object::File<'_>, address: u64) -> Option<u64> {
    cheap_point(decode(elf, address)?, changes_only_flags)
}

/// The target of a direct near call.
fn direct_call(instruction: &Instruction) -> Option<u64> {
    (instruction.mnemonic() == Mnemonic::Call && instruction.op0_kind() == OpKind::NearBranch64)
        .then(|| instruction.near_branch_target())
}

/// Whether an instruction leaves the four argument registers (`rdi`, `rsi`, `rdx`, `rcx`) as they are:
/// `endbr64`, `nop`, a `push` of a register, or room made on the stack.
fn keeps_arguments(instruction: &Instruction) -> bool {
    match instruction.mnemonic() {
        Mnemonic::Endbr64 | Mnemonic::Nop => true,
        Mnemonic::Push => instruction.op0_kind() == OpKind::Register,
        Mnemonic::Sub => {
            instruction.op0_kind() == OpKind::Register
                && instruction.op0_register() == Register::RSP
                && matches!(
                    instruction.op1_kind(),
                    OpKind::Immediate8to64 | OpKind::Immediate32to64
                )
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "openssl_tests.rs"]
mod tests;
