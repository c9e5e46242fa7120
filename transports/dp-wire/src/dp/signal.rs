//! Node-controller messages (`NCMsg`), carried raw (no fingerprint) on
//! node-to-node lightweight connections.

use bytes::Bytes;

use super::ids::{Identifier, LocalProcessId, MonitorRef, NodeId, ProcessId, SendPortId, SpawnRef};
use super::message::Message;
use crate::binary::{BinaryError, Decode, Encode, LazyByteString, Reader};

/// Why a process (or node, or port) is gone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DiedReason {
    /// Tag 0: normal termination.
    Normal,
    /// Tag 1: ended by an exception, shown as text (e.g.
    /// `exit-from=pid://…,reason=boom`).
    Exception(String),
    /// Tag 2: the connection to its node was lost.
    Disconnect,
    /// Tag 3: its node died (not produced by distributed-process 0.7.8).
    NodeDown,
    /// Tag 4: the identifier named nothing alive.
    UnknownId,
}

impl Encode for DiedReason {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            DiedReason::Normal => out.push(0),
            DiedReason::Exception(e) => {
                out.push(1);
                e.encode(out);
            }
            DiedReason::Disconnect => out.push(2),
            DiedReason::NodeDown => out.push(3),
            DiedReason::UnknownId => out.push(4),
        }
    }
}

impl Decode for DiedReason {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        Ok(match r.u8("DiedReason")? {
            0 => DiedReason::Normal,
            1 => DiedReason::Exception(String::decode(r)?),
            2 => DiedReason::Disconnect,
            3 => DiedReason::NodeDown,
            4 => DiedReason::UnknownId,
            tag => {
                return Err(BinaryError::InvalidTag {
                    ty: "DiedReason",
                    tag,
                })
            }
        })
    }
}

/// Deepest `Static` tree accepted; real closures nest about ten levels.
pub const MAX_STATIC_DEPTH: u32 = 64;

/// A distributed-static `Static` value: a tree of labels resolved in the
/// receiver's RemoteTable. It carries no fingerprints.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Static {
    /// Tag 0: a RemoteTable label, e.g. `$compose` or `Main.someFun`.
    Label(String),
    /// Tag 1: `f` applied to `x`.
    Apply(Box<Static>, Box<Static>),
}

impl Static {
    /// A label.
    pub fn label(s: impl Into<String>) -> Self {
        Static::Label(s.into())
    }

    /// `self` applied to `x`.
    pub fn apply(self, x: Static) -> Self {
        Static::Apply(Box::new(self), Box::new(x))
    }
}

impl std::fmt::Display for Static {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Static::Label(l) => f.write_str(l),
            Static::Apply(g, x) => match **x {
                Static::Apply(..) => write!(f, "{g} ({x})"),
                Static::Label(_) => write!(f, "{g} {x}"),
            },
        }
    }
}

impl Encode for Static {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Static::Label(l) => {
                out.push(0);
                l.encode(out);
            }
            Static::Apply(g, x) => {
                out.push(1);
                g.encode(out);
                x.encode(out);
            }
        }
    }
}

impl Decode for Static {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        r.nested("Static", MAX_STATIC_DEPTH, |r| match r.u8("Static")? {
            0 => String::decode(r).map(Static::Label),
            1 => Ok(Static::Apply(
                Box::new(Static::decode(r)?),
                Box::new(Static::decode(r)?),
            )),
            // A GHC StaticPtr key: a TypeRep in GHC's own Binary format,
            // which nothing in this protocol version sends.
            2 => Err(BinaryError::Unsupported("StaticPtr in a Static label")),
            tag => Err(BinaryError::InvalidTag { ty: "Static", tag }),
        })
    }
}

/// A closure: a static decoder and its environment (a lazy ByteString the
/// decoder reads; opaque to the node controller).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Closure {
    /// The static decoder expression.
    pub decoder: Static,
    /// The encoded environment.
    pub env: Bytes,
}

impl Encode for Closure {
    fn encode(&self, out: &mut Vec<u8>) {
        self.decoder.encode(out);
        self.env.encode(out);
    }
}

impl Decode for Closure {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        Ok(Self {
            decoder: Static::decode(r)?,
            env: LazyByteString::decode(r)?.0,
        })
    }
}

