//! Go programs: where `crypto/tls`'s `(*Conn).Read`, `Write` and `handshakeContext` are, and every `RET`
//! instruction of `Read` and `Write` (return probes are unsafe in Go; see `watcher-ebpf/src/go_tls.rs`).
//!
//! Works on stripped binaries: functions are found in the runtime's own table (`.gopclntab`), which Go
//! keeps for stack traces, and the Go version in `.go.buildinfo`. Supported: Go 1.18 and later on
//! x86-64 (the register ABI, and the table layout of 1.18 to today).

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, Register};
use object::{Object, ObjectSection};
use watcher_common::tls_function;

use super::code::{changes_only_flags, cheap_point, code_at, instructions};

/// Magic numbers of the function table's header: Go 1.18-1.19, and 1.20 onwards.
const PCLNTAB_MAGIC: [u32; 2] = [0xffff_fff0, 0xffff_fff1];

/// The functions probed: name, entry cookie, cookie of its `RET`s (0: entry only).
const FUNCTIONS: [(&str, u64, u64); 3] = [
    (
        "crypto/tls.(*Conn).Read",
        tls_function::GO_READ,
        tls_function::GO_READ_RETURN,
    ),
    (
        "crypto/tls.(*Conn).Write",
        tls_function::GO_WRITE,
        tls_function::GO_WRITE_RETURN,
    ),
    (
        "crypto/tls.(*Conn).handshakeContext",
        tls_function::GO_HANDSHAKE,
        0,
    ),
];

/// Why a Go program's TLS cannot be probed.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum GoError {
    /// Not x86-64.
    #[error("only x86-64 Go programs are supported")]
    Architecture,
    /// Built with a Go older than the register ABI and today's function table.
    #[error("built with {0}; Go 1.18 or later is needed")]
    Version(String),
    /// The function table is missing or not in a known layout.
    #[error("its function table (.gopclntab) is missing or unreadable")]
    Table,
    /// `crypto/tls` is not linked in.
    #[error("it does not use crypto/tls")]
    NoTls,
    /// A function's code could not be decoded, so its `RET`s are unknown.
    #[error("the code of {0} could not be decoded")]
    Code(&'static str),
}

/// The Go version a program was built with (`go1.19.8`), from `.go.buildinfo`.
pub fn version(elf: &object::File<'_>) -> Option<String> {
    let info = elf.section_by_name(".go.buildinfo")?.data().ok()?;
    // Header: 14-byte magic, pointer size, flags; since Go 1.18 (flag bit 2) the version follows at 32
    // as a string with a varint length.
    if info.get(..14)? != b"\xff Go buildinf:" || info.get(15)? & 2 == 0 {
        return None;
    }
    let mut rest = info.get(32..)?;
    let mut len = 0usize;
    for shift in (0..28).step_by(7) {
        let (&byte, tail) = rest.split_first()?;
        rest = tail;
        len |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let text = std::str::from_utf8(rest.get(..len)?).ok()?;
    Some(text.to_owned())
}

/// Whether `version` (`go1.19.8`, `go1.22rc1`, `devel ...`) is Go 1.18 or later.
fn supported(version: &str) -> bool {
    let Some(rest) = version.strip_prefix("go1.") else {
        // Development builds are newer than any release.
        return version.starts_with("devel");
    };
    let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
    minor.parse::<u32>().is_ok_and(|m| m >= 18)
}

/// A function of the table: its name, entry address and size.
#[derive(Debug, PartialEq, Eq)]
struct GoFunction {
    entry: u64,
    size: u64,
}

/// Finds the named functions in a Go 1.18+ function table.
fn find_functions(table: &[u8], names: &[&str]) -> Option<Vec<Option<GoFunction>>> {
    let word = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(table.get(at..at + 8)?.try_into().ok()?))
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(table.get(at..at + 4)?.try_into().ok()?))
    };
    let magic = u32_at(0)?;
    if !PCLNTAB_MAGIC.contains(&magic) || *table.get(7)? != 8 {
        return None;
    }
    let nfunc = usize::try_from(word(8)?).ok()?;
    let text_start = word(24)?;
    let names_at = usize::try_from(word(32)?).ok()?;
    let functab = usize::try_from(word(64)?).ok()?;
    let mut found: Vec<Option<GoFunction>> = names.iter().map(|_| None).collect();
    // Every offset comes from the file: checked arithmetic, and a bad one ends the search.
    let entry_at = |i: usize| functab.checked_add(i.checked_mul(8)?);
    for i in 0..nfunc {
        let at = entry_at(i)?;
        let entry_off = u32_at(at)?;
        let func_off = usize::try_from(u32_at(at.checked_add(4)?)?).ok()?;
        let next_entry_off = u32_at(entry_at(i + 1)?)?;
        let name_off =
            usize::try_from(u32_at(functab.checked_add(func_off)?.checked_add(4)?)?).ok()?;
        let name_bytes = table.get(names_at.checked_add(name_off)?..)?;
        let name = &name_bytes[..memchr::memchr(0, name_bytes)?];
        if let Some(slot) = names.iter().position(|n| n.as_bytes() == name) {
            found[slot] = Some(GoFunction {
                entry: text_start.checked_add(u64::from(entry_off))?,
                size: u64::from(next_entry_off.saturating_sub(entry_off)),
            });
        }
    }
    Some(found)
}

