//! Byte-level codec: every unit network-transport-tcp writes on a socket,
//! and an incremental decoder for one direction of one TCP connection.

use bytes::{Buf, Bytes, BytesMut};

use super::address::{EndPointAddress, EndPointId};
use super::error::{AddressError, DecodeError};
use crate::Limits;

/// The only protocol version network-transport-tcp 0.8 speaks
/// (`currentProtocolVersion`).
pub const PROTOCOL_VERSION: u32 = 0;

/// Lightweight connection ids below this are control headers
/// (`firstNonReservedLightweightConnectionId`).
pub const FIRST_DATA_LCID: u32 = 1024;

/// Which side of the TCP connection wrote the bytes being decoded.
///
/// The two directions carry different prefixes: the initiator (the side
/// that called `connect`) starts with a [`ConnectionRequest`], the listener
/// with a [`ConnectionResponse`]. After the handshake both carry the same
/// framed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that opened the TCP connection and sends the request.
    Initiator,
    /// The side that accepted the TCP connection and sends the response.
    Listener,
}

/// The handshake an initiator sends right after connecting
/// (`socketToEndPoint`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConnectionRequest {
    /// Protocol version 0, the one every 0.8 peer sends.
    V0 {
        /// The listener-side endpoint we want to reach.
        target: EndPointId,
        /// The initiator's own address, as raw bytes (it is only parsed by
        /// the listener). Empty for an unaddressable transport.
        source_address: Bytes,
    },
    /// Any other version: the listener answers `UnsupportedVersion` and
    /// skips `handshake` (whose layout it cannot know).
    OtherVersion {
        /// The announced version (never 0).
        version: u32,
        /// The opaque handshake body.
        handshake: Bytes,
    },
}

impl ConnectionRequest {
    /// A version-0 request from `source` (or an unaddressable one with
    /// `None`) to endpoint `target`.
    pub fn v0(target: EndPointId, source: Option<&EndPointAddress>) -> Self {
        Self::V0 {
            target,
            source_address: source.map(EndPointAddress::to_bytes).unwrap_or_default(),
        }
    }

    /// The announced protocol version.
    pub fn version(&self) -> u32 {
        match self {
            Self::V0 { .. } => PROTOCOL_VERSION,
            Self::OtherVersion { version, .. } => *version,
        }
    }

    /// Parses a V0 request's source address; `Ok(None)` for the
    /// unaddressable form (and for other versions).
    pub fn source(&self) -> Result<Option<EndPointAddress>, AddressError> {
        match self {
            Self::V0 { source_address, .. } if !source_address.is_empty() => {
                EndPointAddress::parse(source_address).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Appends the wire form to `out`.
    ///
    /// # Panics
    /// If the address or handshake is longer than a u32 can express, which
    /// no valid address is.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::V0 {
                target,
                source_address,
            } => {
                let addr_len = len_u32(source_address.len());
                put_u32(out, PROTOCOL_VERSION);
                put_u32(out, addr_len.checked_add(8).expect("address too long"));
                put_u32(out, *target);
                put_u32(out, addr_len);
                out.extend_from_slice(source_address);
            }
            Self::OtherVersion { version, handshake } => {
                put_u32(out, *version);
                put_u32(out, len_u32(handshake.len()));
                out.extend_from_slice(handshake);
            }
        }
    }
}

/// The listener's one-word answer to a [`ConnectionRequest`]
/// (`ConnectionRequestResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConnectionResponse {
    /// `0`: the socket now carries the framed stream both ways.
    Accepted,
    /// `1`: no endpoint with the requested id; the listener closes.
    Invalid,
    /// `2`: both sides connected at once and this socket lost the tie break.
    Crossed,
    /// `3`: only with `tcpCheckPeerHost`; the listener closes.
    HostMismatch {
        /// The host the initiator claimed in its address.
        claimed_host: Bytes,
        /// The numeric host the listener saw.
        numeric_host: Bytes,
        /// The name the listener resolved that to.
        resolved_host: Bytes,
    },
    /// `0xFFFFFFFF` + the version the listener speaks; the initiator may
    /// send a new request on the same socket.
    UnsupportedVersion {
        /// The listener's version.
        supported: u32,
    },
}

