//! NCMsg frames on node connections: never panic, exact re-encoding.
#![no_main]

use bytes::Bytes;
use dp_wire::binary::Encode;
use dp_wire::dp::NCMsg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = dp_wire_fuzz::dp_limits();
    if let Ok(m) = NCMsg::decode_frame(&Bytes::copy_from_slice(data), &limits) {
        assert_eq!(m.to_binary(), data);
    }
});
