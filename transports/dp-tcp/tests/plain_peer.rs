//! A ractor node on DpTcp against `dp_peer::PlainNode`, a plain
//! distributed-process node: one test per user-visible behaviour.

mod common;

use std::time::Duration;

use common::*;
use dp_peer::PlainNode;
use dp_tcp::DpTcp;
use dp_wire::binary::Encode;
use dp_wire::dp::{Identifier, LocalProcessId, Message, NCMsg, ProcessId, ProcessSignal};
use dp_wire::fingerprint::Fingerprint;
use dp_wire::ntt::{self, EndPointAddress};
use ractor::{call_t, cast, ActorRef, RactorErr};
use tokio::net::TcpStream;

async fn connect(rust: &RustNode, peer: &PlainNode) {
    ractor_cluster::client_connect_transport(&rust.server, peer.node_id().as_str().unwrap())
        .await
        .expect("connect to the plain node");
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn haskell_whereis_and_nsend_reach_a_rust_actor() {
    let rust = rust_node("whereis-nsend").await;
    let (greeter, mut rx) = spawn_greeter("greeter-whereis-nsend").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let p = peer.spawn();

    let pid = p
        .whereis_remote(&rust.node, "greeter-whereis-nsend", T)
        .await
        .unwrap()
        .expect("the greeter is found");
    assert_eq!(pid, rust.dp.pid_of(&greeter.get_cell()).unwrap());
    // The node advertises its NodeId as its connection string, and knows
    // the peer by the peer's.
    assert_eq!(
        ractor_cluster::transport::Transport::connection_string(&rust.dp, "localhost", 0),
        rust.node.as_str().unwrap()
    );
    let sessions = ractor::call_t!(
        rust.server,
        ractor_cluster::NodeServerMessage::GetSessions,
        5000
    )
    .unwrap();
    let s = sessions.values().next().expect("the peer's session");
    assert_eq!(
        s.peer_name.as_ref().map(|n| n.connection_string.clone()),
        Some(peer.node_id().as_str().unwrap().to_owned())
    );
    assert_eq!(
        p.whereis_remote(&rust.node, "nobody-here", T)
            .await
            .unwrap(),
        None
    );

    p.nsend_remote(
        &rust.node,
        "greeter-whereis-nsend",
        hello(&Greeting::new("by name")),
    )
    .await
    .unwrap();
    assert_eq!(seen(&mut rx).await.text, "by name");
    p.send(&pid, hello(&Greeting::new("by pid"))).await.unwrap();
    assert_eq!(seen(&mut rx).await.text, "by pid");

    // The peer's connection is the session: connecting back is refused.
    let dup =
        ractor_cluster::client_connect_transport(&rust.server, peer.node_id().as_str().unwrap())
            .await;
    assert!(format!("{dup:?}").contains("AlreadyExists"), "{dup:?}");
    assert!(peer.violations().is_empty(), "{:?}", peer.violations());
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn rust_whereis_and_cast_reach_a_plain_process() {
    let rust = rust_node("rust-whereis").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let p = peer.spawn();
    peer.register("echo-rust-whereis", &p.pid());
    let peer_id = peer.node_id().as_str().unwrap().to_owned();

    // Without a session the user is told to connect first.
    let err = rust
        .dp
        .whereis(&peer_id, "echo-rust-whereis", T)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("connect first"), "{err}");

    connect(&rust, &peer).await;
    let cell = rust
        .dp
        .whereis(&peer_id, "echo-rust-whereis", T)
        .await
        .unwrap();
    assert_eq!(cell.get_name().as_deref(), Some("echo-rust-whereis"));
    assert!(!cell.get_id().is_local());
    let echo: ActorRef<GreeterMsg> = cell.into();
    cast!(echo, GreeterMsg::Hello(Greeting::new("from rust"))).unwrap();
    let m = p.expect_fp(fp("Hello"), T).await.unwrap();
    assert_eq!(unpack(&m.payload()).text, "from rust");

    // A second lookup gives the same actor; an unknown name is an error.
    let again = rust
        .dp
        .whereis(&peer_id, "echo-rust-whereis", T)
        .await
        .unwrap();
    assert_eq!(again.get_id(), echo.get_id());
    assert!(rust.dp.whereis(&peer_id, "no-such-name", T).await.is_err());

    // A second connect to the same peer is refused.
    let dup = ractor_cluster::client_connect_transport(&rust.server, peer_id.clone()).await;
    assert!(format!("{dup:?}").contains("AlreadyExists"), "{dup:?}");
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn pids_inside_payloads_work_as_reply_addresses_both_ways() {
    let rust = rust_node("pids-in-payloads").await;
    let (greeter, mut rx) = spawn_greeter("greeter-pids-in-payloads").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let p = peer.spawn();

    // Haskell → Rust with its own pid inside; Rust answers to that pid.
    p.nsend_remote(
        &rust.node,
        "greeter-pids-in-payloads",
        hello(&Greeting::with_reply_to("call me back", &p.pid())),
    )
    .await
    .unwrap();
    let g = seen(&mut rx).await;
    let haskell_pid = g.reply_pid();
    let back: ActorRef<GreeterMsg> = rust.dp.process(&haskell_pid).await.unwrap().into();
    cast!(back, GreeterMsg::Hello(Greeting::new("calling back"))).unwrap();
    let m = p.expect_fp(fp("Hello"), T).await.unwrap();
    assert_eq!(unpack(&m.payload()).text, "calling back");

    // Rust → Haskell with the greeter's pid inside; Haskell sends to it.
    let mine = rust.dp.pid_of(&greeter.get_cell()).unwrap();
    cast!(
        back,
        GreeterMsg::Hello(Greeting::with_reply_to("write to me", &mine))
    )
    .unwrap();
    let m = p.expect_fp(fp("Hello"), T).await.unwrap();
    let to = unpack(&m.payload()).reply_pid();
    assert_eq!(to, mine);
    p.send(&to, hello(&Greeting::new("as asked")))
        .await
        .unwrap();
    assert_eq!(seen(&mut rx).await.text, "as asked");
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn haskell_call_of_a_rust_actor_gets_its_reply() {
    let rust = rust_node("haskell-calls").await;
    let (greeter, _rx) = spawn_greeter("greeter-haskell-calls").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let p = peer.spawn();
    let to = rust.dp.pid_of(&greeter.get_cell()).unwrap();

    p.send(&to, ask(&p.pid(), &Greeting::new("how are you")))
        .await
        .unwrap();
    let reply = p.expect_fp(fp("AskReply"), T).await.unwrap();
    // newtype AskReply = AskReply ByteString: 8-byte length ++ reply bytes.
    assert_eq!(unpack(&reply.payload()).text, "re: how are you");

    // Also through nsend, several in a row.
    for i in 0..3 {
        p.nsend_remote(
            &rust.node,
            "greeter-haskell-calls",
            ask(&p.pid(), &Greeting::new(&format!("q{i}"))),
        )
        .await
        .unwrap();
        let reply = p.expect_fp(fp("AskReply"), T).await.unwrap();
        assert_eq!(unpack(&reply.payload()).text, format!("re: q{i}"));
    }
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn rust_call_of_a_plain_process_returns_its_reply_or_times_out() {
    let rust = rust_node("rust-calls").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let answering = peer.spawn();
    let silent = peer.spawn();
    peer.register("answering-rust-calls", &answering.pid());
    peer.register("silent-rust-calls", &silent.pid());
    connect(&rust, &peer).await;
    let peer_id = peer.node_id().as_str().unwrap().to_owned();

    // The plain process answers every Ask, like
    // `receiveWait [match $ \(Ask from b) -> send from (AskReply ...)]`.
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let m = answering.expect_fp(fp("Ask"), T).await.unwrap();
            let (reply_to, g) = parse_ask(&m);
            let answer = Greeting::new(&format!("haskell says {}", g.text));
            answering
                .send(&reply_to, Message::new(fp("AskReply"), packed(&answer)))
                .await
                .unwrap();
        }
        answering
    });

    let a: ActorRef<GreeterMsg> = rust
        .dp
        .whereis(&peer_id, "answering-rust-calls", T)
        .await
        .unwrap()
        .into();
    let r = call_t!(a, GreeterMsg::Ask, 10_000, Greeting::new("hello")).unwrap();
    assert_eq!(r.text, "haskell says hello");
    let r = ractor::call!(a, GreeterMsg::Ask, Greeting::new("again")).unwrap();
    assert_eq!(r.text, "haskell says again");
    let _answering = server.await.unwrap();

    let s: ActorRef<GreeterMsg> = rust
        .dp
        .whereis(&peer_id, "silent-rust-calls", T)
        .await
        .unwrap()
        .into();
    let r = call_t!(s, GreeterMsg::Ask, 300, Greeting::new("anyone?"));
    // Normally `Timeout`. ractor_cluster_derive's reply-port bridge has its
    // own timer of the same length and drops the typed port when it fires
    // first, which the caller sees as `ChannelClosed`: either way the call failed
    // for lack of an answer.
    assert!(
        matches!(
            r,
            Err(RactorErr::Timeout)
                | Err(RactorErr::Messaging(ractor::MessagingErr::ChannelClosed))
        ),
        "{r:?}"
    );
    // The request did arrive; nobody answered.
    let m = silent.expect_fp(fp("Ask"), T).await.unwrap();
    assert_eq!(parse_ask(&m).1.text, "anyone?");
}

/// A bare NT-TCP initiator, to send what no well-behaved node sends.
struct RawPeer {
    conn: ntt::Connection,
    stream: TcpStream,
}

impl RawPeer {
    async fn connect(to: &str) -> Self {
        let to: EndPointAddress = to.parse().unwrap();
        let me: EndPointAddress = "127.0.0.1:1:0".parse().unwrap();
        let (conn, stream) = raw_handshake(&to, &me).await;
        Self { conn, stream }
    }

    async fn flush(&mut self) {
        flush_raw(&mut self.conn, &mut self.stream).await;
    }

    async fn open(&mut self, to: &Identifier) -> u32 {
        let lcid = self.conn.open().unwrap();
        let mut first = Vec::new();
        to.encode(&mut first);
        self.conn.send(lcid, &first).unwrap();
        self.flush().await;
        lcid
    }

    async fn send(&mut self, lcid: u32, frame: &[u8]) {
        self.conn.send(lcid, frame).unwrap();
        self.flush().await;
    }
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn bad_input_is_dropped_and_nothing_else_is_affected() {
    let rust = rust_node("bad-input").await;
    let (greeter, mut rx) = spawn_greeter("greeter-bad-input").await;
    let (_other, mut other_rx) = spawn_greeter("other-bad-input").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let p = peer.spawn();
    let to = rust.dp.pid_of(&greeter.get_cell()).unwrap();

    // Unknown fingerprint, then a payload that is not protobuf for Hello,
    // then a good message, all on the same lightweight connection.
    p.send(
        &to,
        Message::new(Fingerprint::new(0xdead, 0xbeef), b"??".to_vec()),
    )
    .await
    .unwrap();
    let mut not_proto = 3u64.to_be_bytes().to_vec();
    not_proto.extend_from_slice(&[0xff, 0xff, 0xff]);
    p.send(&to, Message::new(fp("Hello"), not_proto))
        .await
        .unwrap();
    // A process that does not exist, and one of an older incarnation.
    let mut nobody = to.clone();
    nobody.local.counter = i32::MAX - 7;
    p.send(&nobody, hello(&Greeting::new("to nobody")))
        .await
        .unwrap();
    let stale = ProcessId {
        node: to.node.clone(),
        local: LocalProcessId {
            unique: to.local.unique ^ 0x5555,
            counter: to.local.counter,
        },
    };
    p.send(&stale, hello(&Greeting::new("to the past")))
        .await
        .unwrap();
    p.send(&to, hello(&Greeting::new("good"))).await.unwrap();
    assert_eq!(seen(&mut rx).await.text, "good");

    let peer_id = peer.node_id().as_str().unwrap().to_owned();
    let dp: DpTcp = rust.dp.clone();
    let mut info = dp.peer_info(&peer_id).await.unwrap();
    let deadline = tokio::time::Instant::now() + T;
    while info.counters.no_such_target == 0 || info.counters.stale_or_foreign == 0 {
        assert!(tokio::time::Instant::now() < deadline, "{info:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
        info = dp.peer_info(&peer_id).await.unwrap();
    }
    assert_eq!(info.counters.unknown_type, 1, "{info:?}");
    // The probe taught us the peer's WhereIsReply fingerprint.
    assert_eq!(
        info.learned.where_is_reply,
        Some(dp_wire::fingerprint::known::captured::WHERE_IS_REPLY)
    );

    // Malformed NCMsgs on a raw connection; then a valid NamedSend on the
    // same lightweight connection still arrives.
    let mut raw = RawPeer::connect(rust.node.as_str().unwrap()).await;
    let nc = raw.open(&Identifier::Node(rust.node.clone())).await;
    raw.send(nc, &[0x00, 0x01, 0xff]).await;
    raw.send(nc, &[0x07]).await;
    let mut bad_signal = Vec::new();
    Identifier::Process(p.pid()).encode(&mut bad_signal);
    bad_signal.push(99);
    raw.send(nc, &bad_signal).await;
    let good = NCMsg {
        sender: Identifier::Process(ProcessId {
            node: dp_wire::dp::NodeId::new("127.0.0.1:1:0"),
            local: LocalProcessId {
                unique: 1,
                counter: 8,
            },
        }),
        signal: ProcessSignal::NamedSend {
            label: "other-bad-input".into(),
            message: hello(&Greeting::new("after garbage")),
        },
    };
    let mut frame = Vec::new();
    good.encode(&mut frame);
    raw.send(nc, &frame).await;
    assert_eq!(seen(&mut other_rx).await.text, "after garbage");
    let raw_info = dp.peer_info("127.0.0.1:1:0").await.unwrap();
    assert_eq!(raw_info.counters.undecodable, 3, "{raw_info:?}");

    // The plain node's session is unaffected.
    p.send(&to, hello(&Greeting::new("still here")))
        .await
        .unwrap();
    assert_eq!(seen(&mut rx).await.text, "still here");
    assert!(peer.violations().is_empty(), "{:?}", peer.violations());
}