const RESP_ACCEPTED: u32 = 0;
const RESP_INVALID: u32 = 1;
const RESP_CROSSED: u32 = 2;
const RESP_HOST_MISMATCH: u32 = 3;
const RESP_UNSUPPORTED_VERSION: u32 = 0xFFFF_FFFF;

impl ConnectionResponse {
    /// Appends the wire form to `out`.
    ///
    /// # Panics
    /// If a HostMismatch string is longer than a u32 can express.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Accepted => put_u32(out, RESP_ACCEPTED),
            Self::Invalid => put_u32(out, RESP_INVALID),
            Self::Crossed => put_u32(out, RESP_CROSSED),
            Self::HostMismatch {
                claimed_host,
                numeric_host,
                resolved_host,
            } => {
                put_u32(out, RESP_HOST_MISMATCH);
                for s in [claimed_host, numeric_host, resolved_host] {
                    put_u32(out, len_u32(s.len()));
                    out.extend_from_slice(s);
                }
            }
            Self::UnsupportedVersion { supported } => {
                put_u32(out, RESP_UNSUPPORTED_VERSION);
                put_u32(out, *supported);
            }
        }
    }
}

/// A control header on the framed stream (a first word below 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlHeader {
    /// `0 lcid`: the sender opened lightweight connection `lcid`.
    CreatedNewConnection(u32),
    /// `1 lcid`: the sender closed lightweight connection `lcid`.
    CloseConnection(u32),
    /// `2 last`: the sender wants to close the socket; `last` is the last
    /// lcid it received in a CreatedNewConnection (0 if none).
    CloseSocket(u32),
    /// `3`: the sender's endpoint is closing; the socket goes down.
    CloseEndPoint,
    /// `4`: "are you still there?"
    ProbeSocket,
    /// `5`: answer to ProbeSocket.
    ProbeSocketAck,
}

impl ControlHeader {
    /// The header's code (first word).
    pub fn code(&self) -> u32 {
        match self {
            Self::CreatedNewConnection(_) => 0,
            Self::CloseConnection(_) => 1,
            Self::CloseSocket(_) => 2,
            Self::CloseEndPoint => 3,
            Self::ProbeSocket => 4,
            Self::ProbeSocketAck => 5,
        }
    }

    /// The argument word, for the three headers that have one.
    pub fn argument(&self) -> Option<u32> {
        match self {
            Self::CreatedNewConnection(x) | Self::CloseConnection(x) | Self::CloseSocket(x) => {
                Some(*x)
            }
            _ => None,
        }
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.code());
        if let Some(arg) = self.argument() {
            put_u32(out, arg);
        }
    }
}

/// Every protocol unit that can appear on a network-transport-tcp socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Initiator → listener handshake.
    ConnectionRequest(ConnectionRequest),
    /// Listener → initiator answer.
    ConnectionResponse(ConnectionResponse),
    /// A control header on the framed stream.
    Control(ControlHeader),
    /// A data frame on lightweight connection `lcid` (>= 1024).
    Data {
        /// Lightweight connection id.
        lcid: u32,
        /// The payload of one `send`.
        payload: Bytes,
    },
}

impl Unit {
    /// Appends the wire form to `out`.
    ///
    /// # Panics
    /// If a length does not fit a u32 (a payload of 4 GiB or more).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::ConnectionRequest(r) => r.encode(out),
            Self::ConnectionResponse(r) => r.encode(out),
            Self::Control(c) => c.encode(out),
            Self::Data { lcid, payload } => encode_data(*lcid, payload, out),
        }
    }

    /// Short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ConnectionRequest(_) => "ConnectionRequest",
            Self::ConnectionResponse(_) => "ConnectionResponse",
            Self::Control(ControlHeader::CreatedNewConnection(_)) => "CreatedNewConnection",
            Self::Control(ControlHeader::CloseConnection(_)) => "CloseConnection",
            Self::Control(ControlHeader::CloseSocket(_)) => "CloseSocket",
            Self::Control(ControlHeader::CloseEndPoint) => "CloseEndPoint",
            Self::Control(ControlHeader::ProbeSocket) => "ProbeSocket",
            Self::Control(ControlHeader::ProbeSocketAck) => "ProbeSocketAck",
            Self::Data { .. } => "Data",
        }
    }
}

