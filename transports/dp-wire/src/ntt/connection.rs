//! State machine of one TCP connection between two network-transport-tcp
//! endpoints (quinn-proto style: bytes and commands in, bytes and events
//! out, time passed in by the driver).

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::address::{EndPointAddress, EndPointId};
use super::error::{CommandError, ProtocolError};
use super::wire::{
    encode_data, ConnectionRequest, ConnectionResponse, ControlHeader, Role, StreamDecoder, Unit,
    FIRST_DATA_LCID, PROTOCOL_VERSION,
};
use crate::Limits;

/// How long [`Connection::probe`] waits for ProbeSocketAck by default.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a [`Connection`] is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Listener: waiting for the initiator's request.
    AwaitingRequest,
    /// Listener: a request arrived ([`Event::ConnectionRequested`]); the
    /// driver must [`Connection::accept`] or [`Connection::reject`].
    RequestPending,
    /// Initiator: request sent, waiting for the response.
    AwaitingResponse,
    /// Framed stream, usable (`RemoteEndPointValid`).
    Valid,
    /// We sent CloseSocket and wait for the peer's (`RemoteEndPointClosing`).
    Closing,
    /// Orderly end (rejected, closed by handshake, CloseEndPoint); the
    /// driver closes the socket once the transmit buffer is flushed.
    Closed,
    /// Protocol error or dead peer; the driver drops the socket.
    Failed,
}

impl ConnectionState {
    fn name(self) -> &'static str {
        match self {
            Self::AwaitingRequest => "awaiting a connection request",
            Self::RequestPending => "deciding on a connection request",
            Self::AwaitingResponse => "awaiting the connection response",
            Self::Valid => "valid",
            Self::Closing => "closing",
            Self::Closed => "closed",
            Self::Failed => "failed",
        }
    }
}

/// Why a connection request did not lead to a usable socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// No endpoint with the requested id at the listener.
    Invalid,
    /// Crossed with a request in the other direction; use the other socket.
    Crossed,
    /// The listener checks peer hosts and ours did not match.
    HostMismatch {
        /// The host we claimed.
        claimed_host: Bytes,
        /// The numeric host the listener saw.
        numeric_host: Bytes,
        /// What that resolved to.
        resolved_host: Bytes,
    },
    /// The listener does not speak our protocol version 0.
    UnsupportedVersion {
        /// The version it speaks.
        supported: u32,
    },
}

impl RejectReason {
    fn response(&self) -> ConnectionResponse {
        match self.clone() {
            Self::Invalid => ConnectionResponse::Invalid,
            Self::Crossed => ConnectionResponse::Crossed,
            Self::HostMismatch {
                claimed_host,
                numeric_host,
                resolved_host,
            } => ConnectionResponse::HostMismatch {
                claimed_host,
                numeric_host,
                resolved_host,
            },
            Self::UnsupportedVersion { supported } => {
                ConnectionResponse::UnsupportedVersion { supported }
            }
        }
    }
}

/// Which timer declared the peer dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// No ProbeSocketAck within the probe timeout.
    Probe,
    /// Nothing at all received within the liveness timeout.
    Liveness,
}

/// What happened on the connection, for the driver and the layer above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Listener: a valid version-0 request arrived. `from` is `None` for an
    /// unaddressable initiator (the driver makes up an address for it).
    ConnectionRequested {
        /// The endpoint id the initiator wants.
        target: EndPointId,
        /// The initiator's claimed address.
        from: Option<EndPointAddress>,
    },
    /// Initiator: the listener accepted; the socket is Valid.
    Accepted,
    /// Initiator: the listener refused; the socket is Closed.
    Rejected(RejectReason),
    /// The peer opened lightweight connection `lcid` towards us.
    IncomingConnectionOpened(u32),
    /// One `send` of the peer on `lcid`.
    Received {
        /// Lightweight connection id.
        lcid: u32,
        /// The payload.
        payload: Bytes,
    },
    /// The peer closed lightweight connection `lcid` (explicitly or through
    /// CloseSocket/CloseEndPoint).
    IncomingConnectionClosed(u32),
    /// We were Closing, but the peer opened a new lightweight connection
    /// (it had not seen our CloseSocket): the socket is Valid again and
    /// usable for [`Connection::open`] (capture 12).
    CloseCancelled,
    /// The CloseSocket handshake finished; close the TCP socket.
    SocketClosed,
    /// The peer closed its endpoint (CloseEndPoint); close the TCP socket.
    /// If we still had outgoing connections this is a connection loss for
    /// them.
    EndPointClosed {
        /// Our lightweight connections that were still open.
        outgoing_lost: Vec<u32>,
    },
    /// The peer answered our ProbeSocket.
    ProbeAck,
    /// A timer expired; the peer counts as dead and the socket Failed.
    PeerUnresponsive(TimeoutKind),
    /// The socket ended without an orderly close (EOF or I/O error, told to
    /// us through [`Connection::handle_eof`]).
    ConnectionLost,
    /// The peer broke the protocol; the connection ignores further input.
    ProtocolError(ProtocolError),
}

