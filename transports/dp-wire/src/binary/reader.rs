//! The bounds-checked cursor every decoder reads through.

use bytes::Bytes;

use super::BinaryError;
use crate::Limits;

/// A cursor over Data.Binary input that checks every length against the
/// input left and against [`Limits`] before allocating.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: &'a Limits,
    // When set, `buf` is this buffer's contents and ByteStrings are
    // returned as slices of it instead of copies.
    shared: Option<&'a Bytes>,
    depth: u32,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`; ByteStrings are copied out.
    pub fn new(buf: &'a [u8], limits: &'a Limits) -> Self {
        Self {
            buf,
            pos: 0,
            limits,
            shared: None,
            depth: 0,
        }
    }

    /// A reader over `buf` whose ByteStrings share `buf`'s allocation.
    pub fn shared(buf: &'a Bytes, limits: &'a Limits) -> Self {
        Self {
            buf: buf.as_ref(),
            pos: 0,
            limits,
            shared: Some(buf),
            depth: 0,
        }
    }

    /// The limits this reader enforces.
    pub fn limits(&self) -> &'a Limits {
        self.limits
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when all input has been consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Fails with [`BinaryError::TrailingBytes`] unless all input was read.
    pub fn finish(&self, what: &'static str) -> Result<(), BinaryError> {
        match self.remaining() {
            0 => Ok(()),
            remaining => Err(BinaryError::TrailingBytes { what, remaining }),
        }
    }

    /// Takes the next `n` bytes as a slice.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], BinaryError> {
        if n > self.remaining() {
            return Err(BinaryError::UnexpectedEof {
                what,
                needed: n as u64,
                available: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Takes the next `n` bytes as [`Bytes`], zero-copy on a shared reader.
    pub fn take_bytes(&mut self, n: usize, what: &'static str) -> Result<Bytes, BinaryError> {
        let start = self.pos;
        let s = self.take(n, what)?;
        Ok(match self.shared {
            Some(b) => b.slice(start..start + n),
            None => Bytes::copy_from_slice(s),
        })
    }

    /// Takes all remaining bytes.
    pub fn take_rest(&mut self) -> Bytes {
        let n = self.remaining();
        // Cannot fail: exactly the remaining bytes are requested.
        self.take_bytes(n, "rest").unwrap_or_default()
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], BinaryError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, BinaryError> {
        Ok(self.take(1, what)?[0])
    }

    /// Reads an Int64 length prefix and checks it: not negative, not above
    /// `max`, and (when each element needs at least `min_elem` bytes) not
    /// more than the remaining input can hold.
    pub fn len_prefix(
        &mut self,
        what: &'static str,
        max: u64,
        min_elem: usize,
    ) -> Result<usize, BinaryError> {
        let raw = i64::from_be_bytes(self.array::<8>(what)?);
        if raw < 0 {
            return Err(BinaryError::NegativeLength { what, len: raw });
        }
        let len = raw as u64;
        if len > max {
            return Err(BinaryError::LengthTooLarge { what, len, max });
        }
        if min_elem > 0 {
            let needed = len.saturating_mul(min_elem as u64);
            if needed > self.remaining() as u64 {
                return Err(BinaryError::UnexpectedEof {
                    what,
                    needed,
                    available: self.remaining(),
                });
            }
        }
        // Fits: len <= max <= u64 and, on 32-bit, the checks above bound it
        // by the input size whenever elements are non-empty.
        usize::try_from(len).map_err(|_| BinaryError::LengthTooLarge {
            what,
            len,
            max: usize::MAX as u64,
        })
    }

    /// Length prefix of a list or String, checked against `max_list_len`.
    pub fn list_len(&mut self, what: &'static str, min_elem: usize) -> Result<usize, BinaryError> {
        self.len_prefix(what, self.limits.max_list_len, min_elem)
    }

    /// Length prefix of a ByteString, checked against `max_bytes_len` and
    /// the input left.
    pub fn bytes_len(&mut self, what: &'static str) -> Result<usize, BinaryError> {
        self.len_prefix(what, self.limits.max_bytes_len, 1)
    }

    /// Runs `f` one nesting level deeper, failing past `max` levels.
    pub fn nested<T>(
        &mut self,
        what: &'static str,
        max: u32,
        f: impl FnOnce(&mut Self) -> Result<T, BinaryError>,
    ) -> Result<T, BinaryError> {
        if self.depth >= max {
            return Err(BinaryError::TooDeep { what, max });
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }
}

/// Initial capacity for `len` elements: never more than the input could
/// hold, and small enough that a lying prefix costs little.
pub(crate) fn safe_capacity(len: usize, remaining: usize) -> usize {
    len.min(remaining).min(4096)
}
