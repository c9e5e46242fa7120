//! Decisions that need every socket of one local endpoint: one TCP
//! connection per endpoint pair, crossed requests, unknown endpoint ids.
//!
//! The driver names sockets with its own [`SocketId`]s, reports what
//! happened to them, and acts on the returned decisions.

use std::collections::{BTreeSet, HashMap};

use super::address::{EndPointAddress, EndPointId};
use super::connection::RejectReason;

/// The driver's name for one TCP socket.
pub type SocketId = u64;

/// What we know about the connection to one remote endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    /// Our request is in flight on `socket` (`RemoteEndPointInit`,
    /// `RequestedByUs`).
    Requested {
        /// The socket carrying our request.
        socket: SocketId,
    },
    /// A usable connection (`RemoteEndPointValid`).
    Valid {
        /// Its socket.
        socket: SocketId,
    },
    /// We sent CloseSocket on `socket` and wait for the outcome.
    Closing {
        /// Its socket.
        socket: SocketId,
    },
}

/// What to do with a connection request that arrived on a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncomingDecision {
    /// Answer Accepted; the socket is now the peer's connection. If we had
    /// a request in flight to the same peer (crossed, and our address is the
    /// greater), `crossed_outgoing` names its socket: the peer will answer
    /// it Crossed, and traffic queued for it goes to the accepted socket.
    Accept {
        /// Our own in-flight request that lost the tie break.
        crossed_outgoing: Option<SocketId>,
    },
    /// Answer with this rejection and close the socket.
    Reject(RejectReason),
    /// Answer Crossed, close, and send ProbeSocket on `existing`: the peer
    /// reconnects although we think `existing` is Valid, so it may be
    /// half-open (`probeIfValid`).
    RejectAndProbe {
        /// The socket to probe.
        existing: SocketId,
    },
    /// We are closing our socket to this peer; hold the request and call
    /// [`Endpoint::incoming`] again once `existing` is resolved.
    Defer {
        /// The socket whose CloseSocket handshake is pending.
        existing: SocketId,
    },
}

/// What to do when the user wants to reach a remote endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutgoingDecision {
    /// Use this Valid socket.
    Reuse(SocketId),
    /// A request (ours or theirs) or a close is pending on this socket;
    /// wait for it to resolve and ask again.
    Wait(SocketId),
    /// Open `socket` (the id the driver proposed) and send a request.
    Connect(SocketId),
}

/// Bookkeeping of one local endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    address: EndPointAddress,
    local_ids: BTreeSet<EndPointId>,
    peers: HashMap<EndPointAddress, PeerState>,
}

impl Endpoint {
    /// Our endpoint at `address`; requests for its endpoint id are served.
    pub fn new(address: EndPointAddress) -> Self {
        let local_ids = BTreeSet::from([address.endpoint_id()]);
        Self {
            address,
            local_ids,
            peers: HashMap::new(),
        }
    }

    /// Also serve requests for endpoint id `id` (several endpoints on one
    /// transport share the listening socket).
    pub fn add_local_id(&mut self, id: EndPointId) {
        self.local_ids.insert(id);
    }

    /// Our address.
    pub fn address(&self) -> &EndPointAddress {
        &self.address
    }

    /// What we know about `peer`.
    pub fn peer(&self, peer: &EndPointAddress) -> Option<PeerState> {
        self.peers.get(peer).copied()
    }

    /// The user wants to talk to `to`; `new_socket` is the id to use if a
    /// new TCP connection is needed.
    pub fn outgoing(&mut self, to: &EndPointAddress, new_socket: SocketId) -> OutgoingDecision {
        match self.peers.get(to) {
            Some(PeerState::Valid { socket }) => OutgoingDecision::Reuse(*socket),
            Some(PeerState::Requested { socket } | PeerState::Closing { socket }) => {
                OutgoingDecision::Wait(*socket)
            }
            None => {
                self.peers
                    .insert(to.clone(), PeerState::Requested { socket: new_socket });
                OutgoingDecision::Connect(new_socket)
            }
        }
    }