/// A request to, or notice from, a node controller (`ProcessSignal`).
/// Variant order and tags follow distributed-process 0.7.8.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProcessSignal {
    /// Tag 0: link the sender to a process, node or port.
    Link(Identifier),
    /// Tag 1: undo a link.
    Unlink(Identifier),
    /// Tag 2: start monitoring `ref.ident`.
    Monitor(MonitorRef),
    /// Tag 3: stop a monitor.
    Unmonitor(MonitorRef),
    /// Tag 4: `who` is gone (sent node to node).
    Died {
        /// The process, node or port that died.
        who: Identifier,
        /// Why.
        reason: DiedReason,
    },
    /// Tag 5: spawn `closure`; answered by a `DidSpawn` carrying `spawn_ref`.
    Spawn {
        /// The `Process ()` closure to run.
        closure: Closure,
        /// The requester's correlation id.
        spawn_ref: SpawnRef,
    },
    /// Tag 6: look up a registered name; answered by `WhereIsReply`.
    WhereIs(String),
    /// Tag 7: register (`Some`) or unregister (`None`) a name at `node`.
    Register {
        /// The name.
        label: String,
        /// The node whose registry is meant.
        node: NodeId,
        /// The process to register; `None` unregisters.
        pid: Option<ProcessId>,
        /// Re-register even if taken.
        force: bool,
    },
    /// Tag 8: deliver `message` to the process registered as `label`.
    NamedSend {
        /// The registered name.
        label: String,
        /// The message.
        message: Message,
    },
    /// Tag 9: kill `target`; the reason is a plain String.
    Kill {
        /// The process to kill.
        target: ProcessId,
        /// Reason text (no fingerprint).
        reason: String,
    },
    /// Tag 10: make `target` exit with `reason`, a message of any type.
    Exit {
        /// The process to exit.
        target: ProcessId,
        /// The reason, fingerprinted.
        reason: Message,
    },
    /// Tag 11: local delivery, only ever written to a node's own NC.
    LocalSend {
        /// Recipient.
        to: ProcessId,
        /// The message.
        message: Message,
    },
    /// Tag 12: local channel delivery, only ever written to a node's own
    /// NC. Never send it: a Haskell NC fails on an encoded message here.
    LocalPortSend {
        /// Recipient channel.
        to: SendPortId,
        /// The message.
        message: Message,
    },
    /// Tag 13: deliver `message` to a process of the receiving node,
    /// addressed by local id (NC replies and `usend`).
    UnreliableSend {
        /// Recipient on the receiving node.
        to: LocalProcessId,
        /// The message.
        message: Message,
    },
    /// Tag 30: ask for `ProcessInfo` about a process.
    GetInfo(ProcessId),
    /// Tag 31: the node's own shutdown signal; a received one closes the
    /// receiving node's endpoint, so never send it.
    SigShutdown,
    /// Tag 32: ask for a node's statistics.
    GetNodeStats(NodeId),
}

impl ProcessSignal {
    /// The wire tag.
    pub fn tag(&self) -> u8 {
        match self {
            ProcessSignal::Link(_) => 0,
            ProcessSignal::Unlink(_) => 1,
            ProcessSignal::Monitor(_) => 2,
            ProcessSignal::Unmonitor(_) => 3,
            ProcessSignal::Died { .. } => 4,
            ProcessSignal::Spawn { .. } => 5,
            ProcessSignal::WhereIs(_) => 6,
            ProcessSignal::Register { .. } => 7,
            ProcessSignal::NamedSend { .. } => 8,
            ProcessSignal::Kill { .. } => 9,
            ProcessSignal::Exit { .. } => 10,
            ProcessSignal::LocalSend { .. } => 11,
            ProcessSignal::LocalPortSend { .. } => 12,
            ProcessSignal::UnreliableSend { .. } => 13,
            ProcessSignal::GetInfo(_) => 30,
            ProcessSignal::SigShutdown => 31,
            ProcessSignal::GetNodeStats(_) => 32,
        }
    }

