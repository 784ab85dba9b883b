//! Go programs: where to probe `crypto/tls`'s `(*Conn).Read`, `Write` and handshakes. Return
//! probes are unsafe in Go (see `watcher-ebpf/src/go_tls.rs`) and a probe on a `RET` is single-stepped,
//! so the plaintext is taken where those functions call others, on instructions the kernel emulates:
//! `Read`'s copy of the plaintext into `b` and `Write`'s calls that seal it into records. When a
//! program's code does not have that shape, every `RET` of `Read` and `Write` is probed instead.
//!
//! Works on stripped binaries: functions are found in the runtime's own table (`.gopclntab`), which Go
//! keeps for stack traces, and the Go version in `.go.buildinfo`. Supported: Go 1.18 and later on
//! x86-64 (the register ABI, and the table layout of 1.18 to today).

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};
use object::{Object, ObjectSection};
use watcher_common::tls_function;

use super::code::{changes_only_flags, cheap_point, code_at, instructions};

/// Magic numbers of the function table's header: Go 1.18-1.19, and 1.20 onwards.
const PCLNTAB_MAGIC: [u32; 2] = [0xffff_fff0, 0xffff_fff1];

/// The functions probed, and those their probes are placed by.
const READ: &str = "crypto/tls.(*Conn).Read";
const WRITE: &str = "crypto/tls.(*Conn).Write";
/// What runs a handshake, on a server and on a client. Not `handshakeContext`, which every `Read` and
/// `Write` calls (it returns at once when the handshake is done): a probe there would fire three times
/// an HTTP exchange.
const SERVER_HANDSHAKE: &str = "crypto/tls.(*Conn).serverHandshake";
const CLIENT_HANDSHAKE: &str = "crypto/tls.(*Conn).clientHandshake";
/// Where the handshake is probed in a program that has neither of those.
const HANDSHAKE: &str = "crypto/tls.(*Conn).handshakeContext";
/// What `Write` calls to seal and send its plaintext (`typ` 23, application data).
const WRITE_RECORD: &str = "crypto/tls.(*Conn).writeRecordLocked";
/// What `Read` calls (`copy` inlined from `bytes.(*Reader).Read`) to copy the plaintext into `b`.
const MEMMOVE: &str = "runtime.memmove";
/// Looked up in the function table, in this order.
const NAMES: [&str; 7] = [
    READ,
    WRITE,
    SERVER_HANDSHAKE,
    CLIENT_HANDSHAKE,
    HANDSHAKE,
    WRITE_RECORD,
    MEMMOVE,
];

/// TLS's record type of application data, the `typ` `Write` passes to [`WRITE_RECORD`].
const APPLICATION_DATA: u64 = 23;

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

/// Finds the named functions in a Go 1.18+ function table: every function of each name (assembly
/// functions such as `runtime.memmove` have a wrapper of the same name for the other calling
/// convention).
fn find_functions(table: &[u8], names: &[&str]) -> Option<Vec<Vec<GoFunction>>> {
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
    let mut found: Vec<Vec<GoFunction>> = names.iter().map(|_| Vec::new()).collect();
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
            found[slot].push(GoFunction {
                entry: text_start.checked_add(u64::from(entry_off))?,
                size: u64::from(next_entry_off.saturating_sub(entry_off)),
            });
        }
    }
    Some(found)
}

/// A function's code as the file holds it.
#[derive(Clone, Copy)]
struct FunctionCode<'a> {
    name: &'static str,
    code: &'a [u8],
    /// Its address, and the file offset of its first byte.
    entry: u64,
    file_offset: u64,
}

impl<'a> FunctionCode<'a> {
    /// The code of `function`, called `name`; `None` unless the file holds all of it.
    fn of(elf: &object::File<'a>, function: &GoFunction, name: &'static str) -> Option<Self> {
        let (code, file_offset) = code_at(elf, function.entry, function.size)?;
        (code.len() as u64 == function.size).then_some(Self {
            name,
            code,
            entry: function.entry,
            file_offset,
        })
    }

