//! What protects a DpTcp node from hostile or overloaded peers: the
//! address allowlist ([`IpCidr`]) and the node-wide counters of refused
//! and closed connections ([`NodeStats`]).
//!
//! The limits themselves live in [`crate::DpTcpConfig`]; see
//! `docs/hardening.md` (section "DpTcp") for the whole picture.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// An IP network, `addr/prefix` (`10.0.0.0/8`, `::1/128`), or one address
/// (`127.0.0.1`, a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpCidr {
    addr: IpAddr,
    prefix: u8,
}

impl IpCidr {
    /// The network `addr/prefix`; `None` if the prefix is longer than the
    /// address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`) counts as its IPv4 address, as a dual-stack
    /// listener reports IPv4 peers that way.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(prefix));
    a & mask == b & mask
}

impl FromStr for IpCidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|e| format!("{s:?} is not an IP network: {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .map_err(|e| format!("{s:?} has a bad prefix length: {e}"))?,
            None => max,
        };
        Self::new(addr, prefix).ok_or_else(|| format!("{s:?}: prefix longer than {max}"))
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Node-wide counters of a [`crate::DpTcp`]: connections refused or closed
/// by a limit (see [`crate::DpTcp::stats`]). Per-peer drops are in
/// [`crate::PeerInfo`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// TCP connections open now (in handshake, in recognition, or carrying
    /// a session).
    pub open_connections: usize,
    /// Connections accepted since listening.
    pub accepted: u64,
    /// Closed before the handshake because the address is not in
    /// [`crate::DpTcpConfig::allow`].
    pub refused_not_allowed: u64,
    /// Closed at once because [`crate::DpTcpConfig::max_peers`] connections
    /// were open.
    pub refused_max_peers: u64,
    /// Closed because the NT-TCP handshake did not complete within
    /// [`crate::DpTcpConfig::handshake_timeout`].
    pub handshake_timeouts: u64,
    /// Closed because the handshake was malformed, too long, or refused.
    pub handshake_failures: u64,
    /// Established connections closed because the peer broke a limit
    /// (lightweight connections, outbound buffer, write stall) or the
    /// NT-TCP protocol.
    pub closed_by_limit: u64,
}

/// The atomics behind [`NodeStats`].
#[derive(Debug, Default)]
pub(crate) struct StatsCell {
    pub(crate) open: AtomicUsize,
    pub(crate) accepted: AtomicU64,
    pub(crate) refused_not_allowed: AtomicU64,
    pub(crate) refused_max_peers: AtomicU64,
    pub(crate) handshake_timeouts: AtomicU64,
    pub(crate) handshake_failures: AtomicU64,
    pub(crate) closed_by_limit: AtomicU64,
}

impl StatsCell {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> NodeStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NodeStats {
            open_connections: self.open.load(Ordering::Relaxed),
            accepted: r(&self.accepted),
            refused_not_allowed: r(&self.refused_not_allowed),
            refused_max_peers: r(&self.refused_max_peers),
            handshake_timeouts: r(&self.handshake_timeouts),
            handshake_failures: r(&self.handshake_failures),
            closed_by_limit: r(&self.closed_by_limit),
        }
    }
}

/// One open TCP connection, counted in [`StatsCell::open`] until dropped
/// (whichever task ends up owning the socket holds it).
#[derive(Debug)]
pub(crate) struct ConnSlot {
    stats: std::sync::Arc<crate::driver::Shared>,
}

impl ConnSlot {
    /// Takes a slot unless `max` are taken.
    pub(crate) fn take(stats: &std::sync::Arc<crate::driver::Shared>, max: usize) -> Option<Self> {
        let open = &stats.stats.open;
        let mut n = open.load(Ordering::Relaxed);
        loop {
            if n >= max {
                return None;
            }
            match open.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    return Some(Self {
                        stats: stats.clone(),
                    })
                }
                Err(now) => n = now,
            }
        }
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.stats.stats.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_membership() {
        let net: IpCidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: IpCidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: IpCidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.168.1.1".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let v6: IpCidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!("1.2.3.4/33".parse::<IpCidr>().is_err());
        assert!("nonsense".parse::<IpCidr>().is_err());
        assert_eq!(net.to_string(), "10.1.0.0/16");
    }
}
