//! Hostile peers against a ractor node on DpTcp: raw sockets on loopback
//! send what no well-behaved distributed-process node sends (each item of
//! `docs/hardening.md`, section "DpTcp"). After each attack a well-behaved
//! `dp_peer::PlainNode` must still be served (whereis, send, and a call
//! round trip with a Rust actor), and the process's heap must have grown
//! by less than a bound stated at the attack.
//!
//! Memory is measured by a counting global allocator. Its figures are
//! process wide, so the tests run one at a time (a shared lock), and each
//! measures peak growth over the heap in use once its node and its good
//! peer are up.
//!
//! Every wait is bounded; nothing asserts on timing.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use dp_peer::PlainNode;
use dp_tcp::{DpTcp, DpTcpConfig, NodeStats, PeerInfo};
use dp_wire::binary::Encode;
use dp_wire::dp::{Identifier, LocalProcessId, Message, NCMsg, NodeId, ProcessId, ProcessSignal};
use dp_wire::ntt::{self, ConnectionRequest, ControlHeader, EndPointAddress};
use kaisui_alloc_count::{mib, CountingAlloc, PeakWatch};
use ractor::{Actor, ActorRef};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ----------------------------------------------------------------------
// Memory

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const MIB: usize = 1024 * 1024;

/// One scenario at a time: the allocator's figures are process wide.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ----------------------------------------------------------------------
// The node under attack and the well-behaved peer

use std::sync::Arc;

struct Target {
    rust: RustNode,
    /// The counting greeter, registered as `name`.
    name: String,
    greeter: ActorRef<GreeterMsg>,
    hellos: Arc<AtomicUsize>,
    good: PlainNode,
}

impl Drop for Target {
    fn drop(&mut self) {
        self.greeter.stop(None);
        self.rust.server.stop(None);
    }
}

async fn target(name: &str, config: DpTcpConfig) -> Target {
    target_on(name, rust_node_with(name, config).await).await
}

/// The node, its greeter and the good peer around `rust`.
async fn target_on(name: &str, rust: RustNode) -> Target {
    let hellos = Arc::new(AtomicUsize::new(0));
    let gname = format!("greeter-{name}");
    let (greeter, _) = Actor::spawn(Some(gname.clone()), Greeter, hellos.clone().into())
        .await
        .expect("greeter starts");
    let good = PlainNode::start("127.0.0.1").await.unwrap();
    let t = Target {
        rust,
        name: gname,
        greeter,
        hellos,
        good,
    };
    // Once before measuring, so that the good peer's session is in the
    // baseline.
    served(&t).await;
    t
}

/// Raw peers never answer the probe that recognises kaisui nodes; a
/// short recognition keeps the tests short.
fn config() -> DpTcpConfig {
    DpTcpConfig::new(types()).with_recognize_timeout(Duration::from_millis(500))
}

/// The well-behaved peer looks the greeter up, sends it a Hello, and calls
/// it (Ask → AskReply).
async fn served(t: &Target) {
    let p = t.good.spawn();
    let pid = p
        .whereis_remote(&t.rust.node, &t.name, T)
        .await
        .expect("WhereIs answered")
        .expect("the greeter is found");
    let before = t.hellos.load(Ordering::Relaxed);
    p.send(&pid, hello(&Greeting::new("still served")))
        .await
        .unwrap();
    wait_until("the Hello arrives", || {
        t.hellos.load(Ordering::Relaxed) > before
    })
    .await;
    p.send(&pid, ask(&p.pid(), &Greeting::new("ping")))
        .await
        .unwrap();
    let reply = p.expect_fp(fp("AskReply"), T).await.unwrap();
    assert_eq!(unpack(&reply.payload()).text, "re: ping");
    assert!(t.good.violations().is_empty(), "{:?}", t.good.violations());
}

fn socket_of(node: &NodeId) -> SocketAddr {
    let a = endpoint_of(node);
    format!("{}:{}", a.host(), a.port()).parse().unwrap()
}

/// Reads until the peer closes (EOF or reset) and returns what came;
/// panics if it stays open past [`T`].
async fn closed_by_peer(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(T, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("DpTcp kept the connection open"),
        }
    }
}

