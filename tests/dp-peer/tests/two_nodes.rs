//! Two plain nodes on loopback talking distributed-process to each other.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{units, wait_until, T};
use dp_peer::{PeerError, PlainNode};
use dp_wire::dp::{ProcessId, Serializable};
use dp_wire::ntt::{ConnectionResponse, ControlHeader, Role, Unit};

async fn pair() -> (PlainNode, PlainNode) {
    let a = PlainNode::start("127.0.0.1").await.unwrap();
    let b = PlainNode::start("127.0.0.1").await.unwrap();
    (a, b)
}

fn strict(n: &PlainNode, m: &dp_wire::dp::Message) -> Bytes {
    n.messages()
        .decode::<Bytes>(m)
        .expect("a strict ByteString")
}

#[test_log::test(tokio::test)]
async fn send_and_expect_both_ways_on_one_socket() {
    let (a, b) = pair().await;
    let (pa, pb) = (a.spawn(), b.spawn());
    assert_eq!(pa.pid().local.counter, 8, "first user process is 8");
    let m = a.messages().pid_bytes(&pa.pid(), b"ping");
    pa.send(&pb.pid(), m).await.unwrap();
    let got = pb.expect(T).await.unwrap();
    let (from, body): (ProcessId, Bytes) = b.messages().decode(&got).unwrap();
    assert_eq!((from.clone(), &body[..]), (pa.pid(), &b"ping"[..]));
    pb.send(&from, b.messages().strict_bytes(b"pong"))
        .await
        .unwrap();
    let reply = pa.expect(T).await.unwrap();
    assert_eq!(&strict(&a, &reply)[..], b"pong");
    // One TCP connection, used in both directions.
    assert_eq!(a.sockets().len(), 1);
    assert_eq!(b.sockets().len(), 1);
    assert_eq!(a.received().len(), 1);
    assert_eq!(b.received().len(), 1);
    assert!(a.violations().is_empty() && b.violations().is_empty());
}

#[test_log::test(tokio::test)]
async fn expect_fp_is_a_selective_receive() {
    let (a, b) = pair().await;
    let (pa, pb) = (a.spawn(), b.spawn());
    pa.send(&pb.pid(), a.messages().string("first"))
        .await
        .unwrap();
    pa.send(&pb.pid(), a.messages().strict_bytes(b"second"))
        .await
        .unwrap();
    let fp = <Bytes as Serializable>::fingerprint(b.build());
    let m = pb.expect_fp(fp, T).await.unwrap();
    assert_eq!(&strict(&b, &m)[..], b"second");
    let m = pb.expect(T).await.unwrap();
    assert_eq!(b.messages().decode::<String>(&m).as_deref(), Some("first"));
    assert!(matches!(
        pb.expect(Duration::from_millis(50)).await,
        Err(PeerError::Timeout)
    ));
}

#[test_log::test(tokio::test)]
async fn nsend_remote_to_registered_and_unregistered_names() {
    let (a, b) = pair().await;
    let (pa, echo) = (a.spawn(), b.spawn());
    b.register("echo", &echo.pid());
    pa.nsend_remote(&b.node_id(), "nosuch", a.messages().string("dropped"))
        .await
        .unwrap();
    pa.nsend_remote(
        &b.node_id(),
        "echo",
        a.messages().strict_bytes(&[b'x'; 40000]),
    )
    .await
    .unwrap();
    let m = echo.expect(T).await.unwrap();
    assert_eq!(strict(&b, &m).len(), 40000);
    assert_eq!(m.chunks().len(), 2, "inserted like GHC: [8][40000]");
    // Ordered on one connection: had "dropped" been delivered, it would
    // have come first.
    assert_eq!(echo.queue_len(), 0);
    assert!(b.violations().is_empty());
}

#[test_log::test(tokio::test)]
async fn whereis_remote_found_and_not_found() {
    let (a, b) = pair().await;
    let (pa, echo) = (a.spawn(), b.spawn());
    b.register("echo", &echo.pid());
    let found = pa.whereis_remote(&b.node_id(), "echo", T).await.unwrap();
    assert_eq!(found, Some(echo.pid()));
    let none = pa.whereis_remote(&b.node_id(), "nosuch", T).await.unwrap();
    assert_eq!(none, None);
    // B's NC answered on its own node-to-node connection, on the socket
    // A opened.
    assert_eq!(b.sockets().len(), 1);
    assert_eq!(b.sockets()[0].outgoing, 1);
}

