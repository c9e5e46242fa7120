//! The actors' messages, their protobuf payloads, and the Haskell type
//! standing for each ractor variant.

use dp_tcp::{haskell_type_fingerprint, TypeRegistry};
use dp_wire::fingerprint::Fingerprint;
use ractor::RpcReplyPort;
use ractor_cluster::RactorClusterMessage;

/// Generated from `proto/greeter.proto` and `proto/counter.proto`.
#[allow(missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/kaisui.demo.rs"));
}

pub use pb::{Answer, Count, Greeting, Increment, Question};

// ractor_cluster's derive: each field travels as a length-delimited
// protobuf message (varint length, then the message).
ractor_cluster::derive_serialization_for_prost_type! {Greeting}
ractor_cluster::derive_serialization_for_prost_type! {Question}
ractor_cluster::derive_serialization_for_prost_type! {Answer}
ractor_cluster::derive_serialization_for_prost_type! {Increment}
ractor_cluster::derive_serialization_for_prost_type! {Count}

/// What a greeter understands.
#[derive(RactorClusterMessage)]
pub enum GreeterMsg {
    /// Fire and forget. Haskell: `data Hello = Hello !ByteString`.
    Hello(Greeting),
    /// Request and reply. Haskell: `data Ask = Ask !ProcessId !ByteString`,
    /// answered with `newtype AskReply = AskReply ByteString`.
    #[rpc]
    Ask(Question, RpcReplyPort<Answer>),
}

/// What the counter understands.
#[derive(RactorClusterMessage)]
pub enum CounterMsg {
    /// Haskell: `data Add = Add !ByteString`.
    Add(Increment),
    /// A call without arguments. Haskell: `data Get = Get !ProcessId`,
    /// answered with `newtype GetReply = GetReply ByteString`.
    #[rpc]
    Get(RpcReplyPort<Count>),
}

/// Module of the greeter's Haskell types.
pub const GREETER_MODULE: &str = "Kaisui.Greeter";
/// Module of the counter's Haskell types.
pub const COUNTER_MODULE: &str = "Kaisui.Counter";
/// Unit id of `examples/haskell`'s library, where the Haskell types live,
/// when cabal builds it as a local package.
pub const DEFAULT_HASKELL_UNIT: &str = "kaisui-examples-0.1.0.0-inplace";

/// One ractor variant and the Haskell type(s) standing for it.
#[derive(Debug, Clone, Copy)]
pub struct Mapping {
    /// The Rust enum, for display.
    pub rust_enum: &'static str,
    /// ractor's variant name.
    pub variant: &'static str,
    /// Haskell module.
    pub module: &'static str,
    /// Haskell type of a cast, or of a call's request.
    pub haskell: &'static str,
    /// Haskell type of a call's reply; `None` for a cast.
    pub reply: Option<&'static str>,
}

/// Every variant that crosses to Haskell. The TypeRegistry is keyed by
/// variant name alone, so names must be unique across all enums.
pub const MAPPINGS: &[Mapping] = &[
    Mapping {
        rust_enum: "GreeterMsg",
        variant: "Hello",
        module: GREETER_MODULE,
        haskell: "Hello",
        reply: None,
    },
    Mapping {
        rust_enum: "GreeterMsg",
        variant: "Ask",
        module: GREETER_MODULE,
        haskell: "Ask",
        reply: Some("AskReply"),
    },
    Mapping {
        rust_enum: "CounterMsg",
        variant: "Add",
        module: COUNTER_MODULE,
        haskell: "Add",
        reply: None,
    },
    Mapping {
        rust_enum: "CounterMsg",
        variant: "Get",
        module: COUNTER_MODULE,
        haskell: "Get",
        reply: Some("GetReply"),
    },
];

/// The registry DpTcp is configured with.
pub fn registry(unit: &str) -> TypeRegistry {
    MAPPINGS.iter().fold(TypeRegistry::new(), |r, m| {
        let r = r.module(unit, m.module);
        match m.reply {
            None => r.cast(m.variant, m.haskell),
            Some(reply) => r.call(m.variant, m.haskell, reply),
        }
    })
}

/// The Haskell types and their fingerprints, as the stand-in Haskell node
/// (and a real one) sees them.
#[derive(Debug, Clone)]
pub struct HaskellTypes {
    unit: String,
}

impl HaskellTypes {
    /// Types of unit `unit`.
    pub fn new(unit: &str) -> Self {
        Self { unit: unit.into() }
    }

    /// The unit id.
    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// Fingerprint of `module.name`.
    pub fn fp(&self, module: &str, name: &str) -> Fingerprint {
        haskell_type_fingerprint(&self.unit, module, name)
    }

    /// Fingerprint of a greeter type.
    pub fn greeter(&self, name: &str) -> Fingerprint {
        self.fp(GREETER_MODULE, name)
    }

    /// Fingerprint of a counter type.
    pub fn counter(&self, name: &str) -> Fingerprint {
        self.fp(COUNTER_MODULE, name)
    }

    /// The name of the type behind `fp`, for printing.
    pub fn name_of(&self, fp: &Fingerprint) -> String {
        MAPPINGS
            .iter()
            .flat_map(|m| {
                std::iter::once(m.haskell)
                    .chain(m.reply)
                    .map(|t| (m.module, t))
            })
            .find(|(module, t)| self.fp(module, t) == *fp)
            .map_or_else(|| format!("<unknown type {fp}>"), |(_, t)| t.to_owned())
    }
}

/// Short display of a payload.
pub fn show_greeting(g: &Greeting) -> String {
    if g.reply_to.is_empty() {
        format!("Greeting {{ text: {:?} }}", g.text)
    } else {
        format!(
            "Greeting {{ text: {:?}, reply_to: <{} byte pid> }}",
            g.text,
            g.reply_to.len()
        )
    }
}