async fn stats_when(dp: &DpTcp, what: &str, cond: impl Fn(&NodeStats) -> bool) -> NodeStats {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let s = dp.stats();
        if cond(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn info_when(dp: &DpTcp, peer: &str, cond: impl Fn(&PeerInfo) -> bool) -> PeerInfo {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if let Ok(i) = dp.peer_info(peer).await {
            if cond(&i) {
                return i;
            }
            assert!(tokio::time::Instant::now() < deadline, "{i:?}");
        } else {
            assert!(tokio::time::Instant::now() < deadline, "no peer {peer}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A raw NT-TCP initiator that completed the handshake as `me`.
struct Raw {
    conn: ntt::Connection,
    stream: TcpStream,
}

impl Raw {
    async fn connect(to: &NodeId, me: &str) -> Self {
        let me: EndPointAddress = me.parse().unwrap();
        let (conn, stream) = raw_handshake(&endpoint_of(to), &me).await;
        Self { conn, stream }
    }

    async fn flush(&mut self) {
        flush_raw(&mut self.conn, &mut self.stream).await;
    }

    /// Opens a lightweight connection whose first frame is `first`.
    async fn open_raw(&mut self, first: &[u8]) -> u32 {
        let lcid = self.conn.open().unwrap();
        self.conn.send(lcid, first).unwrap();
        self.flush().await;
        lcid
    }

    async fn open(&mut self, to: &Identifier) -> u32 {
        let mut first = Vec::new();
        to.encode(&mut first);
        self.open_raw(&first).await
    }

    async fn send(&mut self, lcid: u32, frame: &[u8]) {
        self.conn.send(lcid, frame).unwrap();
        self.flush().await;
    }

    /// Sends bytes that bypass the NT-TCP state machine.
    async fn send_bytes(&mut self, b: &[u8]) {
        self.stream.write_all(b).await.unwrap();
    }
}

fn nc_frame(sender: Identifier, signal: ProcessSignal) -> Vec<u8> {
    let mut f = Vec::new();
    NCMsg { sender, signal }.encode(&mut f);
    f
}

fn proc_of(node: &str, counter: i32) -> ProcessId {
    ProcessId {
        node: NodeId::new(node),
        local: LocalProcessId { unique: 7, counter },
    }
}

// ----------------------------------------------------------------------
// Handshake

/// Bad protocol version, unknown endpoint id, a handshake stalled halfway,
/// a 2 GiB address: each socket is answered or closed, none is held past
/// the handshake timeout, and nothing of the announced size is allocated.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn bad_handshakes_are_closed() {
    let _serial = SERIAL.lock().await;
    let t = target(
        "hostile-handshake",
        config().with_handshake_timeout(Duration::from_millis(500)),
    )
    .await;
    let addr = socket_of(&t.rust.node);
    let mem = PeakWatch::start();

    // Version 7: NT-TCP answers UnsupportedVersion and waits for another
    // request, which never comes: closed at the handshake timeout.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0, 0, 0, 7, 0, 0, 0, 4, 1, 2, 3, 4])
        .await
        .unwrap();
    let answer = closed_by_peer(&mut s).await;
    assert!(
        !answer.is_empty(),
        "an UnsupportedVersion answer comes first"
    );

    // Unknown endpoint id 5: rejected.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let me: EndPointAddress = "127.0.0.1:2:0".parse().unwrap();
    let mut req = Vec::new();
    ConnectionRequest::v0(5, Some(&me)).encode(&mut req);
    s.write_all(&req).await.unwrap();
    let answer = closed_by_peer(&mut s).await;
    assert!(!answer.is_empty(), "a rejection comes before the close");

    // Half a handshake, then silence.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&req[..6]).await.unwrap();
    closed_by_peer(&mut s).await;

    // Connected, and not a byte sent.
    let mut s = TcpStream::connect(addr).await.unwrap();
    closed_by_peer(&mut s).await;

    // A request announcing a 2 GiB address: closed at once.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0, 0, 0, 0, 0x80, 0, 0, 8, 0, 0, 0, 0, 0x80, 0, 0, 0])
        .await
        .unwrap();
    closed_by_peer(&mut s).await;

    let stats = stats_when(&t.rust.dp, "the handshake counters", |s| {
        s.handshake_timeouts >= 3 && s.handshake_failures >= 2
    })
    .await;
    tracing::info!(?stats, "after bad handshakes");
    served(&t).await;
    // Five sockets and their tasks, a few KiB each; the 2 GiB address is
    // refused before anything of its size is allocated.
    mem.assert_under("bad handshakes", 4 * MIB);
}

/// Hundreds of connections that never speak are held at most for the
/// handshake timeout, while the good peer is served; beyond `max_peers`
/// new connections are closed at once.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn hundreds_of_idle_connections() {
    let _serial = SERIAL.lock().await;
    let t = target(
        "hostile-idle",
        config()
            .with_handshake_timeout(Duration::from_secs(2))
            .with_max_peers(256),
    )
    .await;
    let addr = socket_of(&t.rust.node);
    let mem = PeakWatch::start();
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // 256 slots, one taken by the good peer: at least 400 - 255 refused.
    let stats = stats_when(&t.rust.dp, "refusals beyond max_peers", |s| {
        s.refused_max_peers >= 400 - 255
    })
    .await;
    assert!(stats.open_connections <= 256, "{stats:?}");
    // All idle sockets end: refused at once, or at the handshake timeout.
    for s in &mut idle {
        closed_by_peer(s).await;
    }
    stats_when(&t.rust.dp, "the idle connections to be gone", |s| {
        s.open_connections <= 1
    })
    .await;
    served(&t).await;
    // 400 accepted sockets, of which ≤ 256 held with a task and a 4 KiB
    // handshake buffer each (≈ 5 KiB): ~1.3 MiB; the test's own 400
    // TcpStreams add little. 8 MiB leaves room for tokio's growth.
    mem.assert_under("idle connections", 8 * MIB);
}

/// Addresses outside the allowlist are closed before the handshake.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn allowlist_refuses_other_addresses() {
    let _serial = SERIAL.lock().await;
    let t = target(
        "hostile-allow",
        config().allow_from(["127.0.0.1/32".parse().unwrap()]),
    )
    .await;
    let mem = PeakWatch::start();
    // 127.0.0.2 is loopback too, but not allowed.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut s = sock.connect(socket_of(&t.rust.node)).await.unwrap();
    let _ = s.write_all(&[0, 0, 0, 0]).await;
    let answer = closed_by_peer(&mut s).await;
    assert!(answer.is_empty(), "nothing is answered: {answer:?}");
    stats_when(&t.rust.dp, "the refusal", |s| s.refused_not_allowed >= 1).await;
    served(&t).await;
    mem.assert_under("allowlist", 2 * MIB);
}

// ----------------------------------------------------------------------
// Established connections: framing

/// A 2 GiB frame, an unknown control header and data on an unknown
/// lightweight id each close that one connection.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn framing_violations_close_only_that_connection() {
    let _serial = SERIAL.lock().await;
    let t = target("hostile-framing", config()).await;
    let mem = PeakWatch::start();

    let mut raw = Raw::connect(&t.rust.node, "127.0.0.1:3:0").await;
    let lcid = raw.open(&Identifier::Node(t.rust.node.clone())).await;
    // Frame header: lcid, length 2 GiB, then a little data.
    let mut b = lcid.to_be_bytes().to_vec();
    b.extend_from_slice(&0x8000_0000u32.to_be_bytes());
    b.extend_from_slice(&[0; 64]);
    raw.send_bytes(&b).await;
    closed_by_peer(&mut raw.stream).await;

    let mut raw = Raw::connect(&t.rust.node, "127.0.0.1:4:0").await;
    raw.send_bytes(&9u32.to_be_bytes()).await; // no such control header
    closed_by_peer(&mut raw.stream).await;

    let mut raw = Raw::connect(&t.rust.node, "127.0.0.1:5:0").await;
    let mut b = 4000u32.to_be_bytes().to_vec(); // never opened
    b.extend_from_slice(&4u32.to_be_bytes());
    b.extend_from_slice(b"oops");
    raw.send_bytes(&b).await;
    closed_by_peer(&mut raw.stream).await;

    // Closing a connection that was never opened.
    let mut raw = Raw::connect(&t.rust.node, "127.0.0.1:6:0").await;
    let mut b = Vec::new();
    ControlHeader::CloseConnection(4001).encode(&mut b);
    raw.send_bytes(&b).await;
    closed_by_peer(&mut raw.stream).await;

    stats_when(&t.rust.dp, "four closes", |s| s.closed_by_limit >= 4).await;

    // A frame cut off by the end of the stream.
    let mut raw = Raw::connect(&t.rust.node, "127.0.0.1:12:0").await;
    let lcid = raw.open(&Identifier::Node(t.rust.node.clone())).await;
    let mut b = lcid.to_be_bytes().to_vec();
    b.extend_from_slice(&1000u32.to_be_bytes());
    b.extend_from_slice(&[0; 10]);
    raw.send_bytes(&b).await;
    raw.stream.shutdown().await.unwrap();
    closed_by_peer(&mut raw.stream).await;

    served(&t).await;
    mem.assert_under("framing violations", 4 * MIB);
}

/// Opening more lightweight connections than allowed closes the peer.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn too_many_lightweight_connections() {
    let _serial = SERIAL.lock().await;
    let t = target("hostile-lcids", config().with_max_incoming_connections(100)).await;
    let mem = PeakWatch::start();
    let mut raw = Raw::connect(&t.rust.node, "127.0.0.1:7:0").await;
    let node = Identifier::Node(t.rust.node.clone());
    for _ in 0..101 {
        let lcid = raw.conn.open().unwrap();
        let mut first = Vec::new();
        node.encode(&mut first);
        raw.conn.send(lcid, &first).unwrap();
    }
    raw.flush().await;
    closed_by_peer(&mut raw.stream).await;
    stats_when(&t.rust.dp, "the close", |s| s.closed_by_limit >= 1).await;
    served(&t).await;
    mem.assert_under("lightweight connections", 4 * MIB);
}

