//! A plain distributed-process 0.7.8 node, for interop tests.
//!
//! No Haskell toolchain is available where kaisui is tested, so this crate
//! plays the Haskell side: a [`PlainNode`] is one network-transport-tcp
//! endpoint (`host:port:0`) driven by [`dp_wire::ntt::Connection`], with
//! distributed-process semantics on top (one lightweight connection per
//! `(from, to)` Identifier pair, a node controller, processes with
//! mailboxes). It does what the captures in `shared/dp-vectors` show a
//! Haskell node doing, and nothing more.
//!
//! Layout:
//! - [`node`]: sockets, the NT-TCP endpoint, lightweight connections,
//!   processes;
//! - `nc`: the node controller (a match over `ProcessSignal`), with the
//!   link and monitor tables of Node.hs;
//! - [`exit`]: why a process ended ([`ExitReason`]) and the `DiedReason`
//!   its node reports for it;
//! - [`msg`]: messages built and chunked as GHC builds them.

pub mod exit;
pub mod msg;
mod nc;
pub mod node;

pub use exit::ExitReason;
pub use msg::{GhcPut, Messages};
pub use node::{PlainNode, PlainNodeConfig, Process, ReceivedStream, SocketSummary};

/// Why an operation of the peer failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Nothing arrived (or no connection was made) in time.
    #[error("timed out")]
    Timeout,
    /// A socket operation failed (bind, connect).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The other side broke or refused the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The node, the process or the connection is gone.
    #[error("closed")]
    Closed,
}
