//! Shared setup of the DpTcp integration tests: a ractor node on DpTcp, a
//! greeter actor, the Haskell-side view of its messages, and an observer
//! of how actors end.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dp_tcp::{haskell_type_fingerprint, DpTcp, DpTcpConfig, TypeRegistry};
use dp_wire::binary::{decode_exact, Decode, Encode, Reader};
use dp_wire::dp::{Message, NodeId, ProcessId};
use dp_wire::fingerprint::Fingerprint;
use dp_wire::ntt::{self, EndPointAddress};
use dp_wire::Limits;
use ractor::SupervisionEvent;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, BytesConvertable, RpcReplyPort};
use ractor_cluster::{NodeServer, NodeServerMessage, RactorClusterMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Bound of every wait in these tests (never a timing assertion).
pub const T: Duration = Duration::from_secs(10);

/// The payload of every test message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Greeting {
    /// Some text.
    #[prost(string, tag = "1")]
    pub text: String,
    /// A Binary-encoded DP ProcessId to answer to, if any.
    #[prost(bytes = "vec", tag = "2")]
    pub reply_to: Vec<u8>,
}

ractor_cluster::derive_serialization_for_prost_type! {Greeting}

impl Greeting {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.into(),
            reply_to: vec![],
        }
    }

    pub fn with_reply_to(text: &str, pid: &ProcessId) -> Self {
        let mut reply_to = Vec::new();
        pid.encode(&mut reply_to);
        Self {
            text: text.into(),
            reply_to,
        }
    }

    pub fn reply_pid(&self) -> ProcessId {
        decode_exact(&self.reply_to, &Limits::default()).expect("a Binary ProcessId")
    }
}

/// The greeter's protocol. On the Haskell side:
/// `data Hello = Hello !ByteString`, `data Ask = Ask !ProcessId !ByteString`,
/// `newtype AskReply = AskReply ByteString`, in module `Kaisui.Greeter` of
/// an executable.
#[derive(RactorClusterMessage)]
pub enum GreeterMsg {
    Hello(Greeting),
    #[rpc]
    Ask(Greeting, RpcReplyPort<Greeting>),
}

pub fn types() -> TypeRegistry {
    TypeRegistry::new()
        .module("main", "Kaisui.Greeter")
        .cast("Hello", "Hello")
        .call("Ask", "Ask", "AskReply")
}

pub fn fp(name: &str) -> Fingerprint {
    haskell_type_fingerprint("main", "Kaisui.Greeter", name)
}

/// ractor's packing of one field: u64 BE length ++ bytes, which is also
/// Data.Binary's strict ByteString.
pub fn packed(g: &Greeting) -> Vec<u8> {
    let b = g.clone().into_bytes();
    let mut v = (b.len() as u64).to_be_bytes().to_vec();
    v.extend_from_slice(&b);
    v
}

pub fn unpack(payload: &[u8]) -> Greeting {
    let n = u64::from_be_bytes(payload[..8].try_into().unwrap()) as usize;
    assert_eq!(payload.len(), 8 + n, "one ByteString field");
    Greeting::from_bytes(payload[8..].to_vec())
}

/// What a Haskell `send pid (Hello bytes)` puts on the wire.
pub fn hello(g: &Greeting) -> Message {
    Message::new(fp("Hello"), packed(g))
}

/// `Ask replyTo bytes`.
pub fn ask(reply_to: &ProcessId, g: &Greeting) -> Message {
    let mut payload = Vec::new();
    reply_to.encode(&mut payload);
    payload.extend_from_slice(&packed(g));
    Message::new(fp("Ask"), payload)
}

/// Splits an `Ask` payload into its reply pid and Greeting.
pub fn parse_ask(m: &Message) -> (ProcessId, Greeting) {
    let payload = m.payload();
    let limits = Limits::default();
    let mut r = Reader::shared(&payload, &limits);
    let pid = ProcessId::decode(&mut r).expect("reply pid first");
    let rest = r.take_rest();
    (pid, unpack(&rest))
}