// ----------------------------------------------------------------------
// Established connections: content

/// Garbage Identifiers and NCMsgs, a message shorter than its
/// fingerprint, truncated messages, wrong senders and a remote
/// SigShutdown: dropped and counted; the connection itself stays up.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn bad_content_is_dropped_and_counted() {
    let _serial = SERIAL.lock().await;
    let t = target("hostile-content", config()).await;
    let me = "127.0.0.1:8:0";
    let mem = PeakWatch::start();
    let mut raw = Raw::connect(&t.rust.node, me).await;
    let greeter = t.rust.dp.pid_of(&t.greeter.get_cell()).unwrap();

    // Garbage Identifier as a first frame; a later frame on it is ignored.
    let junk = raw.open_raw(&[0x09, 0xde, 0xad]).await;
    raw.send(junk, b"more").await;
    // Garbage NCMsgs on the node connection.
    let nc = raw.open(&Identifier::Node(t.rust.node.clone())).await;
    raw.send(nc, &[0x00]).await;
    raw.send(nc, &[0x01, 0xff, 0xff, 0xff, 0xff, 0xff]).await;
    // Messages to the greeter: shorter than a fingerprint; a Hello whose
    // ByteString is cut short; an empty frame.
    let to = raw.open(&Identifier::Process(greeter.clone())).await;
    raw.send(to, &[1, 2, 3, 4, 5]).await;
    let mut cut = Vec::new();
    hello(&Greeting::new("truncated")).encode_frame(&mut cut);
    cut.truncate(cut.len() - 3);
    raw.send(to, &cut).await;
    raw.send(to, &[]).await;

    // Wrong senders: a process of another node, another node's NC, a
    // send port of another node.
    let third = "127.0.0.1:9999:0";
    let kill = ProcessSignal::Kill {
        target: greeter.clone(),
        reason: "hijack".into(),
    };
    raw.send(
        nc,
        &nc_frame(Identifier::Process(proc_of(third, 1)), kill.clone()),
    )
    .await;
    raw.send(
        nc,
        &nc_frame(
            Identifier::Node(NodeId::new(third)),
            ProcessSignal::NamedSend {
                label: t.name.clone(),
                message: hello(&Greeting::new("forged")),
            },
        ),
    )
    .await;
    raw.send(
        nc,
        &nc_frame(
            Identifier::SendPort(dp_wire::dp::SendPortId {
                process: proc_of(third, 2),
                local: 1,
            }),
            ProcessSignal::WhereIs(t.name.clone()),
        ),
    )
    .await;
    // A sender that does not fit the signal: Kill from the peer's NC.
    raw.send(nc, &nc_frame(Identifier::Node(NodeId::new(me)), kill))
        .await;
    // Remote shutdown of this node.
    raw.send(
        nc,
        &nc_frame(
            Identifier::Process(proc_of(me, 3)),
            ProcessSignal::SigShutdown,
        ),
    )
    .await;

    let info = info_when(&t.rust.dp, me, |i| {
        i.counters.wrong_sender >= 3 && i.counters.refused >= 1
    })
    .await;
    assert!(info.counters.undecodable >= 4, "{info:?}");
    assert_eq!(info.counters.wrong_sender, 3, "{info:?}");
    // The greeter was neither killed nor reached by the forged NamedSend.
    assert!(t.greeter.get_status() < ractor::ActorStatus::Stopping);

    // The raw connection still works: a good NamedSend arrives.
    let before = t.hellos.load(Ordering::Relaxed);
    raw.send(
        nc,
        &nc_frame(
            Identifier::Process(proc_of(me, 4)),
            ProcessSignal::NamedSend {
                label: t.name.clone(),
                message: hello(&Greeting::new("after all that")),
            },
        ),
    )
    .await;
    wait_until("the good NamedSend", || {
        t.hellos.load(Ordering::Relaxed) > before
    })
    .await;
    assert_eq!(t.rust.dp.stats().closed_by_limit, 0);
    served(&t).await;
    mem.assert_under("bad content", 4 * MIB);
}

