//! StreamDecoder on bytes written by the listener: must never panic, and
//! every decoded unit must re-encode to the bytes it came from.
#![no_main]

use dp_wire::ntt::{Role, StreamDecoder};
use dp_wire::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits so that length checks are reached often.
    let limits = Limits {
        max_address_len: 64,
        max_frame_len: 4096,
        ..Limits::default()
    };
    // The first byte picks the chunk size, to exercise partial reads.
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut d = StreamDecoder::new(Role::Listener, limits);
    let mut consumed = 0;
    for piece in data.chunks(chunk) {
        d.push(piece);
        loop {
            match d.next_unit() {
                Ok(Some(u)) => {
                    let mut re = Vec::new();
                    u.encode(&mut re);
                    assert_eq!(&data[consumed..consumed + re.len()], &re[..]);
                    consumed += re.len();
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    assert_eq!(consumed + d.buffered(), data.len());
});
