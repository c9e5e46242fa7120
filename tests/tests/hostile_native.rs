//! A node on the native transport survives hostile and broken peers.
//!
//! Each test starts a [HardenedNode] (a `NodeServer` on 127.0.0.1 with small
//! limits), attacks it through raw sockets ([RawPeer]), and afterwards
//! checks that
//!
//! 1. a well-behaved peer is still served: a new `NodeServer` connects with
//!    `client_connect_transport`, and a cast and a call through its remote
//!    actor reach the target's echo actor ([check_served]);
//! 2. the node's own actors keep working (a local call, [check_local]);
//! 3. the heap grew less than a stated bound during the attack, measured
//!    with the counting allocator installed below ([PeakWatch]).
//!
//! A [Target] holds the binary-wide lock of `harness::exclusive` from its
//! start to its shutdown, so one attack's allocations are not counted
//! against another's, and ractor's process-wide registries see one test at
//! a time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kaisui_integration_tests::harness::{eventually, exclusive, unique_tag, Inbox, WAIT};
use kaisui_integration_tests::hostile::*;
use kaisui_interop_msgs::{spawn_echo, EchoMsg};
use ractor::{Actor, ActorRef};
use ractor_cluster::protocol::auth as auth_proto;
use ractor_cluster::protocol::control::{self as control_proto, control_message::Msg as Ctl};
use ractor_cluster::protocol::meta::network_message;
use ractor_cluster::protocol::node as node_proto;
use ractor_cluster::protocol::NetworkMessage;
use tokio::io::AsyncWriteExt;
use tokio::sync::MutexGuard;
use tokio::task::JoinHandle;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const MIB: usize = 1024 * 1024;

/// A short handshake timeout, so stalled handshakes end quickly.
const SHORT_HANDSHAKE: Duration = Duration::from_secs(1);

/// The node under attack, an echo actor on it and the check helpers.
struct Target {
    node: HardenedNode,
    echo: ActorRef<EchoMsg>,
    echo_name: String,
    inbox: Inbox,
    tag: String,
    checks: usize,
    /// Dropped last, once the node is down.
    _serial: MutexGuard<'static, ()>,
}

impl Target {
    /// Take the lock, then start the node with `limits` and its echo actor.
    async fn start(limits: Limits) -> Target {
        let serial = exclusive().await;
        assert!(
            counting_installed(),
            "the counting allocator is not this binary's global allocator"
        );
        let tag = unique_tag("hostile");
        let node = HardenedNode::start(&format!("target-{tag}"), &limits).await;
        let (inbox, report) = Inbox::new();
        let echo_name = format!("echo-{tag}");
        let echo = spawn_echo(&echo_name, report).await.expect("spawn echo");
        Target {
            node,
            echo,
            echo_name,
            inbox,
            tag,
            checks: 0,
            _serial: serial,
        }
    }

    /// Checks (1) and (2) after the attack `what`.
    async fn still_serves(&mut self, what: &str) {
        tracing::info!("checking the node still serves after: {what}");
        self.checks += 1;
        let tag = format!("{}-{}", self.tag, self.checks);
        check_served(&self.node, &self.echo_name, &mut self.inbox, &tag).await;
        check_local(&self.echo, &self.echo_name).await;
    }

    /// The attack `what`: a new connection sends `bytes()` first thing and
    /// the node closes it. The heap grows less than `bound` meanwhile (the
    /// input, built in there, included), and the node still serves.
    async fn refuses<B: AsRef<[u8]>>(
        &mut self,
        what: &str,
        bound: usize,
        bytes: impl FnOnce() -> B,
    ) {
        let memory = PeakWatch::start();
        let mut peer = RawPeer::connect(self.node.addr).await.expect("connect");
        // The node may close before all of it is written; that is fine.
        let _ = peer.send_bytes(bytes().as_ref()).await;
        peer.expect_closed(what).await;
        memory.assert_under(what, bound);
        self.still_serves(what).await;
    }

    /// [Target::refuses] from a raw peer that authenticated as `peer` first.
    async fn refuses_after_auth<B: AsRef<[u8]>>(
        &mut self,
        what: &str,
        peer: &str,
        bound: usize,
        bytes: impl FnOnce() -> B,
    ) {
        let memory = PeakWatch::start();
        let mut raw = RawPeer::authenticated(self.node.addr, peer)
            .await
            .expect("authenticate");
        let _ = raw.send_bytes(bytes().as_ref()).await;
        raw.expect_closed(what).await;
        memory.assert_under(what, bound);
        self.still_serves(what).await;
    }