/// Named lookups and sends reach only exposed actors.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn only_exposed_actors_are_found() {
    let _serial = SERIAL.lock().await;
    let t = target(
        "hostile-expose",
        config().expose_only(["greeter-hostile-expose"]),
    )
    .await;
    let (_secret, mut secret_rx) = spawn_greeter("secret-hostile-expose").await;
    let p = t.good.spawn();
    assert_eq!(
        p.whereis_remote(&t.rust.node, "secret-hostile-expose", T)
            .await
            .unwrap(),
        None
    );
    p.nsend_remote(
        &t.rust.node,
        "secret-hostile-expose",
        hello(&Greeting::new("psst")),
    )
    .await
    .unwrap();
    let peer = t.good.node_id().as_str().unwrap().to_owned();
    info_when(&t.rust.dp, &peer, |i| i.counters.no_such_target >= 1).await;
    assert!(secret_rx.try_recv().is_err());
    served(&t).await;
}

// ----------------------------------------------------------------------
// Load

/// 100 000 small messages as fast as the socket takes them (casts to the
/// greeter, messages of unknown type, WhereIs requests whose answers are
/// read): every cast arrives, memory stays bounded.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn flood_of_small_messages() {
    let _serial = SERIAL.lock().await;
    let t = target("hostile-flood", config()).await;
    let me = "127.0.0.1:10:0";
    let mem = PeakWatch::start();
    let mut raw = Raw::connect(&t.rust.node, me).await;
    // Before recognition nothing drains the session's queue, and what
    // passes its bound is shed; the flood is meant for a running session.
    info_when(&t.rust.dp, me, |i| i.kind != dp_tcp::PeerKind::Probing).await;
    let greeter = t.rust.dp.pid_of(&t.greeter.get_cell()).unwrap();
    let to = raw.open(&Identifier::Process(greeter)).await;
    let nc = raw.open(&Identifier::Node(t.rust.node.clone())).await;
    let mut cast = Vec::new();
    hello(&Greeting::new("x")).encode_frame(&mut cast);
    let mut unknown = Vec::new();
    Message::new(dp_wire::fingerprint::Fingerprint::new(1, 2), vec![0; 8])
        .encode_frame(&mut unknown);
    let where_is = nc_frame(
        Identifier::Process(proc_of(me, 5)),
        ProcessSignal::WhereIs(t.name.clone()),
    );
    let before = t.hellos.load(Ordering::Relaxed);
    const N: usize = 100_000;
    // Read the answers meanwhile, so that only the flood is measured.
    let (mut rd, mut wr) = raw.stream.into_split();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0usize;
        while let Ok(Ok(k)) = tokio::time::timeout(T, rd.read(&mut buf)).await {
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    });
    let mut batch = Vec::with_capacity(64 * 1024);
    for i in 0..N {
        let (lcid, frame) = match i % 4 {
            0 | 1 => (to, &cast),
            2 => (to, &unknown),
            _ => (nc, &where_is),
        };
        raw.conn.send(lcid, frame).unwrap();
        if let Some(b) = raw.conn.poll_transmit() {
            batch.extend_from_slice(&b);
        }
        if batch.len() >= 32 * 1024 {
            wr.write_all(&batch).await.unwrap();
            batch.clear();
        }
    }
    wr.write_all(&batch).await.unwrap();
    wait_until("every cast of the flood", || {
        t.hellos.load(Ordering::Relaxed) >= before + N / 2
    })
    .await;
    let info = info_when(&t.rust.dp, me, |i| {
        i.counters.unknown_type >= (N / 4) as u64
    })
    .await;
    tracing::info!(?info, "after the flood");
    served(&t).await;
    drop(wr);
    reader.abort();
    // What may pile up: the session channel (1024 messages) and its
    // inbound window (1024), the greeter's mailbox while it catches up, one
    // 64 KiB read's worth of decoded frames, WhereIsReply answers waiting
    // for the socket. Each cast is ~200 bytes in flight; 16 MiB is ~80 000
    // of them, far beyond the channels' bounds yet far below the 100 000
    // × (frame + message + task overhead) a queue without bound would hold
    // had the greeter fallen behind.
    mem.assert_under("flood", 16 * MIB);
}

