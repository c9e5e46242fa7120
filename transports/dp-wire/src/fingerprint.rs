//! GHC type fingerprints (`typeRepFingerprint`), which distributed-process
//! puts in front of every message to name the payload's type.
//!
//! The rule (GHC 9.0, verified against all rows of the captured
//! `fingerprints.tsv`):
//!
//! - `FS(s)` = MD5 of the string's code points as UTF-32BE;
//! - `FF(fs)` = MD5 of the fingerprints' 16-byte forms, concatenated;
//! - a type constructor's fingerprint is `FF([FS(unit id), FS(module), FS(name)])`;
//! - a type `T` (no kind arguments) is `FF([tycon fp])`, an application
//!   `f x` is `FF([fp f, fp x])`.
//!
//! Unit ids are build-dependent (`bytestring-0.10.12.1`,
//! `distributed-process-0.7.8-<cabal hash>`), so [`Build`] takes them as
//! parameters; [`known`] holds the values learned from the captured peers.

pub mod known;

use std::borrow::Cow;
use std::fmt;

use md5::{Digest, Md5};

pub use known::Build;

use crate::binary::{BinaryError, Decode, Encode, Reader};

/// GHC's `Fingerprint hi lo`; on the wire, `hi` then `lo`, each 8 bytes
/// big-endian (which is exactly the MD5 digest).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Fingerprint {
    /// First 8 digest bytes, big-endian.
    pub hi: u64,
    /// Last 8 digest bytes, big-endian.
    pub lo: u64,
}

impl Fingerprint {
    /// Size on the wire.
    pub const LEN: usize = 16;

    /// From its two words.
    pub const fn new(hi: u64, lo: u64) -> Self {
        Self { hi, lo }
    }

    /// From the 16 wire bytes.
    pub const fn from_bytes(b: [u8; 16]) -> Self {
        let mut hi = 0u64;
        let mut lo = 0u64;
        let mut i = 0;
        while i < 8 {
            hi = (hi << 8) | b[i] as u64;
            lo = (lo << 8) | b[i + 8] as u64;
            i += 1;
        }
        Self { hi, lo }
    }

    /// The 16 wire bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.hi.to_be_bytes());
        b[8..].copy_from_slice(&self.lo.to_be_bytes());
        b
    }

    /// Parses 32 hex digits (the wire bytes in order); `None` if malformed.
    pub const fn from_hex(s: &str) -> Option<Self> {
        let s = s.as_bytes();
        if s.len() != 32 {
            return None;
        }
        let mut b = [0u8; 16];
        let mut i = 0;
        while i < 32 {
            let d = match s[i] {
                c @ b'0'..=b'9' => c - b'0',
                c @ b'a'..=b'f' => c - b'a' + 10,
                c @ b'A'..=b'F' => c - b'A' + 10,
                _ => return None,
            };
            b[i / 2] = (b[i / 2] << 4) | d;
            i += 1;
        }
        Some(Self::from_bytes(b))
    }

    /// GHC's `fingerprintString`: MD5 of the UTF-32BE code points.
    pub fn of_string(s: &str) -> Self {
        let mut h = Md5::new();
        for c in s.chars() {
            h.update((c as u32).to_be_bytes());
        }
        Self::from_bytes(h.finalize().into())
    }

    /// GHC's `fingerprintFingerprints`: MD5 of the concatenated digests.
    pub fn of_fingerprints(fps: &[Fingerprint]) -> Self {
        let mut h = Md5::new();
        for f in fps {
            h.update(f.to_bytes());
        }
        Self::from_bytes(h.finalize().into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.hi, self.lo)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl Encode for Fingerprint {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
}

impl Decode for Fingerprint {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        Ok(Self::from_bytes(r.array("Fingerprint")?))
    }
}

/// A type constructor's identity: where GHC says it is defined.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TyCon {
    /// Unit id, e.g. `ghc-prim`, `bytestring-0.10.12.1`.
    pub package: Cow<'static, str>,
    /// Defining module, e.g. `GHC.Types`.
    pub module: Cow<'static, str>,
    /// Constructor name, e.g. `Char`, `[]`, `(,)`.
    pub name: Cow<'static, str>,
}

impl TyCon {
    /// A tycon from its three names.
    pub fn new(
        package: impl Into<Cow<'static, str>>,
        module: impl Into<Cow<'static, str>>,
        name: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            package: package.into(),
            module: module.into(),
            name: name.into(),
        }
    }

    /// The tycon fingerprint (`tyConFingerprint`).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_fingerprints(&[
            Fingerprint::of_string(&self.package),
            Fingerprint::of_string(&self.module),
            Fingerprint::of_string(&self.name),
        ])
    }
}

/// A (monomorphic, kind-argument-free) type: a constructor applied to
/// zero or more argument types.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypeRep {
    /// The head constructor.
    pub con: TyCon,
    /// Arguments, left to right.
    pub args: Vec<TypeRep>,
}

impl TypeRep {
    /// A bare constructor, `T`.
    pub fn con(con: TyCon) -> Self {
        Self {
            con,
            args: Vec::new(),
        }
    }

    /// `self x`: one more argument.
    pub fn app(mut self, x: TypeRep) -> Self {
        self.args.push(x);
        self
    }

    /// `typeRepFingerprint`: applications nest to the left, so
    /// `T a b` is `FF([FF([FF([tc T]), a]), b])`.
    pub fn fingerprint(&self) -> Fingerprint {
        self.args.iter().fold(
            Fingerprint::of_fingerprints(&[self.con.fingerprint()]),
            |f, x| Fingerprint::of_fingerprints(&[f, x.fingerprint()]),
        )
    }
}

impl fmt::Display for TypeRep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.args.is_empty() {
            return f.write_str(&self.con.name);
        }
        write!(f, "({}", self.con.name)?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_python_example() {
        let bs = TypeRep::con(TyCon::new(
            "bytestring-0.10.12.1",
            "Data.ByteString.Internal",
            "ByteString",
        ));
        assert_eq!(
            bs.fingerprint().to_string(),
            "0d85666aab1d56eb83253d32af7a7445"
        );
        let string = TypeRep::con(TyCon::new("ghc-prim", "GHC.Types", "[]"))
            .app(TypeRep::con(TyCon::new("ghc-prim", "GHC.Types", "Char")));
        assert_eq!(
            string.fingerprint().to_string(),
            "5931901b2f5e42de5f1bd0e88b5e43c5"
        );
        let pair = TypeRep::con(TyCon::new("ghc-prim", "GHC.Tuple", "(,)"))
            .app(string)
            .app(bs);
        assert_eq!(
            pair.fingerprint().to_string(),
            "347ad3681ca9ffec220da202b4dee380"
        );
    }

    #[test]
    fn hex_and_bytes_round_trip() {
        let f = Fingerprint::new(0x0d85666aab1d56eb, 0x83253d32af7a7445);
        assert_eq!(Fingerprint::from_hex(&f.to_string()), Some(f));
        assert_eq!(Fingerprint::from_bytes(f.to_bytes()), f);
        assert_eq!(Fingerprint::from_hex("xyz"), None);
        assert_eq!(f.to_bytes()[0], 0x0d);
    }

    #[test]
    fn tycon_fingerprint_matches_readme_table() {
        let maybe = TyCon::new("base", "GHC.Maybe", "Maybe");
        assert_eq!(
            maybe.fingerprint().to_string(),
            "7865faf4d3e8af16ec608124f1859a86"
        );
    }
}