/// Appends a data frame without building a [`Unit`] (saves a copy of the
/// payload into `Bytes`).
///
/// # Panics
/// If `payload` is 4 GiB or longer.
pub fn encode_data(lcid: u32, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(8 + payload.len());
    put_u32(out, lcid);
    put_u32(out, len_u32(payload.len()));
    out.extend_from_slice(payload);
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).expect("length does not fit the u32 wire field")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Expecting a connection request (initiator stream).
    Request,
    /// Expecting a connection response (listener stream).
    Response,
    /// Control headers and data frames.
    Framed,
    /// Nothing more may follow; the name says what ended the stream.
    Ended(&'static str),
    /// An error was returned; it is returned again.
    Failed,
}

/// Incremental decoder for one direction of one TCP connection.
///
/// It follows the protocol's phases from what it sees in its own direction:
///
/// * initiator stream: a [`ConnectionRequest`]; after a version-0 request the
///   stream is framed (if the listener rejected it, the initiator sends
///   nothing more, so there is nothing to misread). After a request with
///   another version the initiator expects `UnsupportedVersion` and may send
///   a new request, so the decoder expects another request.
/// * listener stream: a [`ConnectionResponse`]; `Accepted` switches to the
///   framed stream, `UnsupportedVersion` expects another response (to the
///   initiator's next request), and any rejection ends the stream.
/// * framed stream: ends after `CloseEndPoint` (the sender shuts the socket
///   down). `CloseSocket` does not end it: the sender may return to Valid
///   (README 1.5, capture 12).
///
/// Lengths are checked against [`Limits`] as soon as their word arrives, and
/// the buffer only grows by bytes actually pushed.
#[derive(Debug)]
pub struct StreamDecoder {
    role: Role,
    limits: Limits,
    phase: Phase,
    buf: BytesMut,
    error: Option<DecodeError>,
}

impl StreamDecoder {
    /// A decoder for bytes written by `sender_role`.
    pub fn new(sender_role: Role, limits: Limits) -> Self {
        let phase = match sender_role {
            Role::Initiator => Phase::Request,
            Role::Listener => Phase::Response,
        };
        Self {
            role: sender_role,
            limits,
            phase,
            buf: BytesMut::new(),
            error: None,
        }
    }

    /// A decoder that starts directly in the framed stream (e.g. for a
    /// capture cut after the handshake).
    pub fn new_framed(sender_role: Role, limits: Limits) -> Self {
        let mut d = Self::new(sender_role, limits);
        d.phase = Phase::Framed;
        d
    }

    /// Whose bytes this decoder reads.
    pub fn sender_role(&self) -> Role {
        self.role
    }

    /// Whether the handshake is over and the framed stream has begun.
    pub fn is_framed(&self) -> bool {
        self.phase == Phase::Framed
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Decodes the next unit; `Ok(None)` means more bytes are needed.
    ///
    /// After an error every later call returns [`DecodeError::Failed`].
    pub fn next_unit(&mut self) -> Result<Option<Unit>, DecodeError> {
        if let Some(e) = &self.error {
            return Err(DecodeError::Failed(Box::new(e.clone())));
        }
        let res = match self.phase {
            Phase::Request => self.decode_request(),
            Phase::Response => self.decode_response(),
            Phase::Framed => self.decode_framed(),
            Phase::Ended(after) => {
                if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(DecodeError::TrailingBytes {
                        after,
                        len: self.buf.len(),
                    })
                }
            }
            Phase::Failed => unreachable!("error is set whenever phase is Failed"),
        };
        match res {
            Err(e) => {
                tracing::debug!(error = %e, role = ?self.role, "NT-TCP stream decode error");
                self.phase = Phase::Failed;
                self.error = Some(e.clone());
                Err(e)
            }
            ok => ok,
        }
    }

