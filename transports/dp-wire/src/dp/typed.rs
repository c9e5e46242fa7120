//! Which Haskell type a Rust value stands for, so it can be sent as a
//! fingerprinted message.

use std::marker::PhantomData;

use bytes::Bytes;

use super::ids::{NodeId, ProcessId, SendPortId};
use super::replies::{
    DidSpawn, DidUnlinkNode, DidUnlinkPort, DidUnlinkProcess, DidUnmonitor,
    NodeMonitorNotification, NodeStats, PortMonitorNotification, ProcessInfo, ProcessInfoNone,
    ProcessMonitorNotification, RegisterReply, WhereIsReply,
};
use crate::binary::{BinaryError, Decode, Either, Encode, LazyByteString, Reader};
use crate::fingerprint::{known, Build, Fingerprint, TypeRep};

/// A Rust type with a Data.Binary encoding and a known Haskell type
/// (Haskell's `Serializable`).
pub trait Serializable: Encode + Decode {
    /// The Haskell type in a peer built as `build`.
    fn type_rep(build: &Build) -> TypeRep;

    /// Its fingerprint in that build.
    fn fingerprint(build: &Build) -> Fingerprint {
        Self::type_rep(build).fingerprint()
    }
}

macro_rules! serializable {
    ($($t:ty => |$b:ident| $e:expr),* $(,)?) => {$(
        impl Serializable for $t {
            fn type_rep($b: &Build) -> TypeRep {
                let _ = $b;
                $e
            }
        }
    )*};
}

serializable!(
    () => |b| known::unit(),
    bool => |b| known::bool(),
    char => |b| known::char(),
    i64 => |b| known::int(),
    String => |b| known::string(),
    Bytes => |b| b.strict_bytestring(),
    LazyByteString => |b| b.lazy_bytestring(),
    NodeId => |b| b.node_id(),
    ProcessId => |b| b.process_id(),
    WhereIsReply => |b| b.where_is_reply(),
    RegisterReply => |b| b.register_reply(),
    DidSpawn => |b| b.did_spawn(),
    ProcessInfo => |b| b.process_info(),
    ProcessInfoNone => |b| b.process_info_none(),
    NodeStats => |b| b.node_stats(),
    ProcessMonitorNotification => |b| b.process_monitor_notification(),
    NodeMonitorNotification => |b| b.node_monitor_notification(),
    PortMonitorNotification => |b| b.port_monitor_notification(),
    DidUnmonitor => |b| b.did_unmonitor(),
    DidUnlinkProcess => |b| b.did_unlink_process(),
    DidUnlinkNode => |b| b.did_unlink_node(),
    DidUnlinkPort => |b| b.did_unlink_port(),
);

// `Vec<char>` would be `[Char]` too, but `String` covers it; lists of
// anything else are `[a]`.
impl<T: Serializable> Serializable for Vec<T> {
    fn type_rep(b: &Build) -> TypeRep {
        known::list(T::type_rep(b))
    }
}

impl<T: Serializable> Serializable for Option<T> {
    fn type_rep(b: &Build) -> TypeRep {
        known::maybe(T::type_rep(b))
    }
}

impl<L: Serializable, R: Serializable> Serializable for Either<L, R> {
    fn type_rep(b: &Build) -> TypeRep {
        known::either(L::type_rep(b), R::type_rep(b))
    }
}

impl<A: Serializable, B: Serializable> Serializable for (A, B) {
    fn type_rep(b: &Build) -> TypeRep {
        known::tuple2(A::type_rep(b), B::type_rep(b))
    }
}

impl<A: Serializable, B: Serializable, C: Serializable> Serializable for (A, B, C) {
    fn type_rep(b: &Build) -> TypeRep {
        known::tuple3(A::type_rep(b), B::type_rep(b), C::type_rep(b))
    }
}

impl<A: Serializable, B: Serializable, C: Serializable, D: Serializable> Serializable
    for (A, B, C, D)
{
    fn type_rep(b: &Build) -> TypeRep {
        known::tuple4(
            A::type_rep(b),
            B::type_rep(b),
            C::type_rep(b),
            D::type_rep(b),
        )
    }
}

/// The send end of a typed channel carrying `T` (`SendPort a`); on the
/// wire just its [`SendPortId`], but its fingerprint names `T`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SendPort<T> {
    /// The port.
    pub id: SendPortId,
    _t: PhantomData<fn() -> T>,
}

impl<T> SendPort<T> {
    /// The port `id`, typed.
    pub fn new(id: SendPortId) -> Self {
        Self {
            id,
            _t: PhantomData,
        }
    }
}

impl<T> Clone for SendPort<T> {
    fn clone(&self) -> Self {
        Self::new(self.id.clone())
    }
}

impl<T> Encode for SendPort<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.id.encode(out)
    }
}

impl<T> Decode for SendPort<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        SendPortId::decode(r).map(Self::new)
    }
}

impl<T: Serializable> Serializable for SendPort<T> {
    fn type_rep(b: &Build) -> TypeRep {
        b.send_port(T::type_rep(b))
    }
}
