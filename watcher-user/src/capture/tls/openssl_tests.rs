use super::*;

use crate::capture::tls::code::code_at;

use tls_function::{HANDSHAKE, READ, READ_EX, WRITE, WRITE_EX};

/// Where the test code's section is loaded, and its place in the file.
const TEXT_ADDRESS: u64 = 0x1000;
const TEXT_OFFSET: u64 = 64;

/// Code laid out by address, with calls aimed at addresses.
#[derive(Default)]
struct Code(Vec<u8>);

impl Code {
    /// Places `bytes` at `address` (after what is there, padded with `int3`).
    fn at(&mut self, address: u64, bytes: &[u8]) -> &mut Self {
        let start = (address - TEXT_ADDRESS) as usize;
        assert!(start >= self.0.len(), "code placed over code");
        self.0.resize(start, 0xcc);
        self.0.extend_from_slice(bytes);
        self
    }

    /// Appends `call target`.
    fn call(&mut self, target: u64) -> &mut Self {
        let next = TEXT_ADDRESS + self.0.len() as u64 + 5;
        let rel = i32::try_from(target as i64 - next as i64).expect("near");
        self.0.push(0xe8);
        self.0.extend_from_slice(&rel.to_le_bytes());
        self
    }

    fn then(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }
}

const SUB_RSP_18: &[u8] = &[0x48, 0x83, 0xec, 0x18];
const SUB_RSP_8: &[u8] = &[0x48, 0x83, 0xec, 0x08];
const ADD_RSP_18: &[u8] = &[0x48, 0x83, 0xc4, 0x18];
const ENDBR64: &[u8] = &[0xf3, 0x0f, 0x1e, 0xfa];
const PUSH_R13: &[u8] = &[0x41, 0x55];
const POP_R13: &[u8] = &[0x41, 0x5d];
const PUSH_RBX: &[u8] = &[0x53];
const TEST_EDX: &[u8] = &[0x85, 0xd2];
const MOV_R8_RCX: &[u8] = &[0x49, 0x89, 0xc8];
const RET: &[u8] = &[0xc3];

// The functions' addresses.
const SSL_READ: u64 = 0x1000;
const SSL_READ_EX: u64 = 0x1020;
const READ_INTERNAL: u64 = 0x1040;
const ERROR: u64 = 0x1050;
const SSL_WRITE: u64 = 0x1060;
const SSL_WRITE_EX: u64 = 0x1070;
const WRITE_INTERNAL: u64 = 0x1090;
const SSL_DO_HANDSHAKE: u64 = 0x10a0;

/// An OpenSSL 3.0-like library as Debian builds it: `SSL_read` checks its length (an error path that
/// calls elsewhere) and calls the internal read, `SSL_read_ex` only calls it; the internal functions
/// start with `push`. `write_ex` is `SSL_write_ex`'s code before its call.
fn library(read_internal: &[u8], write_ex: &[u8]) -> Code {
    let mut code = Code::default();
    code.at(SSL_READ, SUB_RSP_18)
        .then(TEST_EDX)
        .then(&[0x78, 0x06]) // js +6: to the error call below
        .call(READ_INTERNAL)
        .then(RET)
        .call(ERROR)
        .then(RET);
    code.at(SSL_READ_EX, ENDBR64)
        .then(SUB_RSP_8)
        .call(READ_INTERNAL)
        .then(RET);
    code.at(READ_INTERNAL, read_internal).then(RET);
    code.at(ERROR, SUB_RSP_8).then(RET);
    code.at(SSL_WRITE, SUB_RSP_18)
        .call(WRITE_INTERNAL)
        .then(ADD_RSP_18)
        .then(RET);
    code.at(SSL_WRITE_EX, write_ex)
        .call(WRITE_INTERNAL)
        .then(RET);
    code.at(WRITE_INTERNAL, PUSH_R13).then(POP_R13).then(RET);
    code.at(SSL_DO_HANDSHAKE, ENDBR64).then(PUSH_RBX).then(RET);
    code
}

const FUNCTIONS: [(u64, u64); 5] = [
    (READ, SSL_READ),
    (WRITE, SSL_WRITE),
    (READ_EX, SSL_READ_EX),
    (WRITE_EX, SSL_WRITE_EX),
    (HANDSHAKE, SSL_DO_HANDSHAKE),
];