/// A flood for [flood_slow_actor].
struct SlowFlood<'a> {
    /// The raw peer's address.
    me: &'a str,
    /// What the slow actor takes per Hello.
    delay: Duration,
    /// The text of every Hello.
    text: String,
    /// Hellos per write.
    per_write: usize,
    /// How long the flood lasts at most.
    time: Duration,
    /// Heap growth past which the flood stops.
    give_up: usize,
}

/// What [flood_slow_actor] saw.
struct Flooded {
    /// Casts written to the socket.
    sent: usize,
    /// Casts the slow actor handled.
    handled: usize,
    /// How often DpTcp paused reading because the session was behind.
    session_waits: u64,
}

/// Spawns a greeter on `t` that takes `delay` per Hello; then raw peer `me`
/// writes `per_write` Hellos of `text` at a time to it, as fast as the
/// socket takes them, for `time` or until `mem` has grown past `give_up`
/// (so that a node that reads on regardless cannot take the machine's
/// memory). The good peer is served while DpTcp holds the flood back and
/// after it; the slow actor is killed at the end.
async fn flood_slow_actor(t: &Target, flood: SlowFlood<'_>, mem: &Arc<PeakWatch>) -> Flooded {
    let SlowFlood {
        me,
        delay,
        text,
        per_write,
        time,
        give_up,
    } = flood;
    let handled = Arc::new(AtomicUsize::new(0));
    let (slow, slow_handle) = Actor::spawn(
        Some(format!("slow-{}", t.name)),
        Greeter,
        Hellos::Slow(delay, handled.clone()),
    )
    .await
    .expect("slow greeter starts");
    let mut cast = Vec::new();
    hello(&Greeting::new(&text)).encode_frame(&mut cast);
    let mut raw = Raw::connect(&t.rust.node, me).await;
    info_when(&t.rust.dp, me, |i| i.kind != dp_tcp::PeerKind::Probing).await;
    let slow_pid = t.rust.dp.pid_of(&slow.get_cell()).unwrap();
    let to = raw.open(&Identifier::Process(slow_pid)).await;
    // NT-TCP frames carry no sequence numbers: one batch of casts, written
    // over and over, is the flood.
    for _ in 0..per_write {
        raw.conn.send(to, &cast).unwrap();
    }
    let batch = raw.conn.poll_transmit().unwrap();
    drop(cast);
    // Read what the node sends meanwhile, so that only inbound is at stake.
    let (mut rd, mut wr) = raw.stream.into_split();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        while matches!(rd.read(&mut buf).await, Ok(k) if k > 0) {}
    });
    let watch = mem.clone();
    let writer = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + time;
        let mut sent = 0;
        // write_all blocks once the node stops reading and the kernel's
        // buffers are full; the deadline ends it either way.
        while watch.growth() < give_up {
            match tokio::time::timeout_at(deadline, wr.write_all(&batch)).await {
                Ok(Ok(())) => sent += per_write,
                _ => break,
            }
        }
        (sent, wr)
    });
    // Served while DpTcp holds the flood back.
    let (dp, flood) = (&t.rust.dp, &writer);
    eventually("DpTcp pauses reading (or the flood ends)", || async move {
        flood.is_finished() || dp.peer_info(me).await.is_ok_and(|i| i.session_waits >= 1)
    })
    .await;
    served(t).await;
    let (sent, wr) = writer.await.expect("flood task");
    let info = info_when(&t.rust.dp, me, |_| true).await;
    let result = Flooded {
        sent,
        handled: handled.load(Ordering::Relaxed),
        session_waits: info.session_waits,
    };
    tracing::info!(
        sent,
        handled = result.handled,
        session_waits = result.session_waits,
        "flood to a slow actor over, peak growth {:.1} MiB",
        mib(mem.growth())
    );
    // The slow actor would need minutes for the backlog it was sent; drop
    // it.
    slow.kill();
    let _ = slow_handle.await;
    drop(wr);
    reader.abort();
    served(t).await;
    result
}