    /// The constructor name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            ProcessSignal::Link(_) => "Link",
            ProcessSignal::Unlink(_) => "Unlink",
            ProcessSignal::Monitor(_) => "Monitor",
            ProcessSignal::Unmonitor(_) => "Unmonitor",
            ProcessSignal::Died { .. } => "Died",
            ProcessSignal::Spawn { .. } => "Spawn",
            ProcessSignal::WhereIs(_) => "WhereIs",
            ProcessSignal::Register { .. } => "Register",
            ProcessSignal::NamedSend { .. } => "NamedSend",
            ProcessSignal::Kill { .. } => "Kill",
            ProcessSignal::Exit { .. } => "Exit",
            ProcessSignal::LocalSend { .. } => "LocalSend",
            ProcessSignal::LocalPortSend { .. } => "LocalPortSend",
            ProcessSignal::UnreliableSend { .. } => "UnreliableSend",
            ProcessSignal::GetInfo(_) => "GetInfo",
            ProcessSignal::SigShutdown => "SigShutdown",
            ProcessSignal::GetNodeStats(_) => "GetNodeStats",
        }
    }

    /// The message carried, for the signals that carry one.
    pub fn message(&self) -> Option<&Message> {
        match self {
            ProcessSignal::NamedSend { message, .. }
            | ProcessSignal::LocalSend { message, .. }
            | ProcessSignal::LocalPortSend { message, .. }
            | ProcessSignal::UnreliableSend { message, .. } => Some(message),
            ProcessSignal::Exit { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

impl Encode for ProcessSignal {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        match self {
            ProcessSignal::Link(i) | ProcessSignal::Unlink(i) => i.encode(out),
            ProcessSignal::Monitor(m) | ProcessSignal::Unmonitor(m) => m.encode(out),
            ProcessSignal::Died { who, reason } => {
                who.encode(out);
                reason.encode(out);
            }
            ProcessSignal::Spawn { closure, spawn_ref } => {
                closure.encode(out);
                spawn_ref.encode(out);
            }
            ProcessSignal::WhereIs(l) => l.encode(out),
            ProcessSignal::Register {
                label,
                node,
                pid,
                force,
            } => {
                label.encode(out);
                node.encode(out);
                pid.encode(out);
                force.encode(out);
            }
            ProcessSignal::NamedSend { label, message } => {
                label.encode(out);
                message.encode(out);
            }
            ProcessSignal::Kill { target, reason } => {
                target.encode(out);
                reason.encode(out);
            }
            ProcessSignal::Exit { target, reason } => {
                target.encode(out);
                reason.encode(out);
            }
            ProcessSignal::LocalSend { to, message } => {
                to.encode(out);
                message.encode(out);
            }
            ProcessSignal::LocalPortSend { to, message } => {
                to.encode(out);
                message.encode(out);
            }
            ProcessSignal::UnreliableSend { to, message } => {
                to.encode(out);
                message.encode(out);
            }
            ProcessSignal::GetInfo(p) => p.encode(out),
            ProcessSignal::SigShutdown => {}
            ProcessSignal::GetNodeStats(n) => n.encode(out),
        }
    }
}

impl Decode for ProcessSignal {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        use ProcessSignal as S;
        Ok(match r.u8("ProcessSignal")? {
            0 => S::Link(Decode::decode(r)?),
            1 => S::Unlink(Decode::decode(r)?),
            2 => S::Monitor(Decode::decode(r)?),
            3 => S::Unmonitor(Decode::decode(r)?),
            4 => S::Died {
                who: Decode::decode(r)?,
                reason: Decode::decode(r)?,
            },
            5 => S::Spawn {
                closure: Decode::decode(r)?,
                spawn_ref: Decode::decode(r)?,
            },
            6 => S::WhereIs(Decode::decode(r)?),
            7 => S::Register {
                label: Decode::decode(r)?,
                node: Decode::decode(r)?,
                pid: Decode::decode(r)?,
                force: Decode::decode(r)?,
            },
            8 => S::NamedSend {
                label: Decode::decode(r)?,
                message: Decode::decode(r)?,
            },
            9 => S::Kill {
                target: Decode::decode(r)?,
                reason: Decode::decode(r)?,
            },
            10 => S::Exit {
                target: Decode::decode(r)?,
                reason: Decode::decode(r)?,
            },
            11 => S::LocalSend {
                to: Decode::decode(r)?,
                message: Decode::decode(r)?,
            },
            12 => S::LocalPortSend {
                to: Decode::decode(r)?,
                message: Decode::decode(r)?,
            },
            13 => S::UnreliableSend {
                to: Decode::decode(r)?,
                message: Decode::decode(r)?,
            },
            30 => S::GetInfo(Decode::decode(r)?),
            31 => S::SigShutdown,
            32 => S::GetNodeStats(Decode::decode(r)?),
            tag => {
                return Err(BinaryError::InvalidTag {
                    ty: "ProcessSignal",
                    tag,
                })
            }
        })
    }
}

/// A node-controller message: who sends it, and the signal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NCMsg {
    /// `ctrlMsgSender`: a process for requests, a node for NC notices.
    pub sender: Identifier,
    /// `ctrlMsgSignal`.
    pub signal: ProcessSignal,
}

super::ids::binary_struct!(NCMsg { sender, signal });

impl NCMsg {
    /// Decodes one NCMsg that fills `frame` exactly (a node connection's
    /// data frame); ByteStrings inside share `frame`'s buffer.
    pub fn decode_frame(frame: &Bytes, limits: &crate::Limits) -> Result<Self, BinaryError> {
        crate::binary::decode_exact_shared(frame, limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::decode_exact;
    use crate::Limits;

    #[test]
    fn static_depth_is_bounded() {
        let mut deep = vec![1u8; 1000];
        deep.push(0);
        assert_eq!(
            decode_exact::<Static>(&deep, &Limits::default()).unwrap_err(),
            BinaryError::TooDeep {
                what: "Static",
                max: MAX_STATIC_DEPTH
            }
        );
    }

    #[test]
    fn static_ptr_is_reported_unsupported() {
        assert!(matches!(
            decode_exact::<Static>(&[2], &Limits::default()),
            Err(BinaryError::Unsupported(_))
        ));
    }

    #[test]
    fn unknown_signal_tag() {
        let mut b = Identifier::Node(NodeId::new("x:1:0")).to_binary();
        b.push(14);
        assert_eq!(
            decode_exact::<NCMsg>(&b, &Limits::default()).unwrap_err(),
            BinaryError::InvalidTag {
                ty: "ProcessSignal",
                tag: 14
            }
        );
    }

    #[test]
    fn static_display() {
        let s = Static::label("$compose")
            .apply(Static::label("f"))
            .apply(Static::label("$decodeDict").apply(Static::label("d")));
        assert_eq!(s.to_string(), "$compose f ($decodeDict d)");
    }
}
