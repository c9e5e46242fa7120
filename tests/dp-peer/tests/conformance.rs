//! Two plain nodes replay the captured scenarios; the bytes each puts on
//! the wire must equal what the Haskell nodes sent, once our ports are
//! replaced by the captured ones. lpidUnique values are set to the
//! captured ones, so they need no normalization.
//!
//! A's bytes are what B received on the connection A opened, and B's are
//! what A received on it.

mod common;

use bytes::Bytes;
use common::{capture_stream, describe, node_5digit, normalize, wait_until, T};
use dp_peer::ExitReason;
use dp_peer::PlainNode;
use dp_wire::dp::{
    DiedReason, Identifier, LocalProcessId, ProcessId, ProcessLinkException, ProcessSignal,
    RegisterReply, Serializable,
};
use dp_wire::ntt::Role;

/// Asserts that the single TCP connection A opened carried exactly the
/// captured bytes in both directions.
fn assert_wire_matches(capture: &str, a: &PlainNode, b: &PlainNode) {
    let (ida, idb) = (a.node_id(), b.node_id());
    let a_rx = a.received();
    let b_rx = b.received();
    assert_eq!(a_rx.len(), 1, "A used one TCP connection");
    assert_eq!(b_rx.len(), 1, "B saw one TCP connection");
    assert!(a_rx[0].initiated_by_us && !b_rx[0].initiated_by_us);
    for (dir, got, sender) in [
        ("A->B", &b_rx[0].bytes, Role::Initiator),
        ("B->A", &a_rx[0].bytes, Role::Listener),
    ] {
        let got = normalize(got, &ida, &idb);
        let want = capture_stream(capture, dir);
        assert!(!want.is_empty(), "{capture} {dir}: nothing captured");
        assert!(
            got == want,
            "{capture} {dir} differs\n--- ours\n{}--- captured\n{}",
            describe(&got, sender),
            describe(&want, sender)
        );
    }
    assert!(a.violations().is_empty(), "{:?}", a.violations());
    assert!(b.violations().is_empty(), "{:?}", b.violations());
}

/// The connection to `peer` has no incoming lightweight connection left
/// (or is gone).
fn no_incoming(n: &PlainNode) -> bool {
    n.sockets().iter().all(|s| s.incoming == 0)
}

#[test_log::test(tokio::test)]
async fn capture_01_send_bytestring() {
    let a = node_5digit(Some(0x63e798a3)).await;
    let b = node_5digit(Some(0xa5aaa784_u32 as i32)).await;
    let (pa, sink) = (a.spawn(), b.spawn());
    let m = a.messages();
    for msg in [
        m.strict_bytes(b"hello-strict"),
        m.lazy_bytes(b"hello-lazy"),
        m.string("hello-string"),
        m.string_bytes("tuple", b"bytes"),
        m.pid_bytes(&pa.pid(), b"reply-to-me"),
    ] {
        pa.send(&sink.pid(), msg).await.unwrap();
    }
    // B's sink reads all five and answers the (pid, bs) one.
    let mut last = None;
    for _ in 0..5 {
        last = Some(sink.expect(T).await.unwrap());
    }
    let (to, body): (ProcessId, Bytes) = b.messages().decode(&last.unwrap()).unwrap();
    let reply = format!("reply:{}", String::from_utf8_lossy(&body));
    sink.send(&to, b.messages().strict_bytes(reply.as_bytes()))
        .await
        .unwrap();
    sink.exit();
    let got = pa.expect(T).await.unwrap();
    assert_eq!(
        a.messages().decode::<Bytes>(&got).as_deref(),
        Some(&b"reply:reply-to-me"[..])
    );
    // A's process ends after B's CloseConnection arrived, so its close
    // starts the CloseSocket handshake (lastReceivedLcid = 1024).
    wait_until("B's connection closed at A", || no_incoming(&a)).await;
    pa.exit();
    wait_until("socket closed on both sides", || {
        a.sockets().is_empty() && b.sockets().is_empty()
    })
    .await;
    a.clone().close().await;
    assert_wire_matches("01-send-bytestring", &a, &b);
    b.kill();
}