    /// Every instruction of it (see [`all_instructions`]).
    fn decode(&self) -> Result<Vec<Instruction>, GoError> {
        all_instructions(self.code, self.entry).ok_or(GoError::Code(self.name))
    }

    /// The file offset of the instruction at `address`.
    fn offset_of(&self, address: u64) -> u64 {
        self.file_offset.saturating_add(address - self.entry)
    }

    /// The probe point on its entry (see [`entry_point`]).
    fn entry_point(&self, cookie: u64) -> (u64, u64) {
        (
            cookie,
            self.file_offset + entry_point(self.code, self.entry),
        )
    }
}

/// The probe points of a Go program's TLS: `(cookie, file offset)`. Entries of `Read` and of what runs
/// handshakes (`serverHandshake` and `clientHandshake`, else `handshakeContext`); where the plaintext
/// can be taken at calls the kernel emulates (see `code`), `Read`'s copy into `b` and `Write`'s calls of
/// `writeRecordLocked`; otherwise `Write`'s entry and every `RET` of `Read` and `Write`, which the
/// kernel single-steps.
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
    let found: [Vec<GoFunction>; NAMES.len()] = find_functions(table, &NAMES)
        .and_then(|found| found.try_into().ok())
        .ok_or(GoError::Table)?;
    let [read, write, server_handshake, client_handshake, handshake, write_record, memmove] = found;
    let code = |functions: &[GoFunction], name: &'static str| -> Result<_, GoError> {
        // Read and Write are needed; without the handshake only its ciphertext goes unmarked.
        let function = functions.last().ok_or(GoError::NoTls)?;
        FunctionCode::of(elf, function, name).ok_or(GoError::Code(name))
    };
    let read = code(&read, READ)?;
    let write = code(&write, WRITE)?;
    let mut handshakes: Vec<FunctionCode<'_>> = [
        (server_handshake, SERVER_HANDSHAKE),
        (client_handshake, CLIENT_HANDSHAKE),
    ]
    .iter()
    .filter_map(|(f, name)| FunctionCode::of(elf, f.last()?, name))
    .collect();
    if handshakes.is_empty() {
        handshakes.extend(code(&handshake, HANDSHAKE).ok());
    }
    let memmove: Vec<u64> = memmove
        .iter()
        .filter(|f| FunctionCode::of(elf, f, MEMMOVE).is_some_and(|c| takes_registers(&c)))
        .map(|f| f.entry)
        .collect();
    let write_record = write_record.last().map(|f| f.entry);
    points_of(read, write, &handshakes, write_record, &memmove)
}