/// One TCP connection's network-transport-tcp state.
///
/// Feed received bytes to [`handle_input`](Self::handle_input), send what
/// [`poll_transmit`](Self::poll_transmit) returns, and act on
/// [`poll_event`](Self::poll_event). Timers go through
/// [`poll_timeout`](Self::poll_timeout) and
/// [`handle_timeout`](Self::handle_timeout).
#[derive(Debug)]
pub struct Connection {
    role: Role,
    state: ConnectionState,
    decoder: StreamDecoder,
    transmit: Vec<u8>,
    events: VecDeque<Event>,
    peer: Option<EndPointAddress>,
    /// Next lcid we hand out; u64 so that exhaustion is visible.
    next_out_lcid: u64,
    outgoing: BTreeSet<u32>,
    incoming: BTreeSet<u32>,
    /// `remoteLastIncoming`: last lcid the peer created, 0 if none.
    last_incoming: u32,
    probe_timeout: Duration,
    probe_deadline: Option<Instant>,
    liveness_timeout: Option<Duration>,
    liveness_deadline: Option<Instant>,
    heard_since_timer: bool,
}

impl Connection {
    fn new(role: Role, limits: Limits, state: ConnectionState) -> Self {
        let peer_role = match role {
            Role::Initiator => Role::Listener,
            Role::Listener => Role::Initiator,
        };
        Self {
            role,
            state,
            decoder: StreamDecoder::new(peer_role, limits),
            transmit: Vec::new(),
            events: VecDeque::new(),
            peer: None,
            next_out_lcid: u64::from(FIRST_DATA_LCID),
            outgoing: BTreeSet::new(),
            incoming: BTreeSet::new(),
            last_incoming: 0,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            probe_deadline: None,
            liveness_timeout: None,
            liveness_deadline: None,
            heard_since_timer: false,
        }
    }

    /// We connected to `target`; queues the version-0 request carrying
    /// `our_address` (`None` = unaddressable).
    pub fn initiator(
        our_address: Option<&EndPointAddress>,
        target: &EndPointAddress,
        limits: Limits,
    ) -> Self {
        let mut c = Self::new(Role::Initiator, limits, ConnectionState::AwaitingResponse);
        c.peer = Some(target.clone());
        ConnectionRequest::v0(target.endpoint_id(), our_address).encode(&mut c.transmit);
        c
    }

    /// We accepted a TCP connection; waits for the initiator's request.
    pub fn listener(limits: Limits) -> Self {
        Self::new(Role::Listener, limits, ConnectionState::AwaitingRequest)
    }

    /// Our side of the TCP connection.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Current state.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// The peer's address: the target for an initiator, the claimed
    /// address for a listener once the request arrived.
    pub fn peer_address(&self) -> Option<&EndPointAddress> {
        self.peer.as_ref()
    }