    /// The pid a raw peer casts to, to reach the echo actor.
    fn echo_pid(&self) -> u64 {
        self.echo.get_id().pid()
    }

    async fn shutdown(self) {
        self.echo.stop(None);
        self.node.shutdown().await;
    }
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn bad_first_frames_are_refused() {
    let mut target = Target::start(Limits {
        handshake_timeout: SHORT_HANDSHAKE,
        ..Limits::default()
    })
    .await;

    // Bound: each input costs one session (a few actors, their mailboxes and
    // an 8 KiB read chunk, tens of KiB). 8 MiB is far above that and far
    // below anything that would scale with what the peer claims or sends.
    const BOUND: usize = 8 * MIB;
    let ping = control(Ctl::Ping(control_proto::Ping { timestamp: None }));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // A length and bytes that do not decode as a NetworkMessage.
        ("not protobuf", {
            let mut bytes = 5u64.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[0xff; 5]);
            bytes
        }),
        // Valid protobuf, not an auth message: ignored before
        // authentication, then the handshake timeout closes the session.
        (
            "node cast before auth",
            frame(&cast_to(target.echo_pid(), EchoMsg::Note("x".into()))),
        ),
        ("control ping before auth", frame(&ping)),
        (
            "empty message before auth",
            frame(&NetworkMessage { message: None }),
        ),
        // An auth message out of order: the server FSM closes at once.
        (
            "client challenge before the name",
            frame(&auth(
                auth_proto::authentication_message::Msg::ClientChallenge(
                    auth_proto::ChallengeReply {
                        challenge: 1,
                        digest: vec![0; 32],
                    },
                ),
            )),
        ),
    ];
    for (what, bytes) in &cases {
        target.refuses(what, BOUND, || bytes).await;
    }

    // The right protocol with the wrong cookie digest.
    let memory = PeakWatch::start();
    let mut peer = RawPeer::connect(target.node.addr).await.expect("connect");
    let result = peer
        .handshake_with(
            &format!("liar-{}", target.tag),
            COOKIE_FOR_TESTS,
            |challenge| challenge_digest("not-the-cookie", challenge),
        )
        .await;
    assert!(result.is_err(), "a wrong digest authenticated");
    peer.expect_closed("wrong cookie digest").await;
    memory.assert_under("wrong cookie digest", BOUND);
    target.node.wait_reason("auth_fail").await;
    target.still_serves("wrong cookie digest").await;

    assert_eq!(
        target.node.log.authenticated(),
        target.checks,
        "only the well-behaved peers may authenticate"
    );
    target.shutdown().await;
}

