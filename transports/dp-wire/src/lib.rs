//! The Cloud Haskell wire protocol, sans-IO.
//!
//! Two layers, each a pure codec or state machine with no sockets and no
//! async runtime, so that every test is deterministic:
//!
//! - [`ntt`]: what network-transport-tcp 0.8 puts on a TCP socket (protocol
//!   negotiation, connection requests, lightweight connections, control
//!   headers, length-prefixed data).
//! - [`binary`], [`fingerprint`] and [`dp`]: what distributed-process 0.7
//!   puts inside those lightweight connections (Data.Binary encodings, GHC
//!   type fingerprints, identifiers, message frames and control messages).
//!
//! Input is treated as hostile: every decoder returns a typed error instead
//! of panicking and never allocates by a length it has not checked against
//! [`Limits`].

pub mod binary;
pub mod dp;
pub mod fingerprint;
pub mod limits;
pub mod ntt;

pub use limits::Limits;
