//! StreamDecoder on bytes written by the initiator: must never panic, and
//! every decoded unit must re-encode to the bytes it came from.
#![no_main]

use dp_wire::ntt::Role;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dp_wire_fuzz::decoder(Role::Initiator, data));
