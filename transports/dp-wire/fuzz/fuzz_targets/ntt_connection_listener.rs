//! Connection (listener side) fed arbitrary peer bytes: must never panic.
//! The request, if any, is accepted so that the framed stream is reached.
#![no_main]

use dp_wire::ntt::{Connection, Event};
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
    let chunk = usize::from(ctl >> 2).max(1);
    let mut c = Connection::listener(limits);
    for piece in data.chunks(chunk) {
        c.handle_input(piece);
        while let Some(e) = c.poll_event() {
            match e {
                Event::ConnectionRequested { .. } => c.accept().unwrap(),
                Event::IncomingConnectionOpened(_) if ctl & 1 == 1 => {
                    // Open one of ours too, so CloseSocket sees outgoing.
                    let _ = c.open();
                }
                Event::Received { .. } if ctl & 2 == 2 => {
                    let _ = c.open().map(|l| c.close(l));
                }
                _ => {}
            }
        }
        let _ = c.poll_transmit();
    }
    c.handle_eof();
});
