//! Every captured byte of the two Haskell nodes, decoded through both
//! layers and re-encoded byte for byte (one test per capture).

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use dp_wire::binary::{Encode, LazyByteString};
use dp_wire::dp::{
    DidSpawn, DiedReason, Frame, Identifier, InboundConnection, Message, NCMsg, ProcessId,
    ProcessInfo, ProcessInfoNone, ProcessSignal, RegisterReply, SendPort, Serializable,
    WhereIsReply,
};
use dp_wire::fingerprint::Build;
use dp_wire::ntt::{ControlHeader, Unit};
use dp_wire::Limits;

/// A message payload decoded by its fingerprint.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    StrictBs(Bytes),
    LazyBs(LazyByteString),
    Str(String),
    StrBs((String, Bytes)),
    PidBs((ProcessId, Bytes)),
    Pid(ProcessId),
    Unit,
    PortBs(SendPort<Bytes>),
    WhereIs(WhereIsReply),
    Register(RegisterReply),
    Spawned(DidSpawn),
    Info(ProcessInfo),
    InfoNone(ProcessInfoNone),
}

/// Decodes `m` as whichever captured type its fingerprint names, and
/// checks that re-encoding the value gives the payload back.
fn decode_value(m: &Message) -> Value {
    fn try_as<T: Serializable>(m: &Message, f: fn(T) -> Value) -> Option<Value> {
        let v: T = m
            .decode_as(&Build::default(), &Limits::default())
            .unwrap_or_else(|e| panic!("payload of {}: {e}", m.fingerprint))?;
        assert_eq!(v.to_binary(), m.payload(), "re-encoded payload");
        Some(f(v))
    }
    try_as(m, Value::StrictBs)
        .or_else(|| try_as(m, Value::LazyBs))
        .or_else(|| try_as(m, Value::Str))
        .or_else(|| try_as(m, Value::StrBs))
        .or_else(|| try_as(m, Value::PidBs))
        .or_else(|| try_as(m, Value::Pid))
        .or_else(|| try_as(m, |()| Value::Unit))
        .or_else(|| try_as(m, Value::PortBs))
        .or_else(|| try_as(m, Value::WhereIs))
        .or_else(|| try_as(m, Value::Register))
        .or_else(|| try_as(m, Value::Spawned))
        .or_else(|| try_as(m, Value::Info))
        .or_else(|| try_as(m, Value::InfoNone))
        .unwrap_or_else(|| panic!("unknown fingerprint {}", m.fingerprint))
}

/// One decoded data frame.
#[derive(Debug)]
struct Event {
    conn: u64,
    dir: String,
    lcid: u32,
    frame: Frame,
    /// The typed payload of a Message frame or of an NCMsg's message.
    value: Option<Value>,
}

impl Event {
    fn ncmsg(&self) -> Option<&NCMsg> {
        match &self.frame {
            Frame::Control(m) => Some(m),
            _ => None,
        }
    }
}

struct Capture {
    events: Vec<Event>,
    /// Every NT-TCP unit, per (conn, dir), for unit-level checks.
    units: BTreeMap<(u64, String), Vec<Unit>>,
}

impl Capture {
    fn signals(&self) -> impl Iterator<Item = (&Event, &NCMsg)> {
        self.events.iter().filter_map(|e| e.ncmsg().map(|m| (e, m)))
    }

    fn signal_names(&self, dir: &str) -> Vec<&'static str> {
        self.signals()
            .filter(|(e, _)| e.dir == dir)
            .map(|(_, m)| m.signal.name())
            .collect()
    }

    fn values(&self) -> impl Iterator<Item = &Value> {
        self.events.iter().filter_map(|e| e.value.as_ref())
    }

    fn died(&self) -> Vec<(&Identifier, &DiedReason)> {
        self.signals()
            .filter_map(|(_, m)| match &m.signal {
                ProcessSignal::Died { who, reason } => Some((who, reason)),
                _ => None,
            })
            .collect()
    }
}