/// What a [`Greeter`] does with each Hello it gets.
pub enum Hellos {
    /// Forwards it to the test.
    Forward(mpsc::UnboundedSender<Greeting>),
    /// Only counts it (never falls behind a flood).
    Count(Arc<AtomicUsize>),
    /// Sleeps this long, then counts it: a slow actor, which a flood
    /// leaves behind.
    Slow(Duration, Arc<AtomicUsize>),
}

impl From<mpsc::UnboundedSender<Greeting>> for Hellos {
    fn from(tx: mpsc::UnboundedSender<Greeting>) -> Self {
        Self::Forward(tx)
    }
}

impl From<Arc<AtomicUsize>> for Hellos {
    fn from(n: Arc<AtomicUsize>) -> Self {
        Self::Count(n)
    }
}

/// Hands every Hello to its [`Hellos`] and answers every Ask.
pub struct Greeter;

impl Actor for Greeter {
    type Msg = GreeterMsg;
    type State = Hellos;
    type Arguments = Hellos;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        hellos: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(hellos)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        hellos: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            GreeterMsg::Hello(g) => match hellos {
                Hellos::Forward(tx) => {
                    let _ = tx.send(g);
                }
                Hellos::Count(n) => {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                Hellos::Slow(delay, n) => {
                    tokio::time::sleep(*delay).await;
                    n.fetch_add(1, Ordering::Relaxed);
                }
            },
            GreeterMsg::Ask(g, reply) => {
                let _ = reply.send(Greeting::new(&format!("re: {}", g.text)));
            }
        }
        Ok(())
    }
}

pub async fn spawn_greeter(
    name: &str,
) -> (ActorRef<GreeterMsg>, mpsc::UnboundedReceiver<Greeting>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (r, _) = Actor::spawn(Some(name.to_owned()), Greeter, tx.into())
        .await
        .expect("greeter starts");
    (r, rx)
}

/// The next Greeting the greeter saw.
pub async fn seen(rx: &mut mpsc::UnboundedReceiver<Greeting>) -> Greeting {
    tokio::time::timeout(T, rx.recv())
        .await
        .expect("the greeter gets a message in time")
        .expect("greeter alive")
}

/// A ractor node on DpTcp, listening on 127.0.0.1.
pub struct RustNode {
    pub dp: DpTcp,
    pub server: ActorRef<NodeServerMessage>,
    pub node: NodeId,
}

/// [`rust_node_with`] the greeter's [`types`].
pub async fn rust_node(name: &str) -> RustNode {
    rust_node_with(name, DpTcpConfig::new(types())).await
}

/// A ractor node on DpTcp with `config`, listening on 127.0.0.1; returns
/// once DpTcp listens.
pub async fn rust_node_with(name: &str, config: DpTcpConfig) -> RustNode {
    rust_node_on(name, config, |server| server).await
}

/// [`rust_node_with`] on a `NodeServer` that `tune` configured (e.g.
/// `NodeServer::with_inbound_window`).
pub async fn rust_node_on(
    name: &str,
    config: DpTcpConfig,
    tune: impl FnOnce(NodeServer) -> NodeServer,
) -> RustNode {
    let dp = DpTcp::new(config).expect("valid config");
    let server = tune(NodeServer::new(
        0,
        "no-cookie-in-dp".into(),
        name.into(),
        "localhost".into(),
        None,
        None,
    ))
    .with_transport(dp.clone());
    let (server, _) = Actor::spawn(None, server, ()).await.expect("node server");
    wait_until("DpTcp listening", || dp.node_id().is_some()).await;
    let node = dp.node_id().unwrap();
    RustNode { dp, server, node }
}

/// The NT-TCP address of a DP node.
pub fn endpoint_of(node: &NodeId) -> EndPointAddress {
    node.as_str().unwrap().parse().unwrap()
}

