//! Encodings of Haskell's base types.

use bytes::Bytes;

use super::reader::safe_capacity;
use super::{encode_len, BinaryError, Decode, Encode, Reader};

macro_rules! int_impl {
    ($($t:ty => $name:literal),* $(,)?) => {$(
        impl Encode for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
        }
        impl Decode for $t {
            fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
                Ok(<$t>::from_be_bytes(r.array($name)?))
            }
        }
    )*};
}

// Haskell's Int and Word are always 8 bytes in binary, so i64/u64 serve
// for both the sized and the machine-word types.
int_impl!(
    u8 => "Word8", u16 => "Word16", u32 => "Word32", u64 => "Word64",
    i8 => "Int8", i16 => "Int16", i32 => "Int32", i64 => "Int64",
);

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl Decode for bool {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        match r.u8("Bool")? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(BinaryError::InvalidTag { ty: "Bool", tag }),
        }
    }
}

impl Encode for () {
    fn encode(&self, _out: &mut Vec<u8>) {}
}

impl Decode for () {
    fn decode(_r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        Ok(())
    }
}

impl Encode for char {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; 4];
        out.extend_from_slice(self.encode_utf8(&mut buf).as_bytes());
    }
}

impl Decode for char {
    // binary's own decoder masks bits without checking them; this one
    // rejects every non-canonical form so that decode/encode round-trips
    // byte for byte.
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        let lead = r.u8("Char")?;
        let (extra, init, min) = match lead {
            0x00..=0x7f => return Ok(char::from(lead)),
            0xc0..=0xdf => (1, u32::from(lead & 0x1f), 0x80),
            0xe0..=0xef => (2, u32::from(lead & 0x0f), 0x800),
            0xf0..=0xf7 => (3, u32::from(lead & 0x07), 0x1_0000),
            _ => return Err(BinaryError::InvalidUtf8 { lead }),
        };
        let mut cp = init;
        for &b in r.take(extra, "Char")? {
            if b & 0xc0 != 0x80 {
                return Err(BinaryError::InvalidUtf8 { lead });
            }
            cp = (cp << 6) | u32::from(b & 0x3f);
        }
        if cp < min {
            return Err(BinaryError::InvalidUtf8 { lead });
        }
        char::from_u32(cp).ok_or(BinaryError::InvalidChar(cp))
    }
}

impl Encode for str {
    fn encode(&self, out: &mut Vec<u8>) {
        // The prefix counts characters, not bytes.
        encode_len(self.chars().count(), out);
        out.extend_from_slice(self.as_bytes());
    }
}

impl Encode for String {
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_str().encode(out)
    }
}

impl Decode for String {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        let n = r.list_len("String", 1)?;
        let mut s = String::with_capacity(safe_capacity(n, r.remaining()));
        for _ in 0..n {
            s.push(char::decode(r)?);
        }
        Ok(s)
    }
}

impl<T: Encode> Encode for [T] {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_len(self.len(), out);
        for x in self {
            x.encode(out);
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_slice().encode(out)
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        let n = r.list_len("list", 0)?;
        let mut v = Vec::with_capacity(safe_capacity(n, r.remaining()));
        for _ in 0..n {
            v.push(T::decode(r)?);
        }
        Ok(v)
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(x) => {
                out.push(1);
                x.encode(out);
            }
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        match r.u8("Maybe")? {
            0 => Ok(None),
            1 => T::decode(r).map(Some),
            tag => Err(BinaryError::InvalidTag { ty: "Maybe", tag }),
        }
    }
}

/// Haskell's `Either a b`: tag `00` + a, or `01` + b.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Either<L, R> {
    /// `Left a`.
    Left(L),
    /// `Right b`.
    Right(R),
}

impl<L: Encode, R: Encode> Encode for Either<L, R> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Either::Left(l) => {
                out.push(0);
                l.encode(out);
            }
            Either::Right(x) => {
                out.push(1);
                x.encode(out);
            }
        }
    }
}

impl<L: Decode, R: Decode> Decode for Either<L, R> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        match r.u8("Either")? {
            0 => L::decode(r).map(Either::Left),
            1 => R::decode(r).map(Either::Right),
            tag => Err(BinaryError::InvalidTag { ty: "Either", tag }),
        }
    }
}

macro_rules! tuple_impl {
    ($($n:tt $t:ident),+) => {
        impl<$($t: Encode),+> Encode for ($($t,)+) {
            fn encode(&self, out: &mut Vec<u8>) {
                $(self.$n.encode(out);)+
            }
        }
        impl<$($t: Decode),+> Decode for ($($t,)+) {
            fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
                Ok(($($t::decode(r)?,)+))
            }
        }
    };
}

tuple_impl!(0 A, 1 B);
tuple_impl!(0 A, 1 B, 2 C);
tuple_impl!(0 A, 1 B, 2 C, 3 D);

/// Strict `Data.ByteString.ByteString`: Int64 byte count + bytes.
impl Encode for Bytes {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_len(self.len(), out);
        out.extend_from_slice(self);
    }
}

