//! NCMsg frames on node connections: never panic, exact re-encoding.
#![no_main]

use bytes::Bytes;
use dp_wire::binary::Encode;
use dp_wire::dp::NCMsg;
use dp_wire::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_address_len: 64,
        max_list_len: 1024,
        max_bytes_len: 4096,
        ..Limits::default()
    };
    if let Ok(m) = NCMsg::decode_frame(&Bytes::copy_from_slice(data), &limits) {
        assert_eq!(m.to_binary(), data);
    }
});
