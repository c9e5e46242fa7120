//! Every other DP decoder, chosen by the first input byte: never panic,
//! exact re-encoding of whatever decodes.
#![no_main]

use dp_wire::binary::{decode_exact, Decode, Encode, LazyByteString};
use dp_wire::dp::*;
use dp_wire::Limits;
use libfuzzer_sys::fuzz_target;

fn check<T: Decode + Encode>(data: &[u8], limits: &Limits) {
    if let Ok(v) = decode_exact::<T>(data, limits) {
        assert_eq!(v.to_binary(), data);
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_address_len: 64,
        max_list_len: 1024,
        max_bytes_len: 4096,
        ..Limits::default()
    };
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let l = &limits;
    match pick % 24 {
        0 => check::<NodeId>(data, l),
        1 => check::<ProcessId>(data, l),
        2 => check::<SendPortId>(data, l),
        3 => check::<MonitorRef>(data, l),
        4 => check::<DiedReason>(data, l),
        5 => check::<Static>(data, l),
        6 => check::<Closure>(data, l),
        7 => check::<Message>(data, l),
        8 => check::<ProcessSignal>(data, l),
        9 => check::<WhereIsReply>(data, l),
        10 => check::<RegisterReply>(data, l),
        11 => check::<DidSpawn>(data, l),
        12 => check::<ProcessMonitorNotification>(data, l),
        13 => check::<NodeMonitorNotification>(data, l),
        14 => check::<PortMonitorNotification>(data, l),
        15 => check::<ProcessInfo>(data, l),
        16 => check::<ProcessInfoNone>(data, l),
        17 => check::<NodeStats>(data, l),
        18 => check::<ProcessLinkException>(data, l),
        19 => check::<String>(data, l),
        20 => check::<Vec<(ProcessId, MonitorRef)>>(data, l),
        21 => check::<(Option<bool>, LazyByteString, char)>(data, l),
        22 => check::<DidUnmonitor>(data, l),
        _ => check::<(i8, u16, i32, u64)>(data, l),
    }
});