impl Decode for Bytes {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        let n = r.bytes_len("ByteString")?;
        r.take_bytes(n, "ByteString")
    }
}

/// Lazy `Data.ByteString.Lazy.ByteString`.
///
/// Same bytes on the wire as a strict ByteString, but a different Haskell
/// type and so a different fingerprint; the newtype keeps them apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LazyByteString(pub Bytes);

impl Encode for LazyByteString {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
}

impl Decode for LazyByteString {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        let n = r.bytes_len("lazy ByteString")?;
        r.take_bytes(n, "lazy ByteString").map(LazyByteString)
    }
}

impl From<Bytes> for LazyByteString {
    fn from(b: Bytes) -> Self {
        Self(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::decode_exact;
    use crate::Limits;

    fn enc<T: Encode + ?Sized>(v: &T) -> String {
        let mut out = Vec::new();
        v.encode(&mut out);
        hex::encode(out)
    }

    #[test]
    fn string_counts_chars_and_uses_utf8() {
        // README 2.2 example: "h\233\8364".
        assert_eq!(enc("hé€"), "000000000000000368c3a9e282ac");
        let l = Limits::default();
        let s: String =
            decode_exact(&hex::decode("000000000000000368c3a9e282ac").unwrap(), &l).unwrap();
        assert_eq!(s, "hé€");
    }

    #[test]
    fn fixed_widths() {
        assert_eq!(enc(&-2i32), "fffffffe");
        assert_eq!(enc(&1i64), "0000000000000001");
        assert_eq!(enc(&0x0102u16), "0102");
        assert_eq!(enc(&()), "");
        assert_eq!(enc(&true), "01");
        assert_eq!(enc(&Some(3u8)), "0103");
        assert_eq!(enc(&Either::<u8, u8>::Right(7)), "0107");
        assert_eq!(enc(&Bytes::from_static(b"ab")), "00000000000000026162");
    }

    #[test]
    fn chars_of_every_width() {
        let l = Limits::default();
        for c in ['a', 'é', '€', '😀', '\u{10ffff}', '\0'] {
            let mut out = Vec::new();
            c.encode(&mut out);
            assert_eq!(decode_exact::<char>(&out, &l).unwrap(), c);
        }
    }

    #[test]
    fn malformed_chars_are_rejected() {
        let l = Limits::default();
        let bad: &[(&[u8], BinaryError)] = &[
            (&[0x80], BinaryError::InvalidUtf8 { lead: 0x80 }),
            (&[0xc3, 0x28], BinaryError::InvalidUtf8 { lead: 0xc3 }),
            (&[0xc0, 0x80], BinaryError::InvalidUtf8 { lead: 0xc0 }),
            (&[0xed, 0xa0, 0x80], BinaryError::InvalidChar(0xd800)),
            (
                &[0xf4, 0x90, 0x80, 0x80],
                BinaryError::InvalidChar(0x110000),
            ),
            (&[0xf8], BinaryError::InvalidUtf8 { lead: 0xf8 }),
        ];
        for (input, err) in bad {
            assert_eq!(decode_exact::<char>(input, &l).unwrap_err(), *err);
        }
        assert!(matches!(
            decode_exact::<char>(&[0xe2, 0x82], &l),
            Err(BinaryError::UnexpectedEof { what: "Char", .. })
        ));
    }

    #[test]
    fn lengths_are_checked_before_allocating() {
        let l = Limits {
            max_list_len: 10,
            max_bytes_len: 10,
            ..Limits::default()
        };
        let huge = hex::decode("7fffffffffffffff").unwrap();
        assert!(matches!(
            decode_exact::<Bytes>(&huge, &l),
            Err(BinaryError::LengthTooLarge {
                what: "ByteString",
                ..
            })
        ));
        assert!(matches!(
            decode_exact::<Vec<u64>>(&huge, &l),
            Err(BinaryError::LengthTooLarge { what: "list", .. })
        ));
        let neg = hex::decode("ffffffffffffffff").unwrap();
        assert!(matches!(
            decode_exact::<String>(&neg, &l),
            Err(BinaryError::NegativeLength { len: -1, .. })
        ));
        // Within the limit but longer than the input.
        let short = hex::decode("0000000000000005616263").unwrap();
        assert!(matches!(
            decode_exact::<Bytes>(&short, &l),
            Err(BinaryError::UnexpectedEof {
                needed: 5,
                available: 3,
                ..
            })
        ));
    }

    #[test]
    fn bad_tags_and_trailing_bytes() {
        let l = Limits::default();
        assert_eq!(
            decode_exact::<bool>(&[2], &l).unwrap_err(),
            BinaryError::InvalidTag { ty: "Bool", tag: 2 }
        );
        assert_eq!(
            decode_exact::<Option<u8>>(&[9], &l).unwrap_err(),
            BinaryError::InvalidTag {
                ty: "Maybe",
                tag: 9
            }
        );
        assert!(matches!(
            decode_exact::<u8>(&[1, 2], &l),
            Err(BinaryError::TrailingBytes { remaining: 1, .. })
        ));
    }
}
