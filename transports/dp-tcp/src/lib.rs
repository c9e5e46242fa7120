//! `DpTcp`: a `ractor_cluster` transport that makes a ractor node a full
//! member of a Cloud Haskell cluster (distributed-process 0.7.8 over
//! network-transport-tcp 0.8).

pub mod ids;
pub mod registry;
pub mod translate;

pub use registry::{haskell_type_fingerprint, CallTypes, TypeRegistry};

/// Errors of the DP transport's own API.
#[derive(Debug, thiserror::Error)]
pub enum DpError {
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
}