/// [`probe_points`] from the code found: `write_record` is `writeRecordLocked`'s entry, `memmove` the
/// entries of `runtime.memmove` that take their arguments in registers.
fn points_of(
    read: FunctionCode<'_>,
    write: FunctionCode<'_>,
    handshakes: &[FunctionCode<'_>],
    write_record: Option<u64>,
    memmove: &[u64],
) -> Result<Vec<(u64, u64)>, GoError> {
    let read_code = read.decode()?;
    let write_code = write.decode()?;
    let mut points = vec![read.entry_point(tls_function::GO_READ)];
    match copy_into_buffer(&read_code, memmove) {
        Some(at) => points.push((tls_function::GO_READ_COPY, read.offset_of(at))),
        None => points.extend(rets(&read, &read_code, tls_function::GO_READ_RETURN)?),
    }
    let record_calls =
        write_record.map_or_else(Vec::new, |w| application_data_calls(&write_code, w));
    if record_calls.is_empty() {
        points.push(write.entry_point(tls_function::GO_WRITE));
        points.extend(rets(&write, &write_code, tls_function::GO_WRITE_RETURN)?);
    } else {
        points.extend(
            record_calls
                .into_iter()
                .map(|at| (tls_function::GO_WRITE_RECORD, write.offset_of(at))),
        );
    }
    points.extend(
        handshakes
            .iter()
            .map(|h| h.entry_point(tls_function::GO_HANDSHAKE)),
    );
    Ok(points)
}

/// The probe points of `function`'s `RET`s (its `code`, decoded); an error if it has none.
fn rets(
    function: &FunctionCode<'_>,
    code: &[Instruction],
    cookie: u64,
) -> Result<Vec<(u64, u64)>, GoError> {
    let rets: Vec<(u64, u64)> = code
        .iter()
        .filter(|i| i.mnemonic() == Mnemonic::Ret)
        .map(|i| (cookie, function.offset_of(i.ip())))
        .collect();
    if rets.is_empty() {
        return Err(GoError::Code(function.name));
    }
    Ok(rets)
}

/// Where the entry probe of the function whose `code` starts at `entry` goes, from the entry: on the
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

/// Every instruction of `code` (which starts at `entry`), from its first byte to its last. `None` if
/// any does not decode: a wrong boundary would put a breakpoint inside an instruction and crash the
/// program.
fn all_instructions(code: &[u8], entry: u64) -> Option<Vec<Instruction>> {
    let mut decoder = Decoder::with_ip(64, code, entry, DecoderOptions::NONE);
    let mut all = Vec::with_capacity(code.len() / 4);
    while decoder.can_decode() {
        let instruction = decoder.decode();
        if instruction.is_invalid() {
            return None;
        }
        all.push(instruction);
    }
    Some(all)
}

/// The direct calls in `code` of any function at `targets`.
fn calls_to<'c>(
    code: &'c [Instruction],
    targets: &'c [u64],
) -> impl Iterator<Item = &'c Instruction> {
    code.iter().filter(|i| {
        i.mnemonic() == Mnemonic::Call
            && i.op0_kind() == OpKind::NearBranch64
            && targets.contains(&i.near_branch_target())
    })
}

/// Whether `memmove` is the register-ABI `runtime.memmove` (`to`, `from`, `n` in RAX, RBX, RCX), which
/// starts by moving them where its assembly wants them: `mov rdi, rax`. Its other-ABI wrapper of the
/// same name starts with a frame.
fn takes_registers(memmove: &FunctionCode<'_>) -> bool {
    instructions(memmove.code, memmove.entry)
        .next()
        .is_some_and(|i| {
            i.mnemonic() == Mnemonic::Mov
                && i.op0_register() == Register::RDI
                && i.op1_register() == Register::RAX
        })
}

/// `Read`'s call of `runtime.memmove` that copies the plaintext it returns into `b` (`copy`, inlined from
/// `bytes.(*Reader).Read`): the only one in it, else `None`.
fn copy_into_buffer(read: &[Instruction], memmove: &[u64]) -> Option<u64> {
    let mut calls = calls_to(read, memmove);
    let only = calls.next()?;
    calls.next().is_none().then(|| only.ip())
}