/// The cookie every test node uses.
const COOKIE_FOR_TESTS: &str = kaisui_integration_tests::harness::COOKIE;

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn stalled_handshakes_close_at_the_timeout() {
    let mut target = Target::start(Limits {
        handshake_timeout: SHORT_HANDSHAKE,
        ..Limits::default()
    })
    .await;
    // Bound: as for bad first frames, one session's worth; in particular
    // the frame that announces 16 MiB - 1 but sends 10 bytes must not make
    // the node allocate the announced size.
    const BOUND: usize = 8 * MIB;
    let almost_limit = ractor_cluster::DEFAULT_MAX_INBOUND_FRAME_SIZE - 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("connect and send nothing", Vec::new()),
        ("send the name and stop", frame(&name_message("staller"))),
        ("half a length", vec![0, 0, 0]),
        ("announce 16 MiB - 1, send 10 bytes", {
            let mut bytes = almost_limit.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[0; 10]);
            bytes
        }),
    ];
    for (n, (what, bytes)) in cases.iter().enumerate() {
        let memory = PeakWatch::start();
        let mut peer = RawPeer::connect(target.node.addr).await.expect("connect");
        peer.send_bytes(bytes).await.expect("send");
        // Nothing more is sent: only the handshake timeout can end it.
        peer.expect_closed(what).await;
        memory.assert_under(what, BOUND);
        let what_reasons = format!("{} handshake timeouts", n + 1);
        eventually(&what_reasons, || async {
            let timeouts = target
                .node
                .log
                .reasons()
                .iter()
                .filter(|r| *r == "handshake_timeout")
                .count();
            (timeouts > n).then_some(())
        })
        .await;
        target.still_serves(what).await;
    }
    target.shutdown().await;
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn huge_lengths_are_refused_without_allocating() {
    let mut target = Target::start(Limits::default()).await;
    // Bound: 64 MiB. Allocating the announced 2 GiB (or u64::MAX, which
    // would abort) breaks it by far; the largest legal frame (16 MiB) would
    // still fit, but the node allocates only what arrives, a few bytes.
    const BOUND: usize = 64 * MIB;
    let limit = ractor_cluster::DEFAULT_MAX_INBOUND_FRAME_SIZE;
    for (what, len) in [
        ("length 2 GiB", 2u64 << 30),
        ("length u64::MAX", u64::MAX),
        ("length limit + 1", limit + 1),
    ] {
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.extend_from_slice(&garbage(4096, len));
        target.refuses(what, BOUND, || &bytes).await;

        // The same from an authenticated peer.
        let what = format!("{what}, after authenticating");
        let peer = format!("big-{len}");
        target
            .refuses_after_auth(&what, &peer, BOUND, || &bytes)
            .await;
    }
    target.shutdown().await;
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn truncated_frames_and_garbage_are_refused() {
    let mut target = Target::start(Limits {
        handshake_timeout: SHORT_HANDSHAKE,
        ..Limits::default()
    })
    .await;
    // Bound: one session's worth, see bad_first_frames_are_refused; the
    // 256 KiB of garbage is read in 8 KiB chunks at most.
    const BOUND: usize = 8 * MIB;

    // A frame cut short by the end of the stream.
    let memory = PeakWatch::start();
    let mut peer = RawPeer::connect(target.node.addr).await.expect("connect");
    let mut bytes = 100u64.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0x0a; 10]);
    peer.send_bytes(&bytes).await.expect("send");
    peer.stream.shutdown().await.expect("half-close");
    peer.expect_closed("truncated frame, then end of stream")
        .await;
    memory.assert_under("truncated frame, then end of stream", BOUND);
    target.still_serves("truncated frame").await;

    // A valid name frame cut in the middle, then silence.
    let name = frame(&name_message("cut"));
    target
        .refuses("name frame cut in half", BOUND, || &name[..name.len() / 2])
        .await;

    for seed in [1u64, 0xdead_beef, 42] {
        let what = format!("256 KiB of garbage (seed {seed})");
        target
            .refuses(&what, BOUND, || garbage(256 * 1024, seed))
            .await;
    }

    // Garbage after a successful handshake.
    target
        .refuses_after_auth("garbage after authenticating", "garbler", BOUND, || {
            garbage(256 * 1024, 7)
        })
        .await;
    target.shutdown().await;
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn unknown_messages_after_auth_are_dropped() {
    let mut target = Target::start(Limits::default()).await;
    // Bound: the session and a few dozen small messages.
    const BOUND: usize = 8 * MIB;
    let memory = PeakWatch::start();
    let mut peer = RawPeer::authenticated(target.node.addr, &format!("odd-{}", target.tag))
        .await
        .expect("authenticate");
    let never_advertised = u64::MAX - 7;
    let odd: Vec<NetworkMessage> = vec![
        cast_to(never_advertised, 1u64),
        node(node_proto::node_message::Msg::Call(node_proto::Call {
            to: never_advertised,
            what: vec![1, 2, 3],
            tag: 9,
            timeout_ms: Some(100),
            variant: "Nope".into(),
            metadata: None,
        })),
        node(node_proto::node_message::Msg::Reply(
            node_proto::CallReply {
                to: never_advertised,
                tag: 9,
                what: vec![],
            },
        )),
        // A cast with a payload the echo actor cannot decode.
        node(node_proto::node_message::Msg::Cast(node_proto::Cast {
            to: target.echo_pid(),
            what: vec![0xff; 3],
            variant: "NoSuchVariant".into(),
            metadata: None,
        })),
        control(Ctl::Terminate(control_proto::Terminate {
            ids: vec![never_advertised, 0],
        })),
        control(Ctl::PgLeave(control_proto::PgLeave {
            group: "nobody".into(),
            actors: vec![control_proto::Actor {
                pid: never_advertised,
                name: None,
            }],
            scope: "nowhere".into(),
        })),
        control(Ctl::Pong(absurd_pong())),
        control(Ctl::Ready(control_proto::Ready {})),
        control(Ctl::Ready(control_proto::Ready {})),
        NetworkMessage { message: None },
        control(Ctl::Ping(control_proto::Ping { timestamp: None })),
        // Authentication is over; a late auth message is ignored.
        name_message("late-name"),
    ];
    for msg in &odd {
        peer.send(msg).await.expect("send");
    }
    // The same session still delivers: a cast to the echo actor arrives
    // after all of the above.
    let text = format!("after the odd messages {}", target.tag);
    peer.send(&cast_to(target.echo_pid(), EchoMsg::Note(text.clone())))
        .await
        .expect("send");
    target.inbox.expect_note(&target.echo_name, &text).await;
    memory.assert_under("unknown messages after authenticating", BOUND);
    assert_eq!(target.node.log.disconnected(), 0, "a session was closed");
    target
        .still_serves("unknown messages after authenticating")
        .await;
    assert!(
        !peer.closed_within(Duration::from_millis(200)).await,
        "the node closed the odd peer's session"
    );
    target.shutdown().await;
}

