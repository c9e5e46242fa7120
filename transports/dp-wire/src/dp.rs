//! distributed-process 0.7 wire types.
//!
//! Every lightweight connection starts with one frame holding the target
//! [`Identifier`]. What follows depends on it:
//!
//! - [`Identifier::Process`]: [`Message`] frames (fingerprint ++ payload);
//! - [`Identifier::SendPort`]: raw Data.Binary values, no fingerprint;
//! - [`Identifier::Node`]: [`NCMsg`]s, no fingerprint.
//!
//! [`InboundConnection`] applies that rule to a stream of frame payloads.

mod ids;
mod message;
mod replies;
mod signal;
mod typed;

use bytes::Bytes;

pub use ids::{Identifier, LocalProcessId, MonitorRef, NodeId, ProcessId, SendPortId, SpawnRef};
pub use message::{decode_frame, encode_frame, Message};
pub use replies::{
    DidSpawn, DidUnlinkNode, DidUnlinkPort, DidUnlinkProcess, DidUnmonitor, NodeLinkException,
    NodeMonitorNotification, NodeStats, PortLinkException, PortMonitorNotification, ProcessInfo,
    ProcessInfoNone, ProcessLinkException, ProcessMonitorNotification, RegisterReply, WhereIsReply,
};
pub use signal::{Closure, DiedReason, NCMsg, ProcessSignal, Static, MAX_STATIC_DEPTH};
pub use typed::{SendPort, Serializable};

use crate::binary::{decode_exact_shared, BinaryError};
use crate::Limits;

/// One decoded data frame of a lightweight connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The first frame: whom the connection is for.
    Open(Identifier),
    /// A message to a process.
    Message(Message),
    /// A raw value for a typed channel (its type is the channel's).
    Channel(Bytes),
    /// A node-controller message.
    Control(NCMsg),
}

/// Decoder state of one incoming lightweight connection: reads the
/// Identifier from the first frame, then decodes later frames by it.
#[derive(Debug, Clone, Default)]
pub struct InboundConnection {
    target: Option<Identifier>,
}

impl InboundConnection {
    /// A connection that has received nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The target, once the first frame has arrived.
    pub fn target(&self) -> Option<&Identifier> {
        self.target.as_ref()
    }

    /// Decodes the next data frame; payload bytes share `payload`.
    ///
    /// A frame that fails to decode leaves the state unchanged.
    pub fn decode(&mut self, payload: &Bytes, limits: &Limits) -> Result<Frame, BinaryError> {
        match &self.target {
            None => {
                let id: Identifier = decode_exact_shared(payload, limits)?;
                self.target = Some(id.clone());
                Ok(Frame::Open(id))
            }
            Some(Identifier::Process(_)) => Message::decode_frame(payload).map(Frame::Message),
            Some(Identifier::SendPort(_)) => Ok(Frame::Channel(payload.clone())),
            Some(Identifier::Node(_)) => NCMsg::decode_frame(payload, limits).map(Frame::Control),
        }
    }
}

impl Frame {
    /// Appends the frame payload this value came from.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use crate::binary::Encode;
        match self {
            Frame::Open(id) => id.encode(out),
            Frame::Message(m) => m.encode_frame(out),
            Frame::Channel(b) => out.extend_from_slice(b),
            Frame::Control(m) => m.encode(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Build;

    fn frame(h: &str) -> Bytes {
        Bytes::from(hex::decode(h).unwrap())
    }

    #[test_log::test]
    fn whereis_nosuch_reply_from_capture_03() {
        let l = Limits::default();
        let mut c = InboundConnection::new();
        // B->A, lcid 1024: NodeIdentifier A, then the UnreliableSend reply.
        let open = c
            .decode(
                &frame("0100000000000000113132372e302e302e313a31303530313a30"),
                &l,
            )
            .unwrap();
        assert_eq!(
            open,
            Frame::Open(Identifier::Node(NodeId::new("127.0.0.1:10501:0")))
        );
        let reply = frame(
            "0100000000000000113132372e302e302e313a31303530323a300d9983e38900000008\
             000000000000000200000000000000101de27da8e7d9f0672ff25e3e547b0acd\
             000000000000000f00000000000000066e6f7375636800",
        );
        let Frame::Control(nc) = c.decode(&reply, &l).unwrap() else {
            panic!("not an NCMsg")
        };
        let ProcessSignal::UnreliableSend { to, message } = &nc.signal else {
            panic!("{nc:?}")
        };
        assert_eq!(to.counter, 8);
        let r: WhereIsReply = message.decode_as(&Build::default(), &l).unwrap().unwrap();
        assert_eq!(
            r,
            WhereIsReply {
                label: "nosuch".into(),
                pid: None
            }
        );
        let mut again = Vec::new();
        Frame::Control(nc).encode(&mut again);
        assert_eq!(again, &reply[..]);
    }
}
