//! Data.Binary (binary-0.8.8) encodings, as distributed-process uses them.
//!
//! [`Encode`] appends a value's Haskell `Data.Binary.put` bytes to a buffer,
//! [`Decode`] reads them back through a [`Reader`] that enforces
//! [`Limits`] before anything is allocated. Implementations
//! for the Haskell base types live in the submodules:
//!
//! | Haskell | Rust |
//! |---|---|
//! | `Word8/16/32/64`, `Int8/16/32/64` | `u8`…`u64`, `i8`…`i64` (big-endian) |
//! | `Int`, `Word` | `i64`, `u64` (always 8 bytes) |
//! | `Bool`, `()`, `Char` | `bool`, `()`, `char` (UTF-8) |
//! | `String`, `[a]` | `String`, `Vec<T>` (Int64 element count first) |
//! | `Maybe a`, `Either a b` | `Option<T>`, [`Either`] |
//! | tuples of 2–4 | Rust tuples |
//! | strict / lazy `ByteString` | [`bytes::Bytes`] / [`LazyByteString`] |

mod prim;
pub(crate) mod reader;

use thiserror::Error;

pub use prim::{Either, LazyByteString};
pub use reader::Reader;

use crate::Limits;

/// Everything that can be wrong with Data.Binary input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BinaryError {
    /// The input ended inside a value.
    #[error(
        "unexpected end of input reading {what}: needed {needed} bytes, {available} available"
    )]
    UnexpectedEof {
        /// What was being read.
        what: &'static str,
        /// Bytes the value needs.
        needed: u64,
        /// Bytes left in the input.
        available: usize,
    },
    /// A length prefix exceeds the configured [`Limits`].
    #[error("{what} length {len} exceeds the limit {max}")]
    LengthTooLarge {
        /// What the length was for.
        what: &'static str,
        /// The announced length.
        len: u64,
        /// The configured limit.
        max: u64,
    },
    /// A length prefix (an Int64 on the wire) is negative.
    #[error("{what} length {len} is negative")]
    NegativeLength {
        /// What the length was for.
        what: &'static str,
        /// The announced length.
        len: i64,
    },
    /// A constructor tag that the type does not have.
    #[error("invalid tag {tag} for {ty}")]
    InvalidTag {
        /// The Haskell type being decoded.
        ty: &'static str,
        /// The tag byte found.
        tag: u8,
    },
    /// A decoded code point that is not a Unicode scalar value.
    #[error("invalid Unicode code point {0:#x}")]
    InvalidChar(u32),
    /// A byte sequence that is not canonical UTF-8 (bad continuation byte,
    /// overlong form or invalid leading byte).
    #[error("malformed UTF-8 sequence starting with {lead:#04x}")]
    InvalidUtf8 {
        /// The sequence's first byte.
        lead: u8,
    },
    /// A fixed-size field had the wrong size (e.g. a fingerprint chunk).
    #[error("{what} must be {expected} bytes, got {got}")]
    WrongSize {
        /// What the field is.
        what: &'static str,
        /// The required size.
        expected: usize,
        /// The size found.
        got: usize,
    },
    /// The value was decoded but input is left over.
    #[error("{remaining} trailing bytes after {what}")]
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// Bytes left unread.
        remaining: usize,
    },
    /// An encoding this crate recognises but does not decode.
    #[error("unsupported encoding: {0}")]
    Unsupported(&'static str),
    /// Nesting deeper than the decoder accepts (recursive types).
    #[error("{what} nested deeper than {max} levels")]
    TooDeep {
        /// The recursive type.
        what: &'static str,
        /// The depth limit.
        max: u32,
    },
}

/// A value with a Data.Binary encoding (`put`).
pub trait Encode {
    /// Appends this value's encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Encodes into a fresh buffer.
    fn to_binary(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A value that can be read from its Data.Binary encoding (`get`).
pub trait Decode: Sized {
    /// Reads one value, advancing the reader past it.
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError>;
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self, out: &mut Vec<u8>) {
        (**self).encode(out)
    }
}

impl<T: Encode + ?Sized> Encode for Box<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        (**self).encode(out)
    }
}

impl<T: Decode> Decode for Box<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        T::decode(r).map(Box::new)
    }
}

/// Decodes exactly one `T` from `input`; leftover bytes are an error.
///
/// ByteStrings inside are copied; use [`decode_exact_shared`] to borrow
/// them from a [`bytes::Bytes`] instead.
pub fn decode_exact<T: Decode>(input: &[u8], limits: &Limits) -> Result<T, BinaryError> {
    let mut r = Reader::new(input, limits);
    let v = T::decode(&mut r)?;
    r.finish(std::any::type_name::<T>())?;
    Ok(v)
}

/// Like [`decode_exact`], but ByteStrings in the result share `input`'s
/// buffer (zero-copy).
pub fn decode_exact_shared<T: Decode>(
    input: &bytes::Bytes,
    limits: &Limits,
) -> Result<T, BinaryError> {
    let mut r = Reader::shared(input, limits);
    let v = T::decode(&mut r)?;
    r.finish(std::any::type_name::<T>())?;
    Ok(v)
}

/// Writes a Data.Binary length prefix (an `Int`, 8 bytes big-endian).
pub fn encode_len(len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&(len as i64).to_be_bytes());
}
