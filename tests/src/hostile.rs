//! Support for the hostile-peer tests (`tests/hostile_native.rs`) and the
//! soak benchmark (`benches/soak_native.rs`), both over the native transport
//! on loopback.
//!
//! * [CountingAlloc] - a global allocator that counts current and peak heap
//!   bytes, so a test can state a memory bound and check it.
//! * [HardenedNode] - a `NodeServer` with every hardening knob set by the
//!   test ([Limits]), a count of its session events and the close reason of
//!   each of its sessions.
//! * [RawPeer] - a raw TCP client that speaks the native wire format (u64
//!   big-endian length + protobuf `NetworkMessage`) and, when asked, the
//!   cookie handshake, so it can misbehave at any step.
//! * [check_served] - the well-behaved peer: a second node that connects
//!   with `client_connect_transport`, casts and calls.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kaisui_interop_msgs::{echo_reply, EchoMsg};
use prost::Message as _;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::protocol::auth as auth_proto;
use ractor_cluster::protocol::meta::network_message::Message as Wire;
use ractor_cluster::protocol::node as node_proto;
use ractor_cluster::protocol::NetworkMessage;
use ractor_cluster::transport::NativeTransport;
use ractor_cluster::{NodeEventSubscription, NodeServer, NodeServerMessage};
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{
    eventually, shutdown_all, spawn_listening, stop_trees, Inbox, NodeEvent, TestNode, COOKIE,
    HOST, WAIT,
};

// ============================ memory ============================ //

pub use kaisui_alloc_count::{
    counting_installed, current_bytes, mib, peak_bytes, CountingAlloc, PeakWatch,
};

// ============================ node ============================ //

/// The hardening knobs of a [HardenedNode]; [Default] is the fork's
/// defaults.
#[derive(Clone, Debug)]
pub struct Limits {
    /// `NodeServer::with_handshake_timeout`
    pub handshake_timeout: Duration,
    /// `NodeServer::with_liveness_timeout`
    pub liveness_timeout: Option<Duration>,
    /// `NodeServer::with_max_sessions`
    pub max_sessions: usize,
    /// `NodeServer::with_inbound_window`, in bytes
    pub inbound_window: usize,
    /// `NodeServer::with_max_outbound_buffer`
    pub max_outbound_buffer: usize,
    /// `NodeServer::with_max_inbound_frame_size`
    pub max_inbound_frame_size: u64,
}

impl Limits {
    /// `server` with these limits.
    fn apply(&self, server: NodeServer) -> NodeServer {
        server
            .with_handshake_timeout(self.handshake_timeout)
            .with_liveness_timeout(self.liveness_timeout)
            .with_max_sessions(self.max_sessions)
            .with_inbound_window(self.inbound_window)
            .with_max_outbound_buffer(self.max_outbound_buffer)
            .with_max_inbound_frame_size(self.max_inbound_frame_size)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: ractor_cluster::DEFAULT_HANDSHAKE_TIMEOUT,
            liveness_timeout: Some(ractor_cluster::DEFAULT_LIVENESS_TIMEOUT),
            max_sessions: ractor_cluster::DEFAULT_MAX_SESSIONS,
            inbound_window: ractor_cluster::DEFAULT_INBOUND_WINDOW,
            max_outbound_buffer: ractor_cluster::DEFAULT_MAX_OUTBOUND_BUFFER,
            max_inbound_frame_size: ractor_cluster::DEFAULT_MAX_INBOUND_FRAME_SIZE,
        }
    }
}

/// Session counts and close reasons of one [HardenedNode].
#[derive(Debug, Default)]
pub struct SessionLog {
    opened: AtomicUsize,
    authenticated: AtomicUsize,
    disconnected: AtomicUsize,
    /// Stop reasons of this node's `NodeSession`s, in the order they ended
    /// (only those still running when the watch was attached)
    reasons: Mutex<Vec<String>>,
}

impl SessionLog {
    /// Sessions opened so far (connections that got past `max_sessions`).
    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }

    /// Sessions that authenticated so far.
    pub fn authenticated(&self) -> usize {
        self.authenticated.load(Ordering::SeqCst)
    }

    /// Sessions that ended so far.
    pub fn disconnected(&self) -> usize {
        self.disconnected.load(Ordering::SeqCst)
    }

    /// Stop reasons recorded so far.
    pub fn reasons(&self) -> Vec<String> {
        self.reasons.lock().expect("reasons lock").clone()
    }
}

/// Records the stop reason of every actor it monitors into a list.
struct ExitWatcher;

