//! Process-connection message frames (fingerprint ++ payload), and the
//! payload decoded as the common captured types: never panic, exact
//! re-encoding.
#![no_main]

use bytes::Bytes;
use dp_wire::dp::{Message, ProcessId, WhereIsReply};
use dp_wire_fuzz::{dp_limits, roundtrip_shared};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = dp_limits();
    let frame = Bytes::copy_from_slice(data);
    let Ok(m) = Message::decode_frame(&frame) else {
        return;
    };
    let mut out = Vec::new();
    m.encode_frame(&mut out);
    assert_eq!(out, data);
    let p = m.payload();
    roundtrip_shared::<Bytes>(&p, &limits);
    roundtrip_shared::<(ProcessId, String)>(&p, &limits);
    roundtrip_shared::<WhereIsReply>(&p, &limits);
});