/// A pong for a ping the node never sent, stamped far in the future.
fn absurd_pong() -> control_proto::Pong {
    let mut pong = control_proto::Pong {
        timestamp: Some(Default::default()),
    };
    if let Some(timestamp) = pong.timestamp.as_mut() {
        timestamp.seconds = i64::MAX / 2;
    }
    pong
}

/// Inbound window of the flood tests, in bytes: about 60 of the flood's
/// casts (each counts its ~25 encoded bytes plus 256).
const WINDOW: usize = 16 * 1024;
/// Casts in one flood (each frame is about 25 bytes).
const FLOOD: usize = 400_000;
/// The longest one flood runs.
const FLOOD_TIME: Duration = Duration::from_secs(10);

/// Authenticate a raw peer and have it write casts of a `u64` to `pid` as
/// fast as the node takes them, until [FLOOD] are written or [FLOOD_TIME]
/// is over; meanwhile a well-behaved peer is served. Returns the casts
/// written and the peak heap growth during the flood.
async fn flood(target: &mut Target, pid: u64, what: &str) -> (usize, usize) {
    flood_with(target, what, FLOOD, 1000, move |n| cast_to(pid, n as u64)).await
}

/// [flood] with the casts `cast(n)`, up to `casts` of them, `per_write` in
/// one write.
async fn flood_with(
    target: &mut Target,
    what: &str,
    casts: usize,
    per_write: usize,
    cast: impl Fn(usize) -> NetworkMessage + Send + 'static,
) -> (usize, usize) {
    let peer = RawPeer::authenticated(target.node.addr, &format!("flood-{}", target.tag))
        .await
        .expect("authenticate");
    let (mut rx, mut tx) = peer.stream.into_split();
    // Keep reading what the node sends (pings), so only inbound is at stake.
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        while matches!(tokio::io::AsyncReadExt::read(&mut rx, &mut buf).await, Ok(n) if n > 0) {}
    });
    let memory = PeakWatch::start();
    let writer = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + FLOOD_TIME;
        let mut sent = 0;
        let mut batch = Vec::new();
        while sent < casts {
            let next = (sent + per_write).min(casts);
            batch.clear();
            for n in sent..next {
                batch.extend_from_slice(&frame(&cast(n)));
            }
            match tokio::time::timeout_at(deadline, tx.write_all(&batch)).await {
                Ok(Ok(())) => sent = next,
                Ok(Err(_)) | Err(_) => break,
            }
        }
        (sent, tx)
    });
    target.still_serves(&format!("during the {what}")).await;
    let (sent, tx) = writer.await.expect("flood task");
    let growth = memory.growth();
    drop(tx);
    drain.abort();
    tracing::info!(sent, "{what} over, peak growth {:.1} MiB", mib(growth));
    (sent, growth)
}

/// Casts to a pid the node never advertised are dropped by the session as
/// they arrive: whatever the flood, the node holds at most the window.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn flood_of_dropped_messages_stays_bounded() {
    let mut target = Target::start(Limits {
        inbound_window: WINDOW,
        ..Limits::default()
    })
    .await;
    // Bound: 16 MiB. At most WINDOW (16 KiB, about 60) received frames
    // wait in the node and each is dropped once handled; the flood itself (about 10 MB on
    // the wire) would exceed the bound if it were kept.
    const BOUND: usize = 16 * MIB;
    let memory = PeakWatch::start();
    let (sent, _) = flood(&mut target, u64::MAX - 7, "flood of dropped casts").await;
    memory.assert_under(
        &format!("flood of {sent} dropped casts, window {WINDOW} bytes"),
        BOUND,
    );
    assert_eq!(
        target.node.log.disconnected(),
        1,
        "only the good peer's session ended"
    );
    target
        .still_serves("after the flood of dropped casts")
        .await;
    target.shutdown().await;
}

