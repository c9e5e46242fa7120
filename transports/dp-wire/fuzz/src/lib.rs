//! What the fuzz targets in `fuzz_targets/` share: small limits, the
//! control byte taken off the front of the input (chunk size, commands or
//! type), and the decode-and-re-encode checks. Each target is one call
//! into this crate with its role or type.

use std::time::{Duration, Instant};

use bytes::Bytes;
use dp_wire::binary::{decode_exact, decode_exact_shared, Decode, Encode};
use dp_wire::ntt::{Connection, EndPointAddress, Event, Role, StreamDecoder};
use dp_wire::Limits;

/// Default limits but a small address limit, so that its check is reached
/// often.
pub fn address_limits() -> Limits {
    Limits {
        max_address_len: 64,
        ..Limits::default()
    }
}

/// Small limits for the NT-TCP targets: addresses and frames.
pub fn ntt_limits() -> Limits {
    Limits {
        max_frame_len: 4096,
        ..address_limits()
    }
}

/// Small limits for the DP targets: addresses, lists and ByteStrings.
pub fn dp_limits() -> Limits {
    Limits {
        max_list_len: 1024,
        max_bytes_len: 4096,
        ..address_limits()
    }
}

/// The first input byte, which steers the target, and the rest.
pub fn split_control(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(&ctl, rest)| (ctl, rest))
}

/// Decodes a `T` from exactly `data`; whatever decodes must re-encode to
/// the same bytes.
pub fn roundtrip<T: Decode + Encode>(data: &[u8], limits: &Limits) {
    if let Ok(v) = decode_exact::<T>(data, limits) {
        assert_eq!(v.to_binary(), data);
    }
}

/// [`roundtrip`] through the zero-copy decoder of a shared buffer.
pub fn roundtrip_shared<T: Decode + Encode>(data: &Bytes, limits: &Limits) {
    if let Ok(v) = decode_exact_shared::<T>(data, limits) {
        assert_eq!(v.to_binary(), *data);
    }
}

/// A `StreamDecoder` on bytes written by `role`, pushed in chunks whose
/// size is the first byte (to exercise partial reads): must never panic,
/// and every decoded unit must re-encode to the bytes it came from.
pub fn decoder(role: Role, data: &[u8]) {
    let Some((chunk, data)) = split_control(data) else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut d = StreamDecoder::new(role, ntt_limits());
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
}

/// A `Connection` on the `role` side fed arbitrary peer bytes: must never
/// panic. The first byte picks the chunk size and what the side does
/// between chunks (see `initiator` and `listener` below).
pub fn connection(role: Role, data: &[u8]) {
    let Some((ctl, data)) = split_control(data) else {
        return;
    };
    match role {
        Role::Initiator => initiator(ctl, data),
        Role::Listener => listener(ctl, data),
    }
}

/// Chunks of `ctl >> 3` bytes, with a command picked by `ctl` and the
/// chunk index after each (errors are fine), and a CloseEndPoint before
/// EOF when `ctl & 7 == 7`.
fn initiator(ctl: u8, data: &[u8]) {
    let ours: EndPointAddress = "127.0.0.1:10501:0".parse().unwrap();
    let theirs: EndPointAddress = "127.0.0.1:10502:0".parse().unwrap();
    let mut c = Connection::initiator(Some(&ours), &theirs, ntt_limits());
    let t0 = Instant::now();
    c.set_liveness_timeout(Some(Duration::from_secs(5)), t0);
    let chunk = usize::from(ctl >> 3).max(1);
    for (i, piece) in data.chunks(chunk).enumerate() {
        c.handle_input(piece);
        while c.poll_event().is_some() {}
        let now = t0 + Duration::from_secs(i as u64);
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
}

/// Chunks of `ctl >> 2` bytes. The request, if any, is accepted so that
/// the framed stream is reached; `ctl & 1` opens one of ours when the peer
/// opens (so CloseSocket sees outgoing), `ctl & 2` opens and closes one on
/// each received frame.
fn listener(ctl: u8, data: &[u8]) {
    let chunk = usize::from(ctl >> 2).max(1);
    let mut c = Connection::listener(ntt_limits());
    for piece in data.chunks(chunk) {
        c.handle_input(piece);
        while let Some(e) = c.poll_event() {
            match e {
                Event::ConnectionRequested { .. } => c.accept().unwrap(),
                Event::IncomingConnectionOpened(_) if ctl & 1 == 1 => {
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
}
