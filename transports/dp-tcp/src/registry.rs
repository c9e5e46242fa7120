//! Which Haskell type stands for which ractor message variant.
//!
//! ractor's `#[derive(RactorClusterMessage)]` serializes a variant's fields
//! as `[u64 BE length ++ field bytes]...`, which is exactly Data.Binary's
//! encoding of a sequence of strict `ByteString` fields. So a variant
//! `Hello(MyProto)` is, on the Haskell side,
//!
//! ```haskell
//! data Hello = Hello !ByteString deriving (Generic, Typeable)
//! instance Binary Hello
//! ```
//!
//! and the DP message payload is ractor's bytes unchanged, behind the
//! 16-byte fingerprint of `Hello`. A `#[rpc]` variant
//! `Ask(Req, RpcReplyPort<Resp>)` maps to a request type whose first field
//! is the reply address and a reply type wrapping the reply bytes:
//!
//! ```haskell
//! data Ask = Ask !ProcessId !ByteString deriving (Generic, Typeable)
//! newtype AskReply = AskReply ByteString deriving (Generic, Typeable)
//! ```
//!
//! A [`TypeRegistry`] records these pairs. Fingerprints of the Haskell types
//! are computed from their unit id, module and name (GHC's
//! `typeRepFingerprint` of a constructor without arguments); for a build
//! whose unit id carries a Cabal hash, register the raw [`Fingerprint`]
//! instead.

use std::borrow::Cow;
use std::collections::HashMap;

use dp_wire::fingerprint::{Fingerprint, TyCon, TypeRep};

use crate::DpError;

/// The fingerprint of the Haskell type `unit_id:module.name` (a type
/// constructor applied to no arguments), as distributed-process puts it in
/// front of a message.
///
/// This is `typeRepFingerprint`, i.e. the MD5 over the *tycon*
/// fingerprint, not the tycon fingerprint itself.
pub fn haskell_type_fingerprint(unit_id: &str, module: &str, name: &str) -> Fingerprint {
    TypeRep::con(TyCon::new(
        Cow::Owned(unit_id.to_owned()),
        Cow::Owned(module.to_owned()),
        Cow::Owned(name.to_owned()),
    ))
    .fingerprint()
}

/// What a registered fingerprint means when it arrives for a local actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A cast of this variant: the payload is ractor's `what`.
    Cast(String),
    /// A call of this variant: the payload is the reply `ProcessId`, then
    /// ractor's `what`; the reply goes out with `reply` as fingerprint.
    Call {
        /// The ractor variant.
        variant: String,
        /// Fingerprint of the reply type.
        reply: Fingerprint,
    },
}

/// The Haskell types of one call variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTypes {
    /// Fingerprint of the request type (`Ask`).
    pub request: Fingerprint,
    /// Fingerprint of the reply type (`AskReply`).
    pub reply: Fingerprint,
}

/// Maps ractor variant names to Haskell types and back.
///
/// ```
/// use dp_tcp::TypeRegistry;
/// let types = TypeRegistry::new()
///     .module("main", "Kaisui.Greeter")
///     .cast("Hello", "Hello")
///     .call("Ask", "Ask", "AskReply");
/// assert!(types.cast_fingerprint("Hello").is_some());
/// ```
///
/// Variant names are ractor's: the variant identifier unless the derive
/// renamed it. Registrations are matched by exact name.
#[derive(Debug, Clone)]
pub struct TypeRegistry {
    unit_id: String,
    module: String,
    casts: HashMap<String, Fingerprint>,
    calls: HashMap<String, CallTypes>,
    by_fingerprint: HashMap<Fingerprint, Incoming>,
    conflicts: Vec<String>,
}

impl Default for TypeRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl TypeRegistry {
    /// An empty registry whose current module is `main:Main` (an
    /// executable's `Main` module).
    pub fn new() -> Self {
        Self {
            unit_id: "main".into(),
            module: "Main".into(),
            casts: HashMap::new(),
            calls: HashMap::new(),
            by_fingerprint: HashMap::new(),
            conflicts: Vec::new(),
        }
    }

    /// Set the unit id (`main` for an executable, `pkg-version-hash` for a
    /// library) and module of the types registered next.
    pub fn module(mut self, unit_id: impl Into<String>, module: impl Into<String>) -> Self {
        self.unit_id = unit_id.into();
        self.module = module.into();
        self
    }