    fn peek_u32(&self, at: usize) -> Option<u32> {
        let b = self.buf.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn decode_request(&mut self) -> Result<Option<Unit>, DecodeError> {
        let (Some(version), Some(hlen)) = (self.peek_u32(0), self.peek_u32(4)) else {
            return Ok(None);
        };
        let max_addr = self.limits.max_address_len;
        if version == PROTOCOL_VERSION {
            if hlen < 8 {
                return Err(DecodeError::BadHandshakeLength {
                    version,
                    len: hlen,
                    min: 8,
                    max: max_addr.saturating_add(8),
                });
            }
            if hlen - 8 > max_addr {
                return Err(DecodeError::AddressTooLong {
                    len: hlen - 8,
                    max: max_addr,
                });
            }
            let Some(addr_len) = self.peek_u32(12) else {
                return Ok(None);
            };
            if addr_len != hlen - 8 {
                return Err(DecodeError::AddressLengthMismatch {
                    handshake_len: hlen,
                    address_len: addr_len,
                });
            }
            let total = 8 + hlen as usize;
            if self.buf.len() < total {
                return Ok(None);
            }
            let target = self.peek_u32(8).unwrap_or_default();
            self.buf.advance(16);
            let source_address = self.buf.split_to(addr_len as usize).freeze();
            self.phase = Phase::Framed;
            Ok(Some(Unit::ConnectionRequest(ConnectionRequest::V0 {
                target,
                source_address,
            })))
        } else {
            // The layout of another version's handshake is unknown, so bound
            // it by the largest v0 handshake we would accept.
            let max = max_addr.saturating_add(8);
            if hlen > max {
                return Err(DecodeError::BadHandshakeLength {
                    version,
                    len: hlen,
                    min: 0,
                    max,
                });
            }
            let total = 8 + hlen as usize;
            if self.buf.len() < total {
                return Ok(None);
            }
            self.buf.advance(8);
            let handshake = self.buf.split_to(hlen as usize).freeze();
            Ok(Some(Unit::ConnectionRequest(
                ConnectionRequest::OtherVersion { version, handshake },
            )))
        }
    }

    fn decode_response(&mut self) -> Result<Option<Unit>, DecodeError> {
        let Some(code) = self.peek_u32(0) else {
            return Ok(None);
        };
        let resp = match code {
            RESP_ACCEPTED => {
                self.buf.advance(4);
                self.phase = Phase::Framed;
                ConnectionResponse::Accepted
            }
            RESP_INVALID => {
                self.buf.advance(4);
                self.phase = Phase::Ended("ConnectionRequestInvalid");
                ConnectionResponse::Invalid
            }
            RESP_CROSSED => {
                self.buf.advance(4);
                self.phase = Phase::Ended("ConnectionRequestCrossed");
                ConnectionResponse::Crossed
            }
            RESP_UNSUPPORTED_VERSION => {
                let Some(supported) = self.peek_u32(4) else {
                    return Ok(None);
                };
                self.buf.advance(8);
                ConnectionResponse::UnsupportedVersion { supported }
            }
            RESP_HOST_MISMATCH => {
                // Three length-prefixed strings; check every length before
                // waiting for its bytes.
                let max = self.limits.max_address_len;
                let mut at = 4usize;
                let mut spans = [(0usize, 0usize); 3];
                for (field, span) in spans.iter_mut().enumerate() {
                    let Some(len) = self.peek_u32(at) else {
                        return Ok(None);
                    };
                    if len > max {
                        return Err(DecodeError::HostMismatchFieldTooLong {
                            field: field as u8,
                            len,
                            max,
                        });
                    }
                    *span = (at + 4, len as usize);
                    at += 4 + len as usize;
                }
                if self.buf.len() < at {
                    return Ok(None);
                }
                let frozen = self.buf.split_to(at).freeze();
                let take = |(start, len): (usize, usize)| frozen.slice(start..start + len);
                self.phase = Phase::Ended("ConnectionRequestHostMismatch");
                ConnectionResponse::HostMismatch {
                    claimed_host: take(spans[0]),
                    numeric_host: take(spans[1]),
                    resolved_host: take(spans[2]),
                }
            }
            code => return Err(DecodeError::UnknownResponse { code }),
        };
        Ok(Some(Unit::ConnectionResponse(resp)))
    }

    fn decode_framed(&mut self) -> Result<Option<Unit>, DecodeError> {
        let Some(word) = self.peek_u32(0) else {
            return Ok(None);
        };
        if word >= FIRST_DATA_LCID {
            let Some(len) = self.peek_u32(4) else {
                return Ok(None);
            };
            if len > self.limits.max_frame_len {
                return Err(DecodeError::FrameTooLong {
                    lcid: word,
                    len,
                    max: self.limits.max_frame_len,
                });
            }
            if self.buf.len() < 8 + len as usize {
                return Ok(None);
            }
            self.buf.advance(8);
            let payload = self.buf.split_to(len as usize).freeze();
            return Ok(Some(Unit::Data {
                lcid: word,
                payload,
            }));
        }
        let with_arg = |f: fn(u32) -> ControlHeader| self.peek_u32(4).map(f);
        let (header, size) = match word {
            0 => (with_arg(ControlHeader::CreatedNewConnection), 8),
            1 => (with_arg(ControlHeader::CloseConnection), 8),
            2 => (with_arg(ControlHeader::CloseSocket), 8),
            3 => (Some(ControlHeader::CloseEndPoint), 4),
            4 => (Some(ControlHeader::ProbeSocket), 4),
            5 => (Some(ControlHeader::ProbeSocketAck), 4),
            code => return Err(DecodeError::InvalidControlHeader { code }),
        };
        let Some(header) = header else {
            return Ok(None);
        };
        self.buf.advance(size);
        if header == ControlHeader::CloseEndPoint {
            self.phase = Phase::Ended("CloseEndPoint");
        }
        Ok(Some(Unit::Control(header)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hexd(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    fn decode_all(role: Role, bytes: &[u8]) -> Result<Vec<Unit>, DecodeError> {
        let mut d = StreamDecoder::new(role, Limits::default());
        d.push(bytes);
        let mut out = vec![];
        while let Some(u) = d.next_unit()? {
            out.push(u);
        }
        assert_eq!(d.buffered(), 0, "left over");
        Ok(out)
    }

    fn enc(u: &Unit) -> Vec<u8> {
        let mut v = vec![];
        u.encode(&mut v);
        v
    }

    #[test_log::test]
    fn request_matches_capture() {
        let bytes = hexd("00000000 00000019 00000000 00000011 3132372e302e302e313a31303530313a30");
        let units = decode_all(Role::Initiator, &bytes).unwrap();
        let addr: EndPointAddress = "127.0.0.1:10501:0".parse().unwrap();
        let want = Unit::ConnectionRequest(ConnectionRequest::v0(0, Some(&addr)));
        assert_eq!(units, vec![want.clone()]);
        assert_eq!(enc(&want), bytes);
        let Unit::ConnectionRequest(r) = &units[0] else {
            unreachable!()
        };
        assert_eq!(r.source().unwrap(), Some(addr));
        assert_eq!(r.version(), 0);
    }

    #[test_log::test]
    fn unaddressable_request() {
        let bytes = hexd("00000000 00000008 00000007 00000000");
        let units = decode_all(Role::Initiator, &bytes).unwrap();
        let want = Unit::ConnectionRequest(ConnectionRequest::v0(7, None));
        assert_eq!(units, vec![want.clone()]);
        assert_eq!(enc(&want), bytes);
        let Unit::ConnectionRequest(r) = &units[0] else {
            unreachable!()
        };
        assert_eq!(r.source().unwrap(), None);
    }

    #[test_log::test]
    fn other_version_then_v0_request() {
        let mut bytes = hexd("00000001 00000003 aabbcc");
        bytes.extend(hexd("00000000 00000008 00000000 00000000"));
        let units = decode_all(Role::Initiator, &bytes).unwrap();
        assert_eq!(
            units[0],
            Unit::ConnectionRequest(ConnectionRequest::OtherVersion {
                version: 1,
                handshake: Bytes::from_static(&[0xaa, 0xbb, 0xcc])
            })
        );
        assert_eq!(
            units[1],
            Unit::ConnectionRequest(ConnectionRequest::v0(0, None))
        );
    }

    #[test_log::test]
    fn responses_encode_as_documented() {
        let cases: &[(ConnectionResponse, &str)] = &[
            (ConnectionResponse::Accepted, "00000000"),
            (ConnectionResponse::Invalid, "00000001"),
            (ConnectionResponse::Crossed, "00000002"),
            (
                ConnectionResponse::UnsupportedVersion { supported: 0 },
                "ffffffff00000000",
            ),
            (
                ConnectionResponse::HostMismatch {
                    claimed_host: Bytes::from_static(b"a"),
                    numeric_host: Bytes::from_static(b""),
                    resolved_host: Bytes::from_static(b"bc"),
                },
                "00000003 00000001 61 00000000 00000002 6263",
            ),
        ];
        for (resp, hex) in cases {
            let u = Unit::ConnectionResponse(resp.clone());
            assert_eq!(enc(&u), hexd(hex), "{resp:?}");
            assert_eq!(decode_all(Role::Listener, &hexd(hex)).unwrap(), vec![u]);
        }
    }

    #[test_log::test]
    fn unsupported_version_then_accepted_then_framed() {
        let bytes = hexd("ffffffff00000000 00000000 0000000000000400");
        let units = decode_all(Role::Listener, &bytes).unwrap();
        assert_eq!(units.len(), 3);
        assert_eq!(
            units[2],
            Unit::Control(ControlHeader::CreatedNewConnection(1024))
        );
    }

    #[test_log::test]
    fn control_headers_and_data() {
        let cases: &[(Unit, &str)] = &[
            (
                Unit::Control(ControlHeader::CreatedNewConnection(1024)),
                "0000000000000400",
            ),
            (
                Unit::Control(ControlHeader::CloseConnection(1025)),
                "0000000100000401",
            ),
            (
                Unit::Control(ControlHeader::CloseSocket(0)),
                "0000000200000000",
            ),
            (Unit::Control(ControlHeader::ProbeSocket), "00000004"),
            (Unit::Control(ControlHeader::ProbeSocketAck), "00000005"),
            (
                Unit::Data {
                    lcid: 1024,
                    payload: Bytes::from_static(b"hi"),
                },
                "00000400 00000002 6869",
            ),
            (Unit::Control(ControlHeader::CloseEndPoint), "00000003"),
        ];
        let mut all = hexd("00000000");
        for (u, hex) in cases {
            assert_eq!(enc(u), hexd(hex), "{u:?}");
            all.extend(hexd(hex));
        }
        let units = decode_all(Role::Listener, &all).unwrap();
        assert_eq!(units[1..].len(), cases.len());
        for (got, (want, _)) in units[1..].iter().zip(cases) {
            assert_eq!(got, want);
        }
    }

    #[test_log::test]
    fn byte_at_a_time() {
        let bytes = hexd("00000000 00000019 00000000 00000011 3132372e302e302e313a31303530313a30 0000000000000400 00000400 00000002 6869");
        let mut d = StreamDecoder::new(Role::Initiator, Limits::default());
        let mut units = vec![];
        for b in &bytes {
            d.push(std::slice::from_ref(b));
            while let Some(u) = d.next_unit().unwrap() {
                units.push(u);
            }
        }
        assert_eq!(units.len(), 3);
        assert_eq!(d.buffered(), 0);
    }

    #[test_log::test]
    fn invalid_control_header() {
        let mut d = StreamDecoder::new_framed(Role::Listener, Limits::default());
        d.push(&hexd("00000006"));
        assert_eq!(
            d.next_unit(),
            Err(DecodeError::InvalidControlHeader { code: 6 })
        );
        assert!(matches!(d.next_unit(), Err(DecodeError::Failed(_))));
        let mut d = StreamDecoder::new_framed(Role::Listener, Limits::default());
        d.push(&hexd("000003ff"));
        assert_eq!(
            d.next_unit(),
            Err(DecodeError::InvalidControlHeader { code: 1023 })
        );
    }

    #[test_log::test]
    fn frame_too_long_is_caught_before_payload_arrives() {
        let limits = Limits {
            max_frame_len: 10,
            ..Limits::default()
        };
        let mut d = StreamDecoder::new_framed(Role::Initiator, limits);
        d.push(&hexd("00000400 0000000b"));
        assert_eq!(
            d.next_unit(),
            Err(DecodeError::FrameTooLong {
                lcid: 1024,
                len: 11,
                max: 10
            })
        );
        // A huge announced length is refused without buffering it.
        let mut d = StreamDecoder::new_framed(Role::Initiator, Limits::default());
        d.push(&hexd("00000400 ffffffff"));
        assert!(matches!(
            d.next_unit(),
            Err(DecodeError::FrameTooLong { len: u32::MAX, .. })
        ));
    }

    #[test_log::test]
    fn address_too_long() {
        let limits = Limits {
            max_address_len: 4,
            ..Limits::default()
        };
        let mut d = StreamDecoder::new(Role::Initiator, limits);
        d.push(&hexd("00000000 0000000d"));
        assert_eq!(
            d.next_unit(),
            Err(DecodeError::AddressTooLong { len: 5, max: 4 })
        );
    }

    #[test_log::test]
    fn bad_handshake_lengths() {
        assert!(matches!(
            decode_all(Role::Initiator, &hexd("00000000 00000007")),
            Err(DecodeError::BadHandshakeLength { len: 7, .. })
        ));
        assert!(matches!(
            decode_all(
                Role::Initiator,
                &hexd("00000000 00000009 00000000 00000002")
            ),
            Err(DecodeError::AddressLengthMismatch {
                handshake_len: 9,
                address_len: 2
            })
        ));
        assert!(matches!(
            decode_all(Role::Initiator, &hexd("00000002 ffffffff")),
            Err(DecodeError::BadHandshakeLength { version: 2, .. })
        ));
    }

    #[test_log::test]
    fn host_mismatch_field_too_long() {
        let limits = Limits {
            max_address_len: 4,
            ..Limits::default()
        };
        let mut d = StreamDecoder::new(Role::Listener, limits);
        d.push(&hexd("00000003 00000001 61 00000005"));
        assert_eq!(
            d.next_unit(),
            Err(DecodeError::HostMismatchFieldTooLong {
                field: 1,
                len: 5,
                max: 4
            })
        );
    }

    #[test_log::test]
    fn unknown_response_and_trailing_bytes() {
        assert_eq!(
            decode_all(Role::Listener, &hexd("00000004")),
            Err(DecodeError::UnknownResponse { code: 4 })
        );
        assert!(matches!(
            decode_all(Role::Listener, &hexd("00000002 00")),
            Err(DecodeError::TrailingBytes {
                after: "ConnectionRequestCrossed",
                len: 1
            })
        ));
        let mut d = StreamDecoder::new_framed(Role::Initiator, Limits::default());
        d.push(&hexd("00000003 00000004"));
        assert!(d.next_unit().unwrap().is_some());
        assert!(matches!(
            d.next_unit(),
            Err(DecodeError::TrailingBytes {
                after: "CloseEndPoint",
                ..
            })
        ));
    }
}
