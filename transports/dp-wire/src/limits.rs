//! Bounds applied to everything decoded from the wire.

/// Upper bounds on lengths announced by a peer.
///
/// Our defaults are stricter than network-transport-tcp's: its
/// `tcpMaxAddressLength` and `tcpMaxReceiveLength` default to `maxBound`
/// (4 GiB), which lets any peer make us buffer gigabytes on a single
/// length word. A Rust node exposed to untrusted input should refuse such
/// lengths early; a driver that talks to peers sending bigger messages can
/// raise the limits.
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
            // Real addresses are `host:port:id`, far below 1000 bytes;
            // network-transport-tcp itself accepts up to maxBound.
            max_address_len: 1000,
            // network-transport-tcp accepts frames up to maxBound; 16 MiB is
            // far above any message in the captures (the largest is 40 kB).
            max_frame_len: 16 * 1024 * 1024,
            max_list_len: 16 * 1024 * 1024,
            max_bytes_len: 16 * 1024 * 1024,
        }
    }
}
