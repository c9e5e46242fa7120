//! Every other DP decoder, chosen by the first input byte: never panic,
//! exact re-encoding of whatever decodes.
#![no_main]

use dp_wire::binary::LazyByteString;
use dp_wire::dp::*;
use dp_wire_fuzz::{dp_limits, roundtrip as check, split_control};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = dp_limits();
    let Some((pick, data)) = split_control(data) else {
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
