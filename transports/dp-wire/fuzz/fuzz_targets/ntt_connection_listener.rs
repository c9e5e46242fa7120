//! Connection (listener side) fed arbitrary peer bytes: must never panic.
//! The request, if any, is accepted so that the framed stream is reached.
#![no_main]

use dp_wire::ntt::Role;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dp_wire_fuzz::connection(Role::Listener, data));
