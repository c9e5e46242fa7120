//! Connection (initiator side) fed arbitrary peer bytes, with a few
//! commands in between: must never panic.
#![no_main]

use std::time::{Duration, Instant};

use dp_wire::ntt::{Connection, EndPointAddress};
use dp_wire::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_address_len: 64,
        max_frame_len: 4096,
        ..Limits::default()
    };
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    let ours: EndPointAddress = "127.0.0.1:10501:0".parse().unwrap();
    let theirs: EndPointAddress = "127.0.0.1:10502:0".parse().unwrap();
    let mut c = Connection::initiator(Some(&ours), &theirs, limits);
    let t0 = Instant::now();
    c.set_liveness_timeout(Some(Duration::from_secs(5)), t0);
    let chunk = usize::from(ctl >> 3).max(1);
    for (i, piece) in data.chunks(chunk).enumerate() {
        c.handle_input(piece);
        while c.poll_event().is_some() {}
        let now = t0 + Duration::from_secs(i as u64);
        // Commands picked by the control byte; errors are fine.
        let first = c.outgoing().next();
        match (ctl as usize + i) % 6 {
            0 => {
                let _ = c.open();
            }
            1 => {
                if let Some(l) = first {
                    let _ = c.send(l, piece);
                }
            }
            2 => {
                if let Some(l) = first {
                    let _ = c.close(l);
                }
            }
            3 => {
                let _ = c.probe(now);
            }
            4 => c.handle_timeout(now),
            _ => {}
        }
        let _ = c.poll_transmit();
    }
    if ctl & 7 == 7 {
        let _ = c.close_endpoint();
    }
    c.handle_eof();
});
