//! Property tests for the NT-TCP codec: every unit round-trips, and a
//! stream cut into arbitrary chunks decodes to the same units.

use bytes::Bytes;
use dp_wire::ntt::{
    ConnectionRequest, ConnectionResponse, ControlHeader, Role, StreamDecoder, Unit,
    FIRST_DATA_LCID,
};
use dp_wire::Limits;
use proptest::prelude::*;

fn bytes_up_to(n: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..=n).prop_map(Bytes::from)
}

fn request() -> impl Strategy<Value = ConnectionRequest> {
    prop_oneof![
        (any::<u32>(), bytes_up_to(64)).prop_map(|(target, source_address)| {
            ConnectionRequest::V0 {
                target,
                source_address,
            }
        }),
        (1..=u32::MAX, bytes_up_to(64)).prop_map(|(version, handshake)| {
            ConnectionRequest::OtherVersion { version, handshake }
        }),
    ]
}

fn response() -> impl Strategy<Value = ConnectionResponse> {
    prop_oneof![
        Just(ConnectionResponse::Accepted),
        Just(ConnectionResponse::Invalid),
        Just(ConnectionResponse::Crossed),
        (bytes_up_to(32), bytes_up_to(32), bytes_up_to(32)).prop_map(|(a, b, c)| {
            ConnectionResponse::HostMismatch {
                claimed_host: a,
                numeric_host: b,
                resolved_host: c,
            }
        }),
        any::<u32>().prop_map(|supported| ConnectionResponse::UnsupportedVersion { supported }),
    ]
}

/// Framed-stream units that do not end the stream.
fn framed_unit() -> impl Strategy<Value = Unit> {
    prop_oneof![
        any::<u32>().prop_map(|l| Unit::Control(ControlHeader::CreatedNewConnection(l))),
        any::<u32>().prop_map(|l| Unit::Control(ControlHeader::CloseConnection(l))),
        any::<u32>().prop_map(|l| Unit::Control(ControlHeader::CloseSocket(l))),
        Just(Unit::Control(ControlHeader::ProbeSocket)),
        Just(Unit::Control(ControlHeader::ProbeSocketAck)),
        (FIRST_DATA_LCID..=u32::MAX, bytes_up_to(300))
            .prop_map(|(lcid, payload)| Unit::Data { lcid, payload }),
    ]
}

fn encode_all(units: &[Unit]) -> Vec<u8> {
    let mut out = vec![];
    for u in units {
        u.encode(&mut out);
    }
    out
}

fn decode_chunked(mut d: StreamDecoder, bytes: &[u8], cuts: &[usize]) -> Vec<Unit> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    let mut units = vec![];
    for w in points.windows(2) {
        d.push(&bytes[w[0]..w[1]]);
        while let Some(u) = d.next_unit().expect("valid stream") {
            units.push(u);
        }
    }
    assert_eq!(d.buffered(), 0);
    units
}

fn roundtrip(role: Role, framed: bool, unit: Unit) {
    let mut bytes = vec![];
    unit.encode(&mut bytes);
    let mut d = if framed {
        StreamDecoder::new_framed(role, Limits::default())
    } else {
        StreamDecoder::new(role, Limits::default())
    };
    d.push(&bytes);
    assert_eq!(d.next_unit().unwrap(), Some(unit));
    assert_eq!(d.buffered(), 0);
}

proptest! {
    #[test]
    fn request_roundtrips(r in request()) {
        roundtrip(Role::Initiator, false, Unit::ConnectionRequest(r));
    }

    #[test]
    fn response_roundtrips(r in response()) {
        roundtrip(Role::Listener, false, Unit::ConnectionResponse(r));
    }

    #[test]
    fn framed_unit_roundtrips(u in framed_unit(), role in prop_oneof![Just(Role::Initiator), Just(Role::Listener)]) {
        roundtrip(role, true, u);
    }

    #[test]
    fn close_endpoint_roundtrips(role in prop_oneof![Just(Role::Initiator), Just(Role::Listener)]) {
        roundtrip(role, true, Unit::Control(ControlHeader::CloseEndPoint));
    }

    #[test]
    fn initiator_stream_in_chunks(
        rejected_versions in prop::collection::vec((1..=u32::MAX, bytes_up_to(16)), 0..3),
        target in any::<u32>(),
        addr in bytes_up_to(40),
        body in prop::collection::vec(framed_unit(), 0..40),
        end in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut units: Vec<Unit> = rejected_versions
            .into_iter()
            .map(|(version, handshake)| {
                Unit::ConnectionRequest(ConnectionRequest::OtherVersion { version, handshake })
            })
            .collect();
        units.push(Unit::ConnectionRequest(ConnectionRequest::V0 { target, source_address: addr }));
        units.extend(body);
        if end {
            units.push(Unit::Control(ControlHeader::CloseEndPoint));
        }
        let bytes = encode_all(&units);
        let got = decode_chunked(StreamDecoder::new(Role::Initiator, Limits::default()), &bytes, &cuts);
        prop_assert_eq!(got, units);
    }

    #[test]
    fn listener_stream_in_chunks(
        unsupported in prop::collection::vec(any::<u32>(), 0..3),
        body in prop::collection::vec(framed_unit(), 0..40),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let mut units: Vec<Unit> = unsupported
            .into_iter()
            .map(|supported| Unit::ConnectionResponse(ConnectionResponse::UnsupportedVersion { supported }))
            .collect();
        units.push(Unit::ConnectionResponse(ConnectionResponse::Accepted));
        units.extend(body);
        let bytes = encode_all(&units);
        let got = decode_chunked(StreamDecoder::new(Role::Listener, Limits::default()), &bytes, &cuts);
        prop_assert_eq!(got, units);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        role in prop_oneof![Just(Role::Initiator), Just(Role::Listener)],
        bytes in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut d = StreamDecoder::new(role, Limits::default());
        d.push(&bytes);
        while let Ok(Some(_)) = d.next_unit() {}
    }
}