    /// Our open lightweight connections.
    pub fn outgoing(&self) -> impl Iterator<Item = u32> + '_ {
        self.outgoing.iter().copied()
    }

    /// The peer's open lightweight connections.
    pub fn incoming(&self) -> impl Iterator<Item = u32> + '_ {
        self.incoming.iter().copied()
    }

    /// Sets how long [`probe`](Self::probe) waits for the ack.
    pub fn set_probe_timeout(&mut self, timeout: Duration) {
        self.probe_timeout = timeout;
    }

    /// Declares the peer dead if nothing arrives for `timeout` (`None`
    /// disables it; network-transport-tcp has no such timer). Received bytes
    /// are credited at the next [`handle_timeout`](Self::handle_timeout), so
    /// the check errs on the side of keeping the peer alive.
    pub fn set_liveness_timeout(&mut self, timeout: Option<Duration>, now: Instant) {
        self.liveness_timeout = timeout;
        self.liveness_deadline = timeout.map(|t| now + t);
        self.heard_since_timer = false;
    }

    /// Bytes to write to the socket, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.transmit.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.transmit))
        }
    }

    /// Next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout)
    /// has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.is_live() {
            return None;
        }
        match (self.probe_deadline, self.liveness_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn is_live(&self) -> bool {
        !matches!(
            self.state,
            ConnectionState::Closed | ConnectionState::Failed
        )
    }

    /// Runs expired timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.is_live() {
            return;
        }
        if let (true, Some(t)) = (self.heard_since_timer, self.liveness_timeout) {
            self.liveness_deadline = Some(now + t);
        }
        self.heard_since_timer = false;
        if self.probe_deadline.is_some_and(|d| now >= d) {
            self.dead(TimeoutKind::Probe);
        } else if self.liveness_deadline.is_some_and(|d| now >= d) {
            self.dead(TimeoutKind::Liveness);
        }
    }

    fn dead(&mut self, kind: TimeoutKind) {
        tracing::debug!(?kind, peer = ?self.peer, "NT-TCP peer unresponsive");
        self.state = ConnectionState::Failed;
        self.probe_deadline = None;
        self.liveness_deadline = None;
        self.events.push_back(Event::PeerUnresponsive(kind));
    }

    /// The socket hit EOF or an I/O error. Reports
    /// [`Event::ConnectionLost`] unless the connection already ended.
    pub fn handle_eof(&mut self) {
        if self.is_live() {
            self.state = ConnectionState::Failed;
            self.events.push_back(Event::ConnectionLost);
        }
    }

    /// Listener: accept the pending request.
    pub fn accept(&mut self) -> Result<(), CommandError> {
        if self.state != ConnectionState::RequestPending {
            return Err(CommandError::NoPendingRequest);
        }
        Unit::ConnectionResponse(ConnectionResponse::Accepted).encode(&mut self.transmit);
        self.state = ConnectionState::Valid;
        // Bytes the initiator pipelined behind its request.
        self.process();
        Ok(())
    }

    /// Listener: refuse the pending request; the connection is Closed.
    pub fn reject(&mut self, reason: RejectReason) -> Result<(), CommandError> {
        if self.state != ConnectionState::RequestPending {
            return Err(CommandError::NoPendingRequest);
        }
        Unit::ConnectionResponse(reason.response()).encode(&mut self.transmit);
        self.state = ConnectionState::Closed;
        Ok(())
    }

    fn require_valid(&self) -> Result<(), CommandError> {
        match self.state {
            ConnectionState::Valid => Ok(()),
            ConnectionState::Closing => Err(CommandError::Closing),
            ConnectionState::Closed | ConnectionState::Failed => Err(CommandError::Closed),
            s => Err(CommandError::NotEstablished { state: s.name() }),
        }
    }

    /// Opens a lightweight connection (sends CreatedNewConnection) and
    /// returns its lcid.
    pub fn open(&mut self) -> Result<u32, CommandError> {
        self.require_valid()?;
        let lcid = u32::try_from(self.next_out_lcid).map_err(|_| CommandError::LcidsExhausted)?;
        self.next_out_lcid += 1;
        self.outgoing.insert(lcid);
        ControlHeader::CreatedNewConnection(lcid).encode(&mut self.transmit);
        Ok(lcid)
    }

    /// Sends one message on `lcid` as a single data frame.
    pub fn send(&mut self, lcid: u32, payload: &[u8]) -> Result<(), CommandError> {
        self.require_valid()?;
        if !self.outgoing.contains(&lcid) {
            return Err(CommandError::UnknownLcid { lcid });
        }
        if u32::try_from(payload.len()).is_err() {
            return Err(CommandError::PayloadTooLong { len: payload.len() });
        }
        encode_data(lcid, payload, &mut self.transmit);
        Ok(())
    }

    /// Closes our lightweight connection `lcid`, then starts the
    /// CloseSocket handshake if nothing is open either way
    /// (`closeIfUnused`).
    pub fn close(&mut self, lcid: u32) -> Result<(), CommandError> {
        self.require_valid()?;
        if !self.outgoing.remove(&lcid) {
            return Err(CommandError::UnknownLcid { lcid });
        }
        ControlHeader::CloseConnection(lcid).encode(&mut self.transmit);
        if self.outgoing.is_empty() && self.incoming.is_empty() {
            ControlHeader::CloseSocket(self.last_incoming).encode(&mut self.transmit);
            self.state = ConnectionState::Closing;
        }
        Ok(())
    }

    /// Our endpoint is closing: sends CloseEndPoint; the driver then shuts
    /// the socket down both ways.
    pub fn close_endpoint(&mut self) -> Result<(), CommandError> {
        match self.state {
            ConnectionState::Valid | ConnectionState::Closing => {
                ControlHeader::CloseEndPoint.encode(&mut self.transmit);
                self.state = ConnectionState::Closed;
                Ok(())
            }
            ConnectionState::Closed | ConnectionState::Failed => Err(CommandError::Closed),
            s => Err(CommandError::NotEstablished { state: s.name() }),
        }
    }

    /// Sends ProbeSocket; without a ProbeSocketAck before
    /// `now + probe_timeout` the peer is declared dead.
    pub fn probe(&mut self, now: Instant) -> Result<(), CommandError> {
        self.require_valid()?;
        ControlHeader::ProbeSocket.encode(&mut self.transmit);
        if self.probe_deadline.is_none() {
            self.probe_deadline = Some(now + self.probe_timeout);
        }
        Ok(())
    }

    /// `lastSentId`: the last lcid we created, 0 if none.
    fn last_sent_id(&self) -> u32 {
        if self.next_out_lcid == u64::from(FIRST_DATA_LCID) {
            0
        } else {
            // Never above u32::MAX + 1 - 1.
            (self.next_out_lcid - 1) as u32
        }
    }

    /// Feeds bytes received from the socket.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if !self.is_live() {
            tracing::trace!(len = bytes.len(), state = ?self.state, "NT-TCP input after end ignored");
            return;
        }
        self.heard_since_timer = true;
        self.decoder.push(bytes);
        self.process();
    }

    fn process(&mut self) {
        while matches!(
            self.state,
            ConnectionState::AwaitingRequest
                | ConnectionState::AwaitingResponse
                | ConnectionState::Valid
                | ConnectionState::Closing
        ) {
            match self.decoder.next_unit() {
                Ok(Some(unit)) => {
                    if let Err(e) = self.handle_unit(unit) {
                        self.fail(e);
                    }
                }
                Ok(None) => break,
                Err(e) => self.fail(e.into()),
            }
        }
    }

    fn fail(&mut self, e: ProtocolError) {
        tracing::debug!(error = %e, peer = ?self.peer, "NT-TCP protocol error");
        self.state = ConnectionState::Failed;
        self.probe_deadline = None;
        self.liveness_deadline = None;
        self.events.push_back(Event::ProtocolError(e));
    }

    fn unexpected(&self, unit: &Unit) -> ProtocolError {
        ProtocolError::Unexpected {
            unit: unit.name(),
            state: self.state.name(),
        }
    }

    fn handle_unit(&mut self, unit: Unit) -> Result<(), ProtocolError> {
        tracing::trace!(unit = unit.name(), state = ?self.state, "NT-TCP unit");
        match (self.state, unit) {
            (ConnectionState::AwaitingRequest, Unit::ConnectionRequest(req)) => {
                self.handle_request(req)
            }
            (ConnectionState::AwaitingResponse, Unit::ConnectionResponse(resp)) => {
                self.handle_response(resp);
                Ok(())
            }
            (ConnectionState::Valid | ConnectionState::Closing, Unit::Control(c)) => {
                self.handle_control(c)
            }
            (ConnectionState::Valid | ConnectionState::Closing, Unit::Data { lcid, payload }) => {
                if !self.incoming.contains(&lcid) {
                    return Err(ProtocolError::DataOnUnknownLcid {
                        lcid,
                        len: payload.len(),
                    });
                }
                self.events.push_back(Event::Received { lcid, payload });
                Ok(())
            }
            (_, unit) => Err(self.unexpected(&unit)),
        }
    }

    fn handle_request(&mut self, req: ConnectionRequest) -> Result<(), ProtocolError> {
        match req {
            ConnectionRequest::OtherVersion { version, .. } => {
                // Discard the handshake and wait for another request
                // (the decoder already expects one).
                tracing::debug!(version, "NT-TCP unsupported protocol version requested");
                Unit::ConnectionResponse(ConnectionResponse::UnsupportedVersion {
                    supported: PROTOCOL_VERSION,
                })
                .encode(&mut self.transmit);
                Ok(())
            }
            ConnectionRequest::V0 { target, .. } => {
                let from = req.source().map_err(ProtocolError::BadPeerAddress)?;
                self.peer.clone_from(&from);
                self.state = ConnectionState::RequestPending;
                self.events
                    .push_back(Event::ConnectionRequested { target, from });
                Ok(())
            }
        }
    }

    fn handle_response(&mut self, resp: ConnectionResponse) {
        let reason = match resp {
            ConnectionResponse::Accepted => {
                self.state = ConnectionState::Valid;
                self.events.push_back(Event::Accepted);
                return;
            }
            ConnectionResponse::Invalid => RejectReason::Invalid,
            ConnectionResponse::Crossed => RejectReason::Crossed,
            ConnectionResponse::HostMismatch {
                claimed_host,
                numeric_host,
                resolved_host,
            } => RejectReason::HostMismatch {
                claimed_host,
                numeric_host,
                resolved_host,
            },
            // We only speak version 0, which is what we asked for.
            ConnectionResponse::UnsupportedVersion { supported } => {
                RejectReason::UnsupportedVersion { supported }
            }
        };
        self.state = ConnectionState::Closed;
        self.events.push_back(Event::Rejected(reason));
    }

    fn close_all_incoming(&mut self) {
        for lcid in std::mem::take(&mut self.incoming) {
            self.events.push_back(Event::IncomingConnectionClosed(lcid));
        }
    }

    fn handle_control(&mut self, c: ControlHeader) -> Result<(), ProtocolError> {
        match c {
            ControlHeader::CreatedNewConnection(lcid) => {
                if lcid < FIRST_DATA_LCID {
                    return Err(ProtocolError::ReservedLcid { lcid });
                }
                if self.state == ConnectionState::Closing {
                    // The peer had not seen our CloseSocket (or ignored it):
                    // back to Valid (capture 12).
                    tracing::debug!(
                        lcid,
                        "NT-TCP CreatedNewConnection while closing; back to valid"
                    );
                    self.state = ConnectionState::Valid;
                    self.events.push_back(Event::CloseCancelled);
                }
                if !self.incoming.insert(lcid) {
                    return Err(ProtocolError::DuplicateLcid { lcid });
                }
                self.last_incoming = lcid;
                self.events.push_back(Event::IncomingConnectionOpened(lcid));
            }
            ControlHeader::CloseConnection(lcid) => {
                // In Closing, incoming is empty, so this rejects it too.
                if !self.incoming.remove(&lcid) {
                    return Err(ProtocolError::CloseUnknownLcid { lcid });
                }
                self.events.push_back(Event::IncomingConnectionClosed(lcid));
            }
            ControlHeader::CloseSocket(last_received) => {
                let matches = last_received == self.last_sent_id();
                if self.state == ConnectionState::Valid {
                    // CloseSocket means all the peer's connections are closed.
                    self.close_all_incoming();
                    if !self.outgoing.is_empty() || !matches {
                        tracing::debug!(
                            last_received,
                            last_sent = self.last_sent_id(),
                            outgoing = self.outgoing.len(),
                            "NT-TCP CloseSocket ignored"
                        );
                        return Ok(());
                    }
                    ControlHeader::CloseSocket(self.last_incoming).encode(&mut self.transmit);
                } else if !matches {
                    // Closing: our CreatedNewConnection is still in flight.
                    return Ok(());
                }
                self.state = ConnectionState::Closed;
                self.probe_deadline = None;
                self.liveness_deadline = None;
                self.events.push_back(Event::SocketClosed);
            }
            ControlHeader::CloseEndPoint => {
                self.close_all_incoming();
                let outgoing_lost = std::mem::take(&mut self.outgoing).into_iter().collect();
                self.state = ConnectionState::Closed;
                self.probe_deadline = None;
                self.liveness_deadline = None;
                self.events
                    .push_back(Event::EndPointClosed { outgoing_lost });
            }
            ControlHeader::ProbeSocket => {
                ControlHeader::ProbeSocketAck.encode(&mut self.transmit);
            }
            ControlHeader::ProbeSocketAck => {
                self.probe_deadline = None;
                self.events.push_back(Event::ProbeAck);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ntt::DecodeError;

    fn addr(s: &str) -> EndPointAddress {
        s.parse().unwrap()
    }

    fn hexd(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    fn events(c: &mut Connection) -> Vec<Event> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    fn tx(c: &mut Connection) -> Vec<u8> {
        c.poll_transmit().unwrap_or_default()
    }

    /// Moves pending bytes both ways until both are quiet.
    fn pump(a: &mut Connection, b: &mut Connection) {
        loop {
            let (x, y) = (tx(a), tx(b));
            if x.is_empty() && y.is_empty() {
                return;
            }
            b.handle_input(&x);
            a.handle_input(&y);
        }
    }

    /// A (10501, initiator) connected to B (10502, listener), both Valid.
    fn established() -> (Connection, Connection) {
        let (a_addr, b_addr) = (addr("127.0.0.1:10501:0"), addr("127.0.0.1:10502:0"));
        let mut a = Connection::initiator(Some(&a_addr), &b_addr, Limits::default());
        let mut b = Connection::listener(Limits::default());
        b.handle_input(&tx(&mut a));
        assert_eq!(
            events(&mut b),
            vec![Event::ConnectionRequested {
                target: 0,
                from: Some(a_addr.clone())
            }]
        );
        assert_eq!(b.state(), ConnectionState::RequestPending);
        b.accept().unwrap();
        a.handle_input(&tx(&mut b));
        assert_eq!(events(&mut a), vec![Event::Accepted]);
        assert_eq!(a.state(), ConnectionState::Valid);
        assert_eq!(b.state(), ConnectionState::Valid);
        assert_eq!(b.peer_address(), Some(&a_addr));
        (a, b)
    }

    #[test_log::test]
    fn handshake_bytes_match_capture() {
        let a_addr = addr("127.0.0.1:10501:0");
        let mut a =
            Connection::initiator(Some(&a_addr), &addr("127.0.0.1:10502:0"), Limits::default());
        assert_eq!(
            tx(&mut a),
            hexd("000000000000001900000000000000113132372e302e302e313a31303530313a30")
        );
        assert_eq!(a.state(), ConnectionState::AwaitingResponse);
        assert!(matches!(a.open(), Err(CommandError::NotEstablished { .. })));
    }

    #[test_log::test]
    fn open_send_close_and_close_socket_handshake_initiated_by_a() {
        // Capture 07.
        let (mut a, mut b) = established();
        let lcid = a.open().unwrap();
        assert_eq!(lcid, 1024);
        a.send(lcid, b"only-message").unwrap();
        assert_eq!(
            tx(&mut a),
            hexd("0000000000000400 00000400 0000000c 6f6e6c792d6d657373616765")
        );
        a.close(lcid).unwrap();
        assert_eq!(a.state(), ConnectionState::Closing);
        assert_eq!(tx(&mut a), hexd("0000000100000400 0000000200000000"));
        b.handle_input(&hexd("0000000000000400 00000400 0000000c 6f6e6c792d6d657373616765 0000000100000400 0000000200000000"));
        assert_eq!(
            events(&mut b),
            vec![
                Event::IncomingConnectionOpened(1024),
                Event::Received {
                    lcid: 1024,
                    payload: Bytes::from_static(b"only-message")
                },
                Event::IncomingConnectionClosed(1024),
                Event::SocketClosed
            ]
        );
        assert_eq!(b.state(), ConnectionState::Closed);
        let reply = tx(&mut b);
        assert_eq!(reply, hexd("0000000200000400"));
        a.handle_input(&reply);
        assert_eq!(events(&mut a), vec![Event::SocketClosed]);
        assert_eq!(a.state(), ConnectionState::Closed);
        assert_eq!(a.poll_transmit(), None, "no reply when closing");
    }

    #[test_log::test]
    fn close_socket_handshake_initiated_by_listener() {
        let (mut a, mut b) = established();
        let l = b.open().unwrap();
        pump(&mut a, &mut b);
        b.close(l).unwrap();
        assert_eq!(b.state(), ConnectionState::Closing);
        pump(&mut a, &mut b);
        assert_eq!(
            events(&mut a),
            vec![
                Event::IncomingConnectionOpened(1024),
                Event::IncomingConnectionClosed(1024),
                Event::SocketClosed
            ]
        );
        assert_eq!(events(&mut b), vec![Event::SocketClosed]);
        assert_eq!(
            (a.state(), b.state()),
            (ConnectionState::Closed, ConnectionState::Closed)
        );
    }

    #[test_log::test]
    fn close_socket_ignored_while_we_have_outgoing() {
        let (mut a, mut b) = established();
        let la = a.open().unwrap();
        let lb = b.open().unwrap();
        pump(&mut a, &mut b);
        events(&mut a);
        events(&mut b);
        // B's CloseSocket arrives although A still has an outgoing connection.
        a.handle_input(&hexd("0000000200000400"));
        assert_eq!(events(&mut a), vec![Event::IncomingConnectionClosed(lb)]);
        assert_eq!(a.state(), ConnectionState::Valid);
        assert_eq!(a.poll_transmit(), None);
        a.send(la, b"x").unwrap();
    }

    #[test_log::test]
    fn closing_reverts_to_valid_on_created_new_connection() {
        // Capture 12: B sends CloseSocket(0) while A's CreatedNewConnection
        // is in flight.
        let (mut a, mut b) = established();
        let lb = b.open().unwrap();
        pump(&mut a, &mut b);
        let la = a.open().unwrap(); // not yet delivered
        let a_bytes = tx(&mut a);
        b.close(lb).unwrap();
        assert_eq!(b.state(), ConnectionState::Closing);
        let b_bytes = tx(&mut b);
        assert_eq!(&b_bytes[b_bytes.len() - 8..], hexd("0000000200000000"));
        // Both in flight at once.
        a.handle_input(&b_bytes);
        assert_eq!(a.state(), ConnectionState::Valid, "0 != lastSentId 1024");
        b.handle_input(&a_bytes);
        assert_eq!(b.state(), ConnectionState::Valid);
        assert_eq!(
            events(&mut b),
            vec![Event::CloseCancelled, Event::IncomingConnectionOpened(la)]
        );
        events(&mut a);
        // A closes; now the handshake completes.
        a.close(la).unwrap();
        assert_eq!(a.state(), ConnectionState::Closing);
        pump(&mut a, &mut b);
        assert_eq!(events(&mut b).last(), Some(&Event::SocketClosed));
        assert_eq!(events(&mut a).last(), Some(&Event::SocketClosed));
    }

    #[test_log::test]
    fn closing_ignores_mismatched_close_socket() {
        let (mut a, _b) = established();
        let l = a.open().unwrap();
        a.close(l).unwrap();
        tx(&mut a);
        assert_eq!(a.state(), ConnectionState::Closing);
        assert!(matches!(a.open(), Err(CommandError::Closing)));
        a.handle_input(&hexd("0000000200000000")); // peer never saw 1024
        assert_eq!(a.state(), ConnectionState::Closing);
        a.handle_input(&hexd("0000000200000400"));
        assert_eq!(a.state(), ConnectionState::Closed);
    }

    #[test_log::test]
    fn simultaneous_close_keeps_socket_open() {
        // Capture 10: both close their last connection before hearing of
        // the other's close; no CloseSocket is sent.
        let (mut a, mut b) = established();
        let (la, lb) = (a.open().unwrap(), b.open().unwrap());
        pump(&mut a, &mut b);
        a.close(la).unwrap();
        b.close(lb).unwrap();
        assert_eq!(tx(&mut a), hexd("0000000100000400"));
        assert_eq!(tx(&mut b), hexd("0000000100000400"));
        a.handle_input(&hexd("0000000100000400"));
        b.handle_input(&hexd("0000000100000400"));
        assert_eq!(
            (a.state(), b.state()),
            (ConnectionState::Valid, ConnectionState::Valid)
        );
        a.close_endpoint().unwrap();
        assert_eq!(tx(&mut a), hexd("00000003"));
        b.handle_input(&hexd("00000003"));
        assert_eq!(
            events(&mut b).last(),
            Some(&Event::EndPointClosed {
                outgoing_lost: vec![]
            })
        );
    }

    #[test_log::test]
    fn close_endpoint_closes_incoming_and_reports_lost_outgoing() {
        // Capture 08.
        let (mut a, mut b) = established();
        let la = a.open().unwrap();
        let lb = b.open().unwrap();
        pump(&mut a, &mut b);
        events(&mut b);
        b.handle_input(&hexd("00000003"));
        assert_eq!(
            events(&mut b),
            vec![
                Event::IncomingConnectionClosed(la),
                Event::EndPointClosed {
                    outgoing_lost: vec![lb]
                }
            ]
        );
        assert_eq!(b.state(), ConnectionState::Closed);
        b.handle_input(&hexd("00000004"));
        assert_eq!(b.poll_event(), None, "input after close is ignored");
    }

    #[test_log::test]
    fn probe_ack() {
        let (mut a, mut b) = established();
        let now = Instant::now();
        a.set_probe_timeout(Duration::from_secs(1));
        a.probe(now).unwrap();
        assert_eq!(a.poll_timeout(), Some(now + Duration::from_secs(1)));
        pump(&mut a, &mut b);
        assert_eq!(events(&mut a), vec![Event::ProbeAck]);
        assert_eq!(a.poll_timeout(), None);
        a.handle_timeout(now + Duration::from_secs(5));
        assert_eq!(a.state(), ConnectionState::Valid);
    }

    #[test_log::test]
    fn probe_timeout() {
        let (mut a, _b) = established();
        let now = Instant::now();
        a.probe(now).unwrap();
        assert_eq!(tx(&mut a), hexd("00000004"));
        a.handle_timeout(now + DEFAULT_PROBE_TIMEOUT / 2);
        assert_eq!(a.poll_event(), None);
        a.handle_timeout(now + DEFAULT_PROBE_TIMEOUT);
        assert_eq!(
            events(&mut a),
            vec![Event::PeerUnresponsive(TimeoutKind::Probe)]
        );
        assert_eq!(a.state(), ConnectionState::Failed);
        assert_eq!(a.poll_timeout(), None);
    }

    #[test_log::test]
    fn liveness_timeout() {
        let (mut a, mut b) = established();
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        a.set_liveness_timeout(Some(3 * s), t0);
        assert_eq!(a.poll_timeout(), Some(t0 + 3 * s));
        b.probe(t0).unwrap(); // any traffic counts
        pump(&mut a, &mut b);
        a.handle_timeout(t0 + 2 * s);
        assert_eq!(a.poll_timeout(), Some(t0 + 5 * s));
        a.handle_timeout(t0 + 4 * s);
        assert_eq!(a.state(), ConnectionState::Valid);
        a.handle_timeout(t0 + 5 * s);
        assert_eq!(
            events(&mut a),
            vec![Event::PeerUnresponsive(TimeoutKind::Liveness)]
        );
    }

    #[test_log::test]
    fn listener_version_negotiation() {
        let mut b = Connection::listener(Limits::default());
        b.handle_input(&hexd("00000007 00000002 abcd"));
        assert_eq!(tx(&mut b), hexd("ffffffff00000000"));
        assert_eq!(b.state(), ConnectionState::AwaitingRequest);
        assert_eq!(b.poll_event(), None);
        b.handle_input(&hexd(
            "000000000000001900000000000000113132372e302e302e313a31303530313a30",
        ));
        assert!(matches!(
            events(&mut b)[..],
            [Event::ConnectionRequested { target: 0, .. }]
        ));
    }

    #[test_log::test]
    fn initiator_sees_unsupported_version_as_rejection() {
        let mut a = Connection::initiator(None, &addr("h:1:0"), Limits::default());
        assert_eq!(tx(&mut a), hexd("00000000 00000008 00000000 00000000"));
        a.handle_input(&hexd("ffffffff00000001"));
        assert_eq!(
            events(&mut a),
            vec![Event::Rejected(RejectReason::UnsupportedVersion {
                supported: 1
            })]
        );
        assert_eq!(a.state(), ConnectionState::Closed);
    }

    #[test_log::test]
    fn rejections() {
        for (bytes, reason) in [
            ("00000001", RejectReason::Invalid),
            ("00000002", RejectReason::Crossed),
            (
                "00000003 00000001 61 00000001 62 00000001 63",
                RejectReason::HostMismatch {
                    claimed_host: Bytes::from_static(b"a"),
                    numeric_host: Bytes::from_static(b"b"),
                    resolved_host: Bytes::from_static(b"c"),
                },
            ),
        ] {
            let mut b = Connection::listener(Limits::default());
            b.handle_input(&hexd("00000000 00000008 00000000 00000000"));
            assert!(matches!(
                events(&mut b)[..],
                [Event::ConnectionRequested { from: None, .. }]
            ));
            b.reject(reason.clone()).unwrap();
            assert_eq!(tx(&mut b), hexd(bytes));
            assert_eq!(b.state(), ConnectionState::Closed);
            let mut a = Connection::initiator(None, &addr("h:1:0"), Limits::default());
            a.handle_input(&hexd(bytes));
            assert_eq!(events(&mut a), vec![Event::Rejected(reason)]);
        }
    }

    #[test_log::test]
    fn listener_processes_bytes_pipelined_behind_request() {
        let mut b = Connection::listener(Limits::default());
        b.handle_input(&hexd(
            "00000000 00000008 00000000 00000000 0000000000000400",
        ));
        assert_eq!(events(&mut b).len(), 1);
        b.accept().unwrap();
        assert_eq!(events(&mut b), vec![Event::IncomingConnectionOpened(1024)]);
        assert_eq!(b.accept(), Err(CommandError::NoPendingRequest));
    }

    #[test_log::test]
    fn unparsable_address_is_refused_without_reply() {
        let mut b = Connection::listener(Limits::default());
        b.handle_input(&hexd("00000000 0000000b 00000000 00000003 616263"));
        assert!(matches!(
            events(&mut b)[..],
            [Event::ProtocolError(ProtocolError::BadPeerAddress(
                crate::ntt::AddressError::MissingColons { .. }
            ))]
        ));
        assert_eq!(b.state(), ConnectionState::Failed);
        assert_eq!(b.poll_transmit(), None);
    }

    fn expect_error(input: &str, want: ProtocolError) {
        let (_a, mut b) = established();
        b.handle_input(&hexd(input));
        let evs = events(&mut b);
        assert_eq!(evs.last(), Some(&Event::ProtocolError(want)), "{evs:?}");
        assert_eq!(b.state(), ConnectionState::Failed);
        b.handle_input(&hexd("0000000000000400"));
        assert_eq!(b.poll_event(), None, "further input is refused");
    }

    #[test_log::test]
    fn protocol_errors() {
        expect_error(
            "00000009",
            ProtocolError::Decode(DecodeError::InvalidControlHeader { code: 9 }),
        );
        expect_error(
            "0000000100000400",
            ProtocolError::CloseUnknownLcid { lcid: 1024 },
        );
        expect_error(
            "00000400 00000001 ff",
            ProtocolError::DataOnUnknownLcid { lcid: 1024, len: 1 },
        );
        expect_error(
            "0000000000000400 0000000000000400",
            ProtocolError::DuplicateLcid { lcid: 1024 },
        );
        expect_error("0000000000000005", ProtocolError::ReservedLcid { lcid: 5 });
        expect_error(
            "0000000000000400 00000400 01000001",
            ProtocolError::Decode(DecodeError::FrameTooLong {
                lcid: 1024,
                len: 0x0100_0001,
                max: 16 * 1024 * 1024,
            }),
        );
    }

    #[test_log::test]
    fn close_connection_while_closing_is_an_error() {
        let (mut a, _b) = established();
        let l = a.open().unwrap();
        a.close(l).unwrap();
        a.handle_input(&hexd("0000000100000400"));
        assert_eq!(
            events(&mut a),
            vec![Event::ProtocolError(ProtocolError::CloseUnknownLcid {
                lcid: 1024
            })]
        );
    }

    #[test_log::test]
    fn address_too_long_is_refused() {
        let limits = Limits {
            max_address_len: 8,
            ..Limits::default()
        };
        let mut b = Connection::listener(limits);
        b.handle_input(&hexd("00000000 00000019"));
        assert_eq!(
            events(&mut b),
            vec![Event::ProtocolError(ProtocolError::Decode(
                DecodeError::AddressTooLong { len: 17, max: 8 }
            ))]
        );
    }

    #[test_log::test]
    fn command_errors() {
        let (mut a, _b) = established();
        assert_eq!(
            a.send(1024, b"x"),
            Err(CommandError::UnknownLcid { lcid: 1024 })
        );
        assert_eq!(a.close(1030), Err(CommandError::UnknownLcid { lcid: 1030 }));
        let l1 = a.open().unwrap();
        let l2 = a.open().unwrap();
        assert_eq!((l1, l2), (1024, 1025));
        a.close(l1).unwrap();
        assert_eq!(a.state(), ConnectionState::Valid, "l2 still open");
        assert_eq!(
            a.send(l1, b"x"),
            Err(CommandError::UnknownLcid { lcid: l1 })
        );
        a.close_endpoint().unwrap();
        assert_eq!(a.open(), Err(CommandError::Closed));
        assert_eq!(a.close_endpoint(), Err(CommandError::Closed));
        let mut b = Connection::listener(Limits::default());
        assert!(matches!(
            b.probe(Instant::now()),
            Err(CommandError::NotEstablished { .. })
        ));
    }

    #[test_log::test]
    fn eof_reports_connection_lost_only_when_live() {
        let (mut a, mut b) = established();
        a.handle_eof();
        assert_eq!(events(&mut a), vec![Event::ConnectionLost]);
        b.close_endpoint().unwrap();
        b.handle_eof();
        assert_eq!(b.poll_event(), None);
    }
}