fn load(name: &str) -> Capture {
    // Every direction of every TCP connection, decoded into NT-TCP units
    // (which checks their byte-exact re-encoding).
    let streams = common::Streams::new(name, &common::load(name));
    let limits = Limits::default();
    let mut events = Vec::new();
    let mut all_units = BTreeMap::new();
    for ((conn, node), units) in streams.units() {
        let dir = node.dir().to_string();
        let mut lcids: BTreeMap<u32, InboundConnection> = BTreeMap::new();
        for unit in &units {
            match unit {
                Unit::Control(ControlHeader::CreatedNewConnection(lcid)) => {
                    lcids.insert(*lcid, InboundConnection::new());
                }
                Unit::Data { lcid, payload } => {
                    let conn_state = lcids
                        .get_mut(lcid)
                        .unwrap_or_else(|| panic!("{name} {dir}: data on unannounced lcid {lcid}"));
                    let frame = conn_state
                        .decode(payload, &limits)
                        .unwrap_or_else(|e| panic!("{name} {dir} lcid {lcid}: {e}"));
                    let mut again = Vec::new();
                    frame.encode(&mut again);
                    assert_eq!(again, &payload[..], "{name} {dir} lcid {lcid}: re-encoded");
                    let value = match &frame {
                        Frame::Message(m) => Some(decode_value(m)),
                        Frame::Control(nc) => nc.signal.message().map(decode_value),
                        // The only typed channel captured carries strict
                        // ByteStrings (09).
                        Frame::Channel(raw) => {
                            let v: Bytes =
                                dp_wire::binary::decode_exact_shared(raw, &limits).unwrap();
                            assert_eq!(v.to_binary(), &raw[..]);
                            Some(Value::StrictBs(v))
                        }
                        Frame::Open(_) => None,
                    };
                    events.push(Event {
                        conn,
                        dir: dir.clone(),
                        lcid: *lcid,
                        frame,
                        value,
                    });
                }
                _ => {}
            }
        }
        all_units.insert((conn, dir), units);
    }
    tracing::info!(name, events = events.len(), "capture decoded");
    Capture {
        events,
        units: all_units,
    }
}

fn pid_counter(id: &Identifier) -> i32 {
    match id {
        Identifier::Process(p) => p.local.counter,
        other => panic!("not a process: {other:?}"),
    }
}

fn exception(r: &DiedReason) -> &str {
    match r {
        DiedReason::Exception(s) => s,
        other => panic!("not an exception: {other:?}"),
    }
}

macro_rules! capture_tests {
    ($($fn_name:ident => $file:literal, |$c:ident| $body:block)*) => {$(
        #[test_log::test]
        fn $fn_name() {
            let $c = load($file);
            assert!(!$c.events.is_empty());
            $body
        }
    )*};
}

