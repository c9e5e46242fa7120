//! network-transport-tcp 0.8, sans-IO.
//!
//! What a Haskell `network-transport-tcp` endpoint puts on a TCP socket,
//! in three layers that never touch a socket or a clock:
//!
//! - [`wire`]: the byte codec ([`Unit`]) and an incremental
//!   [`StreamDecoder`] for one direction of one TCP connection.
//! - [`connection`]: the state machine of one TCP connection
//!   ([`Connection`]): handshake, lightweight connections, the CloseSocket
//!   handshake, CloseEndPoint, probing.
//! - [`endpoint`]: decisions that need all connections of a local endpoint
//!   ([`Endpoint`]): crossed connection requests, one socket per peer.
//!
//! The reference is `/work/shared/dp-vectors/README.md` section 1 and the
//! upstream sources (TCP.hs, TCP/Internal.hs).

pub mod address;
pub mod connection;
pub mod endpoint;
pub mod error;
pub mod wire;

pub use connection::{
    Connection, ConnectionState, Event, RejectReason, TimeoutKind, DEFAULT_PROBE_TIMEOUT,
};
pub use endpoint::{Endpoint, IncomingDecision, OutgoingDecision, PeerState, SocketId};

pub use address::{EndPointAddress, EndPointId};
pub use error::{AddressError, CommandError, DecodeError, ProtocolError};
pub use wire::{
    encode_data, ConnectionRequest, ConnectionResponse, ControlHeader, Role, StreamDecoder, Unit,
    FIRST_DATA_LCID, PROTOCOL_VERSION,
};