/// Small casts for 10 s, written as fast as the socket takes them, to a
/// Rust actor that takes about a millisecond per cast. A cast's inbound
/// credit is held until the actor takes it out of its mailbox (fork patch
/// 0012), so DpTcp stops reading and TCP flow control stalls the sender
/// instead of the node queueing the backlog; the good peer is served
/// during the flood and after it.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn flood_of_small_messages_to_a_slow_actor() {
    let _serial = SERIAL.lock().await;
    let t = target("hostile-slow", config()).await;
    let mem = Arc::new(PeakWatch::start());
    let flood = SlowFlood {
        me: "127.0.0.1:13:0",
        delay: Duration::from_millis(1),
        text: "x".into(),
        per_write: 1000,
        time: Duration::from_secs(10),
        give_up: 64 * MIB,
    };
    let flood = flood_slow_actor(&t, flood, &mem).await;
    assert!(flood.session_waits >= 1, "DpTcp never held the flood back");
    assert!(
        flood.sent > flood.handled,
        "the flood never outran the actor"
    );
    // What may pile up: the session's inbound window (16 MiB of cost, at
    // ~290 bytes a cast: about 58 000 casts, each counted until the slow
    // actor takes it out of its mailbox; a cast's cost is more than the
    // heap it takes, ~180 bytes), the session channel (1024 casts, under
    // 1 MiB) and one 64 KiB read's worth of decoded frames: at most about
    // 17 MiB, ~10 MiB in practice. The rest of the flood waits in the
    // kernel's socket buffers (not heap) and in the sender. A node that
    // read the whole flood into the mailbox would hold every cast the
    // actor (a few hundred a second) has not handled: hundreds of
    // thousands in 10 s, 47 MiB when measured.
    mem.assert_under("flood to a slow actor", 24 * MIB);
}