capture_tests! {
    c01_send_bytestring => "01-send-bytestring", |c| {
        let vals: Vec<_> = c.values().cloned().collect();
        assert_eq!(vals[0], Value::StrictBs(Bytes::from_static(b"hello-strict")));
        assert_eq!(vals[1], Value::LazyBs(LazyByteString(Bytes::from_static(b"hello-lazy"))));
        assert_eq!(vals[2], Value::Str("hello-string".into()));
        assert_eq!(vals[3], Value::StrBs(("tuple".into(), Bytes::from_static(b"bytes"))));
        let Value::PidBs((pid, b)) = &vals[4] else { panic!("{:?}", vals[4]) };
        assert_eq!(pid.to_string(), "pid://127.0.0.1:10501:0:8");
        assert_eq!(&b[..], b"reply-to-me");
        assert_eq!(vals[5], Value::StrictBs(Bytes::from_static(b"reply:reply-to-me")));
        // Both sides number their first lightweight connection 1024.
        assert!(c.events.iter().all(|e| e.lcid == 1024));
    }

    c02_nsend_remote => "02-nsend-remote", |c| {
        let sends: Vec<_> = c.signals().filter_map(|(_, m)| match &m.signal {
            ProcessSignal::NamedSend { label, message } => Some((label.clone(), message.clone())),
            _ => None,
        }).collect();
        assert_eq!(sends.len(), 5);
        let labels: Vec<_> = sends.iter().map(|(l, _)| l.as_str()).collect();
        // The send to an unregistered name is silently dropped by B.
        assert_eq!(labels, ["echo", "nosuch", "echo", "echo", "echo"]);
        // The 40000-byte ByteString arrives in two payload chunks.
        let big = sends.iter().find(|(_, m)| m.payload_len() == 40008).expect("big send");
        assert_eq!(big.1.chunks().len(), 2);
        assert_eq!(big.1.chunks()[0].len(), 8);
        assert!(c.values().any(|v| *v == Value::Str("bye".into())));
        assert!(c.values().any(|v| matches!(v, Value::LazyBs(b) if &b.0[..] == b"lazy-named")));
    }

    c03_whereis_remote => "03-whereis-remote", |c| {
        assert_eq!(c.signal_names("A->B"), ["WhereIs", "WhereIs"]);
        let replies: Vec<_> = c.values().filter_map(|v| match v {
            Value::WhereIs(r) => Some(r.clone()),
            _ => None,
        }).collect();
        assert_eq!(replies.len(), 2);
        assert_eq!(replies[0].label, "echo");
        assert_eq!(replies[0].pid.as_ref().map(|p| p.local.counter), Some(8));
        assert_eq!(replies[1].label, "nosuch");
        assert_eq!(replies[1].pid, None);
        // Replies come from B's node controller.
        for (e, m) in c.signals().filter(|(e, _)| e.dir == "B->A") {
            assert!(matches!(m.sender, Identifier::Node(_)), "{e:?}");
        }
    }

    c04_monitor => "04-monitor", |c| {
        let died = c.died();
        assert_eq!(died.len(), 4);
        assert_eq!(*died[0].1, DiedReason::Normal);
        assert!(exception(died[1].1).contains("reason=boom"));
        assert!(exception(died[2].1).starts_with("kaboom\nCallStack"));
        assert_eq!(*died[3].1, DiedReason::UnknownId);
        assert_eq!(pid_counter(died[3].0), 4242);
        assert_eq!(c.values().filter(|v| **v == Value::Unit).count(), 3);
    }

    c05_link => "05-link", |c| {
        assert_eq!(c.signal_names("A->B"), ["Link"]);
        let died = c.died();
        assert_eq!(died.len(), 1);
        assert!(exception(died[0].1).ends_with("reason=linked-boom"));
    }

    c06_node_killed => "06-node-killed", |c| {
        let refs: Vec<_> = c.signals().filter_map(|(_, m)| match &m.signal {
            ProcessSignal::Monitor(r) => Some(r.ident.clone()),
            _ => None,
        }).collect();
        assert!(matches!(refs[0], Identifier::Process(_)));
        assert!(matches!(refs[1], Identifier::Node(_)));
        // The peer was killed: nothing came back.
        assert!(c.events.iter().all(|e| e.dir == "A->B"));
    }

    c07_close_normal => "07-close-normal", |c| {
        assert_eq!(c.events.len(), 2);
        assert!(matches!(c.events[0].frame, Frame::Open(Identifier::Process(_))));
        let units = &c.units[&(0, "A->B".to_string())];
        assert!(units.contains(&Unit::Control(ControlHeader::CloseSocket(0))));
    }

    c08_close_endpoint => "08-close-endpoint", |c| {
        assert_eq!(c.events.len(), 2);
        let units = &c.units[&(0, "A->B".to_string())];
        assert_eq!(units.last(), Some(&Unit::Control(ControlHeader::CloseEndPoint)));
    }

    c09_typed_channel => "09-typed-channel", |c| {
        let Some(Value::PortBs(port)) = c.values().find(|v| matches!(v, Value::PortBs(_))) else {
            panic!("no SendPort message")
        };
        assert_eq!(port.id.process.local.counter, 8);
        let chan: Vec<_> = c.events.iter().filter(|e| matches!(e.frame, Frame::Channel(_)))
            .map(|e| e.value.clone().unwrap()).collect();
        assert_eq!(chan, [
            Value::StrictBs(Bytes::from_static(b"chan-hello")),
            Value::StrictBs(Bytes::from_static(b"chan-second")),
        ]);
        let open = c.events.iter().find_map(|e| match &e.frame {
            Frame::Open(Identifier::SendPort(s)) => Some(s.clone()),
            _ => None,
        }).unwrap();
        assert_eq!(open, port.id);
    }

    c10_pingpong_1000 => "10-pingpong-1000", |c| {
        let bs = c.values().filter(|v| matches!(v, Value::StrictBs(b) if b.len() == 32)).count();
        assert_eq!(bs, 2000);
        assert!(c.values().any(|v| matches!(v, Value::Pid(_))));
    }

    c11_crossed => "11-crossed", |c| {
        // Both nodes' messages travel on the surviving connection 0.
        assert!(c.events.iter().all(|e| e.conn == 0));
        assert_eq!(c.values().count(), 2);
        assert!(c.units.contains_key(&(1, "A->B".to_string())));
    }

    c12_crossed_closesocket_deferred => "12-crossed-closesocket-deferred", |c| {
        assert!(c.events.iter().all(|e| e.conn == 0));
        let units = &c.units[&(0, "B->A".to_string())];
        assert!(units.contains(&Unit::Control(ControlHeader::CloseSocket(0))));
        assert_eq!(c.values().count(), 2);
    }

    c13_spawn => "13-spawn", |c| {
        let spawns: Vec<_> = c.signals().filter_map(|(_, m)| match &m.signal {
            ProcessSignal::Spawn { closure, spawn_ref } => Some((closure.clone(), *spawn_ref)),
            _ => None,
        }).collect();
        assert_eq!(spawns.len(), 2);
        assert_eq!(spawns[0].1 .0, 0);
        assert_eq!(spawns[1].1 .0, 1);
        assert_eq!(
            spawns[0].0.decoder.to_string(),
            "$compose ($compose $app ($split ($compose $delay $decodeProcessId) \
             ($compose Main.someFun ($decodeDict Main.someFun__sdict)))) $decodeEnvPair"
        );
        assert!(spawns[1].0.decoder.to_string().contains("Main.otherFun"));
        assert_eq!(spawns[0].0.env.len(), 99);
        // The env is (encode spawnerPid, encode (pid, "spawn-arg")).
        let (fenv, xenv): (LazyByteString, LazyByteString) =
            dp_wire::binary::decode_exact(&spawns[0].0.env, &Limits::default()).unwrap();
        let spawner: ProcessId = dp_wire::binary::decode_exact(&fenv.0, &Limits::default()).unwrap();
        assert_eq!(spawner.local.counter, 8);
        let (_, arg): (ProcessId, String) =
            dp_wire::binary::decode_exact(&xenv.0, &Limits::default()).unwrap();
        assert_eq!(arg, "spawn-arg");
        let did: Vec<_> = c.values().filter_map(|v| match v {
            Value::Spawned(d) => Some(d.clone()),
            _ => None,
        }).collect();
        assert_eq!(did.len(), 2);
        assert_eq!((did[0].spawn_ref.0, did[0].pid.local.counter), (0, 8));
        assert_eq!((did[1].spawn_ref.0, did[1].pid.local.counter), (1, 9));
        assert!(c.values().any(|v| *v == Value::Str("someFun got spawn-arg".into())));
        assert_eq!(*c.died()[0].1, DiedReason::UnknownId);
        // Two node connections from A, both to NodeIdentifier B.
        let opens = c.events.iter()
            .filter(|e| e.dir == "A->B" && matches!(e.frame, Frame::Open(Identifier::Node(_))))
            .count();
        assert_eq!(opens, 2);
    }

    c14_kill_exit_usend => "14-kill-exit-usend", |c| {
        let kill = c.signals().find_map(|(_, m)| match &m.signal {
            ProcessSignal::Kill { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        assert_eq!(kill.as_deref(), Some("kill-reason"));
        assert!(c.values().any(|v| *v == Value::Str("exit-reason".into())));
        let usend = c.signals().find_map(|(_, m)| match &m.signal {
            ProcessSignal::UnreliableSend { to, .. } => Some(to.counter),
            _ => None,
        });
        assert_eq!(usend, Some(10));
        assert!(c.values().any(|v| *v == Value::Str("usend-hello".into())));
        let died = c.died();
        assert!(exception(died[0].1).starts_with("killed-by=pid://127.0.0.1:10501:0:8,reason=kill-reason"));
        assert!(exception(died[1].1).starts_with("exit-from=pid://127.0.0.1:10501:0:8,reason=exit-reason"));
    }

    c15_register_remote => "15-register-remote", |c| {
        let regs: Vec<_> = c.values().filter_map(|v| match v {
            Value::Register(r) => Some(r.clone()),
            _ => None,
        }).collect();
        assert_eq!(regs.len(), 5);
        assert!(regs[0].ok && regs[0].label == "remote-name" && regs[0].owner.is_some());
        assert!(regs.iter().any(|r| !r.ok));
        let whereis: Vec<_> = c.values().filter_map(|v| match v {
            Value::WhereIs(r) => Some(r.clone()),
            _ => None,
        }).collect();
        assert_eq!(whereis.len(), 2);
        assert_eq!(whereis[1].label, "a-helper");
        // Forwarded Register keeps the original process sender.
        let fwd = c.signals().find(|(e, m)| e.dir == "B->A" && m.signal.name() == "Register");
        assert!(matches!(fwd.unwrap().1.sender, Identifier::Process(_)));
    }

    c16_node_stats_info => "16-node-stats-info", |c| {
        let info = c.values().find_map(|v| match v {
            Value::Info(i) => Some(i.clone()),
            _ => None,
        }).expect("ProcessInfo");
        assert_eq!(info.registered_names, ["infotarget"]);
        assert_eq!(info.message_queue_length, 2);
        assert_eq!(info.monitors.len(), 1);
        assert!(info.links.is_empty());
        assert!(c.values().any(|v| *v == Value::InfoNone(ProcessInfoNone(DiedReason::UnknownId))));
        // getNodeStats carries the caller's own node and bounces back.
        let stats: Vec<_> = c.signals().filter_map(|(e, m)| match &m.signal {
            ProcessSignal::GetNodeStats(n) => Some((e.dir.clone(), n.as_str().unwrap().to_string())),
            _ => None,
        }).collect();
        assert_eq!(stats, [
            ("A->B".to_string(), "127.0.0.1:10501:0".to_string()),
            ("B->A".to_string(), "127.0.0.1:10501:0".to_string()),
        ]);
    }

    c17_unmonitor_unlink => "17-unmonitor-unlink", |c| {
        let sig: Vec<_> = c.signals().map(|(_, m)| m.signal.clone()).collect();
        let names: Vec<_> = sig.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["Monitor", "Unmonitor", "Link", "Unlink"]);
        let (ProcessSignal::Monitor(a), ProcessSignal::Unmonitor(b)) = (&sig[0], &sig[1]) else {
            panic!()
        };
        assert_eq!(a, b);
        let (ProcessSignal::Link(a), ProcessSignal::Unlink(b)) = (&sig[2], &sig[3]) else {
            panic!()
        };
        assert_eq!(a, b);
        assert!(c.died().is_empty());
    }

    c18_monitor_node => "18-monitor-node", |c| {
        let sig: Vec<_> = c.signals().map(|(_, m)| m.signal.clone()).collect();
        assert!(matches!(&sig[0], ProcessSignal::Monitor(r) if matches!(r.ident, Identifier::Node(_))));
        assert!(matches!(&sig[1], ProcessSignal::Monitor(r) if matches!(r.ident, Identifier::Process(_))));
        let units = &c.units[&(0, "B->A".to_string())];
        assert_eq!(units.last(), Some(&Unit::Control(ControlHeader::CloseEndPoint)));
    }
}