impl Actor for ExitWatcher {
    type Msg = ();
    type State = Arc<SessionLog>;
    type Arguments = Arc<SessionLog>;

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        log: Arc<SessionLog>,
    ) -> Result<Arc<SessionLog>, ActorProcessingErr> {
        Ok(log)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<()>,
        event: SupervisionEvent,
        log: &mut Arc<SessionLog>,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorTerminated(_, _, reason) = event {
            let reason = reason.unwrap_or_else(|| "<none>".to_string());
            log.reasons.lock().expect("reasons lock").push(reason);
        }
        Ok(())
    }
}

/// Counts session events and has the [ExitWatcher] monitor each new session.
struct Recorder {
    log: Arc<SessionLog>,
    watcher: ActorCell,
}

impl NodeEventSubscription for Recorder {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        self.log.opened.fetch_add(1, Ordering::SeqCst);
        // A session that fails its first frame may already be gone; then no
        // reason is recorded, which the tests allow for.
        self.watcher.monitor(ses.actor.get_cell());
    }

    fn node_session_disconnected(&self, _ses: NodeServerSessionInformation) {
        self.log.disconnected.fetch_add(1, Ordering::SeqCst);
    }

    fn node_session_authenticated(&self, _ses: NodeServerSessionInformation) {
        self.log.authenticated.fetch_add(1, Ordering::SeqCst);
    }
}

/// A `NodeServer` on the native transport, bound to 127.0.0.1, with the
/// given [Limits]. Stopped on drop; [HardenedNode::shutdown] waits for it.
pub struct HardenedNode {
    /// The name peers know this node by (`name@HOST`)
    pub full_name: String,
    /// The node server actor
    pub server: ActorRef<NodeServerMessage>,
    /// Where raw peers and other nodes connect
    pub addr: SocketAddr,
    /// Session counts and close reasons
    pub log: Arc<SessionLog>,
    watcher: ActorRef<()>,
}

