//! Error types of the network-transport-tcp layer.

use thiserror::Error;

/// Why an endpoint address could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    /// Addresses are ASCII in practice; we require UTF-8 so they can be shown.
    #[error("endpoint address is not UTF-8 (invalid byte at offset {valid_up_to})")]
    NotUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// Fewer than two `:` separators, so there is no `host:port:id`.
    #[error("endpoint address {address:?} lacks the two ':' of host:port:endpointid")]
    MissingColons {
        /// The offending address.
        address: String,
    },
    /// The part after the last `:` is not a decimal u32.
    #[error("endpoint address {address:?} has endpoint id {id:?}, not a decimal u32")]
    BadEndPointId {
        /// The whole address.
        address: String,
        /// The part after the last `:`.
        id: String,
    },
}

/// What was wrong with bytes fed to a [`super::StreamDecoder`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// A connection request's announced handshake length is impossible or
    /// over the limit.
    #[error("connection request (version {version}) announces a handshake of {len} bytes; allowed {min}..={max}")]
    BadHandshakeLength {
        /// Protocol version in the request.
        version: u32,
        /// Announced handshake length.
        len: u32,
        /// Smallest valid value for this version.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// The address length inside a version-0 handshake disagrees with the
    /// handshake length around it.
    #[error("version-0 handshake of {handshake_len} bytes announces an address of {address_len} bytes (must be handshake length - 8)")]
    AddressLengthMismatch {
        /// Announced handshake length.
        handshake_len: u32,
        /// Announced address length.
        address_len: u32,
    },
    /// The peer's address is longer than [`crate::Limits::max_address_len`].
    #[error("peer address of {len} bytes exceeds the limit of {max}")]
    AddressTooLong {
        /// Announced address length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// Unknown connection response code.
    #[error("unknown connection response code {code:#010x}")]
    UnknownResponse {
        /// The u32 received.
        code: u32,
    },
    /// A HostMismatch string is longer than the address limit.
    #[error("HostMismatch field {field} announces {len} bytes, limit {max}")]
    HostMismatchFieldTooLong {
        /// Which of the three strings (0-based).
        field: u8,
        /// Announced length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// A value below 1024 that is not one of the six control headers.
    #[error("invalid control header {code} (codes 0..=5 exist, data lcids start at 1024)")]
    InvalidControlHeader {
        /// The u32 received.
        code: u32,
    },
    /// A data frame longer than [`crate::Limits::max_frame_len`].
    #[error("data frame on lcid {lcid} announces {len} bytes, limit {max}")]
    FrameTooLong {
        /// Lightweight connection id of the frame.
        lcid: u32,
        /// Announced length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// Bytes arrived on a stream that carries nothing more (after a
    /// rejecting response, or after CloseEndPoint/CloseSocket close it).
    #[error("{len} unexpected bytes after {after}")]
    TrailingBytes {
        /// What ended the stream.
        after: &'static str,
        /// How many bytes are buffered.
        len: usize,
    },
    /// A unit was pushed after an earlier error; the decoder stays failed.
    #[error("decoder failed earlier: {0}")]
    Failed(Box<DecodeError>),
}

/// A peer violated the protocol; the [`super::Connection`] refuses further
/// input after reporting it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The byte stream did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The initiator's own address did not parse (the listener closes the
    /// socket without a reply, like network-transport-tcp).
    #[error("connection request carries an unparsable address: {0}")]
    BadPeerAddress(AddressError),
    /// The peer reused an lcid in CreatedNewConnection or went backwards.
    #[error("CreatedNewConnection({lcid}) but lcid {lcid} is already open")]
    DuplicateLcid {
        /// The lcid.
        lcid: u32,
    },
    /// CreatedNewConnection with an lcid below 1024.
    #[error("CreatedNewConnection({lcid}) names a reserved lcid (< 1024)")]
    ReservedLcid {
        /// The lcid.
        lcid: u32,
    },
    /// CloseConnection for an lcid that is not open.
    #[error("CloseConnection({lcid}) but lcid {lcid} is not open")]
    CloseUnknownLcid {
        /// The lcid.
        lcid: u32,
    },
    /// A data frame on an lcid that is not open.
    #[error("data frame of {len} bytes on lcid {lcid}, which is not open")]
    DataOnUnknownLcid {
        /// The lcid.
        lcid: u32,
        /// Payload length.
        len: usize,
    },
    /// A unit that cannot occur in this phase (e.g. a control header
    /// before the handshake finished, or a second Accepted).
    #[error("unexpected {unit} while {state}")]
    Unexpected {
        /// What arrived.
        unit: &'static str,
        /// Our state.
        state: &'static str,
    },
    /// The peer's response named a version we do not speak.
    #[error("peer supports only protocol version {supported}, we speak 0")]
    UnsupportedVersion {
        /// The version the listener offered.
        supported: u32,
    },
}

/// A command could not run in the connection's current state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    /// The handshake has not finished (or was rejected).
    #[error("the connection is not established (state: {state})")]
    NotEstablished {
        /// Our state.
        state: &'static str,
    },
    /// We sent CloseSocket and wait for the peer's answer; network-transport-tcp
    /// blocks new connections until that resolves.
    #[error("the socket is closing; wait for SocketClosed or for the peer to reopen it")]
    Closing,
    /// The connection is closed or failed.
    #[error("the connection is closed")]
    Closed,
    /// `send`/`close` on an lcid we did not open or already closed.
    #[error("lightweight connection {lcid} is not open")]
    UnknownLcid {
        /// The lcid.
        lcid: u32,
    },
    /// All u32 lcids are used up on this socket.
    #[error("lightweight connection ids exhausted on this socket")]
    LcidsExhausted,
    /// A payload longer than a u32 length can express.
    #[error("payload of {len} bytes does not fit a u32 length")]
    PayloadTooLong {
        /// Payload length.
        len: usize,
    },
    /// `accept`/`reject` without a pending request (or on an initiator).
    #[error("no connection request is waiting for an answer")]
    NoPendingRequest,
}
