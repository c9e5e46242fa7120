//! Support code for kaisui's cross-crate integration tests.
//!
//! * [memory_transport] - an in-memory, message-level transport that
//!   exercises `ractor_cluster::transport` without any bytes on a wire.
//! * [harness] - test nodes, the transports the suite runs over, and
//!   bounded waiting.
//! * [scenarios] - the two-node scenarios, each a function of the
//!   transport, instantiated per transport in `tests/two_nodes.rs`.
//! * [hostile] - a counting allocator, a node with every hardening knob,
//!   and a raw native-protocol peer, for the hostile-peer tests.
//! * [upstream] - a node of the unmodified crates.io `ractor_cluster`,
//!   running as a child process.

pub mod harness;
pub mod hostile;
pub mod memory_transport;
pub mod scenarios;
pub mod upstream;