/// The probe points of a Go program's TLS: `(cookie, file offset)` for the entries of `Read`, `Write`
/// and `handshakeContext` and every `RET` of `Read` and `Write`.
pub fn probe_points(elf: &object::File<'_>) -> Result<Vec<(u64, u64)>, GoError> {
    if elf.architecture() != object::Architecture::X86_64 {
        return Err(GoError::Architecture);
    }
    let version = version(elf).unwrap_or_else(|| "an unknown Go".to_owned());
    if !supported(&version) {
        return Err(GoError::Version(version));
    }
    let table = elf
        .section_by_name(".gopclntab")
        .and_then(|s| s.data().ok())
        .ok_or(GoError::Table)?;
    let names: Vec<&str> = FUNCTIONS.iter().map(|(name, ..)| *name).collect();
    let found = find_functions(table, &names).ok_or(GoError::Table)?;
    let mut points = Vec::new();
    for ((name, entry_cookie, ret_cookie), function) in FUNCTIONS.iter().zip(found) {
        let Some(function) = function else {
            // Read and Write are needed; without the handshake only its ciphertext goes unmarked.
            if *ret_cookie == 0 {
                continue;
            }
            return Err(GoError::NoTls);
        };
        let (code, file_offset) = code_of(elf, &function).ok_or(GoError::Code(name))?;
        points.push((
            *entry_cookie,
            file_offset + entry_point(code, function.entry),
        ));
        if *ret_cookie == 0 {
            continue;
        }
        let rets = ret_offsets(code, function.entry).ok_or(GoError::Code(name))?;
        if rets.is_empty() {
            return Err(GoError::Code(name));
        }
        points.extend(
            rets.into_iter()
                .map(|r| (*ret_cookie, file_offset.saturating_add(r))),
        );
    }
    Ok(points)
}

/// The bytes of a function and the file offset of its entry; `None` unless the file holds all of them.
fn code_of<'a>(elf: &object::File<'a>, function: &GoFunction) -> Option<(&'a [u8], u64)> {
    let (code, offset) = code_at(elf, function.entry, function.size)?;
    (code.len() as u64 == function.size).then_some((code, offset))
}

/// Where (from the entry) the entry probe of the function whose `code` starts at `entry` goes: on the
/// first instruction of its stack check that the kernel emulates (`cmp rsp, [r14+16]; jbe`: the
/// `jbe`), so a call costs no single step (see `code`), or on the entry itself.
fn entry_point(code: &[u8], entry: u64) -> u64 {
    cheap_point(instructions(code, entry), keeps_go_arguments).map_or(0, |at| at - entry)
}

/// Whether `instruction` leaves what the entry program reads as it was: the receiver (RAX), the slice
/// (RBX, RCX) and the goroutine (R14). A large frame's stack check starts with `lea r12, [rsp-N]`
/// (R12 and R13 are scratch registers in Go's ABI, and no argument is passed in them).
fn keeps_go_arguments(instruction: &Instruction) -> bool {
    changes_only_flags(instruction)
        || (instruction.mnemonic() == Mnemonic::Lea
            && matches!(instruction.op0_register(), Register::R12 | Register::R13))
}