/// A minimal ELF file: the header, `code` as its `.text` at [`TEXT_ADDRESS`], and the section names.
fn elf(machine: u16, code: &[u8]) -> Vec<u8> {
    let names = b"\0.text\0.shstrtab\0";
    let names_offset = TEXT_OFFSET + code.len() as u64;
    let headers_offset = (names_offset + names.len() as u64).next_multiple_of(8);
    let mut f = Vec::new();
    f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    f.extend_from_slice(&3u16.to_le_bytes()); // a shared object
    f.extend_from_slice(&machine.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(&0u64.to_le_bytes()); // entry
    f.extend_from_slice(&0u64.to_le_bytes()); // no program headers
    f.extend_from_slice(&headers_offset.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 0, 64, 3, 2] {
        f.extend_from_slice(&half.to_le_bytes());
    }
    f.extend_from_slice(code);
    f.extend_from_slice(names);
    f.resize(headers_offset as usize, 0);
    let mut section = |name: u32, kind: u32, flags: u64, address: u64, offset: u64, size: u64| {
        for word in [
            u64::from(name) | u64::from(kind) << 32,
            flags,
            address,
            offset,
            size,
            0,
            1,
            0,
        ] {
            f.extend_from_slice(&word.to_le_bytes());
        }
    };
    section(0, 0, 0, 0, 0, 0);
    // PROGBITS, allocated and executable.
    section(1, 1, 0x6, TEXT_ADDRESS, TEXT_OFFSET, code.len() as u64);
    // STRTAB.
    section(7, 3, 0, 0, names_offset, names.len() as u64);
    f
}

/// [`probe_points`] of `code` as an x86-64 file.
fn points(code: &Code) -> Vec<(u64, u64)> {
    let bytes = elf(62, &code.0);
    let file = object::File::parse(&bytes[..]).expect("ELF");
    probe_points(&file, &FUNCTIONS)
}

#[test]
fn reads_and_writes_go_on_the_internal_function_both_call_when_it_starts_with_a_push() {
    let code = library(PUSH_R13, SUB_RSP_8);
    assert_eq!(
        points(&code),
        [
            (READ_EX, READ_INTERNAL),
            (WRITE_EX, WRITE_INTERNAL),
            // Past its endbr64, on the push.
            (HANDSHAKE, SSL_DO_HANDSHAKE + 4),
        ]
    );
}

#[test]
fn an_internal_function_that_would_be_single_stepped_leaves_the_exported_ones() {
    let code = library(SUB_RSP_18, SUB_RSP_8);
    assert_eq!(
        points(&code),
        [
            (READ, SSL_READ),
            (READ_EX, SSL_READ_EX),
            (WRITE_EX, WRITE_INTERNAL),
            (HANDSHAKE, SSL_DO_HANDSHAKE + 4),
        ]
    );
}

/// Reads on the internal function, writes on the two exported ones: what a write pair that does not
/// have the shape leaves.
const WRITES_KEPT: [(u64, u64); 4] = [
    (WRITE, SSL_WRITE),
    (READ_EX, READ_INTERNAL),
    (WRITE_EX, SSL_WRITE_EX),
    (HANDSHAKE, SSL_DO_HANDSHAKE + 4),
];

#[test]
fn an_ex_function_that_moves_its_arguments_is_not_taken_for_a_pass_through() {
    // OpenSSL 3.2's SSL_write_ex passes a flags argument in rcx and its `written` pointer in r8.
    let mut write_ex = SUB_RSP_8.to_vec();
    write_ex.extend_from_slice(MOV_R8_RCX);
    let code = library(PUSH_R13, &write_ex);
    assert_eq!(points(&code), WRITES_KEPT);
}

#[test]
fn a_plain_function_that_calls_elsewhere_keeps_its_own_probe() {
    let mut code = library(PUSH_R13, SUB_RSP_8);
    // SSL_write's call now goes to the error function instead.
    let call = (SSL_WRITE + 4 - TEXT_ADDRESS) as usize;
    let rel = i32::try_from(ERROR as i64 - (SSL_WRITE + 9) as i64).expect("near");
    code.0[call + 1..call + 5].copy_from_slice(&rel.to_le_bytes());
    assert_eq!(points(&code), WRITES_KEPT);
}

#[test]
fn other_architectures_and_code_outside_the_file_keep_the_exported_functions() {
    let code = library(PUSH_R13, SUB_RSP_8);
    let bytes = elf(183, &code.0); // aarch64
    let file = object::File::parse(&bytes[..]).expect("ELF");
    let mut exported = FUNCTIONS.to_vec();
    exported.sort_unstable();
    assert_eq!(probe_points(&file, &FUNCTIONS), exported);

    let bytes = elf(62, &code.0);
    let file = object::File::parse(&bytes[..]).expect("ELF");
    let outside = [(READ, 0x9000), (WRITE, 0x9100), (READ_EX, 0x9200)];
    assert_eq!(probe_points(&file, &outside), outside);
}

#[test]
fn symbols_become_file_offsets_of_the_chosen_instructions() {
    let code = library(PUSH_R13, SUB_RSP_8);
    let bytes = elf(62, &code.0);
    let file = object::File::parse(&bytes[..]).expect("ELF");
    assert_eq!(
        code_at(&file, READ_INTERNAL, 2),
        Some((PUSH_R13, TEXT_OFFSET + READ_INTERNAL - TEXT_ADDRESS))
    );
    let end = TEXT_ADDRESS + code.0.len() as u64;
    assert_eq!(code_at(&file, end - 1, 16).map(|(c, _)| c.len()), Some(1));
    assert_eq!(code_at(&file, end, 1), None);
}