#[test_log::test(tokio::test)]
async fn capture_02_nsend_remote() {
    let a = node_5digit(Some(0xc983fe48_u32 as i32)).await;
    let b = node_5digit(None).await;
    let (pa, echo) = (a.spawn(), b.spawn());
    b.register("echo", &echo.pid());
    let (m, nb) = (a.messages(), b.node_id());
    pa.nsend_remote(&nb, "echo", m.pid_bytes(&pa.pid(), b"named-hello"))
        .await
        .unwrap();
    let first = echo.expect(T).await.unwrap();
    let (to, body): (ProcessId, Bytes) = b.messages().decode(&first).unwrap();
    echo.send(&to, b.messages().strict_bytes(&body))
        .await
        .unwrap();
    let got = pa.expect(T).await.unwrap();
    assert_eq!(
        a.messages().decode::<Bytes>(&got).as_deref(),
        Some(&b"named-hello"[..])
    );
    pa.nsend_remote(&nb, "nosuch", m.string("dropped"))
        .await
        .unwrap();
    pa.nsend_remote(&nb, "echo", m.string("bye")).await.unwrap();
    pa.nsend_remote(&nb, "echo", m.lazy_bytes(b"lazy-named"))
        .await
        .unwrap();
    pa.nsend_remote(&nb, "echo", m.strict_bytes(&[b'x'; 40000]))
        .await
        .unwrap();
    for _ in 0..3 {
        echo.expect(T).await.unwrap();
    }
    echo.exit();
    wait_until("echo's connection closed at A", || no_incoming(&a)).await;
    // closeLocalNode while A's process still runs: CloseEndPoint only.
    a.clone().close().await;
    wait_until("B drops the socket", || b.sockets().is_empty()).await;
    drop(pa);
    assert_wire_matches("02-nsend-remote", &a, &b);
    b.kill();
}

#[test_log::test(tokio::test)]
async fn capture_03_whereis_remote() {
    let a = node_5digit(Some(0x9983e389_u32 as i32)).await;
    let b = node_5digit(Some(0x44f586af)).await;
    let (pa, echo) = (a.spawn(), b.spawn());
    b.register("echo", &echo.pid());
    let nb = b.node_id();
    assert_eq!(
        pa.whereis_remote(&nb, "echo", T).await.unwrap(),
        Some(echo.pid())
    );
    assert_eq!(pa.whereis_remote(&nb, "nosuch", T).await.unwrap(), None);
    a.clone().close().await;
    wait_until("B drops the socket", || b.sockets().is_empty()).await;
    drop(pa);
    assert_wire_matches("03-whereis-remote", &a, &b);
    b.kill();
}

#[test_log::test(tokio::test)]
async fn capture_15_register_remote() {
    let a = node_5digit(Some(0x11cac9cb)).await;
    let b = node_5digit(Some(0xc9a11ae4_u32 as i32)).await;
    let (pa, target) = (a.spawn(), b.spawn());
    let nb = b.node_id();
    let reply_fp = <RegisterReply as Serializable>::fingerprint(a.build());
    let register = |label: &str, pid: Option<ProcessId>| ProcessSignal::Register {
        label: label.into(),
        node: nb.clone(),
        pid,
        force: false,
    };
    let mut replies = Vec::new();
    for (label, pid) in [
        ("remote-name", Some(target.pid())),
        ("remote-name", Some(target.pid())),
    ] {
        pa.send_ctrl(&nb, register(label, pid)).await.unwrap();
        replies.push(pa.expect_fp(reply_fp, T).await.unwrap());
    }
    assert_eq!(
        pa.whereis_remote(&nb, "remote-name", T).await.unwrap(),
        Some(target.pid())
    );
    for _ in 0..2 {
        pa.send_ctrl(&nb, register("remote-name", None))
            .await
            .unwrap();
        replies.push(pa.expect_fp(reply_fp, T).await.unwrap());
    }
    // A pid of A registered at B: B forwards the Register to A's NC,
    // which remembers it and reports the helper's death to B.
    let helper = a.spawn();
    pa.send_ctrl(&nb, register("a-helper", Some(helper.pid())))
        .await
        .unwrap();
    replies.push(pa.expect_fp(reply_fp, T).await.unwrap());
    let replies: Vec<RegisterReply> = replies
        .iter()
        .map(|m| a.messages().decode(m).unwrap())
        .collect();
    let oks: Vec<_> = replies.iter().map(|r| (r.ok, r.owner.is_some())).collect();
    assert_eq!(
        oks,
        [
            (true, true),
            (false, true),
            (true, false),
            (false, false),
            (true, true)
        ]
    );
    assert_eq!(b.whereis("a-helper"), Some(helper.pid()));
    helper.exit();
    wait_until("B dropped the dead helper's name", || {
        b.whereis("a-helper").is_none()
    })
    .await;
    assert_eq!(pa.whereis_remote(&nb, "a-helper", T).await.unwrap(), None);
    a.clone().close().await;
    wait_until("B drops the socket", || b.sockets().is_empty()).await;
    drop(pa);
    assert_wire_matches("15-register-remote", &a, &b);
    b.kill();
}