/// Offsets (from the entry) of the `RET` instructions in `code`, decoded from its first byte to its last.
/// `None` if any instruction does not decode: a wrong offset would put a breakpoint inside an
/// instruction and crash the program.
fn ret_offsets(code: &[u8], entry: u64) -> Option<Vec<u64>> {
    let mut decoder = Decoder::with_ip(64, code, entry, DecoderOptions::NONE);
    let mut rets = Vec::new();
    while decoder.can_decode() {
        let instruction = decoder.decode();
        if instruction.is_invalid() {
            return None;
        }
        if instruction.mnemonic() == Mnemonic::Ret {
            rets.push(instruction.ip() - entry);
        }
    }
    Some(rets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_go_program_gets_entries_and_rets() {
        // Built by hand (see the fuzz corpus): three functions of `xor eax, eax; ret; nop...`.
        let bytes = include_bytes!("../../../../fuzz/corpus/tls_elf/go-program");
        let elf = object::File::parse(&bytes[..]).expect("ELF");
        assert_eq!(version(&elf).as_deref(), Some("go1.21.0"));
        let points = probe_points(&elf).expect("probe points");
        // .text starts at file offset 64; each function is 16 bytes with its RET at +2.
        assert_eq!(
            points,
            [
                (tls_function::GO_READ, 64),
                (tls_function::GO_READ_RETURN, 66),
                (tls_function::GO_WRITE, 80),
                (tls_function::GO_WRITE_RETURN, 82),
                (tls_function::GO_HANDSHAKE, 96),
            ]
        );
        let old = include_bytes!("../../../../fuzz/corpus/tls_elf/old-go-program");
        let elf = object::File::parse(&old[..]).expect("ELF");
        assert_eq!(
            probe_points(&elf),
            Err(GoError::Version("an unknown Go".to_owned()))
        );
    }

    #[test]
    fn versions_from_go_1_18_are_supported() {
        assert!(supported("go1.18"));
        assert!(supported("go1.19.8"));
        assert!(supported("go1.22rc1"));
        assert!(supported("devel go1.24-abc"));
        assert!(!supported("go1.17.13"));
        assert!(!supported("go1.9"));
        assert!(!supported("an unknown Go"));
    }

    #[test]
    fn the_entry_probe_goes_on_the_stack_checks_jump_when_only_a_comparison_precedes_it() {
        // cmp rsp, [r14+16]; jbe +0x40; push rbp
        let small = [0x49, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x40, 0, 0, 0, 0x55];
        assert_eq!(entry_point(&small, 0x1000), 4);
        // lea r12, [rsp-0x40]; cmp r12, [r14+16]; jbe +0x40
        let large = [
            0x4c, 0x8d, 0x64, 0x24, 0xc0, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0x40, 0, 0, 0,
        ];
        assert_eq!(entry_point(&large, 0x1000), 9);
        // lea rax, [rsp-0x40] would change the receiver; mov rbx, [rsp+8] the slice.
        let receiver = [0x48, 0x8d, 0x44, 0x24, 0xc0, 0x0f, 0x86, 0x40, 0, 0, 0];
        assert_eq!(entry_point(&receiver, 0x1000), 0);
        let slice = [0x48, 0x8b, 0x5c, 0x24, 0x08, 0x0f, 0x86, 0x40, 0, 0, 0];
        assert_eq!(entry_point(&slice, 0x1000), 0);
        // A push at the entry is emulated where it is.
        assert_eq!(entry_point(&[0x55, 0xc3], 0x1000), 0);
    }

    #[test]
    fn rets_are_found_at_instruction_boundaries_only() {
        // mov eax, 0xc3c3c3c3 (the byte 0xc3 inside an instruction); ret; xor eax, eax; ret
        let code = [0xb8, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0x31, 0xc0, 0xc3];
        assert_eq!(ret_offsets(&code, 0x1000), Some(vec![5, 8]));
        // A truncated instruction at the end is not guessed around.
        assert_eq!(ret_offsets(&[0xc3, 0xb8, 0x01], 0), None);
    }

    /// A function table with `names` at consecutive entries 0x10 bytes apart.
    fn table(magic: u32, names: &[&str]) -> Vec<u8> {
        let mut t = vec![0u8; 72];
        t[..4].copy_from_slice(&magic.to_le_bytes());
        t[7] = 8;
        t[8..16].copy_from_slice(&(names.len() as u64).to_le_bytes());
        t[24..32].copy_from_slice(&0x40_0000u64.to_le_bytes());
        let names_at = t.len();
        let mut name_offsets = Vec::new();
        for name in names {
            name_offsets.push((t.len() - names_at) as u32);
            t.extend_from_slice(name.as_bytes());
            t.push(0);
        }
        let functab = t.len();
        let funcs = functab + 8 * (names.len() + 1);
        for i in 0..=names.len() {
            t.extend_from_slice(&(0x10 * i as u32).to_le_bytes());
            t.extend_from_slice(&((funcs - functab + 8 * i) as u32).to_le_bytes());
        }
        for offset in name_offsets {
            t.extend_from_slice(&0u32.to_le_bytes());
            t.extend_from_slice(&offset.to_le_bytes());
        }
        t[32..40].copy_from_slice(&(names_at as u64).to_le_bytes());
        t[64..72].copy_from_slice(&(functab as u64).to_le_bytes());
        t
    }

    #[test]
    fn functions_are_found_by_name_in_the_table() {
        let t = table(
            0xffff_fff1,
            &["main.main", "crypto/tls.(*Conn).Read", "runtime.goexit"],
        );
        let found = find_functions(&t, &["crypto/tls.(*Conn).Read", "nope"]).expect("table");
        assert_eq!(
            found,
            [
                Some(GoFunction {
                    entry: 0x40_0010,
                    size: 0x10
                }),
                None
            ]
        );
        assert!(find_functions(&table(0xffff_fffb, &["x"]), &["x"]).is_none());
        assert!(find_functions(&t[..40], &["x"]).is_none());
        assert!(find_functions(&[], &["x"]).is_none());
    }
}
