//! Process-connection message frames (fingerprint ++ payload), and the
//! payload decoded as the common captured types: never panic, exact
//! re-encoding.
#![no_main]

use bytes::Bytes;
use dp_wire::binary::{decode_exact_shared, Encode};
use dp_wire::dp::{Message, ProcessId, WhereIsReply};
use dp_wire::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_address_len: 64,
        max_list_len: 1024,
        max_bytes_len: 4096,
        ..Limits::default()
    };
    let frame = Bytes::copy_from_slice(data);
    let Ok(m) = Message::decode_frame(&frame) else {
        return;
    };
    let mut out = Vec::new();
    m.encode_frame(&mut out);
    assert_eq!(out, data);
    let p = m.payload();
    if let Ok(v) = decode_exact_shared::<Bytes>(&p, &limits) {
        assert_eq!(v.to_binary(), p);
    }
    if let Ok(v) = decode_exact_shared::<(ProcessId, String)>(&p, &limits) {
        assert_eq!(v.to_binary(), p);
    }
    if let Ok(v) = decode_exact_shared::<WhereIsReply>(&p, &limits) {
        assert_eq!(v.to_binary(), p);
    }
});