/// `Write`'s calls of `writeRecordLocked` (at `write_record`), each with `typ` set to application data
/// just before it: the last write to RBX among the few instructions before the call, with no branch or
/// call between, is `mov ebx, 23` (the register ABI's order: receiver in RAX, `typ` in RBX, `data` in
/// RCX and RDI). Empty unless every call has that shape.
fn application_data_calls(write: &[Instruction], write_record: u64) -> Vec<u64> {
    let targets = [write_record];
    let mut calls = Vec::new();
    for call in calls_to(write, &targets) {
        let at = write.partition_point(|i| i.ip() < call.ip());
        let setter = write[at.saturating_sub(8)..at]
            .iter()
            .rev()
            .take_while(|i| {
                !matches!(i.mnemonic(), Mnemonic::Call | Mnemonic::Jmp | Mnemonic::Ret)
                    && i.op0_kind() != OpKind::NearBranch64
            })
            .find(|i| {
                i.op_count() > 0
                    && i.op0_kind() == OpKind::Register
                    && matches!(
                        i.op0_register(),
                        Register::BL | Register::BX | Register::EBX | Register::RBX
                    )
            });
        let sets_type = setter.is_some_and(|i| {
            i.mnemonic() == Mnemonic::Mov
                && matches!(
                    i.op1_kind(),
                    OpKind::Immediate8 | OpKind::Immediate32 | OpKind::Immediate32to64
                )
                && i.immediate(1) == APPLICATION_DATA
        });
        if !sets_type {
            return Vec::new();
        }
        calls.push(call.ip());
    }
    calls
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
        let read = FunctionCode {
            name: READ,
            code: &code,
            entry: 0x1000,
            file_offset: 0x400,
        };
        let decoded = all_instructions(&code, 0x1000).expect("decodes");
        assert_eq!(
            rets(&read, &decoded, tls_function::GO_READ_RETURN),
            Ok(vec![
                (tls_function::GO_READ_RETURN, 0x405),
                (tls_function::GO_READ_RETURN, 0x408)
            ])
        );
        // A truncated instruction at the end is not guessed around.
        assert!(all_instructions(&[0xc3, 0xb8, 0x01], 0).is_none());
    }

    // Hand-assembled Go code: `Read` at READ_AT, `Write` at WRITE_AT, in a file whose code starts at
    // file offset 0x400 for address 0x1000.
    const READ_AT: u64 = 0x1000;
    const WRITE_AT: u64 = 0x1100;
    const WRITE_RECORD_AT: u64 = 0x1200;
    const MEMMOVE_AT: u64 = 0x2000;
    /// cmp rsp, [r14+16]; jbe (to the next instruction)
    const STACK_CHECK: [u8; 10] = [0x49, 0x3b, 0x66, 0x10, 0x0f, 0x86, 0, 0, 0, 0];
    /// mov rax, [rsp+0x78]
    const LOAD_RAX: [u8; 5] = [0x48, 0x8b, 0x44, 0x24, 0x78];
    const RET: [u8; 1] = [0xc3];

    /// `call target` placed at `at`.
    fn call(at: u64, target: u64) -> [u8; 5] {
        let rel = i32::try_from(target as i64 - (at as i64 + 5)).expect("near");
        let [a, b, c, d] = rel.to_le_bytes();
        [0xe8, a, b, c, d]
    }

    /// `mov ebx, typ`
    fn set_type(typ: u8) -> [u8; 5] {
        [0xbb, typ, 0, 0, 0]
    }

    /// `code` at `entry`, at the file offset the test file would give it.
    fn function(code: &[u8], entry: u64) -> FunctionCode<'_> {
        FunctionCode {
            name: "test",
            code,
            entry,
            file_offset: entry - 0x1000 + 0x400,
        }
    }

    /// A `Read` that copies with `memmove_calls` calls of `runtime.memmove`, and a `Write` that calls
    /// `writeRecordLocked` once per record type in `types`.
    fn points_for(memmove_calls: usize, types: &[u8], memmove: &[u64]) -> Vec<(u64, u64)> {
        let mut read = STACK_CHECK.to_vec();
        for _ in 0..memmove_calls {
            read.extend(LOAD_RAX);
            read.extend(call(READ_AT + read.len() as u64, MEMMOVE_AT));
        }
        read.extend(RET);
        let mut write = STACK_CHECK.to_vec();
        for &typ in types {
            write.extend(set_type(typ));
            write.extend(call(WRITE_AT + write.len() as u64, WRITE_RECORD_AT));
        }
        write.extend(RET);
        points_of(
            function(&read, READ_AT),
            function(&write, WRITE_AT),
            &[],
            Some(WRITE_RECORD_AT),
            memmove,
        )
        .expect("points")
    }

    #[test]
    fn the_plaintext_is_taken_at_the_reads_copy_and_the_writes_record_calls() {
        use tls_function::{GO_READ, GO_READ_COPY, GO_WRITE_RECORD};
        // Read: stack check, `mov rax, [rsp+0x78]` at +10, the call at +15. Write: `mov ebx, 23` at
        // +10 and +20, the calls at +15 and +25 (two records: a 1/n-1 split).
        assert_eq!(
            points_for(1, &[23, 23], &[MEMMOVE_AT]),
            [
                (GO_READ, 0x404),
                (GO_READ_COPY, 0x40f),
                (GO_WRITE_RECORD, 0x50f),
                (GO_WRITE_RECORD, 0x519),
            ]
        );
    }

    #[test]
    fn both_handshakes_get_an_entry_probe() {
        let read = [&STACK_CHECK[..], &RET].concat();
        let server = [&STACK_CHECK[..], &RET].concat();
        let client = [&[0x55][..], &RET].concat(); // push rbp: probed where it is
        let points = points_of(
            function(&read, READ_AT),
            function(&read, WRITE_AT),
            &[function(&server, 0x1300), function(&client, 0x1400)],
            None,
            &[],
        )
        .expect("points");
        let handshakes: Vec<u64> = points
            .iter()
            .filter(|(cookie, _)| *cookie == tls_function::GO_HANDSHAKE)
            .map(|(_, at)| *at)
            .collect();
        assert_eq!(handshakes, [0x704, 0x800]);
    }

    #[test]
    fn code_of_another_shape_keeps_the_probes_on_the_rets() {
        use tls_function::{GO_READ, GO_READ_RETURN, GO_WRITE, GO_WRITE_RETURN};
        // Two copies in Read: which one is `b`'s is not known.
        let two = points_for(2, &[23], &[MEMMOVE_AT]);
        assert_eq!(two[..2], [(GO_READ, 0x404), (GO_READ_RETURN, 0x41e)]);
        // No register-ABI memmove in the program, or none called.
        assert_eq!(points_for(1, &[23], &[])[1], (GO_READ_RETURN, 0x414));
        assert_eq!(
            points_for(0, &[23], &[MEMMOVE_AT])[1],
            (GO_READ_RETURN, 0x40a)
        );
        // A record call whose type is set to something else (here after an earlier `mov ebx, 23`):
        // the shape is unknown, so both the entry and the RET.
        assert_eq!(
            points_for(1, &[23, 22], &[MEMMOVE_AT])[2..],
            [(GO_WRITE, 0x504), (GO_WRITE_RETURN, 0x51e)]
        );
        // No record call at all.
        assert_eq!(
            points_for(1, &[], &[MEMMOVE_AT])[2..],
            [(GO_WRITE, 0x504), (GO_WRITE_RETURN, 0x50a)]
        );
    }

    #[test]
    fn only_the_memmove_that_takes_registers_is_the_copy() {
        // mov rdi, rax (the register ABI's memmove) against sub rsp, 0x20 (its stack-ABI wrapper).
        assert!(takes_registers(&function(
            &[0x48, 0x89, 0xc7, 0xc3],
            0x2000
        )));
        assert!(!takes_registers(&function(
            &[0x48, 0x83, 0xec, 0x20, 0xc3],
            0x2000
        )));
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
                vec![GoFunction {
                    entry: 0x40_0010,
                    size: 0x10
                }],
                vec![]
            ]
        );
        // Every function of a name: a wrapper shares its name.
        let twice = table(
            0xffff_fff1,
            &["runtime.memmove", "main.f", "runtime.memmove"],
        );
        let found = find_functions(&twice, &["runtime.memmove"]).expect("table");
        assert_eq!(
            found[0].iter().map(|f| f.entry).collect::<Vec<_>>(),
            [0x40_0000, 0x40_0020]
        );
        assert!(find_functions(&table(0xffff_fffb, &["x"]), &["x"]).is_none());
        assert!(find_functions(&t[..40], &["x"]).is_none());
        assert!(find_functions(&[], &["x"]).is_none());
    }
}