/// Large casts (1 MiB each) for 5 s, written as fast as the socket takes
/// them, to a Rust actor that takes 20 ms per cast. DpTcp's channel to the
/// session is bounded in bytes (`max_session_queue_bytes`, 4 MiB here) as
/// well as in messages (1024, which is 1 GiB of such casts): once the
/// session is behind, DpTcp holds a few casts, stops reading, and TCP flow
/// control stalls the sender; the good peer is served during the flood
/// and after it.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn flood_of_large_messages_to_a_slow_actor() {
    let _serial = SERIAL.lock().await;
    // Behind DpTcp's channel, the session's own inbound window (fork
    // patches 0009 and 0012, 16 MiB by default) lets casts into the slow
    // actor's mailbox. A window of 8 bytes lets them in one at a time (one
    // larger than the window passes alone), so that what grows beyond it
    // is what DpTcp holds.
    const WINDOW: usize = 8;
    const BUDGET: usize = 4 * MIB;
    let name = "hostile-large";
    let rust = rust_node_on(
        name,
        config().with_max_session_queue_bytes(BUDGET),
        |server| server.with_inbound_window(WINDOW),
    )
    .await;
    let t = target_on(name, rust).await;
    let mem = Arc::new(PeakWatch::start());
    // A node that reads the whole flood would take a GiB within a second
    // or so; past 512 MiB the flood stops, and the bound below fails.
    let flood = SlowFlood {
        me: "127.0.0.1:14:0",
        delay: Duration::from_millis(20),
        text: "x".repeat(MIB),
        per_write: 1,
        time: Duration::from_secs(5),
        give_up: 512 * MIB,
    };
    flood_slow_actor(&t, flood, &mem).await;
    // What may pile up, each cast ~1 MiB: the session's window (one cast,
    // counted until the slow actor takes it out of its mailbox, and the one
    // the session read and holds until it fits), DpTcp's channel (4 MiB,
    // plus one cast waiting for room), the decoder's partial frame and what
    // one 64 KiB read completes (a cast or two, in buffers grown by
    // doubling), the cast the actor is decoding, and the raw peer's own
    // frame (this process too): ~15 MiB at most. A channel bounded in
    // messages only takes 1024 casts, 1 GiB (the flood stops at 512 MiB).
    mem.assert_under("flood of large casts to a slow actor", 32 * MIB);
}

