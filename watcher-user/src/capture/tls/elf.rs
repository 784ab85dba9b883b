//! Reading code out of an ELF file: the bytes at an address and their offset in the file, which is
//! where uprobes are placed. `symbols`, `openssl` and `golang` all find code by address here.

use object::{Object, ObjectSection, SectionKind};

/// The code at `address` (at most `max` bytes, fewer where its section ends) and its file offset,
/// which is where uprobes are placed. `None` unless a code section of this file holds that byte.
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