    /// A request for endpoint `target` from `from` (`None`: unaddressable)
    /// arrived on `socket`.
    pub fn incoming(
        &mut self,
        from: Option<&EndPointAddress>,
        target: EndPointId,
        socket: SocketId,
    ) -> IncomingDecision {
        if !self.local_ids.contains(&target) {
            return IncomingDecision::Reject(RejectReason::Invalid);
        }
        // An unaddressable peer gets a made-up address from the driver and
        // can never cross with us.
        let Some(from) = from else {
            return IncomingDecision::Accept {
                crossed_outgoing: None,
            };
        };
        match self.peers.get(from).copied() {
            None => {
                self.peers.insert(from.clone(), PeerState::Valid { socket });
                IncomingDecision::Accept {
                    crossed_outgoing: None,
                }
            }
            Some(PeerState::Requested { socket: ours }) => {
                // Crossed: the greater address accepts the incoming request,
                // the smaller keeps its own outgoing one.
                if self.address.as_bytes() > from.as_bytes() {
                    self.peers.insert(from.clone(), PeerState::Valid { socket });
                    IncomingDecision::Accept {
                        crossed_outgoing: Some(ours),
                    }
                } else {
                    IncomingDecision::Reject(RejectReason::Crossed)
                }
            }
            Some(PeerState::Valid { socket: existing }) => {
                IncomingDecision::RejectAndProbe { existing }
            }
            Some(PeerState::Closing { socket: existing }) => IncomingDecision::Defer { existing },
        }
    }

    /// Our request to `to` on `socket` was accepted.
    pub fn established(&mut self, to: &EndPointAddress, socket: SocketId) {
        if self.peers.get(to) == Some(&PeerState::Requested { socket }) {
            self.peers.insert(to.clone(), PeerState::Valid { socket });
        }
    }

    /// Our request to `to` on `socket` was rejected. Returns the socket to
    /// use instead, if the peer's own connection won a crossing.
    pub fn rejected(&mut self, to: &EndPointAddress, socket: SocketId) -> Option<SocketId> {
        match self.peers.get(to).copied() {
            Some(PeerState::Requested { socket: s }) if s == socket => {
                self.peers.remove(to);
                None
            }
            Some(PeerState::Valid { socket: s }) => Some(s),
            _ => None,
        }
    }

    /// We sent CloseSocket on the connection to `peer`.
    pub fn closing(&mut self, peer: &EndPointAddress, socket: SocketId) {
        if self.peers.get(peer) == Some(&PeerState::Valid { socket }) {
            self.peers
                .insert(peer.clone(), PeerState::Closing { socket });
        }
    }

    /// The connection to `peer` went back from Closing to Valid.
    pub fn reopened(&mut self, peer: &EndPointAddress, socket: SocketId) {
        if self.peers.get(peer) == Some(&PeerState::Closing { socket }) {
            self.peers.insert(peer.clone(), PeerState::Valid { socket });
        }
    }