/// Connects over TCP to `to` and completes the NT-TCP handshake as the
/// initiator `me`; panics if DpTcp refuses or stays silent past [`T`].
pub async fn raw_handshake(
    to: &EndPointAddress,
    me: &EndPointAddress,
) -> (ntt::Connection, TcpStream) {
    let mut stream = TcpStream::connect(format!("{}:{}", to.host(), to.port()))
        .await
        .unwrap();
    let mut conn = ntt::Connection::initiator(Some(me), to, Limits::default());
    flush_raw(&mut conn, &mut stream).await;
    let mut buf = [0u8; 4096];
    loop {
        if let Some(ev) = conn.poll_event() {
            assert_eq!(ev, ntt::Event::Accepted);
            break;
        }
        let n = tokio::time::timeout(T, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "DpTcp closed the handshake");
        conn.handle_input(&buf[..n]);
    }
    (conn, stream)
}

/// Writes what `conn` has to transmit, if anything, to `stream`.
pub async fn flush_raw(conn: &mut ntt::Connection, stream: &mut TcpStream) {
    if let Some(b) = conn.poll_transmit() {
        stream.write_all(&b).await.unwrap();
    }
}

/// Polls `cond` every 5 ms for up to [`T`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls the async `cond` every 10 ms for up to [`T`].
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + T;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How an observed actor ended, as ractor told its supervisor/monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Terminated(ActorId, Option<String>),
    Failed(ActorId, String),
}

/// Reports every supervision event it gets (as supervisor or monitor).
pub struct Observer;

impl Actor for Observer {
    type Msg = ();
    type State = mpsc::UnboundedSender<Ended>;
    type Arguments = mpsc::UnboundedSender<Ended>;

    async fn pre_start(
        &self,
        _: ActorRef<()>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        e: SupervisionEvent,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let _ = match e {
            SupervisionEvent::ActorTerminated(c, _, r) => tx.send(Ended::Terminated(c.get_id(), r)),
            SupervisionEvent::ActorFailed(c, err) => {
                tx.send(Ended::Failed(c.get_id(), err.to_string()))
            }
            _ => Ok(()),
        };
        Ok(())
    }
}

/// An [`Observer`] and what it reports.
pub async fn observer() -> (ActorRef<()>, Ends) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (a, _) = Actor::spawn(None, Observer, tx).await.unwrap();
    (
        a,
        Ends {
            rx,
            early: Vec::new(),
        },
    )
}

/// What an [`Observer`] reported, in order.
pub struct Ends {
    pub rx: mpsc::UnboundedReceiver<Ended>,
    /// Ends [`ended`] received while waiting for another actor's.
    pub early: Vec<Ended>,
}

/// How `id` ended, as the observer saw it (ends of other actors are kept
/// for later calls).
pub async fn ended(ends: &mut Ends, id: ActorId) -> Ended {
    let is = |e: &Ended| matches!(e, Ended::Terminated(i, _) | Ended::Failed(i, _) if *i == id);
    if let Some(i) = ends.early.iter().position(is) {
        return ends.early.remove(i);
    }
    loop {
        let e = tokio::time::timeout(T, ends.rx.recv())
            .await
            .expect("an actor end in time")
            .expect("observer alive");
        if is(&e) {
            return e;
        }
        ends.early.push(e);
    }
}

/// The next end the observer saw, of whichever actor, in arrival order
/// (the oldest kept by [`ended`] first).
pub async fn next_end(ends: &mut Ends) -> Ended {
    if !ends.early.is_empty() {
        return ends.early.remove(0);
    }
    tokio::time::timeout(T, ends.rx.recv())
        .await
        .expect("an actor end in time")
        .expect("observer alive")
}

/// The reason of a stop with a reason; panics on anything else.
pub fn terminated_reason(e: Ended) -> String {
    match e {
        Ended::Terminated(_, Some(r)) => r,
        other => panic!("expected a stop with a reason, got {other:?}"),
    }
}
