//! Node, process, port and monitor identifiers.

use std::fmt;

use bytes::Bytes;

use crate::binary::{encode_len, BinaryError, Decode, Encode, Reader};

/// Generates field-by-field `Encode`/`Decode` (Haskell's `put a >> put b …`)
/// for a struct, in the listed order.
macro_rules! binary_struct {
    ($ty:ident { $($f:ident),+ $(,)? }) => {
        impl $crate::binary::Encode for $ty {
            fn encode(&self, out: &mut Vec<u8>) {
                $($crate::binary::Encode::encode(&self.$f, out);)+
            }
        }
        impl $crate::binary::Decode for $ty {
            fn decode(
                r: &mut $crate::binary::Reader<'_>,
            ) -> Result<Self, $crate::binary::BinaryError> {
                Ok(Self { $($f: $crate::binary::Decode::decode(r)?,)+ })
            }
        }
    };
}
pub(crate) use binary_struct;

/// A node: its network-transport `EndPointAddress`
/// (`host:port:endpointId`, e.g. `127.0.0.1:10501:0`).
///
/// Encoded as a strict ByteString. Kept as raw bytes because Haskell does
/// not require them to be UTF-8.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub Bytes);

impl NodeId {
    /// A NodeId from its address text.
    pub fn new(address: impl Into<String>) -> Self {
        Self(Bytes::from(address.into()))
    }

    /// The address bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The address as text, if it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nid://{}", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl Encode for NodeId {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_len(self.0.len(), out);
        out.extend_from_slice(&self.0);
    }
}

impl Decode for NodeId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        // An address is bounded by the transport's address limit, which is
        // much tighter than the general ByteString one.
        let l = r.limits();
        let max = u64::from(l.max_address_len).min(l.max_bytes_len);
        let n = r.len_prefix("NodeId", max, 1)?;
        r.take_bytes(n, "NodeId").map(NodeId)
    }
}

/// A process id local to its node: `lpidUnique` (random per node) and
/// `lpidCounter`, both Int32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct LocalProcessId {
    /// `lpidUnique`, chosen once per node.
    pub unique: i32,
    /// `lpidCounter`; user processes start at 8 in the captures.
    pub counter: i32,
}

binary_struct!(LocalProcessId { unique, counter });

/// A process: its node and its local id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ProcessId {
    /// The node the process lives on.
    pub node: NodeId,
    /// Its id on that node.
    pub local: LocalProcessId,
}

binary_struct!(ProcessId { node, local });

impl fmt::Display for ProcessId {
    /// Haskell's `show`: only the counter, not the unique.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid://{}:{}",
            String::from_utf8_lossy(&self.node.0),
            self.local.counter
        )
    }
}

/// A typed channel's send end: its owning process and an Int32 local id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SendPortId {
    /// The process that receives on the channel.
    pub process: ProcessId,
    /// `sendPortLocalId`, per process.
    pub local: i32,
}

binary_struct!(SendPortId { process, local });

/// What a lightweight connection, link or monitor points at.
///
/// Wire tags: 0 process, 1 node, 2 send port (not the declaration order).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identifier {
    /// `ProcessIdentifier`, tag 0.
    Process(ProcessId),
    /// `NodeIdentifier`, tag 1.
    Node(NodeId),
    /// `SendPortIdentifier`, tag 2.
    SendPort(SendPortId),
}

impl Encode for Identifier {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Identifier::Process(p) => {
                out.push(0);
                p.encode(out);
            }
            Identifier::Node(n) => {
                out.push(1);
                n.encode(out);
            }
            Identifier::SendPort(s) => {
                out.push(2);
                s.encode(out);
            }
        }
    }
}

impl Decode for Identifier {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        match r.u8("Identifier")? {
            0 => ProcessId::decode(r).map(Identifier::Process),
            1 => NodeId::decode(r).map(Identifier::Node),
            2 => SendPortId::decode(r).map(Identifier::SendPort),
            tag => Err(BinaryError::InvalidTag {
                ty: "Identifier",
                tag,
            }),
        }
    }
}

impl From<ProcessId> for Identifier {
    fn from(p: ProcessId) -> Self {
        Identifier::Process(p)
    }
}

impl From<NodeId> for Identifier {
    fn from(n: NodeId) -> Self {
        Identifier::Node(n)
    }
}

impl From<SendPortId> for Identifier {
    fn from(s: SendPortId) -> Self {
        Identifier::SendPort(s)
    }
}

impl Identifier {
    /// The node this identifier lives on.
    pub fn node(&self) -> &NodeId {
        match self {
            Identifier::Process(p) => &p.node,
            Identifier::Node(n) => n,
            Identifier::SendPort(s) => &s.process.node,
        }
    }
}

/// A monitor: what is watched, plus the watcher's Int32 counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonitorRef {
    /// `monitorRefIdent`.
    pub ident: Identifier,
    /// `monitorRefCounter`, per watching process.
    pub counter: i32,
}

binary_struct!(MonitorRef { ident, counter });

/// Correlates a `Spawn` with its `DidSpawn` reply (Int32, per process).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpawnRef(pub i32);

impl Encode for SpawnRef {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
}

impl Decode for SpawnRef {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        i32::decode(r).map(SpawnRef)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::decode_exact;
    use crate::Limits;

    #[test]
    fn process_id_matches_readme_example() {
        let pid = ProcessId {
            node: NodeId::new("127.0.0.1:10502:0"),
            local: LocalProcessId {
                unique: 0x478d97a6,
                counter: 8,
            },
        };
        let bytes = pid.to_binary();
        assert_eq!(
            hex::encode(&bytes),
            "00000000000000113132372e302e302e313a31303530323a30478d97a600000008"
        );
        assert_eq!(
            decode_exact::<ProcessId>(&bytes, &Limits::default()).unwrap(),
            pid
        );
        assert_eq!(pid.to_string(), "pid://127.0.0.1:10502:0:8");
    }

    #[test]
    fn identifier_tags() {
        let n = NodeId::new("a:1:0");
        let id = Identifier::Node(n.clone());
        assert_eq!(id.to_binary()[0], 1);
        let l = Limits::default();
        assert_eq!(
            decode_exact::<Identifier>(&[3], &l).unwrap_err(),
            BinaryError::InvalidTag {
                ty: "Identifier",
                tag: 3
            }
        );
    }

    #[test]
    fn node_id_uses_the_address_limit() {
        let l = Limits {
            max_address_len: 4,
            ..Limits::default()
        };
        let bytes = NodeId::new("127.0.0.1:1:0").to_binary();
        assert!(matches!(
            decode_exact::<NodeId>(&bytes, &l),
            Err(BinaryError::LengthTooLarge {
                what: "NodeId",
                len: 13,
                max: 4
            })
        ));
    }
}
