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
use dp_peer::PlainNode;
use dp_wire::dp::{ProcessId, ProcessSignal, RegisterReply, Serializable};
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
