//! The MySQL wire's primitive types, read from a packet payload: little-endian fixed-length integers,
//! length-encoded integers and strings, NUL-terminated strings.
//!
//! Every read is checked and returns `None` past the end, so a short or hostile payload can never
//! make a decoder panic or read out of bounds.

/// A length-encoded integer's first byte meaning "NULL" in a text row.
pub const NULL_MARKER: u8 = 0xfb;

/// A cursor over one payload.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// What is left.
    pub fn rest(&self) -> &'a [u8] {
        self.data
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.data.len() {
            return None;
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Some(head)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }

    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    /// A little-endian integer of `n` (at most 8) bytes.
    pub fn uint(&mut self, n: usize) -> Option<u64> {
        debug_assert!(n <= 8);
        let bytes = self.bytes(n)?;
        Some(
            bytes
                .iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        )
    }

    /// A 2-byte integer.
    pub fn u16(&mut self) -> Option<u16> {
        self.uint(2).map(|v| v as u16)
    }

    /// A 4-byte integer.
    pub fn u32(&mut self) -> Option<u32> {
        self.uint(4).map(|v| v as u32)
    }

    /// A length-encoded integer; `None` for the NULL marker, the undefined `0xff` or past the end.
    pub fn lenenc(&mut self) -> Option<u64> {
        match self.u8()? {
            b @ 0..=0xfa => Some(u64::from(b)),
            0xfc => self.uint(2),
            0xfd => self.uint(3),
            0xfe => self.uint(8),
            _ => None,
        }
    }

    /// A length-encoded string, whole.
    pub fn lenenc_bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.lenenc()?;
        self.bytes(usize::try_from(len).ok()?)
    }

    /// A length-encoded string that may run past the end of what was kept of the payload: the bytes
    /// there are, and the length it declares.
    pub fn lenenc_prefix(&mut self) -> Option<(&'a [u8], u64)> {
        let len = self.lenenc()?;
        let kept = usize::try_from(len).map_or(self.data.len(), |l| l.min(self.data.len()));
        Some((self.bytes(kept)?, len))
    }

    /// A text row's value: `None` for NULL, else the kept bytes and the declared length.
    pub fn text_value(&mut self) -> Option<Option<(&'a [u8], u64)>> {
        if self.data.first() == Some(&NULL_MARKER) {
            self.data = &self.data[1..];
            return Some(None);
        }
        self.lenenc_prefix().map(Some)
    }

    /// A NUL-terminated string (without its NUL); the rest when there is no NUL.
    pub fn nul_terminated(&mut self) -> &'a [u8] {
        match memchr::memchr(0, self.data) {
            Some(end) => {
                let s = &self.data[..end];
                self.data = &self.data[end + 1..];
                s
            }
            None => std::mem::take(&mut self.data),
        }
    }

    /// Everything left.
    pub fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Bytes as text: UTF-8 kept, anything else replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_encoded_integers_take_every_width() {
        let data = [
            0x05, 0xfc, 0x34, 0x12, 0xfd, 0x56, 0x34, 0x12, 0xfe, 1, 0, 0, 0, 0, 0, 0, 0x80,
        ];
        let mut r = Reader::new(&data);
        assert_eq!(r.lenenc(), Some(5));
        assert_eq!(r.lenenc(), Some(0x1234));
        assert_eq!(r.lenenc(), Some(0x12_3456));
        assert_eq!(r.lenenc(), Some(0x8000_0000_0000_0001));
        assert_eq!(r.lenenc(), None, "past the end");
        assert_eq!(Reader::new(&[0xfb]).lenenc(), None, "NULL");
        assert_eq!(Reader::new(&[0xfc, 1]).lenenc(), None, "short");
    }

    #[test]
    fn strings_never_read_past_the_end() {
        let mut r = Reader::new(b"\x03abc\x05de");
        assert_eq!(r.lenenc_bytes(), Some(&b"abc"[..]));
        assert_eq!(r.clone().lenenc_bytes(), None);
        assert_eq!(r.lenenc_prefix(), Some((&b"de"[..], 5)));
        let mut r = Reader::new(b"root\0db");
        assert_eq!(r.nul_terminated(), b"root");
        assert_eq!(r.nul_terminated(), b"db");
        assert!(r.is_empty());
        let mut r = Reader::new(&[0xfb, 0x01, b'x']);
        assert_eq!(r.text_value(), Some(None));
        assert_eq!(r.text_value(), Some(Some((&b"x"[..], 1))));
        assert_eq!(r.u32(), None);
    }
}
