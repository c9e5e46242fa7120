//! Connection (initiator side) fed arbitrary peer bytes, with a few
//! commands in between: must never panic.
#![no_main]

use dp_wire::ntt::Role;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dp_wire_fuzz::connection(Role::Initiator, data));