/// B's node has exactly `n` incoming lightweight connections left.
fn incoming_is(n: &PlainNode, count: usize) -> bool {
    n.sockets().iter().map(|s| s.incoming).sum::<usize>() == count
}

/// The watched pid is recorded in `n`'s monitor table.
fn monitored(n: &PlainNode, pid: &ProcessId) -> bool {
    let who = Identifier::Process(pid.clone());
    n.monitors().iter().any(|(t, _, _)| *t == who)
}

#[test_log::test(tokio::test)]
async fn capture_04_monitor() {
    let a = node_5digit(Some(0x8a545340_u32 as i32)).await;
    let b = node_5digit(Some(0x4fb1ab5d)).await;
    let pa = a.spawn();
    let (normal, crash, err) = (b.spawn(), b.spawn(), b.spawn());
    let kaboom =
        "kaboom\nCallStack (from HasCallStack):\n  error, called at DpPeer.hs:201:9 in main:Main";
    let mut got = Vec::new();
    for (target, how) in [(&normal, 0), (&crash, 1), (&err, 2)] {
        let r = pa.monitor(&target.pid()).unwrap();
        // The Haskell peer waited 200 ms so that the send cannot overtake
        // the Monitor; we wait until B has it.
        wait_until("B records the monitor", || monitored(&b, &target.pid())).await;
        pa.send(&target.pid(), a.messages().unit()).await.unwrap();
        target.expect(T).await.unwrap();
        match how {
            0 => target.end_with(DiedReason::Normal),
            1 => target.die("boom"),
            _ => target.crash(kaboom),
        }
        got.push(pa.expect_monitor_notification(&r, T).await.unwrap().reason);
    }
    assert_eq!(
        got,
        [
            DiedReason::Normal,
            DiedReason::Exception(format!("exit-from={},reason=boom", crash.pid())),
            DiedReason::Exception(kaboom.into()),
        ]
    );
    let bogus = ProcessId {
        node: b.node_id(),
        local: LocalProcessId {
            unique: 0x4fb1ab5d,
            counter: 4242,
        },
    };
    let r = pa.monitor(&bogus).unwrap();
    assert_eq!(r.counter, 3);
    let n = pa.expect_monitor_notification(&r, T).await.unwrap();
    assert_eq!(n.reason, DiedReason::UnknownId);
    // A's process ends: its three process connections close, in pid order.
    pa.exit();
    wait_until("B saw the CloseConnections", || incoming_is(&b, 1)).await;
    a.clone().close().await;
    wait_until("B drops the socket", || b.sockets().is_empty()).await;
    assert_wire_matches("04-monitor", &a, &b);
    b.kill();
}

#[test_log::test(tokio::test)]
async fn capture_05_link() {
    let a = node_5digit(Some(0x0cf5f739)).await;
    let b = node_5digit(Some(0x2efa81ff)).await;
    let (pa, linked) = (a.spawn(), b.spawn());
    pa.link(&linked.pid()).unwrap();
    wait_until("B records the link", || !b.links().is_empty()).await;
    pa.send(&linked.pid(), a.messages().unit()).await.unwrap();
    linked.expect(T).await.unwrap();
    linked.die("linked-boom");
    // B's Died makes A's NC throw ProcessLinkException into pa, which
    // ends it: its process connection closes (CloseConnection 1025).
    let why = DiedReason::Exception(format!("exit-from={},reason=linked-boom", linked.pid()));
    assert_eq!(
        pa.wait_exit(T).await.unwrap(),
        ExitReason::ProcessLink(ProcessLinkException {
            pid: linked.pid(),
            reason: why
        })
    );
    wait_until("B saw the CloseConnection", || incoming_is(&b, 1)).await;
    a.clone().close().await;
    wait_until("B drops the socket", || b.sockets().is_empty()).await;
    assert_wire_matches("05-link", &a, &b);
    b.kill();
}

