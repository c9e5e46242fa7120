//! Identifier (the first frame of every lightweight connection): must never
//! panic, and whatever decodes must re-encode to the same bytes.
#![no_main]

use dp_wire::binary::{decode_exact, Encode};
use dp_wire::dp::Identifier;
use dp_wire::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_address_len: 64,
        ..Limits::default()
    };
    if let Ok(id) = decode_exact::<Identifier>(data, &limits) {
        assert_eq!(id.to_binary(), data);
    }
});
