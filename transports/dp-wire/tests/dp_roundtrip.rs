//! Property tests: decode(encode(x)) == x for every wire type, and every
//! truncation of a valid encoding is an `UnexpectedEof` (never a panic).

use std::fmt::Debug;

use bytes::Bytes;
use dp_wire::binary::{
    decode_exact, decode_exact_shared, BinaryError, Decode, Either, Encode, LazyByteString,
};
use dp_wire::dp::*;
use dp_wire::fingerprint::Fingerprint;
use dp_wire::Limits;
use proptest::prelude::*;

fn check<T: Encode + Decode + PartialEq + Debug>(v: &T) -> Result<(), TestCaseError> {
    let l = Limits::default();
    let bytes = v.to_binary();
    prop_assert_eq!(&decode_exact::<T>(&bytes, &l)?, v);
    let shared = Bytes::from(bytes.clone());
    prop_assert_eq!(&decode_exact_shared::<T>(&shared, &l)?, v);
    // A Binary encoding is prefix-free, so every proper prefix is short.
    // Checking all prefixes is quadratic; sample a few.
    let step = (bytes.len() / 16).max(1);
    for cut in (0..bytes.len()).step_by(step) {
        match decode_exact::<T>(&bytes[..cut], &l) {
            Err(BinaryError::UnexpectedEof { .. }) => {}
            other => prop_assert!(false, "prefix {cut}/{}: {other:?}", bytes.len()),
        }
    }
    Ok(())
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn node_id() -> impl Strategy<Value = NodeId> {
    prop_oneof![
        "[0-9a-z.:]{0,24}".prop_map(NodeId::new),
        // Addresses need not be UTF-8.
        bytes(24).prop_map(NodeId),
    ]
}

fn lpid() -> impl Strategy<Value = LocalProcessId> {
    (any::<i32>(), any::<i32>()).prop_map(|(unique, counter)| LocalProcessId { unique, counter })
}

fn pid() -> impl Strategy<Value = ProcessId> {
    (node_id(), lpid()).prop_map(|(node, local)| ProcessId { node, local })
}

fn port() -> impl Strategy<Value = SendPortId> {
    (pid(), any::<i32>()).prop_map(|(process, local)| SendPortId { process, local })
}

fn ident() -> impl Strategy<Value = Identifier> {
    prop_oneof![
        pid().prop_map(Identifier::Process),
        node_id().prop_map(Identifier::Node),
        port().prop_map(Identifier::SendPort),
    ]
}

fn mref() -> impl Strategy<Value = MonitorRef> {
    (ident(), any::<i32>()).prop_map(|(ident, counter)| MonitorRef { ident, counter })
}

fn reason() -> impl Strategy<Value = DiedReason> {
    prop_oneof![
        Just(DiedReason::Normal),
        any::<String>().prop_map(DiedReason::Exception),
        Just(DiedReason::Disconnect),
        Just(DiedReason::NodeDown),
        Just(DiedReason::UnknownId),
    ]
}

fn static_() -> impl Strategy<Value = Static> {
    "[$A-Za-z._]{0,16}"
        .prop_map(Static::Label)
        .prop_recursive(6, 32, 2, |inner| {
            (inner.clone(), inner).prop_map(|(f, x)| f.apply(x))
        })
}

fn closure() -> impl Strategy<Value = Closure> {
    (static_(), bytes(64)).prop_map(|(decoder, env)| Closure { decoder, env })
}

fn fingerprint() -> impl Strategy<Value = Fingerprint> {
    (any::<u64>(), any::<u64>()).prop_map(|(hi, lo)| Fingerprint::new(hi, lo))
}

fn message() -> impl Strategy<Value = Message> {
    (fingerprint(), proptest::collection::vec(bytes(40), 0..4))
        .prop_map(|(fp, chunks)| Message::from_chunks(fp, chunks))
}

fn signal() -> impl Strategy<Value = ProcessSignal> {
    use ProcessSignal as S;
    prop_oneof![
        ident().prop_map(S::Link),
        ident().prop_map(S::Unlink),
        mref().prop_map(S::Monitor),
        mref().prop_map(S::Unmonitor),
        (ident(), reason()).prop_map(|(who, reason)| S::Died { who, reason }),
        (closure(), any::<i32>()).prop_map(|(closure, r)| S::Spawn {
            closure,
            spawn_ref: SpawnRef(r)
        }),
        any::<String>().prop_map(S::WhereIs),
        (
            any::<String>(),
            node_id(),
            proptest::option::of(pid()),
            any::<bool>()
        )
            .prop_map(|(label, node, pid, force)| S::Register {
                label,
                node,
                pid,
                force
            }),
        (any::<String>(), message()).prop_map(|(label, message)| S::NamedSend { label, message }),
        (pid(), any::<String>()).prop_map(|(target, reason)| S::Kill { target, reason }),
        (pid(), message()).prop_map(|(target, reason)| S::Exit { target, reason }),
        (pid(), message()).prop_map(|(to, message)| S::LocalSend { to, message }),
        (port(), message()).prop_map(|(to, message)| S::LocalPortSend { to, message }),
        (lpid(), message()).prop_map(|(to, message)| S::UnreliableSend { to, message }),
        pid().prop_map(S::GetInfo),
        Just(S::SigShutdown),
        node_id().prop_map(S::GetNodeStats),
    ]
}

fn ncmsg() -> impl Strategy<Value = NCMsg> {
    (ident(), signal()).prop_map(|(sender, signal)| NCMsg { sender, signal })
}

proptest! {
    #[test]
    fn primitives(
        a in any::<(u8, u16, u32, u64)>(),
        b in any::<(i8, i16, i32, i64)>(),
        c in any::<(bool, char, ())>(),
        s in any::<String>(),
        v in proptest::collection::vec(any::<u32>(), 0..20),
        o in proptest::option::of(any::<i64>()),
        e in prop_oneof![any::<u8>().prop_map(Either::Left), any::<String>().prop_map(Either::Right)],
        bs in bytes(100),
        lbs in bytes(100).prop_map(LazyByteString),
    ) {
        check(&a)?;
        check(&b)?;
        check(&c)?;
        check(&s)?;
        check(&v)?;
        check(&o)?;
        check(&e)?;
        check(&bs)?;
        check(&lbs)?;
        check(&(s.clone(), bs.clone()))?;
        check(&vec![s.clone(); 3])?;
    }

    #[test]
    fn identifiers(p in pid(), sp in port(), i in ident(), m in mref(), r in any::<i32>()) {
        check(&p)?;
        check(&p.local)?;
        check(&p.node)?;
        check(&sp)?;
        check(&i)?;
        check(&m)?;
        check(&SpawnRef(r))?;
        check(&SendPort::<Bytes>::new(sp))?;
    }

    #[test]
    fn signals_and_ncmsgs(m in ncmsg()) {
        check(&m.signal)?;
        check(&m)?;
        let shared = Bytes::from(m.to_binary());
        prop_assert_eq!(NCMsg::decode_frame(&shared, &Limits::default())?, m);
    }

    #[test]
    fn closures_and_messages(c in closure(), msg in message(), r in reason()) {
        check(&c)?;
        check(&c.decoder)?;
        check(&msg)?;
        check(&r)?;
        // The process-connection frame carries the same fingerprint and
        // payload (chunking is an NCMsg-only detail).
        let mut frame = Vec::new();
        msg.encode_frame(&mut frame);
        let back = Message::decode_frame(&Bytes::from(frame))?;
        prop_assert_eq!(back.fingerprint, msg.fingerprint);
        prop_assert_eq!(back.payload(), msg.payload());
    }

    #[test]
    fn replies(
        p in pid(), q in pid(), n in node_id(), sp in port(), m in mref(), r in reason(),
        label in any::<String>(), names in proptest::collection::vec(any::<String>(), 0..3),
        ok in any::<bool>(), ints in any::<(i64, i64, i64, i64)>(), sref in any::<i32>(),
    ) {
        check(&WhereIsReply { label: label.clone(), pid: Some(p.clone()) })?;
        check(&WhereIsReply { label: label.clone(), pid: None })?;
        check(&RegisterReply { label, ok, owner: Some(q.clone()) })?;
        check(&DidSpawn { spawn_ref: SpawnRef(sref), pid: p.clone() })?;
        check(&ProcessMonitorNotification { monitor_ref: m.clone(), pid: p.clone(), reason: r.clone() })?;
        check(&NodeMonitorNotification { monitor_ref: m.clone(), node: n.clone(), reason: r.clone() })?;
        check(&PortMonitorNotification { monitor_ref: m.clone(), port: sp.clone(), reason: r.clone() })?;
        check(&ProcessLinkException { pid: p.clone(), reason: r.clone() })?;
        check(&NodeLinkException { node: n.clone(), reason: r.clone() })?;
        check(&PortLinkException { port: sp.clone(), reason: r.clone() })?;
        check(&ProcessInfo {
            node: n.clone(),
            registered_names: names,
            message_queue_length: ints.0,
            monitors: vec![(q.clone(), m.clone())],
            links: vec![p.clone(), q.clone()],
        })?;
        check(&ProcessInfoNone(r))?;
        check(&NodeStats { node: n.clone(), registered_names: ints.0, monitors: ints.1, links: ints.2, processes: ints.3 })?;
        check(&DidUnmonitor(m))?;
        check(&DidUnlinkProcess(p))?;
        check(&DidUnlinkNode(n))?;
        check(&DidUnlinkPort(sp))?;
    }

    #[test]
    fn inbound_connection_round_trips(target in ident(), m in ncmsg(), msg in message()) {
        let l = Limits::default();
        let mut c = InboundConnection::new();
        let open = Bytes::from(target.to_binary());
        prop_assert_eq!(c.decode(&open, &l)?, Frame::Open(target.clone()));
        let next = match &target {
            Identifier::Node(_) => Frame::Control(m),
            Identifier::Process(_) => Frame::Message(Message::new(msg.fingerprint, msg.payload())),
            Identifier::SendPort(_) => Frame::Channel(msg.payload()),
        };
        let mut b = Vec::new();
        next.encode(&mut b);
        prop_assert_eq!(c.decode(&Bytes::from(b), &l)?, next);
    }
}