/// A peer that floods lookups and never reads their answers is closed
/// once more than `max_outbound_bytes` wait for it.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn peer_that_never_reads_is_closed() {
    let _serial = SERIAL.lock().await;
    let t = target("hostile-noread", config().with_max_outbound_bytes(2 * MIB)).await;
    let me = "127.0.0.1:11:0";
    let mem = PeakWatch::start();
    let mut raw = Raw::connect(&t.rust.node, me).await;
    info_when(&t.rust.dp, me, |i| i.kind != dp_tcp::PeerKind::Probing).await;
    let nc = raw.open(&Identifier::Node(t.rust.node.clone())).await;
    // Each answer echoes the 900-byte label: ~1 KiB per 1 KiB sent.
    let label = "x".repeat(900);
    let where_is = nc_frame(
        Identifier::Process(proc_of(me, 5)),
        ProcessSignal::WhereIs(label),
    );
    // Kernel buffers on both sides take some MiB before anything waits
    // in DpTcp; 64 MiB of requests is far more than they hold.
    let mut closed = false;
    for _ in 0..(64 * 1024) {
        raw.conn.send(nc, &where_is).unwrap();
        let b = raw.conn.poll_transmit().unwrap();
        match tokio::time::timeout(T, raw.stream.write_all(&b)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                closed = true;
                break;
            }
            Err(_) => panic!("DpTcp stopped reading without closing"),
        }
    }
    let stats = stats_when(&t.rust.dp, "the close", |s| s.closed_by_limit >= 1).await;
    tracing::info!(closed, ?stats, "never-reading peer");
    served(&t).await;
    // The bound (2 MiB) plus what one pump round adds past it (≤ one 64
    // KiB read's worth of answers), counted at capacity: the buffered
    // chunks are Vecs grown by doubling, so up to twice their length,
    // ≈ 4.2 MiB; plus the read buffer and the decoder's partial frame.
    // 8 MiB leaves room for the allocator's slack.
    mem.assert_under("never-reading peer", 8 * MIB);
}

/// A Rust actor casts large messages (1 MiB each) to a process of a peer
/// that never reads. Once `max_outbound_bytes / 4` wait for the socket,
/// DpTcp stops taking the session's messages; the channel between them is
/// bounded in bytes (`max_session_queue_bytes`) as well as in messages,
/// so the rest waits in the session, whose own outbound bound
/// (`NodeServer::with_max_outbound_buffer`) then closes it.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn large_messages_to_a_peer_that_never_reads() {
    let _serial = SERIAL.lock().await;
    const BUDGET: usize = 4 * MIB;
    const SESSION_BOUND: usize = 8 * MIB;
    let name = "hostile-large-out";
    let rust = rust_node_on(
        name,
        config()
            .with_max_outbound_bytes(8 * MIB)
            .with_max_session_queue_bytes(BUDGET),
        |server| server.with_max_outbound_buffer(SESSION_BOUND),
    )
    .await;
    let t = target_on(name, rust).await;
    let me = "127.0.0.1:15:0";
    let big = "x".repeat(MIB);
    let mem = PeakWatch::start();
    let mut raw = Raw::connect(&t.rust.node, me).await;
    info_when(&t.rust.dp, me, |i| i.kind != dp_tcp::PeerKind::Probing).await;
    let there: ActorRef<GreeterMsg> = t
        .rust
        .dp
        .process(&proc_of(me, 8))
        .await
        .expect("a RemoteActor for the peer's process")
        .into();
    // 300 MiB in all, paced so that each cast passes through the session
    // at once instead of piling up in the RemoteActor's mailbox (the
    // sending application's own business).
    const N: usize = 300;
    let mut sent = 0;
    for _ in 0..N {
        if ractor::cast!(there, GreeterMsg::Hello(Greeting::new(&big))).is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tracing::info!(
        sent,
        "casts to a peer that never reads, peak growth {:.1} MiB",
        mib(mem.growth())
    );
    served(&t).await;
    // What may pile up, each cast ~1 MiB (its copies on the way are made
    // one at a time): DpTcp's unwritten bytes (2 MiB, plus the batch that
    // crossed last, at most the session's 8 MiB), its channel from the
    // session (4 MiB, or one larger batch alone), the session's queue
    // (8 MiB); the rest is in the kernel's socket buffers (not heap) or was
    // refused once the session closed: ~30 MiB at most. A channel bounded
    // in messages only takes 1024 batches: the whole 300 MiB.
    mem.assert_under("large casts to a peer that never reads", 48 * MIB);
    // It was the session's bound that ended the connection (a write stall
    // would take `probe_timeout`, 10 s): reading now drains the socket up
    // to DpTcp's close.
    assert!(sent < N, "the session stayed open for all {N} casts");
    closed_by_peer(&mut raw.stream).await;
}
