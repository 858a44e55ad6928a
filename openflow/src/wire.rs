//! Reading untrusted bytes without ever indexing past them, and appending
//! big-endian fields to an output buffer.

use crate::error::{OfError, BAD_REQUEST, BRC_BAD_LEN};

/// A cursor over bytes that fails (with the given error) instead of panicking.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    b: &'a [u8],
    /// What a short read is reported as (BAD_LEN of the part being read).
    short: OfError,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader {
            b,
            short: OfError::new(BAD_REQUEST, BRC_BAD_LEN),
        }
    }

    /// The same bytes, with a different error for a short read.
    pub fn reporting(mut self, short: OfError) -> Reader<'a> {
        self.short = short;
        self
    }

    /// Runs `f` with short reads reported as `short`, then restores the
    /// reader's own error (the cursor moves on as `f` read).
    pub fn scoped<T>(
        &mut self,
        short: OfError,
        f: impl FnOnce(&mut Reader<'a>) -> Result<T, OfError>,
    ) -> Result<T, OfError> {
        let saved = std::mem::replace(&mut self.short, short);
        let r = f(self);
        self.short = saved;
        r
    }

    pub fn remaining(&self) -> usize {
        self.b.len()
    }

    pub fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    pub fn rest(&self) -> &'a [u8] {
        self.b
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], OfError> {
        if n > self.b.len() {
            return Err(self.short);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }

    /// The next `n` bytes as a reader of their own (same error).
    pub fn sub(&mut self, n: usize) -> Result<Reader<'a>, OfError> {
        let short = self.short;
        Ok(Reader {
            b: self.bytes(n)?,
            short,
        })
    }

    pub fn skip(&mut self, n: usize) -> Result<(), OfError> {
        self.bytes(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Result<u8, OfError> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, OfError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, OfError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, OfError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], OfError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    /// A NUL-padded string field of `n` bytes (lossy UTF-8, up to the first NUL).
    pub fn string(&mut self, n: usize) -> Result<String, OfError> {
        let b = self.bytes(n)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Ok(String::from_utf8_lossy(&b[..end]).into_owned())
    }
}

/// Big-endian appends onto a message under construction.
pub trait Put {
    fn u8(&mut self, v: u8);
    fn u16(&mut self, v: u16);
    fn u32(&mut self, v: u32);
    fn u64(&mut self, v: u64);
    fn pad(&mut self, n: usize);
    /// Pads with zeros until the length since `start` is a multiple of 8.
    fn pad8_from(&mut self, start: usize);
    /// A string in a NUL-padded field of `n` bytes (truncated to n-1).
    fn string(&mut self, s: &str, n: usize);
    /// Overwrites the u16 at `at` (a length filled in afterwards).
    fn set_u16(&mut self, at: usize, v: u16);
}

impl Put for Vec<u8> {
    fn u8(&mut self, v: u8) {
        self.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn pad(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
    fn pad8_from(&mut self, start: usize) {
        let n = (self.len() - start).next_multiple_of(8) - (self.len() - start);
        self.pad(n);
    }
    fn string(&mut self, s: &str, n: usize) {
        let b = s.as_bytes();
        let k = b.len().min(n.saturating_sub(1));
        self.extend_from_slice(&b[..k]);
        self.pad(n - k);
    }
    fn set_u16(&mut self, at: usize, v: u16) {
        self[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_fail_with_the_configured_error() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16().unwrap(), 0x0102);
        assert_eq!(r.u16(), Err(OfError::new(BAD_REQUEST, BRC_BAD_LEN)));
        assert_eq!(r.u8().unwrap(), 3, "a failed read consumes nothing");
        let e = OfError::new(4, 1);
        assert_eq!(Reader::new(&[]).reporting(e).u8(), Err(e));
    }

    #[test]
    fn strings_stop_at_nul_and_pad() {
        let mut v = Vec::new();
        v.string("br0", 8);
        assert_eq!(v, b"br0\0\0\0\0\0");
        assert_eq!(Reader::new(&v).string(8).unwrap(), "br0");
        let mut v = Vec::new();
        v.string("toolongname", 4);
        assert_eq!(v, b"too\0");
    }
}