impl std::fmt::Debug for HardenedNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HardenedNode")
            .field("full_name", &self.full_name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl HardenedNode {
    /// Start a node named `name` with the cookie [COOKIE] and `limits`.
    pub async fn start(name: &str, limits: &Limits) -> HardenedNode {
        let log = Arc::new(SessionLog::default());
        let (watcher, _) = Actor::spawn(None, ExitWatcher, log.clone())
            .await
            .expect("spawn exit watcher");
        let recorder = Recorder {
            log: log.clone(),
            watcher: watcher.get_cell(),
        };
        let (server, bound) = spawn_listening(
            name,
            COOKIE,
            None,
            Arc::new(NativeTransport::default()),
            |server| limits.apply(server.with_listen_addr(IpAddr::V4(Ipv4Addr::LOCALHOST))),
            "hostile",
            Box::new(recorder),
        )
        .await;
        // Mailbox barrier: the subscription is in place before any peer.
        let _ = ractor::call_t!(server, NodeServerMessage::GetSessions, 5_000);
        tracing::info!(node = name, %bound, "hardened node listening");
        HardenedNode {
            full_name: format!("{name}@{HOST}"),
            server,
            addr: bound,
            log,
            watcher,
        }
    }

    /// The authenticated sessions' `NodeSession` actors.
    pub async fn session_actors(&self) -> Vec<ActorCell> {
        ractor::call_t!(self.server, NodeServerMessage::GetSessions, 5_000)
            .expect("GetSessions")
            .into_values()
            .map(|ses| ses.actor.get_cell())
            .collect()
    }

    /// Wait until `n` sessions have ended in total.
    pub async fn wait_disconnected(&self, n: usize) {
        let what = format!("{n} sessions of {} to end", self.full_name);
        eventually(&what, || async {
            (self.log.disconnected() >= n).then_some(())
        })
        .await;
    }

    /// Wait until a session ended with `reason`.
    pub async fn wait_reason(&self, reason: &str) {
        let what = format!("a session of {} to end with {reason:?}", self.full_name);
        eventually(&what, || async {
            self.log.reasons().iter().any(|r| r == reason).then_some(())
        })
        .await;
    }

    /// Have the exit watcher record the stop reason of `cell` too (e.g. a
    /// session's transport actor, whose reason the node session does not
    /// pass on).
    pub fn watch(&self, cell: &ActorCell) {
        self.watcher.get_cell().monitor(cell.clone());
    }

    /// Stop the node and wait for its actor tree.
    pub async fn shutdown(self) {
        let roots = vec![self.server.get_cell()];
        let name = self.full_name.clone();
        // Dropping stops the server and the exit watcher.
        stop_trees(roots, &name, move || drop(self)).await;
    }
}

impl Drop for HardenedNode {
    fn drop(&mut self) {
        self.server.stop(None);
        self.watcher.stop(None);
    }
}

// ============================ the well-behaved peer ============================ //

/// The well-behaved peer is served by `target`: a new node connects to it
/// with `client_connect_transport`, both sides authenticate and finish the
/// state exchange, and a cast and a call through the new node's remote
/// actor for `echo` (an `EchoActor` in this process) arrive and return.
///
/// The connection goes through `target`'s listener, `NodeServer` and a new
/// `NodeSession`, so it fails if any of them was taken down by an attack.
pub async fn check_served(target: &HardenedNode, echo: &str, inbox: &mut Inbox, tag: &str) {
    let mut good = TestNode::start(&crate::harness::Native, &format!("good-{tag}"), COOKIE).await;
    good.connect_to_address(&target.addr.to_string()).await;
    let target_name = Some(target.full_name.clone());
    good.wait_event("the session with the target to be ready", |event| {
        *event == NodeEvent::Ready(target_name.clone())
    })
    .await;
    let remote: ActorRef<EchoMsg> = good.wait_remote_actor(echo).await;
    let text = format!("cast from good-{tag}");
    remote
        .cast(EchoMsg::Note(text.clone()))
        .expect("cast to the remote echo actor");
    inbox.expect_note(echo, &text).await;
    let reply = ractor::call_t!(remote, EchoMsg::Ask, 10_000, format!("call {tag}"))
        .expect("call to the remote echo actor");
    assert_eq!(reply, echo_reply(echo, &format!("call {tag}")));
    shutdown_all(vec![good]).await;
}

/// The node's own actors keep working: a local call to `echo` returns.
pub async fn check_local(echo: &ActorRef<EchoMsg>, name: &str) {
    let reply = ractor::call_t!(echo, EchoMsg::Ask, 10_000, "local".to_string())
        .expect("local call to the echo actor");
    assert_eq!(reply, echo_reply(name, "local"));
}

// ============================ the raw peer ============================ //

/// One native frame: u64 big-endian payload length, then the payload.
pub fn frame(msg: &NetworkMessage) -> Vec<u8> {
    let payload = msg.encode_to_vec();
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// An `auth` network message.
pub fn auth(msg: auth_proto::authentication_message::Msg) -> NetworkMessage {
    NetworkMessage {
        message: Some(Wire::Auth(auth_proto::AuthenticationMessage {
            msg: Some(msg),
        })),
    }
}

/// A `node` network message.
pub fn node(msg: node_proto::node_message::Msg) -> NetworkMessage {
    NetworkMessage {
        message: Some(Wire::Node(node_proto::NodeMessage { msg: Some(msg) })),
    }
}

/// A `control` network message.
pub fn control(msg: ractor_cluster::protocol::control::control_message::Msg) -> NetworkMessage {
    NetworkMessage {
        message: Some(Wire::Control(
            ractor_cluster::protocol::control::ControlMessage { msg: Some(msg) },
        )),
    }
}

/// The `auth` name message a raw peer called `name` opens with.
pub fn name_message(name: &str) -> NetworkMessage {
    auth(auth_proto::authentication_message::Msg::Name(
        auth_proto::NameMessage {
            name: format!("{name}@{HOST}"),
            flags: Some(auth_proto::NodeFlags { version: 1 }),
            connection_string: format!("{HOST}:1"),
            connection_id: 0x5eed,
        },
    ))
}

/// A `Node::Cast` of the serialized `msg` to the local actor `pid`.
pub fn cast_to<M: ractor::Message>(pid: u64, msg: M) -> NetworkMessage {
    match msg.serialize().expect("a remotable message") {
        ractor::message::SerializedMessage::Cast {
            variant,
            args,
            metadata,
        } => node(node_proto::node_message::Msg::Cast(node_proto::Cast {
            to: pid,
            what: args,
            variant,
            metadata,
        })),
        other => panic!("{other:?} is not a cast"),
    }
}

/// The cookie challenge digest of `src/node/auth.rs` and `src/hash.rs`:
/// SHA-256 over the challenge (u32, big-endian) followed by the cookie.
pub fn challenge_digest(cookie: &str, challenge: u32) -> Vec<u8> {
    let mut hasher = sha2::Sha256::new();
    hasher.update(challenge.to_be_bytes());
    hasher.update(cookie.as_bytes());
    hasher.finalize().to_vec()
}

/// A raw TCP connection to a node, speaking as much of the protocol as a
/// test wants.
#[derive(Debug)]
pub struct RawPeer {
    /// The socket
    pub stream: TcpStream,
}

impl RawPeer {
    /// Connect to `addr` (loopback).
    pub async fn connect(addr: SocketAddr) -> io::Result<RawPeer> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawPeer { stream })
    }

    /// Write raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Write one framed message.
    pub async fn send(&mut self, msg: &NetworkMessage) -> io::Result<()> {
        self.send_bytes(&frame(msg)).await
    }

    /// Read one frame (at most 16 MiB) and decode it.
    pub async fn recv(&mut self) -> io::Result<NetworkMessage> {
        let len = self.stream.read_u64().await?;
        if len > 16 << 20 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "frame too long"));
        }
        let mut buf = vec![0; len as usize];
        self.stream.read_exact(&mut buf).await?;
        NetworkMessage::decode(buf.as_slice())
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
    }

    /// Read frames until an `auth` one arrives (the node may send control
    /// traffic in between).
    async fn recv_auth(&mut self) -> io::Result<auth_proto::authentication_message::Msg> {
        loop {
            match self.recv().await?.message {
                Some(Wire::Auth(auth_proto::AuthenticationMessage { msg: Some(msg) })) => {
                    return Ok(msg)
                }
                _ => continue,
            }
        }
    }

    /// Run the client side of the cookie handshake as the node `name`,
    /// sending `digest_of(server challenge)` as the reply. Returns once the
    /// server acknowledged (and the ack checked out), or with an error.
    pub async fn handshake_with(
        &mut self,
        name: &str,
        cookie: &str,
        digest_of: impl Fn(u32) -> Vec<u8>,
    ) -> io::Result<()> {
        use auth_proto::authentication_message::Msg;
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        self.send(&name_message(name)).await?;
        match self.recv_auth().await? {
            Msg::ServerStatus(status)
                if status.status() == auth_proto::server_status::Status::Ok => {}
            other => return Err(bad(format!("expected status Ok, got {other:?}"))),
        }
        let server_challenge = match self.recv_auth().await? {
            Msg::ServerChallenge(challenge) => challenge.challenge,
            other => return Err(bad(format!("expected a challenge, got {other:?}"))),
        };
        let our_challenge: u32 = 0x0dd_ba11;
        self.send(&auth(Msg::ClientChallenge(auth_proto::ChallengeReply {
            challenge: our_challenge,
            digest: digest_of(server_challenge),
        })))
        .await?;
        match self.recv_auth().await? {
            Msg::ServerAck(ack) if ack.digest == challenge_digest(cookie, our_challenge) => Ok(()),
            other => Err(bad(format!("expected a valid ack, got {other:?}"))),
        }
    }

    /// Connect and authenticate as the node `name` with the right cookie.
    pub async fn authenticated(addr: SocketAddr, name: &str) -> io::Result<RawPeer> {
        let mut peer = RawPeer::connect(addr).await?;
        peer.handshake_with(name, COOKIE, |challenge| {
            challenge_digest(COOKIE, challenge)
        })
        .await?;
        Ok(peer)
    }

    /// Whether the node closes this connection within `within`: reads (and
    /// discards) until end of stream or a reset.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        // Small: the idle-connections test runs hundreds of these at once,
        // in the same heap as the node it measures.
        let mut buf = vec![0u8; 1024];
        let drained = tokio::time::timeout(within, async {
            loop {
                match self.stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        drained.is_ok()
    }

    /// Assert the node closes this connection within [WAIT].
    pub async fn expect_closed(&mut self, what: &str) {
        assert!(
            self.closed_within(WAIT).await,
            "{what}: the node kept the connection open for {WAIT:?}"
        );
    }
}

/// Deterministic pseudo-random bytes (xorshift64), so a garbage input is the
/// same on every run.
pub fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A remotable actor that takes `delay` per message and counts them.
#[derive(Debug)]
pub struct SlowActor {
    /// Time spent on each message
    pub delay: Duration,
    /// Messages handled so far
    pub handled: Arc<AtomicUsize>,
}

impl Actor for SlowActor {
    // A `BytesConvertable` message is remotable: casts can come from peers.
    type Msg = u64;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<u64>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<u64>,
        _msg: u64,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        tokio::time::sleep(self.delay).await;
        self.handled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