/// A flood of casts to a slow local actor: the node holds at most the
/// inbound window, counted until the actor takes each cast out of its
/// mailbox, and TCP flow control slows the sender down.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn flood_of_small_messages_to_a_slow_actor_stays_bounded() {
    let mut target = Target::start(Limits {
        inbound_window: WINDOW,
        ..Limits::default()
    })
    .await;
    let (slow, slow_handle, handled) = spawn_slow(&target, Duration::from_millis(1)).await;

    // Bound: 16 MiB. With the window, at most WINDOW (16 KiB, about 60)
    // received messages wait in the node at once; the rest of the flood waits in
    // the kernel's socket buffers (not heap) and in the sender. A node
    // that reads on regardless holds every cast the slow actor (about one
    // per millisecond) has not handled yet, about 80 bytes each.
    const BOUND: usize = 16 * MIB;
    let memory = PeakWatch::start();
    let (sent, _) = flood(&mut target, slow.get_id().pid(), "flood to a slow actor").await;
    tracing::info!(
        sent,
        handled = handled.load(Ordering::Relaxed),
        "slow actor"
    );
    // The slow actor would need minutes for its backlog; drop it.
    slow.kill();
    let _ = slow_handle.await;
    memory.assert_under(
        &format!("flood of {sent} casts to a slow actor, window {WINDOW} bytes"),
        BOUND,
    );
    target.still_serves("after the flood").await;
    target.shutdown().await;
}

/// A [SlowActor] on `target` taking `delay` per message, with its count of
/// handled messages.
async fn spawn_slow(
    target: &Target,
    delay: Duration,
) -> (ActorRef<u64>, JoinHandle<()>, Arc<AtomicUsize>) {
    let handled = Arc::new(AtomicUsize::new(0));
    let (slow, handle) = Actor::spawn(
        Some(format!("slow-{}", target.tag)),
        SlowActor {
            delay,
            handled: handled.clone(),
        },
        (),
    )
    .await
    .expect("spawn slow actor");
    (slow, handle, handled)
}