#[test_log::test(tokio::test)]
async fn crossed_connections_leave_one_socket() {
    // Both send at once; with the requests written before either is read,
    // the connections cross. Retry a few times in case they did not.
    for attempt in 0..10 {
        let (a, b) = pair().await;
        let (pa, pb) = (a.spawn(), b.spawn());
        let (pid_a, pid_b) = (pa.pid(), pb.pid());
        let (ra, rb) = tokio::join!(
            pa.send(&pid_b, a.messages().strict_bytes(b"from-a")),
            pb.send(&pid_a, b.messages().strict_bytes(b"from-b")),
        );
        ra.unwrap();
        rb.unwrap();
        assert_eq!(&strict(&b, &pb.expect(T).await.unwrap())[..], b"from-a");
        assert_eq!(&strict(&a, &pa.expect(T).await.unwrap())[..], b"from-b");
        wait_until("one socket each", || {
            a.sockets().len() == 1 && b.sockets().len() == 1
        })
        .await;
        // Later traffic reuses the survivor in both directions.
        pa.send(&pb.pid(), a.messages().string("again-a"))
            .await
            .unwrap();
        pb.send(&pa.pid(), b.messages().string("again-b"))
            .await
            .unwrap();
        pb.expect(T).await.unwrap();
        pa.expect(T).await.unwrap();
        assert_eq!((a.sockets().len(), b.sockets().len()), (1, 1));
        let streams = a.received().len() + b.received().len();
        if streams == 2 {
            tracing::info!(attempt, "no crossing this time");
            continue;
        }
        assert_eq!(streams, 4, "two TCP connections, each seen from both sides");
        // The smaller address answered Crossed to the greater one's request.
        let (small, great) = if a.node_id() < b.node_id() {
            (&a, &b)
        } else {
            (&b, &a)
        };
        let crossed = great
            .received()
            .into_iter()
            .find(|s| s.initiated_by_us && s.bytes.starts_with(&[0, 0, 0, 2]))
            .expect("the greater node got Crossed");
        assert_eq!(
            units(&crossed.bytes, Role::Listener),
            vec![Unit::ConnectionResponse(ConnectionResponse::Crossed)]
        );
        assert!(
            small.sockets()[0].initiated_by_us,
            "the smaller keeps its own connection"
        );
        assert!(a.violations().is_empty() && b.violations().is_empty());
        return;
    }
    panic!("the connections never crossed");
}

#[test_log::test(tokio::test)]
async fn process_exit_closes_the_socket_by_handshake() {
    let (a, b) = pair().await;
    let (pa, pb) = (a.spawn(), b.spawn());
    pa.send(&pb.pid(), a.messages().strict_bytes(b"only"))
        .await
        .unwrap();
    pb.expect(T).await.unwrap();
    pa.exit();
    wait_until("both sockets closed", || {
        a.sockets().is_empty() && b.sockets().is_empty()
    })
    .await;
    // Capture 07: CloseConnection, CloseSocket(0); B answers CloseSocket(1024).
    let to_b = units(&b.received()[0].bytes, Role::Initiator);
    assert_eq!(
        to_b[to_b.len() - 2..],
        [
            Unit::Control(ControlHeader::CloseConnection(1024)),
            Unit::Control(ControlHeader::CloseSocket(0))
        ]
    );
    let to_a = units(&a.received()[0].bytes, Role::Listener);
    assert_eq!(
        to_a,
        vec![
            Unit::ConnectionResponse(ConnectionResponse::Accepted),
            Unit::Control(ControlHeader::CloseSocket(1024))
        ]
    );
    // The next send opens a new TCP connection.
    let pa2 = a.spawn();
    pa2.send(&pb.pid(), a.messages().strict_bytes(b"new"))
        .await
        .unwrap();
    pb.expect(T).await.unwrap();
    assert_eq!(b.received().len(), 2);
}

#[test_log::test(tokio::test)]
async fn close_is_seen_by_the_other_side() {
    let (a, b) = pair().await;
    let (pa, pb) = (a.spawn(), b.spawn());
    pa.send(&pb.pid(), a.messages().unit()).await.unwrap();
    pb.expect(T).await.unwrap();
    a.clone().close().await;
    wait_until("B drops the socket", || b.sockets().is_empty()).await;
    let to_b = units(&b.received()[0].bytes, Role::Initiator);
    assert_eq!(
        to_b.last(),
        Some(&Unit::Control(ControlHeader::CloseEndPoint))
    );
    assert!(matches!(
        pa.expect(Duration::from_millis(10)).await,
        Err(PeerError::Closed)
    ));
    assert!(matches!(
        pa.send(&pb.pid(), a.messages().unit()).await,
        Err(PeerError::Closed)
    ));
    drop(pa);
    // CloseEndPoint is the last thing A said: no CloseConnection after it.
    let to_b2 = units(&b.received()[0].bytes, Role::Initiator);
    assert_eq!(to_b, to_b2);
    assert!(b.violations().is_empty());
}