    /// `socket` to `peer` is gone (closed, lost, failed, probe timeout).
    pub fn closed(&mut self, peer: &EndPointAddress, socket: SocketId) {
        let current = match self.peers.get(peer) {
            Some(
                PeerState::Requested { socket: s }
                | PeerState::Valid { socket: s }
                | PeerState::Closing { socket: s },
            ) => *s,
            None => return,
        };
        if current == socket {
            self.peers.remove(peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> EndPointAddress {
        s.parse().unwrap()
    }

    #[test_log::test]
    fn invalid_endpoint_id() {
        let mut ep = Endpoint::new(addr("127.0.0.1:10502:0"));
        assert_eq!(
            ep.incoming(Some(&addr("127.0.0.1:10501:0")), 3, 1),
            IncomingDecision::Reject(RejectReason::Invalid)
        );
        ep.add_local_id(3);
        assert!(matches!(
            ep.incoming(Some(&addr("127.0.0.1:10501:0")), 3, 1),
            IncomingDecision::Accept { .. }
        ));
    }

    #[test_log::test]
    fn crossed_smaller_side_rejects_and_keeps_outgoing() {
        // Capture 11 from A's point of view: A = ...10501:0 < B.
        let (a, b) = (addr("127.0.0.1:10501:0"), addr("127.0.0.1:10502:0"));
        let mut ep = Endpoint::new(a);
        assert_eq!(ep.outgoing(&b, 10), OutgoingDecision::Connect(10));
        assert_eq!(
            ep.incoming(Some(&b), 0, 11),
            IncomingDecision::Reject(RejectReason::Crossed)
        );
        assert_eq!(ep.peer(&b), Some(PeerState::Requested { socket: 10 }));
        ep.established(&b, 10);
        assert_eq!(ep.peer(&b), Some(PeerState::Valid { socket: 10 }));
        assert_eq!(ep.outgoing(&b, 12), OutgoingDecision::Reuse(10));
    }

    #[test_log::test]
    fn crossed_greater_side_accepts_incoming() {
        // Capture 11 from B's point of view.
        let (a, b) = (addr("127.0.0.1:10501:0"), addr("127.0.0.1:10502:0"));
        let mut ep = Endpoint::new(b);
        assert_eq!(ep.outgoing(&a, 20), OutgoingDecision::Connect(20));
        assert_eq!(
            ep.incoming(Some(&a), 0, 21),
            IncomingDecision::Accept {
                crossed_outgoing: Some(20)
            }
        );
        // A answers our request Crossed; use the accepted socket.
        assert_eq!(ep.rejected(&a, 20), Some(21));
        assert_eq!(ep.peer(&a), Some(PeerState::Valid { socket: 21 }));
    }

    #[test_log::test]
    fn reconnect_while_valid_probes_old_socket() {
        let (a, b) = (addr("h:1:0"), addr("h:2:0"));
        let mut ep = Endpoint::new(a);
        assert!(matches!(
            ep.incoming(Some(&b), 0, 1),
            IncomingDecision::Accept { .. }
        ));
        assert_eq!(
            ep.incoming(Some(&b), 0, 2),
            IncomingDecision::RejectAndProbe { existing: 1 }
        );
        // The probe timed out: the old socket is gone, the retry is accepted.
        ep.closed(&b, 1);
        assert!(matches!(
            ep.incoming(Some(&b), 0, 3),
            IncomingDecision::Accept { .. }
        ));
    }

    #[test_log::test]
    fn closing_defers_and_waits() {
        let (a, b) = (addr("h:1:0"), addr("h:2:0"));
        let mut ep = Endpoint::new(a);
        assert_eq!(ep.outgoing(&b, 1), OutgoingDecision::Connect(1));
        assert_eq!(ep.outgoing(&b, 2), OutgoingDecision::Wait(1));
        ep.established(&b, 1);
        ep.closing(&b, 1);
        assert_eq!(
            ep.incoming(Some(&b), 0, 5),
            IncomingDecision::Defer { existing: 1 }
        );
        assert_eq!(ep.outgoing(&b, 6), OutgoingDecision::Wait(1));
        ep.reopened(&b, 1);
        assert_eq!(ep.outgoing(&b, 6), OutgoingDecision::Reuse(1));
        ep.closing(&b, 1);
        ep.closed(&b, 1);
        assert_eq!(ep.outgoing(&b, 7), OutgoingDecision::Connect(7));
    }

    #[test_log::test]
    fn plain_rejection_forgets_request_and_stale_close_is_ignored() {
        let (a, b) = (addr("h:1:0"), addr("h:2:0"));
        let mut ep = Endpoint::new(a);
        ep.outgoing(&b, 1);
        assert_eq!(ep.rejected(&b, 1), None);
        assert_eq!(ep.peer(&b), None);
        ep.outgoing(&b, 2);
        ep.closed(&b, 1); // another socket: no effect
        assert_eq!(ep.peer(&b), Some(PeerState::Requested { socket: 2 }));
    }

    #[test_log::test]
    fn unaddressable_peer_is_accepted() {
        let mut ep = Endpoint::new(addr("h:1:0"));
        assert_eq!(
            ep.incoming(None, 0, 1),
            IncomingDecision::Accept {
                crossed_outgoing: None
            }
        );
    }
}
