//! Bounds applied to everything decoded from the wire.

/// Upper bounds on lengths announced by a peer.
///
/// Defaults are no looser than network-transport-tcp's and
/// distributed-process's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest endpoint address accepted in a connection request or an
    /// encoded `NodeId`, in bytes.
    pub max_address_len: u32,
    /// Largest data frame on a socket, in bytes.
    pub max_frame_len: u32,
    /// Largest element count accepted for a Data.Binary list, string or map.
    pub max_list_len: u64,
    /// Largest Data.Binary ByteString, in bytes.
    pub max_bytes_len: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // network-transport-tcp caps the connection-request address at
            // 1000 bytes in its default parameters.
            max_address_len: 1000,
            max_frame_len: 16 * 1024 * 1024,
            max_list_len: 16 * 1024 * 1024,
            max_bytes_len: 16 * 1024 * 1024,
        }
    }
}