#[test_log::test(tokio::test)]
async fn capture_17_unmonitor_unlink() {
    let a = node_5digit(Some(0xca0027a1_u32 as i32)).await;
    let b = node_5digit(Some(0x4d9009c2)).await;
    let (pa, target) = (a.spawn(), b.spawn());
    let r = pa.monitor(&target.pid()).unwrap();
    wait_until("B records the monitor", || b.monitors().len() == 1).await;
    pa.unmonitor(&r).await.unwrap();
    wait_until("B drops the monitor", || b.monitors().is_empty()).await;
    pa.link(&target.pid()).unwrap();
    wait_until("B records the link", || b.links().len() == 1).await;
    pa.unlink(&target.pid()).await.unwrap();
    wait_until("B drops the link", || b.links().is_empty()).await;
    pa.send(&target.pid(), a.messages().unit()).await.unwrap();
    target.expect(T).await.unwrap();
    target.die("target-exit");
    // B's NC handles the death and sends nothing (the capture's B->A
    // stream is the connection response alone).
    b.nc_settled().await.unwrap();
    assert!(pa.is_alive());
    assert_eq!(pa.queue_len(), 0);
    pa.exit();
    wait_until("B saw the CloseConnection", || incoming_is(&b, 1)).await;
    a.clone().close().await;
    wait_until("B drops the socket", || b.sockets().is_empty()).await;
    assert_wire_matches("17-unmonitor-unlink", &a, &b);
    b.kill();
}

#[test_log::test(tokio::test)]
async fn capture_14_kill_exit_usend() {
    let a = node_5digit(Some(0x823b6c81_u32 as i32)).await;
    let b = node_5digit(Some(0x8a426b0e_u32 as i32)).await;
    let pa = a.spawn();
    let (killme, exitme, usendme) = (b.spawn(), b.spawn(), b.spawn());
    let rk = pa.monitor(&killme.pid()).unwrap();
    let re = pa.monitor(&exitme.pid()).unwrap();
    wait_until("B records both monitors", || b.monitors().len() == 2).await;
    let me = pa.pid();
    pa.kill(&killme.pid(), "kill-reason").unwrap();
    let n = pa.expect_monitor_notification(&rk, T).await.unwrap();
    assert_eq!(
        n.reason,
        DiedReason::Exception(format!("killed-by={me},reason=kill-reason"))
    );
    pa.exit_process(&exitme.pid(), a.messages().string("exit-reason"))
        .unwrap();
    let n = pa.expect_monitor_notification(&re, T).await.unwrap();
    assert_eq!(
        n.reason,
        DiedReason::Exception(format!("exit-from={me},reason=exit-reason"))
    );
    pa.usend(&usendme.pid(), a.messages().string("usend-hello"))
        .await
        .unwrap();
    let got = usendme.expect(T).await.unwrap();
    assert_eq!(
        b.messages().decode::<String>(&got).as_deref(),
        Some("usend-hello")
    );
    // closeLocalNode while pa runs: CloseEndPoint only.
    a.clone().close().await;
    wait_until("B drops the socket", || b.sockets().is_empty()).await;
    drop(pa);
    assert_wire_matches("14-kill-exit-usend", &a, &b);
    b.kill();
}

#[test_log::test(tokio::test)]
async fn capture_18_monitor_node() {
    let a = node_5digit(Some(0xa9865b81_u32 as i32)).await;
    let b = node_5digit(Some(0xa0fc3dab_u32 as i32)).await;
    let (pa, victim) = (a.spawn(), b.spawn());
    let rn = pa.monitor_node(&b.node_id()).unwrap();
    let rp = pa.monitor(&victim.pid()).unwrap();
    wait_until("B records both monitors", || b.monitors().len() == 2).await;
    // B's closeLocalNode: CloseEndPoint, no Died; A's NC fires both
    // watches itself.
    b.clone().close().await;
    let n = pa.expect_node_notification(&rn, T).await.unwrap();
    assert_eq!(n.reason, DiedReason::Disconnect);
    let n = pa.expect_monitor_notification(&rp, T).await.unwrap();
    assert_eq!(n.reason, DiedReason::Disconnect);
    wait_until("A drops the socket", || a.sockets().is_empty()).await;
    a.clone().close().await;
    assert_wire_matches("18-monitor-node", &a, &b);
    drop(pa);
}