#[test_log::test(tokio::test)]
async fn kill_breaks_process_connections_until_reconnect() {
    let (a, b) = pair().await;
    let (pa, pb) = (a.spawn(), b.spawn());
    pb.send(&pa.pid(), b.messages().unit()).await.unwrap();
    pa.expect(T).await.unwrap();
    a.clone().kill();
    wait_until("B sees the loss", || b.sockets().is_empty()).await;
    // NoImplicitReconnect: the cached connection stays broken.
    assert!(matches!(
        pb.send(&pa.pid(), b.messages().unit()).await,
        Err(PeerError::Closed)
    ));
    pb.reconnect(&pa.pid());
    // A is gone, so the reconnect fails to connect.
    assert!(pb.send(&pa.pid(), b.messages().unit()).await.is_err());
}

#[test_log::test(tokio::test)]
async fn received_streams_are_valid_nt_tcp() {
    let (a, b) = pair().await;
    let (pa, pb) = (a.spawn(), b.spawn());
    b.register("echo", &pb.pid());
    pa.nsend_remote(
        &b.node_id(),
        "echo",
        a.messages().pid_bytes(&pa.pid(), b"x"),
    )
    .await
    .unwrap();
    pb.expect(T).await.unwrap();
    pb.send(&pa.pid(), b.messages().string("y")).await.unwrap();
    pa.expect(T).await.unwrap();
    pa.whereis_remote(&b.node_id(), "echo", T).await.unwrap();
    a.clone().close().await;
    wait_until("B drops the socket", || b.sockets().is_empty()).await;
    for (node, role_of_sender) in [(&a, Role::Listener), (&b, Role::Initiator)] {
        for s in node.received() {
            let sender = if s.initiated_by_us {
                Role::Listener
            } else {
                Role::Initiator
            };
            assert_eq!(sender, role_of_sender);
            assert!(!units(&s.bytes, sender).is_empty());
        }
    }
    assert!(a.violations().is_empty() && b.violations().is_empty());
}

#[test_log::test(tokio::test)]
async fn local_sends_and_kill_by_nc() {
    let (a, b) = pair().await;
    let (pa, pa2, pb) = (a.spawn(), a.spawn(), b.spawn());
    pa.send(&pa2.pid(), a.messages().string("local"))
        .await
        .unwrap();
    assert_eq!(
        a.messages()
            .decode::<String>(&pa2.expect(T).await.unwrap())
            .as_deref(),
        Some("local")
    );
    // Kill from B's process, through A's NC.
    pb.send_ctrl(
        &a.node_id(),
        dp_wire::dp::ProcessSignal::Kill {
            target: pa2.pid(),
            reason: "bye".into(),
        },
    )
    .await
    .unwrap();
    wait_until("pa2 killed", || !pa2.is_alive()).await;
    assert_eq!(
        pa2.died(),
        Some(dp_wire::dp::DiedReason::Exception(format!(
            "killed-by={},reason=bye",
            pb.pid()
        )))
    );
    assert!(pa.is_alive());
}

#[test_log::test(tokio::test)]
async fn spawn_of_unknown_closure_answers_did_spawn_with_a_dead_process() {
    use dp_wire::dp::{Closure, DidSpawn, ProcessInfo, ProcessInfoNone, SpawnRef, Static};
    let (a, b) = pair().await;
    let (pa, pb) = (a.spawn(), b.spawn());
    b.register("target", &pb.pid());
    let closure = Closure {
        decoder: Static::label("$compose").apply(Static::label("Main.otherFun")),
        env: Bytes::from_static(b"env"),
    };
    pa.send_ctrl(
        &b.node_id(),
        dp_wire::dp::ProcessSignal::Spawn {
            closure,
            spawn_ref: SpawnRef(1),
        },
    )
    .await
    .unwrap();
    let fp = <DidSpawn as Serializable>::fingerprint(a.build());
    let did: DidSpawn = a
        .messages()
        .decode(&pa.expect_fp(fp, T).await.unwrap())
        .unwrap();
    assert_eq!(did.spawn_ref, SpawnRef(1));
    assert_eq!(did.pid.node, b.node_id());
    assert_eq!(did.pid.local.counter, 9, "the dead process used a counter");
    // Capture 13/16: asking about it gives ProcessInfoNone DiedUnknownId,
    // about a live one a ProcessInfo.
    pa.send_ctrl(&b.node_id(), dp_wire::dp::ProcessSignal::GetInfo(did.pid))
        .await
        .unwrap();
    let none: ProcessInfoNone = a.messages().decode(&pa.expect(T).await.unwrap()).unwrap();
    assert_eq!(none, ProcessInfoNone(dp_wire::dp::DiedReason::UnknownId));
    pa.send(&pb.pid(), a.messages().string("queued"))
        .await
        .unwrap();
    wait_until("queued at B", || pb.queue_len() == 1).await;
    pa.send_ctrl(&b.node_id(), dp_wire::dp::ProcessSignal::GetInfo(pb.pid()))
        .await
        .unwrap();
    let info: ProcessInfo = a.messages().decode(&pa.expect(T).await.unwrap()).unwrap();
    assert_eq!(info.registered_names, vec!["target".to_string()]);
    assert_eq!(info.message_queue_length, 1);
    assert!(b.violations().is_empty());
}