/// Casts of 1 MiB each to a slow actor: the inbound window counts bytes, so
/// the node holds about the window's worth of them, not one window's count
/// of messages of any size.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn flood_of_large_messages_to_a_slow_actor_stays_bounded() {
    let mut target = Target::start(Limits::default()).await;
    let (slow, slow_handle, handled) = spawn_slow(&target, Duration::from_millis(10)).await;
    const LARGE: usize = MIB;
    const CASTS: usize = 400;

    // Bound: 48 MiB. The default window (16 MiB) of casts waits in the node,
    // plus the one being read and decoded (2 MiB) and the flooding peer's own
    // write batches in this process (4 casts, built and framed: about
    // 12 MiB). The other casts wait in the kernel's socket buffers and in the
    // sender. A window of 1 024 messages would let all 400 casts, 400 MiB,
    // into the slow actor's mailbox.
    const BOUND: usize = 48 * MIB;
    let memory = PeakWatch::start();
    let pid = slow.get_id().pid();
    let (sent, _) = flood_with(&mut target, "flood of large casts", CASTS, 4, move |n| {
        let mut msg = cast_to(pid, n as u64);
        if let Some(network_message::Message::Node(node_proto::NodeMessage {
            msg: Some(node_proto::node_message::Msg::Cast(cast)),
        })) = msg.message.as_mut()
        {
            cast.metadata = Some(vec![0; LARGE]);
        }
        msg
    })
    .await;
    tracing::info!(
        sent,
        handled = handled.load(Ordering::Relaxed),
        "slow actor, large casts"
    );
    slow.kill();
    let _ = slow_handle.await;
    memory.assert_under(
        &format!("flood of {sent} casts of 1 MiB to a slow actor, default window"),
        BOUND,
    );
    target.still_serves("after the flood of large casts").await;
    target.shutdown().await;
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn idle_connections_beyond_max_sessions_close_at_once() {
    const MAX: usize = 16;
    const IDLE: usize = 300;
    let mut target = Target::start(Limits {
        max_sessions: MAX,
        // Long enough that the refused connections are all closed before
        // any admitted one times out.
        handshake_timeout: Duration::from_secs(5),
        ..Limits::default()
    })
    .await;
    // Bound: 16 MiB for 300 sockets: MAX sessions of tens of KiB each, and
    // nothing for the refused ones (they never get a session).
    const BOUND: usize = 16 * MIB;
    let memory = PeakWatch::start();
    let closed = Arc::new(AtomicUsize::new(0));
    let mut watchers = Vec::new();
    for _ in 0..IDLE {
        let mut peer = RawPeer::connect(target.node.addr).await.expect("connect");
        let closed = closed.clone();
        watchers.push(tokio::spawn(async move {
            if peer.closed_within(WAIT).await {
                closed.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let refused_count = IDLE - MAX;
    eventually("the connections beyond the limit to close", || async {
        (closed.load(Ordering::SeqCst) >= refused_count).then_some(())
    })
    .await;
    // At that moment the admitted ones are still open: the others were
    // closed at once, not at the handshake timeout.
    assert_eq!(closed.load(Ordering::SeqCst), refused_count);
    assert_eq!(target.node.log.opened(), MAX, "sessions opened");
    for watcher in watchers {
        watcher.await.expect("watcher");
    }
    assert_eq!(
        closed.load(Ordering::SeqCst),
        IDLE,
        "every idle connection closed"
    );
    target.node.wait_disconnected(MAX).await;
    let timeouts = target
        .node
        .log
        .reasons()
        .iter()
        .filter(|r| *r == "handshake_timeout")
        .count();
    assert_eq!(
        timeouts, MAX,
        "the admitted ones end at the handshake timeout"
    );
    memory.assert_under(
        &format!("{IDLE} idle connections, max {MAX} sessions"),
        BOUND,
    );
    target.still_serves("idle connections").await;
    target.shutdown().await;
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn peer_that_never_reads_is_closed_at_the_outbound_limit() {
    const OUTBOUND: usize = MIB;
    let mut target = Target::start(Limits {
        max_outbound_buffer: OUTBOUND,
        // Silence from the peer must not be what ends the session.
        liveness_timeout: None,
        ..Limits::default()
    })
    .await;
    // Bound: 32 MiB. Up to OUTBOUND (1 MiB) of frames wait in the session,
    // one batch of that size sits in the writer's buffer, and a few 16 KiB
    // casts are on their way through mailboxes; the kernel's socket
    // buffers are not heap. Without the limit the CASTS * 16 KiB = 256 MiB
    // would pile up.
    const BOUND: usize = 32 * MIB;
    const CASTS: usize = 16 * 1024;
    let sink_name = format!("sink-{}", target.tag);
    let mut peer = RawPeer::authenticated(target.node.addr, &format!("deaf-{}", target.tag))
        .await
        .expect("authenticate");
    // Advertise one actor, so the node has a remote actor to send to.
    peer.send(&control(Ctl::Spawn(control_proto::Spawn {
        actors: vec![control_proto::Actor {
            pid: 1,
            name: Some(sink_name.clone()),
        }],
    })))
    .await
    .expect("send spawn");
    // From here on the peer reads nothing.
    let (session, sink) = eventually("the node to create the sink's remote actor", || async {
        target
            .node
            .session_actors()
            .await
            .into_iter()
            .find_map(|session| {
                let sink = session
                    .get_children()
                    .into_iter()
                    .find(|child| child.get_name().as_deref() == Some(sink_name.as_str()))?;
                Some((session, sink))
            })
    })
    .await;
    // The session's transport actor ends with the outbound reason.
    let transport = session
        .get_children()
        .into_iter()
        .find(|child| child.get_id().is_local() && child.get_name().is_none())
        .expect("the session's transport actor");
    target.node.watch(&transport);
    let sink: ActorRef<EchoMsg> = sink.into();

    let memory = PeakWatch::start();
    let payload = "x".repeat(16 * 1024);
    let mut casts = 0;
    while casts < CASTS && target.node.log.disconnected() == 0 {
        if sink.cast(EchoMsg::Note(payload.clone())).is_err() {
            break;
        }
        casts += 1;
        if casts % 32 == 0 {
            // Let the session keep up with the casts, as a real sender of
            // this size would.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    target.node.wait_reason("outbound_buffer_full").await;
    target.node.wait_disconnected(1).await;
    memory.assert_under(
        &format!("peer that never reads, {casts} casts of 16 KiB, outbound limit 1 MiB"),
        BOUND,
    );
    assert!(
        casts < CASTS,
        "the session was not closed after {casts} casts"
    );
    peer.expect_closed("peer that never reads").await;
    target.still_serves("peer that never reads").await;
    target.shutdown().await;
}