    fn type_fp(&self, name: &str) -> Fingerprint {
        haskell_type_fingerprint(&self.unit_id, &self.module, name)
    }

    /// Register a cast variant as the Haskell type `name` of the current
    /// module.
    pub fn cast(self, variant: impl Into<String>, haskell_type: &str) -> Self {
        let fp = self.type_fp(haskell_type);
        self.cast_with_fingerprint(variant, fp)
    }

    /// Register a cast variant by the raw fingerprint of its Haskell type.
    pub fn cast_with_fingerprint(mut self, variant: impl Into<String>, fp: Fingerprint) -> Self {
        let variant = variant.into();
        self.claim(fp, Incoming::Cast(variant.clone()));
        self.casts.insert(variant, fp);
        self
    }

    /// Register a call variant as the Haskell request type `request` and
    /// reply type `reply` of the current module.
    pub fn call(self, variant: impl Into<String>, request: &str, reply: &str) -> Self {
        let types = CallTypes {
            request: self.type_fp(request),
            reply: self.type_fp(reply),
        };
        self.call_with_fingerprints(variant, types)
    }

    /// Register a call variant by the raw fingerprints of its request and
    /// reply types.
    pub fn call_with_fingerprints(mut self, variant: impl Into<String>, types: CallTypes) -> Self {
        let variant = variant.into();
        self.claim(
            types.request,
            Incoming::Call {
                variant: variant.clone(),
                reply: types.reply,
            },
        );
        self.calls.insert(variant, types);
        self
    }

    fn claim(&mut self, fp: Fingerprint, meaning: Incoming) {
        if let Some(old) = self.by_fingerprint.insert(fp, meaning.clone()) {
            if old != meaning {
                self.conflicts.push(format!(
                    "fingerprint {fp} registered for both {old:?} and {meaning:?}"
                ));
            }
        }
    }

    /// Check that no fingerprint was registered for two different meanings.
    pub fn validate(&self) -> Result<(), DpError> {
        if self.conflicts.is_empty() {
            Ok(())
        } else {
            Err(DpError::Config(self.conflicts.join("; ")))
        }
    }

    /// The fingerprint a cast of `variant` goes out with.
    pub fn cast_fingerprint(&self, variant: &str) -> Option<Fingerprint> {
        self.casts.get(variant).copied()
    }

    /// The request and reply fingerprints of call `variant`.
    pub fn call_types(&self, variant: &str) -> Option<CallTypes> {
        self.calls.get(variant).copied()
    }

    /// What an incoming message with fingerprint `fp` is.
    pub fn incoming(&self, fp: &Fingerprint) -> Option<&Incoming> {
        self.by_fingerprint.get(fp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dp_wire::fingerprint::known;

    #[test]
    fn type_fingerprint_is_the_typerep_one_not_the_tycon_one() {
        // fingerprints.tsv: Char's tycon is 74e8…, the type 913d….
        let fp = haskell_type_fingerprint("ghc-prim", "GHC.Types", "Char");
        assert_eq!(fp, known::captured::CHAR);
        assert_ne!(
            fp,
            TyCon::new("ghc-prim", "GHC.Types", "Char").fingerprint()
        );
    }

    #[test]
    fn registry_maps_both_ways() {
        let r = TypeRegistry::new()
            .module("main", "Kaisui.Greeter")
            .cast("Hello", "Hello")
            .call("Ask", "Ask", "AskReply");
        let hello = haskell_type_fingerprint("main", "Kaisui.Greeter", "Hello");
        assert_eq!(r.cast_fingerprint("Hello"), Some(hello));
        assert_eq!(r.incoming(&hello), Some(&Incoming::Cast("Hello".into())));
        let ask = r.call_types("Ask").unwrap();
        assert_eq!(
            ask.reply,
            haskell_type_fingerprint("main", "Kaisui.Greeter", "AskReply")
        );
        assert!(
            matches!(r.incoming(&ask.request), Some(Incoming::Call { variant, .. }) if variant == "Ask")
        );
        assert_eq!(r.incoming(&ask.reply), None);
        assert!(r.validate().is_ok());
    }

    #[test]
    fn conflicting_fingerprints_fail_validation() {
        let r = TypeRegistry::new().cast("A", "T").cast("B", "T");
        assert!(r.validate().is_err());
    }
}
