//! `EndPointAddress`: `host:port:endpointid`, as network-transport-tcp
//! builds it.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;

use super::error::AddressError;

/// Identifier of an endpoint within one transport (the last address part).
pub type EndPointId = u32;

/// A parsed network-transport-tcp endpoint address.
///
/// The original bytes are kept so that [`fmt::Display`] and
/// [`EndPointAddress::as_bytes`] give back exactly what was parsed (the peer
/// compares addresses byte-wise, so a normalised form would break the
/// crossed-connection tie break). Ordering and equality are byte-wise too.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EndPointAddress {
    // Ord derives from `raw` first, which is the byte-wise order the peer uses.
    raw: String,
    host_end: usize,
    port_end: usize,
    endpoint_id: EndPointId,
}

impl EndPointAddress {
    /// Builds `host:port:endpoint_id`.
    ///
    /// The port may not contain `:` (the address would not parse back);
    /// the host may (IPv6).
    pub fn new(host: &str, port: &str, endpoint_id: EndPointId) -> Result<Self, AddressError> {
        Self::parse(format!("{host}:{port}:{endpoint_id}").as_bytes())
    }

    /// Parses an address, splitting at the last two `:` like
    /// `decodeEndPointAddress` does, so IPv6 hosts keep their colons.
    pub fn parse(bytes: &[u8]) -> Result<Self, AddressError> {
        let raw = std::str::from_utf8(bytes).map_err(|e| AddressError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        let id_colon = raw.rfind(':').ok_or_else(|| AddressError::MissingColons {
            address: raw.to_owned(),
        })?;
        let port_colon = raw[..id_colon]
            .rfind(':')
            .ok_or_else(|| AddressError::MissingColons {
                address: raw.to_owned(),
            })?;
        let id_str = &raw[id_colon + 1..];
        // Stricter than Haskell's `reads`: plain decimal digits only, and no
        // silent wrap-around past u32::MAX.
        if id_str.is_empty() || !id_str.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AddressError::BadEndPointId {
                address: raw.to_owned(),
                id: id_str.to_owned(),
            });
        }
        let endpoint_id = id_str
            .parse::<u32>()
            .map_err(|_| AddressError::BadEndPointId {
                address: raw.to_owned(),
                id: id_str.to_owned(),
            })?;
        Ok(Self {
            raw: raw.to_owned(),
            host_end: port_colon,
            port_end: id_colon,
            endpoint_id,
        })
    }

    /// The host part (may contain `:` for IPv6).
    pub fn host(&self) -> &str {
        &self.raw[..self.host_end]
    }

    /// The port (service) part, as written.
    pub fn port(&self) -> &str {
        &self.raw[self.host_end + 1..self.port_end]
    }

    /// The endpoint id, which a connection request names as its target.
    pub fn endpoint_id(&self) -> EndPointId {
        self.endpoint_id
    }

    /// The address exactly as parsed.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The address bytes as they go on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        self.raw.as_bytes()
    }

    /// The address as a cheaply clonable byte buffer (for
    /// [`super::ConnectionRequest`]).
    pub fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.raw.as_bytes())
    }
}

impl fmt::Display for EndPointAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for EndPointAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EndPointAddress({:?})", self.raw)
    }
}

impl FromStr for EndPointAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test_log::test]
    fn parses_ipv4() {
        let a: EndPointAddress = "127.0.0.1:10501:0".parse().unwrap();
        assert_eq!(a.host(), "127.0.0.1");
        assert_eq!(a.port(), "10501");
        assert_eq!(a.endpoint_id(), 0);
        assert_eq!(a.to_string(), "127.0.0.1:10501:0");
    }

    #[test_log::test]
    fn parses_ipv6_at_last_two_colons() {
        let a: EndPointAddress = "::1:8080:7".parse().unwrap();
        assert_eq!(a.host(), "::1");
        assert_eq!(a.port(), "8080");
        assert_eq!(a.endpoint_id(), 7);
        let b: EndPointAddress = "fe80::1%lo:9:4294967295".parse().unwrap();
        assert_eq!(b.host(), "fe80::1%lo");
        assert_eq!(b.endpoint_id(), u32::MAX);
        assert_eq!(b.to_string(), "fe80::1%lo:9:4294967295");
    }

    #[test_log::test]
    fn display_is_byte_identical_even_with_leading_zeros() {
        let a: EndPointAddress = "h:p:007".parse().unwrap();
        assert_eq!(a.endpoint_id(), 7);
        assert_eq!(a.as_bytes(), b"h:p:007");
    }

    #[test_log::test]
    fn new_round_trips() {
        let a = EndPointAddress::new("10.0.0.1", "80", 3).unwrap();
        assert_eq!(a.as_str(), "10.0.0.1:80:3");
        assert!(EndPointAddress::new("h", "a:b", 3).is_ok()); // host becomes "h:a"
    }

    #[test_log::test]
    fn rejects_bad_addresses() {
        assert!(matches!(
            EndPointAddress::parse(b"nocolon"),
            Err(AddressError::MissingColons { .. })
        ));
        assert!(matches!(
            EndPointAddress::parse(b"host:0"),
            Err(AddressError::MissingColons { .. })
        ));
        assert!(matches!(
            EndPointAddress::parse(b"h:p:x1"),
            Err(AddressError::BadEndPointId { .. })
        ));
        assert!(matches!(
            EndPointAddress::parse(b"h:p:"),
            Err(AddressError::BadEndPointId { .. })
        ));
        assert!(matches!(
            EndPointAddress::parse(b"h:p:4294967296"),
            Err(AddressError::BadEndPointId { .. })
        ));
        assert!(matches!(
            EndPointAddress::parse(b"h:p:+1"),
            Err(AddressError::BadEndPointId { .. })
        ));
        assert!(matches!(
            EndPointAddress::parse(b"\xff:p:1"),
            Err(AddressError::NotUtf8 { valid_up_to: 0 })
        ));
    }

    #[test_log::test]
    fn orders_byte_wise() {
        let a: EndPointAddress = "127.0.0.1:10501:0".parse().unwrap();
        let b: EndPointAddress = "127.0.0.1:10502:0".parse().unwrap();
        assert!(a < b);
        let c: EndPointAddress = "127.0.0.1:9:0".parse().unwrap();
        assert!(c > b, "byte-wise, not numeric");
    }
}
