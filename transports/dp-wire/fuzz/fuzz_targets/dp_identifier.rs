//! Identifier (the first frame of every lightweight connection): must never
//! panic, and whatever decodes must re-encode to the same bytes.
#![no_main]

use dp_wire::dp::Identifier;
use dp_wire_fuzz::{address_limits, roundtrip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| roundtrip::<Identifier>(data, &address_limits()));
