//! Code in an ELF file: its bytes and file offset at an address (uprobes are placed by file offset),
//! and where on it a uprobe is cheap. `symbols`, `openssl` and `golang` all find code here.
//!
//! A uprobe traps on the instruction it replaces; the kernel then either emulates that instruction
//! (x86-64: `push` of a register, jumps, conditional jumps, calls) or copies it out of line and
//! single-steps it, a second trap. On a virtual machine the single step is what costs: on this
//! project's VM (a test program calling a function in a loop, with and without a probe from tracefs)
//! a probe on a `push` or a `jbe` cost the probed process about 1 us a call, entry and return probe
//! together 1.3 us, and one on `sub $0x18,%rsp`, `cmp`, `mov`, `endbr64` or `ret` 23 to 34 us; the
//! return probe adds no step of its own. (Go's probes on `RET` instructions are single-stepped, then:
//! return probes are not an option there, see `golang`.)

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind};
use object::{Object, ObjectSection, SectionKind};

/// Instructions decoded from a function's entry at most, when looking for a probe point or a call.
const LOOK_AHEAD: usize = 48;
/// Bytes read from a function's entry: enough for [`LOOK_AHEAD`] instructions of 15 bytes.
const CODE_BYTES: u64 = 15 * LOOK_AHEAD as u64;

/// The code at `address` (at most `max` bytes, fewer where its section ends) and its file offset.
/// `None` unless a code section of this file holds that byte.
pub fn code_at<'a>(elf: &object::File<'a>, address: u64, max: u64) -> Option<(&'a [u8], u64)> {
    let section = elf.sections().find(|s| {
        s.kind() == SectionKind::Text
            && s.address() <= address
            && address < s.address().saturating_add(s.size())
    })?;
    let (section_offset, _) = section.file_range()?;
    let data = section.data().ok()?;
    let start = usize::try_from(address - section.address()).ok()?;
    let end = start.saturating_add(usize::try_from(max).unwrap_or(usize::MAX));
    let code = data.get(start..end.min(data.len()))?;
    (!code.is_empty()).then(|| Some((code, section_offset.checked_add(start as u64)?)))?
}

/// The x86-64 instructions of `code` (which starts at `address`), up to [`LOOK_AHEAD`] of them and to
/// the first one that does not decode or returns.
pub fn instructions(code: &[u8], address: u64) -> impl Iterator<Item = Instruction> + '_ {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    std::iter::from_fn(move || decoder.can_decode().then(|| decoder.decode()))
        .take(LOOK_AHEAD)
        .take_while(|i| !i.is_invalid() && i.mnemonic() != Mnemonic::Ret)
}

/// [`instructions`] of the function at `address` in `elf`.
pub fn decode<'a>(
    elf: &object::File<'a>,
    address: u64,
) -> Option<impl Iterator<Item = Instruction> + 'a> {
    let (code, _) = code_at(elf, address, CODE_BYTES)?;
    Some(instructions(code, address))
}

/// Whether the kernel emulates `instruction` when a uprobe on it fires, instead of single-stepping it.
fn is_emulated(instruction: &Instruction) -> bool {
    use Mnemonic::{
        Call, Ja, Jae, Jb, Jbe, Je, Jg, Jge, Jl, Jle, Jmp, Jne, Jno, Jnp, Jns, Jo, Jp, Js, Push,
    };
    match instruction.mnemonic() {
        Push => instruction.op0_kind() == OpKind::Register,
        // Direct ones only: `call`/`jmp` through a register or memory are single-stepped.
        Call | Jmp | Jo | Jno | Jb | Jae | Je | Jne | Jbe | Ja | Js | Jns | Jp | Jnp | Jl | Jge
        | Jle | Jg => instruction.op0_kind() == OpKind::NearBranch64,
        _ => false,
    }
}

/// The first instruction a probe is cheap on among the first few of a function (`instructions`, from its
/// entry on), reached past only instructions that `may_skip` allows: the entry itself when that is
/// emulated. `None` if there is none.
pub fn cheap_point(
    instructions: impl Iterator<Item = Instruction>,
    may_skip: impl Fn(&Instruction) -> bool,
) -> Option<u64> {
    for instruction in instructions.take(4) {
        if is_emulated(&instruction) {
            return Some(instruction.ip());
        }
        if !may_skip(&instruction) {
            return None;
        }
    }
    None
}

/// Whether `instruction` changes nothing but the flags, or is `endbr64`: a probe may move past it.
pub fn changes_only_flags(instruction: &Instruction) -> bool {
    matches!(
        instruction.mnemonic(),
        Mnemonic::Endbr64 | Mnemonic::Nop | Mnemonic::Cmp | Mnemonic::Test
    )
}
