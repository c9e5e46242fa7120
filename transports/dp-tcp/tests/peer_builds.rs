//! A ractor node on DpTcp against Haskell peers built differently from the
//! captured one (README 3.3): another distributed-process unit id hash and
//! another bytestring version, so every distributed-process type and
//! ByteString has other fingerprints than `known::captured`.
//!
//! The plain peer only accepts its own build's fingerprints (`expect_fp`,
//! `whereis_remote`), as a Haskell `receiveWait [match ...]` does.

mod common;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use dp_peer::{PlainNode, PlainNodeConfig};
use dp_tcp::{haskell_type_fingerprint, CallTypes, DpTcp, DpTcpConfig, PeerInfo, TypeRegistry};
use dp_wire::dp::{Message, ProcessId};
use dp_wire::fingerprint::{known, Build, Fingerprint};
use ractor::{call_t, cast, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Layer as _;

/// A cabal-v2-store build: another Cabal hash for distributed-process, and
/// a bytestring that is not GHC 9.0.2's boot package.
fn other_build() -> Build {
    Build::new(
        "distributed-process-0.7.8-6DfN3pYkQ2zL1xGm9v0aBc",
        "bytestring-0.11.5.3",
    )
}

async fn other_peer() -> PlainNode {
    PlainNode::start_with(PlainNodeConfig {
        build: other_build(),
        ..PlainNodeConfig::new("127.0.0.1")
    })
    .await
    .expect("plain node starts")
}

async fn connect(rust: &RustNode, peer: &PlainNode) {
    ractor_cluster::client_connect_transport(&rust.server, peer.node_id().as_str().unwrap())
        .await
        .expect("connect to the plain node");
}

fn peer_id(peer: &PlainNode) -> String {
    peer.node_id().as_str().unwrap().to_owned()
}

/// `peer_info` once `done` holds (polled; bounded by [`T`]).
async fn info_when(dp: &DpTcp, peer: &str, done: impl Fn(&PeerInfo) -> bool) -> PeerInfo {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let info = dp.peer_info(peer).await.expect("a session with the peer");
        if done(&info) {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; last {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn the_other_build_really_differs_from_the_captured_one() {
    let b = other_build();
    assert_ne!(
        b.where_is_reply().fingerprint(),
        known::captured::WHERE_IS_REPLY
    );
    assert_ne!(b.process_id().fingerprint(), known::captured::PROCESS_ID);
    assert_ne!(
        b.strict_bytestring().fingerprint(),
        known::captured::STRICT_BYTESTRING
    );
}

/// The peer connects first and its very first message is the `WhereIs`:
/// the answer must carry the peer's `WhereIsReply` fingerprint, learned
/// from the probe DpTcp sends on every new connection.
///
/// This is the common race when the peer opened the connection (its
/// `WhereIs` is already in flight when DpTcp probes): DpTcp holds the
/// answer until the probe's reply taught it the peer's fingerprint (or the
/// probe expired); answered in the configured build, the Haskell
/// `whereisRemote` would never match the reply.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn first_whereis_from_a_peer_of_another_build_is_answered_in_its_build() {
    let rust = rust_node("builds-first-whereis").await;
    let (greeter, mut rx) = spawn_greeter("greeter-builds-first-whereis").await;
    let peer = other_peer().await;
    let p = peer.spawn();

    let pid = p
        .whereis_remote(&rust.node, "greeter-builds-first-whereis", T)
        .await
        .expect("a WhereIsReply of the peer's own build");
    assert_eq!(pid, Some(rust.dp.pid_of(&greeter.get_cell()).unwrap()));

    let info = rust.dp.peer_info(&peer_id(&peer)).await.unwrap();
    assert_eq!(
        info.learned.where_is_reply,
        Some(other_build().where_is_reply().fingerprint()),
        "{info:?}"
    );
    // The pid works.
    p.send(&pid.unwrap(), hello(&Greeting::new("found you")))
        .await
        .unwrap();
    assert_eq!(seen(&mut rx).await.text, "found you");
    assert!(peer.violations().is_empty(), "{:?}", peer.violations());
}

/// Once the probe's answer is in, every `WhereIs` of the peer is answered
/// with the learned fingerprint, and `peer_info` reports it as learned (not
/// the configured captured build).
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn whereis_reply_uses_the_fingerprint_learned_from_the_probe() {
    let rust = rust_node("builds-learned").await;
    let (greeter, _rx) = spawn_greeter("greeter-builds-learned").await;
    let peer = other_peer().await;
    let p = peer.spawn();
    connect(&rust, &peer).await;
    let learned = other_build().where_is_reply().fingerprint();
    let info = info_when(&rust.dp, &peer_id(&peer), |i| {
        i.learned.where_is_reply.is_some()
    })
    .await;
    assert_eq!(info.learned.where_is_reply, Some(learned), "{info:?}");
    assert_ne!(Some(known::captured::WHERE_IS_REPLY), Some(learned));

    for name in ["greeter-builds-learned", "nobody-builds-learned"] {
        let found = p
            .whereis_remote(&rust.node, name, T)
            .await
            .expect("a WhereIsReply of the peer's own build");
        let want = (name == "greeter-builds-learned")
            .then(|| rust.dp.pid_of(&greeter.get_cell()).unwrap());
        assert_eq!(found, want, "{name}");
    }
    // Our own lookups on that peer work too (their answers also teach us).
    let q = peer.spawn();
    peer.register("q-builds-learned", &q.pid());
    let cell = rust
        .dp
        .whereis(&peer_id(&peer), "q-builds-learned", T)
        .await
        .unwrap();
    assert!(!cell.get_id().is_local());
    assert!(peer.violations().is_empty(), "{:?}", peer.violations());
}

// ----------------------------------------------------------------------
// Unregistered types, both directions

/// Every WARN or ERROR event, as `LEVEL target: field=value ...`.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<String>>>);

impl Captured {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The captured lines at `level` that contain every one of `needles`.
    fn find(&self, level: tracing::Level, needles: &[&str]) -> Vec<String> {
        let prefix = level.to_string();
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with(&prefix) && needles.iter().all(|n| l.contains(n)))
            .collect()
    }
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Captured {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let m = event.metadata();
        let mut line = format!("{} {}:", m.level(), m.target());
        event.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
}

/// Captures WARN and above from everything that runs on this thread (the
/// test runs on a current-thread runtime, so that includes DpTcp's tasks)
/// and still prints to the test output what `RUST_LOG` selects (default
/// INFO).
fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry()
        .with(
            captured
                .clone()
                .with_filter(tracing_subscriber::filter::LevelFilter::WARN),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                ),
        );
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}

/// The greeter's protocol grown by variants the TypeRegistry does not know
/// (registered: `Hello`, `Ask`).
#[derive(RactorClusterMessage)]
enum GreeterPlus {
    Hello(Greeting),
    Farewell(Greeting),
    #[rpc]
    Ask(Greeting, RpcReplyPort<Greeting>),
    #[rpc]
    Confess(Greeting, RpcReplyPort<Greeting>),
}

// Current-thread runtime: the log capture is thread-local.
#[test_log::test(tokio::test)]
async fn unregistered_types_are_logged_by_name_counted_and_dropped() {
    let (logs, _guard) = capture_logs();
    let rust = rust_node("builds-unregistered").await;
    let (greeter, mut rx) = spawn_greeter("greeter-builds-unregistered").await;
    let (_other, mut other_rx) = spawn_greeter("other-builds-unregistered").await;
    let peer = other_peer().await;
    let p = peer.spawn();
    let id = peer_id(&peer);
    let to = rust.dp.pid_of(&greeter.get_cell()).unwrap();

    // Haskell → Rust: `data Goodbye = Goodbye !ByteString`, which nobody
    // registered, then a registered Hello on the same connection.
    let goodbye = fp("Goodbye");
    p.send(&to, Message::new(goodbye, packed(&Greeting::new("bye"))))
        .await
        .unwrap();
    p.send(&to, hello(&Greeting::new("after the unknown one")))
        .await
        .unwrap();
    // The unknown message was not delivered as anything: the next thing
    // the greeter sees is the Hello sent after it.
    assert_eq!(seen(&mut rx).await.text, "after the unknown one");
    let info = info_when(&rust.dp, &id, |i| i.counters.unknown_type >= 1).await;
    assert_eq!(info.counters.unknown_type, 1, "{info:?}");
    let hex = goodbye.to_string();
    let warned = logs.find(tracing::Level::WARN, &[&hex, "TypeRegistry"]);
    assert_eq!(
        warned.len(),
        1,
        "a warning naming {hex}: {:#?}",
        logs.lines()
    );
    // The session and the other actors keep working.
    p.nsend_remote(
        &rust.node,
        "other-builds-unregistered",
        hello(&Greeting::new("other still fine")),
    )
    .await
    .unwrap();
    assert_eq!(seen(&mut other_rx).await.text, "other still fine");
    p.send(&to, ask(&p.pid(), &Greeting::new("still there?")))
        .await
        .unwrap();
    let reply = p.expect_fp(fp("AskReply"), T).await.unwrap();
    assert_eq!(unpack(&reply.payload()).text, "re: still there?");

    // Rust → Haskell: a cast and a call of variants with no Haskell type.
    let q = peer.spawn();
    peer.register("q-builds-unregistered", &q.pid());
    connect_or_reuse(&rust, &peer).await;
    let h: ActorRef<GreeterPlus> = rust
        .dp
        .whereis(&id, "q-builds-unregistered", T)
        .await
        .unwrap()
        .into();
    // ractor's cast only hands the message to the session, so it returns
    // Ok; the transport refuses it, logs an error naming the variant and
    // counts it.
    cast!(h, GreeterPlus::Farewell(Greeting::new("never sent"))).unwrap();
    let r = call_t!(h, GreeterPlus::Confess, 300, Greeting::new("never asked"));
    assert!(r.is_err(), "a call nobody can receive fails: {r:?}");
    cast!(h, GreeterPlus::Hello(Greeting::new("registered"))).unwrap();
    // Nothing arrived before the Hello: not a Farewell under some other
    // fingerprint, not a Confess.
    let m = q.expect(T).await.unwrap();
    assert_eq!(m.fingerprint, fp("Hello"));
    assert_eq!(unpack(&m.payload()).text, "registered");
    let info = info_when(&rust.dp, &id, |i| i.counters.unknown_type >= 3).await;
    assert_eq!(info.counters.unknown_type, 3, "{info:?}");
    for variant in ["Farewell", "Confess"] {
        let errors = logs.find(tracing::Level::ERROR, &[variant, "TypeRegistry"]);
        assert_eq!(
            errors.len(),
            1,
            "an error naming {variant}: {:#?}",
            logs.lines()
        );
    }
    // And the registered call still works after all that.
    let r = tokio::spawn(async move {
        let m = q.expect_fp(fp("Ask"), T).await.unwrap();
        let (reply_to, g) = parse_ask(&m);
        q.send(
            &reply_to,
            Message::new(fp("AskReply"), packed(&Greeting::new(&g.text))),
        )
        .await
        .unwrap();
        // Kept alive by the caller: its Died would stop the RemoteActor.
        q
    });
    let back = call_t!(h, GreeterPlus::Ask, 10_000, Greeting::new("echo")).unwrap();
    assert_eq!(back.text, "echo");
    let _q = r.await.unwrap();
    assert!(peer.violations().is_empty(), "{:?}", peer.violations());
}

/// The peer opened the session already; connecting again is refused with
/// `AlreadyExists`, which is fine here.
async fn connect_or_reuse(rust: &RustNode, peer: &PlainNode) {
    if let Err(e) =
        ractor_cluster::client_connect_transport(&rust.server, peer.node_id().as_str().unwrap())
            .await
    {
        assert!(format!("{e:?}").contains("AlreadyExists"), "{e:?}");
    }
}

// ----------------------------------------------------------------------
// Application types from a library unit with a Cabal hash

/// The unit of the Haskell library that defines the greeter's types:
/// `kaisui-greeter-0.1.0.0-3kVq8ZyXcN1pLr7TfW0aJd:Kaisui.Greeter`.
const HASHED_UNIT: &str = "kaisui-greeter-0.1.0.0-3kVq8ZyXcN1pLr7TfW0aJd";

/// Fingerprints as a user copies them from the Haskell side
/// (`typeRepFingerprint (typeRep (Proxy @Hello))`).
const RAW_HELLO: Fingerprint = fingerprint("893e9805706d0047249984b63e5e05f4");
const RAW_ASK: Fingerprint = fingerprint("57e2c2965ad7bc577a9be063dc4e7c1e");
const RAW_ASK_REPLY: Fingerprint = fingerprint("22ed740919f0c93b8f428445d5486fcb");

const fn fingerprint(hex: &str) -> Fingerprint {
    match Fingerprint::from_hex(hex) {
        Some(f) => f,
        None => panic!("bad fingerprint literal"),
    }
}

fn raw_types() -> TypeRegistry {
    TypeRegistry::new()
        .cast_with_fingerprint("Hello", RAW_HELLO)
        .call_with_fingerprints(
            "Ask",
            CallTypes {
                request: RAW_ASK,
                reply: RAW_ASK_REPLY,
            },
        )
}

#[test]
fn raw_fingerprints_are_those_of_the_hashed_unit() {
    // The literals are what GHC computes for that unit id; they differ from
    // the same types in an executable (`main`).
    for (name, raw) in [
        ("Hello", RAW_HELLO),
        ("Ask", RAW_ASK),
        ("AskReply", RAW_ASK_REPLY),
    ] {
        assert_eq!(
            haskell_type_fingerprint(HASHED_UNIT, "Kaisui.Greeter", name),
            raw
        );
        assert_ne!(fp(name), raw);
    }
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn raw_fingerprints_of_a_hashed_unit_work_both_ways() {
    let rust = rust_node_with(
        "builds-raw",
        DpTcpConfig::new(raw_types()).with_build(other_build()),
    )
    .await;
    let (greeter, mut rx) = spawn_greeter("greeter-builds-raw").await;
    let peer = other_peer().await;
    let p = peer.spawn();
    let answering = peer.spawn();
    peer.register("answering-builds-raw", &answering.pid());
    let to = rust.dp.pid_of(&greeter.get_cell()).unwrap();

    // Haskell → Rust: cast by pid and by name, call with a reply.
    p.send(
        &to,
        Message::new(RAW_HELLO, packed(&Greeting::new("raw hi"))),
    )
    .await
    .unwrap();
    assert_eq!(seen(&mut rx).await.text, "raw hi");
    p.nsend_remote(
        &rust.node,
        "greeter-builds-raw",
        Message::new(RAW_HELLO, packed(&Greeting::new("raw by name"))),
    )
    .await
    .unwrap();
    assert_eq!(seen(&mut rx).await.text, "raw by name");
    let mut req = Vec::new();
    dp_wire::binary::Encode::encode(&p.pid(), &mut req);
    req.extend_from_slice(&packed(&Greeting::new("raw question")));
    p.send(&to, Message::new(RAW_ASK, req)).await.unwrap();
    let reply = p.expect_fp(RAW_ASK_REPLY, T).await.unwrap();
    assert_eq!(unpack(&reply.payload()).text, "re: raw question");

    // The same type from an executable (`main:Kaisui.Greeter.Hello`) is
    // another type: dropped.
    p.send(&to, hello(&Greeting::new("main's Hello")))
        .await
        .unwrap();
    p.send(
        &to,
        Message::new(RAW_HELLO, packed(&Greeting::new("raw again"))),
    )
    .await
    .unwrap();
    assert_eq!(seen(&mut rx).await.text, "raw again");
    let id = peer_id(&peer);
    let info = info_when(&rust.dp, &id, |i| i.counters.unknown_type >= 1).await;
    assert_eq!(info.counters.unknown_type, 1, "{info:?}");

    // Rust → Haskell: cast, and call answered by the plain process.
    let server = tokio::spawn(async move {
        let m = answering.expect_fp(RAW_HELLO, T).await.unwrap();
        assert_eq!(unpack(&m.payload()).text, "raw from rust");
        let m = answering.expect_fp(RAW_ASK, T).await.unwrap();
        let (reply_to, g): (ProcessId, Greeting) = parse_ask(&m);
        answering
            .send(
                &reply_to,
                Message::new(
                    RAW_ASK_REPLY,
                    packed(&Greeting::new(&format!("haskell: {}", g.text))),
                ),
            )
            .await
            .unwrap();
        answering
    });
    let a: ActorRef<GreeterMsg> = rust
        .dp
        .whereis(&id, "answering-builds-raw", T)
        .await
        .unwrap()
        .into();
    cast!(a, GreeterMsg::Hello(Greeting::new("raw from rust"))).unwrap();
    let r = call_t!(a, GreeterMsg::Ask, 10_000, Greeting::new("raw call")).unwrap();
    assert_eq!(r.text, "haskell: raw call");
    let _answering = server.await.unwrap();
    assert!(peer.violations().is_empty(), "{:?}", peer.violations());
}
