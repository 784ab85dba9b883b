//! OpenSSL's probe points: on which instruction of its read and write functions the uprobes go.
//!
//! A uprobe traps on the instruction it replaces; the kernel then either emulates that instruction
//! (x86-64: `push` of a register, jumps, calls) or copies it out of line and single-steps it, a second
//! trap. On a virtual machine the single step is what costs: here a probe on a `push` cost the probed
//! process under a microsecond per call, entry and return probe together 1.3 us, and one on `sub
//! $0x18,%rsp` or `endbr64` 23 to 28 us (a test program calling a function in a loop, with and
//! without a probe from tracefs; the return probe adds no step of its own). Debian's `SSL_read` and
//! `SSL_write` start with `sub`, so nginx paid for three single steps a request (two reads and a
//! write), and so did every other process calling them through the library (wrk, in the bench).
//!
//! `SSL_read` and `SSL_read_ex` both hand their arguments to one internal function (`ssl_read_internal`
//! in OpenSSL 1.1.1 to 3.1, with `SSL_read_ex`'s signature and results), and likewise the two writes
//! (`ssl_write_internal`, which from 3.2 on takes a flags argument as well: the register check below
//! refuses it); as Debian builds them, those start by pushing registers. So where a file's code has that shape, the read and write probes
//! go on the internal function under the `_ex` codes, in place of the four exported functions. The
//! shape is checked, not assumed: `SSL_read_ex` must pass its four argument registers on untouched to
//! the first function it calls, `SSL_read` must call the same one, and that one must start with a
//! `push`. Anything else keeps the exported functions. Every probe point also moves past a leading
//! `endbr64` to a `push` behind it: the return address is still on top of the stack there, which is
//! what a return probe takes when it is hit.

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};
use object::Object;
use watcher_common::tls_function;

use super::elf::code_at;

/// Instructions decoded from an exported function's entry while looking for its call of the internal
/// one: `SSL_read` checks its argument first, with an error path (the compiler may place that first).
const LOOK_AHEAD: usize = 48;
/// Bytes decoded from a function's entry: enough for [`LOOK_AHEAD`] instructions of 15 bytes.
const CODE_BYTES: u64 = 15 * LOOK_AHEAD as u64;

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
            if let Some(push) = emulated_entry(elf, *address) {
                *address = push;
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

/// Where a probe on the function at `address` is emulated, not single-stepped: its first instruction
/// if that is a `push` of a register, or the `push` right behind `endbr64` or a `nop`.
fn emulated_entry(elf: &object::File<'_>, address: u64) -> Option<u64> {
    for instruction in decode(elf, address)?.take(3) {
        match instruction.mnemonic() {
            Mnemonic::Endbr64 | Mnemonic::Nop => {}
            Mnemonic::Push
                if instruction.op0_kind() == OpKind::Register
                    && (Register::RAX..=Register::R15).contains(&instruction.op0_register()) =>
            {
                return Some(instruction.ip());
            }
            _ => return None,
        }
    }
    None
}

/// The instructions from `address` on, up to [`LOOK_AHEAD`] of them and to the first one that does
/// not decode or returns.
fn decode<'a>(
    elf: &object::File<'a>,
    address: u64,
) -> Option<impl Iterator<Item = Instruction> + 'a> {
    let (code, _) = code_at(elf, address, CODE_BYTES)?;
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    Some(
        std::iter::from_fn(move || decoder.can_decode().then(|| decoder.decode()))
            .take(LOOK_AHEAD)
            .take_while(|i| !i.is_invalid() && i.mnemonic() != Mnemonic::Ret),
    )
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
