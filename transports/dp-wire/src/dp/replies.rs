//! Values node controllers hand to processes: replies, notifications,
//! link exceptions and statistics.
//!
//! Only `WhereIsReply`, `RegisterReply`, `DidSpawn`, `ProcessInfo` and
//! `ProcessInfoNone` crossed the wire in the captures (as messages inside
//! `UnreliableSend`); the others are built by the receiving node itself
//! and are here for nodes that deliver them to Haskell processes.

use super::ids::{binary_struct, MonitorRef, NodeId, ProcessId, SendPortId, SpawnRef};
use super::signal::DiedReason;
use crate::binary::{BinaryError, Decode, Encode, Reader};

/// Reply to `WhereIs`: the label and the registered process, if any.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WhereIsReply {
    /// The name asked about.
    pub label: String,
    /// The process registered under it.
    pub pid: Option<ProcessId>,
}
binary_struct!(WhereIsReply { label, pid });

/// Reply to `Register`: the label, whether it worked, and the current
/// owner (0.7.8 layout, as captured).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegisterReply {
    /// The name.
    pub label: String,
    /// True if the (un)registration took effect.
    pub ok: bool,
    /// The process now registered under the name, if any.
    pub owner: Option<ProcessId>,
}
binary_struct!(RegisterReply { label, ok, owner });

/// Reply to `Spawn`: the request's ref and the new process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DidSpawn {
    /// The `SpawnRef` from the request.
    pub spawn_ref: SpawnRef,
    /// The spawned process.
    pub pid: ProcessId,
}
binary_struct!(DidSpawn { spawn_ref, pid });

/// A monitored process ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessMonitorNotification {
    /// The monitor.
    pub monitor_ref: MonitorRef,
    /// The process.
    pub pid: ProcessId,
    /// Why.
    pub reason: DiedReason,
}
binary_struct!(ProcessMonitorNotification {
    monitor_ref,
    pid,
    reason
});

/// A monitored node went away.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeMonitorNotification {
    /// The monitor.
    pub monitor_ref: MonitorRef,
    /// The node.
    pub node: NodeId,
    /// Why.
    pub reason: DiedReason,
}
binary_struct!(NodeMonitorNotification {
    monitor_ref,
    node,
    reason
});

/// A monitored typed channel went away.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortMonitorNotification {
    /// The monitor.
    pub monitor_ref: MonitorRef,
    /// The port.
    pub port: SendPortId,
    /// Why.
    pub reason: DiedReason,
}
binary_struct!(PortMonitorNotification {
    monitor_ref,
    port,
    reason
});

/// Thrown into a process whose linked process died. Haskell gives it no
/// Binary instance (it never leaves a node); this encoding is the plain
/// field concatenation, for local use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessLinkException {
    /// The linked process.
    pub pid: ProcessId,
    /// Why it died.
    pub reason: DiedReason,
}
binary_struct!(ProcessLinkException { pid, reason });

/// Thrown into a process whose linked node died (never on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeLinkException {
    /// The linked node.
    pub node: NodeId,
    /// Why.
    pub reason: DiedReason,
}
binary_struct!(NodeLinkException { node, reason });

/// Thrown into a process whose linked port died (never on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortLinkException {
    /// The linked port.
    pub port: SendPortId,
    /// Why.
    pub reason: DiedReason,
}
binary_struct!(PortLinkException { port, reason });

/// Reply to `GetInfo` for a live process (0.7.8 layout, as captured: the
/// queue length is a plain Int).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessInfo {
    /// The node it runs on.
    pub node: NodeId,
    /// Names it is registered under.
    pub registered_names: Vec<String>,
    /// Messages waiting in its mailbox.
    pub message_queue_length: i64,
    /// Processes monitoring it, with their monitor refs.
    pub monitors: Vec<(ProcessId, MonitorRef)>,
    /// Processes linked to it.
    pub links: Vec<ProcessId>,
}
binary_struct!(ProcessInfo {
    node,
    registered_names,
    message_queue_length,
    monitors,
    links
});

/// Reply to `GetInfo` for a process that is not alive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProcessInfoNone(pub DiedReason);

impl Encode for ProcessInfoNone {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
}

impl Decode for ProcessInfoNone {
    fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
        DiedReason::decode(r).map(Self)
    }
}

/// A node's statistics (the answer to `getNodeStats`; in 0.7.8 never sent
/// to a remote process).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeStats {
    /// The node.
    pub node: NodeId,
    /// Registered names.
    pub registered_names: i64,
    /// Active monitors.
    pub monitors: i64,
    /// Active links.
    pub links: i64,
    /// Live processes.
    pub processes: i64,
}
binary_struct!(NodeStats {
    node,
    registered_names,
    monitors,
    links,
    processes
});

macro_rules! newtype_binary {
    ($(#[$m:meta])* $name:ident($inner:ty)) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(pub $inner);

        impl Encode for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                self.0.encode(out)
            }
        }

        impl Decode for $name {
            fn decode(r: &mut Reader<'_>) -> Result<Self, BinaryError> {
                <$inner>::decode(r).map(Self)
            }
        }
    };
}

newtype_binary!(
    /// Local acknowledgement of `unmonitor`.
    DidUnmonitor(MonitorRef)
);
newtype_binary!(
    /// Local acknowledgement of `unlink`.
    DidUnlinkProcess(ProcessId)
);
newtype_binary!(
    /// Local acknowledgement of `unlinkNode`.
    DidUnlinkNode(NodeId)
);
newtype_binary!(
    /// Local acknowledgement of `unlinkPort`.
    DidUnlinkPort(SendPortId)
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binary::decode_exact;
    use crate::dp::ids::LocalProcessId;
    use crate::Limits;

    #[test]
    fn layouts_match_captures() {
        // 16: ProcessInfoNone DiedUnknownId is the single byte 04.
        assert_eq!(ProcessInfoNone(DiedReason::UnknownId).to_binary(), [4]);
        // 15: RegisterReply label ++ Bool ++ Maybe ProcessId.
        let owner = ProcessId {
            node: NodeId::new("127.0.0.1:10502:0"),
            local: LocalProcessId {
                unique: -912188700,
                counter: 8,
            },
        };
        let r = RegisterReply {
            label: "remote-name".into(),
            ok: true,
            owner: Some(owner),
        };
        let b = r.to_binary();
        assert_eq!(b.len(), 54);
        assert_eq!(
            hex::encode(&b[..21]),
            "000000000000000b72656d6f74652d6e616d650101"
        );
        assert_eq!(decode_exact::<RegisterReply>(&b, &Limits::default()), Ok(r));
    }
}
