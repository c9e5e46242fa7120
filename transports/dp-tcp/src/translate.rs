//! Sans-IO translation between a ractor `NodeSession` and one
//! distributed-process peer.
//!
//! One [`Translator`] serves one TCP connection (one peer endpoint). Its
//! inputs are the [`NetworkMessage`]s the session writes, and the frames the
//! peer sends, already split per lightweight connection by the driver. Its
//! outputs are [`DpAction`]s (open a lightweight connection from one
//! Identifier to another, send a frame on it, close it), messages for the
//! session's reader, and [`Event`]s for `DpTcp`'s own requests. No
//! sockets, no clocks: time is passed in.
//!
//! # Mapping
//!
//! Rust → Haskell (what the session writes):
//!
//! | session message | DP traffic |
//! |---|---|
//! | `Node::Cast{to, what, variant}` | message `fp(variant) ++ what` to the Haskell pid `to`, from the node's sender pid ([`crate::ids::NODE_SENDER_COUNTER`]) |
//! | `Node::Call{to, tag, what, variant, timeout_ms}` | message `fp(request) ++ <reply pid> ++ what`; `<reply pid>` is a fresh synthetic pid of ours remembered with `(to, tag)` until `timeout_ms` (default [`Context::call_timeout`]) |
//! | `Node::Reply{to, tag, what}` | message `fp(reply) ++ u64 BE len(what) ++ what` from our pid `to` to the Haskell reply pid the call carried |
//! | `Node::Call{variant: `[`BARRIER_VARIANT`]`}` | none; answered at once with an empty `Node::Reply` (ordering barrier, see the constant) |
//! | `Control::Terminate{ids}` | closes the lightweight connections those actors opened (as a DP node does when a process ends) |
//! | `Control::Ping` | none; answered at once with `Control::Pong` to the session (liveness of a DP peer is NT-TCP probing, see [`crate::DpTcpConfig::probe_interval`]) |
//! | other `Control`, `Auth` | dropped (debug log): a plain DP peer has no such messages |
//!
//! (All of the above is for a plain DP peer; a kaisui peer gets every
//! session message unchanged, see "Kaisui peers" below.)
//!
//! Haskell → Rust (frames from the peer):
//!
//! | lightweight connection to | frame | session message |
//! |---|---|---|
//! | `ProcessIdentifier(our actor pid)` | registered cast type | `Node::Cast{to, what: payload, variant}` |
//! | `ProcessIdentifier(our actor pid)` | registered call request type | `Node::Call{to, tag: fresh, what: payload after the reply pid, variant, timeout_ms: None}` |
//! | `ProcessIdentifier(our reply pid)` | the pending call's reply type | `Node::Reply{to, tag, what: payload after its 8-byte length}` |
//! | `NodeIdentifier(our node)` | `WhereIs label` | none; answers `WhereIsReply label (Just pid / Nothing)` as a DP NC does (`UnreliableSend` on our node connection) |
//! | `NodeIdentifier(our node)` | `NamedSend label msg` | as a message to the actor registered as `label` |
//! | `NodeIdentifier(our node)` | `UnreliableSend lpid msg` | as a message to that pid (our actor, or a reply address) |
//! | `NodeIdentifier(our node)` | `Monitor`/`Link` of our live actor | none; recorded, [`Event::WatchLocal`]; when the actor ends ([`Translator::local_died`]) one `Died (ProcessIdentifier ourpid) reason` per watch |
//! | `NodeIdentifier(our node)` | `Monitor`/`Link` of no live actor (never existed, ended, older incarnation, a send port) | none; answers `Died … DiedUnknownId` at once |
//! | `NodeIdentifier(our node)` | `Monitor`/`Link` of our node | none (accepted; the watcher's own NC reports a disconnect) |
//! | `NodeIdentifier(our node)` | `Unmonitor`/`Unlink` | none; the watch is forgotten, no notification afterwards |
//! | `NodeIdentifier(our node)` | `Kill target r` / `Exit target r` on a remotable actor | none; [`Event::StopLocal`]: the actor is stopped with reason `killed-by=<sender>,reason=r` / `exit-from=<sender>[,reason=r]` |
//! | `NodeIdentifier(our node)` | `Kill`/`Exit` on a synthetic pid or a non-remotable actor, `SigShutdown` | none; refused, warning, [`Counters::refused`] |
//! | `NodeIdentifier(our node)` | `Died (ProcessIdentifier hpid) r` | the RemoteActor of `hpid` is stopped with [`ractor_reason`]`(r)` ([`Event::RemoteDied`]); watches *by* `hpid` are forgotten |
//! | `NodeIdentifier(our node)` | `Spawn closure ref` | none; [`Event::Spawn`]; the driver answers through [`Translator::spawned`] with `DidSpawn ref pid` |
//! | `NodeIdentifier(our node)` | any other signal | none (debug log) |
//!
//! [`Translator::announce`] also sends `Monitor` (from
//! [`crate::ids::NODE_SENDER_COUNTER`]) for the announced Haskell process,
//! so that its death reaches the RemoteActor; [`Translator::connection_lost`]
//! ends every RemoteActor of the peer with `DiedDisconnect`. The lifecycle
//! rules are in [`lifecycle`] and `docs/lifecycle.md`.
//!
//! When the connection comes up the peer's node controller gets one
//! `WhereIs` probe for [`KAISUI_NODE_LABEL`]: its answer tells a kaisui
//! node from a plain DP node (see "Kaisui peers"), and teaches us the
//! peer's `WhereIsReply` fingerprint (see [`Learned`]). Until the answer
//! (or [`Context::recognize_timeout`]) nothing reaches the session, and the
//! peer's own `WhereIs` requests are held (at most [`Context::max_pending`]),
//! so that they are answered in the peer's build; a plain peer's are held
//! until its session is up (it wrote its `Ready`), so that what the answer
//! lets the Haskell process do next finds the session listed. A plain
//! peer's session first gets a synthetic `Control::Ready` (Haskell has no
//! such sync).
//!
//! # Kaisui peers
//!
//! A kaisui node answers the probe with `Just` its node agent pid
//! ([`crate::ids::NODE_AGENT_COUNTER`]); a plain DP node answers `Nothing`;
//! no answer in time counts as a plain node (warning). We answer a
//! `WhereIs` for [`KAISUI_NODE_LABEL`] at once (never held: both kaisui
//! sides probe at the same time) with our own agent pid.
//!
//! Between kaisui peers every [`NetworkMessage`] the session writes (auth,
//! control, node) is one DP message of the kaisui-private type
//! [`kaisui_wire_fingerprint`] (`Kaisui.Wire.NetworkMessage` of unit
//! `kaisui`, which no Haskell program has), whose payload is the
//! Data.Binary strict ByteString of its prost encoding, sent on the
//! lightweight connection from our agent pid to the peer's. The receiving
//! side decodes it and hands it to its session unchanged: pids inside are
//! ractor pids, the cookie handshake runs end to end, and nothing is
//! answered locally. The only edits: plain DP peers (sessions whose name is
//! their NT-TCP address) are left out of `NodeSessions`, so that no Rust
//! node takes a Haskell node for a ractor node; and once our session has
//! sent its `Ready` (it is then authenticated), its reader gets the session
//! marker `PgJoin` ([`SESSION_MARKER_PID`]). Only peers that answered the
//! probe with a pid ever get such a message; one arriving from a peer we
//! took for a plain node is dropped (warning).
//!
//! Nothing is silently lost: a variant or fingerprint missing from the
//! [`TypeRegistry`], a message for a pid of an older incarnation or for no
//! live actor, an undecodable frame, all are logged (fingerprint in hex,
//! target, lcid, hex prefix, reason) and counted in [`Counters`], then
//! dropped as distributed-process drops them.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dp_wire::binary::{decode_exact_shared, Decode, Encode, Reader};
use dp_wire::dp::{
    encode_frame, Frame, Identifier, InboundConnection, LocalProcessId, Message, NCMsg, NodeId,
    ProcessId, ProcessSignal, WhereIsReply,
};
use dp_wire::fingerprint::{Build, Fingerprint};
use dp_wire::Limits;
use ractor_cluster::protocol::control::{self, control_message};
use ractor_cluster::protocol::meta::network_message;
use ractor_cluster::protocol::node::{self, node_message};
use ractor_cluster::protocol::NetworkMessage;

use crate::ids::{
    local_counter, remote_local_id, remote_pid, FIRST_SYNTHETIC_COUNTER, NODE_AGENT_COUNTER,
    NODE_SENDER_COUNTER,
};
use crate::registry::{Incoming, TypeRegistry};

/// Warnings about one peer's traffic before further ones become debug
/// logs: a peer must not be able to flood the log (its [`Counters`] keep
/// counting).
const WARN_BUDGET: u64 = 100;

/// `tracing::warn!` while the translator's [`WARN_BUDGET`] lasts, then
/// `tracing::debug!`.
macro_rules! peer_warn {
    ($t:expr, $($arg:tt)+) => {
        if $t.take_warning() {
            tracing::warn!($($arg)+)
        } else {
            tracing::debug!($($arg)+)
        }
    };
}

pub mod lifecycle;

pub use lifecycle::{died_reason_of, exit_reason, kill_reason, ractor_reason, spawn_target};

/// The reserved name a kaisui node answers `WhereIs` for with its node
/// agent pid; a plain DP node has nobody registered under it.
pub const KAISUI_NODE_LABEL: &str = "kaisui.node/1";

/// The label of the `WhereIs` sent to every peer once, to recognise a
/// kaisui node and to learn the peer's `WhereIsReply` fingerprint (a lookup
/// has no side effect on a DP node).
pub const PROBE_LABEL: &str = KAISUI_NODE_LABEL;

/// The fingerprint of the kaisui-private DP message type that carries one
/// `ractor_cluster` [`NetworkMessage`] between two kaisui nodes: TyCon
/// `NetworkMessage` of module `Kaisui.Wire` in unit `kaisui`.
pub fn kaisui_wire_fingerprint() -> Fingerprint {
    static FP: std::sync::OnceLock<Fingerprint> = std::sync::OnceLock::new();
    *FP.get_or_init(|| {
        crate::registry::haskell_type_fingerprint("kaisui", "Kaisui.Wire", "NetworkMessage")
    })
}

/// What the peer of a connection is, as its answer to our probe told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerKind {
    /// The probe is unanswered yet.
    Probing,
    /// A plain distributed-process node (Haskell): it answered `Nothing`,
    /// or nothing in time.
    Plain,
    /// A kaisui node, whose node agent is `agent`.
    Kaisui {
        /// The peer's node agent pid.
        agent: ProcessId,
    },
}

/// Whether `name` is a session of a plain DP peer: DpTcp authenticates
/// those as their NT-TCP address (`host:port:id`), which is both their name
/// and their connection string; a ractor node's name comes from its cookie
/// handshake.
pub fn is_plain_dp_session(name: &ractor_cluster::protocol::auth::NameMessage) -> bool {
    name.name == name.connection_string
        && name.name.parse::<dp_wire::ntt::EndPointAddress>().is_ok()
}

/// The ractor process-group scope in which the `RemoteActor` of every
/// Haskell process announced through [`Translator::announce`] is a member.
pub const REMOTE_SCOPE: &str = "kaisui.dp-tcp";

/// The group (in [`REMOTE_SCOPE`]) of the `RemoteActor` that node `us`
/// has for ractor remote pid `pid` on `peer`:
/// `<peer node>/<unique>.<counter>@<us>`. Process groups are process wide:
/// without `us`, two nodes of one process connected to the same peer would
/// find each other's RemoteActors.
pub fn remote_group(us: &NodeId, peer: &NodeId, pid: u64) -> String {
    let l = remote_local_id(pid);
    let peer = String::from_utf8_lossy(peer.as_bytes());
    let us = String::from_utf8_lossy(us.as_bytes());
    format!("{peer}/{}.{}@{us}", l.unique, l.counter)
}

/// The ractor remote pid of the marker RemoteActor each connection
/// announces on connect (unique and counter -1: no Haskell process has
/// it). Its supervisor is the connection's `NodeSession`, which lets the
/// driver wait for that session to be gone before a new connection with
/// the same peer starts one.
pub const SESSION_MARKER_PID: u64 = u64::MAX;

/// The group (in [`REMOTE_SCOPE`]) of the session marker of node `us`'s
/// connection to `peer` (`us` for the reason given at [`remote_group`]).
pub fn session_marker_group(us: &NodeId, peer: &NodeId) -> String {
    format!(
        "{}/session@{}",
        String::from_utf8_lossy(peer.as_bytes()),
        String::from_utf8_lossy(us.as_bytes())
    )
}

/// The variant of the barrier call the driver makes to a RemoteActor
/// before stopping it: the translator answers it itself (nothing goes to
/// the peer), and the answer reaches the RemoteActor after every message
/// the translator queued for the session before it. So once the driver
/// has the answer, a reply the Haskell process sent before it died has
/// reached its caller.
pub const BARRIER_VARIANT: &str = "kaisui.dp-tcp.barrier";

/// The driver's handle for one of our outgoing lightweight connections.
pub type ConnKey = u64;

/// What the driver must do on the peer connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpAction {
    /// Open a lightweight connection. The next action is always the
    /// `Send` of its first frame, the encoded target Identifier.
    Open {
        /// Our handle for it.
        conn: ConnKey,
        /// Who sends on it (DP keys connections by (from, to)).
        from: Identifier,
        /// Whom it is for.
        to: Identifier,
    },
    /// Send one frame on a connection opened before.
    Send {
        /// The connection.
        conn: ConnKey,
        /// The frame payload.
        frame: Vec<u8>,
    },
    /// Close a connection.
    Close {
        /// The connection.
        conn: ConnKey,
    },
}

/// Work for the driver: answers to requests made through
/// [`Translator::whereis`], and lifecycle effects on ractor actors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The probe told what the peer is ([`PeerKind::Plain`] or
    /// [`PeerKind::Kaisui`]); the session may start.
    Recognized(PeerKind),
    /// A `WhereIs` was answered, failed to decode, or timed out.
    WhereIs {
        /// The id given to [`Translator::whereis`].
        request: u64,
        /// The registered pid, `None` if the name is free, or why there is
        /// no answer.
        result: Result<Option<ProcessId>, String>,
    },
    /// A Haskell process watches our actor `pid`: call
    /// [`Translator::local_died`] when it ends (at once, with
    /// `DiedUnknownId`, if it already has).
    WatchLocal {
        /// Local ractor pid.
        pid: u64,
    },
    /// Haskell asked (`kill`/`exit`) that our actor `pid` stop with
    /// `reason`.
    StopLocal {
        /// Local ractor pid.
        pid: u64,
        /// The ractor stop reason.
        reason: String,
    },
    /// The Haskell process behind RemoteActor `pid` ended: stop that actor
    /// with `reason` (see [`ractor_reason`]).
    RemoteDied {
        /// Ractor remote pid (see [`crate::ids::remote_pid`]).
        pid: u64,
        /// The ractor stop reason.
        reason: String,
    },
    /// Haskell spawns a closure here: start the actor registered for
    /// `label` with `env`, then call [`Translator::spawned`].
    Spawn {
        /// Who asked; the `DidSpawn` goes to it.
        spawner: ProcessId,
        /// Its correlation id.
        spawn_ref: dp_wire::dp::SpawnRef,
        /// The closure's function label, if it has one.
        label: Option<String>,
        /// The closure environment meant for the function.
        env: Bytes,
    },
}

/// Which local ractor actors the peer may reach. Kept behind a trait so
/// that the translator stays deterministic in tests; `DpTcp` uses
/// ractor's global registries.
pub trait LocalDirectory: Send + Sync + std::fmt::Debug {
    /// The pid of the live, remotable, exposed local actor registered as
    /// `name`.
    fn lookup_name(&self, name: &str) -> Option<u64>;
    /// Whether `pid` is a live local actor that supports remoting.
    fn is_remotable(&self, pid: u64) -> bool;
    /// Whether `pid` is a live local actor at all (what Haskell may
    /// monitor or link to). Defaults to [`is_remotable`](Self::is_remotable).
    fn is_alive(&self, pid: u64) -> bool {
        self.is_remotable(pid)
    }
}

/// Everything a translator shares with the rest of the node.
#[derive(Debug, Clone)]
pub struct Context {
    /// Our NodeId (`host:port:0`).
    pub node: NodeId,
    /// `lpidUnique` of all our pids.
    pub incarnation: i32,
    /// Variant ↔ Haskell type mapping.
    pub types: TypeRegistry,
    /// The peer build assumed for distributed-process's own types until
    /// learned.
    pub build: Build,
    /// Bounds for decoding anything from the wire.
    pub limits: Limits,
    /// How long a call without its own timeout (both directions) waits.
    pub call_timeout: Duration,
    /// Largest number of pending calls and lookups per direction.
    pub max_pending: usize,
    /// Local actors.
    pub directory: Arc<dyn LocalDirectory>,
    /// Closure labels Haskell may `spawn` here (see
    /// [`crate::DpTcpConfig::with_spawn`]).
    pub spawnable: std::collections::HashSet<String>,
    /// How long the probe that recognises a kaisui peer waits for its
    /// answer before the peer counts as a plain DP node.
    pub recognize_timeout: Duration,
}

impl Context {
    fn our_pid(&self, counter: i32) -> ProcessId {
        ProcessId {
            node: self.node.clone(),
            local: LocalProcessId {
                unique: self.incarnation,
                counter,
            },
        }
    }
}

/// Fingerprints learned from the peer (README 3.3). Everything not here is
/// configured: application types come from the [`TypeRegistry`], other DP
/// types from [`Context::build`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Learned {
    /// The peer's `WhereIsReply` fingerprint, from the first `WhereIsReply`
    /// its node controller sent us (our probe's answer, or any lookup's).
    pub where_is_reply: Option<Fingerprint>,
}

/// What was dropped, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames that did not decode.
    pub undecodable: u64,
    /// Messages whose fingerprint or variant is not in the registry.
    pub unknown_type: u64,
    /// Messages for a pid of an older incarnation or another node.
    pub stale_or_foreign: u64,
    /// Messages for no live remotable actor, or a name nobody has.
    pub no_such_target: u64,
    /// Replies that matched no pending call (late, duplicate, wrong type).
    pub unmatched_reply: u64,
    /// Requests refused because a pending table was full.
    pub table_full: u64,
    /// Kills, exits and shutdowns of this node's own processes refused.
    pub refused: u64,
    /// Calls and lookups that expired.
    pub expired: u64,
    /// Everything else that was ignored (unsupported signals, control
    /// messages a DP peer has no use for, frames on ignored connections).
    pub ignored: u64,
    /// Control messages (NCMsgs) whose sender is not a process or the node
    /// of this connection's peer: refused, as they would let one node act
    /// in another's name.
    pub wrong_sender: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// No Identifier yet.
    Unopened,
    /// Frames go to our actor with this ractor pid.
    Local(u64),
    /// Frames go to our synthetic reply address with this counter.
    Synthetic(i32),
    /// Encapsulated session messages for our node agent.
    Agent,
    /// NCMsgs for our node controller.
    Node,
    /// Dropped (logged once, when the Identifier arrived).
    Ignored,
}

#[derive(Debug)]
struct Inbound {
    decoder: InboundConnection,
    route: Route,
}

/// A Haskell → Rust call waiting for the actor's reply.
#[derive(Debug)]
struct InCall {
    reply_to: ProcessId,
    reply_fp: Fingerprint,
    deadline: Instant,
}

/// A Rust → Haskell call waiting on a synthetic reply pid.
#[derive(Debug)]
struct OutCall {
    to: u64,
    tag: u64,
    reply_fp: Fingerprint,
    variant: String,
    deadline: Instant,
}

#[derive(Debug)]
struct PendingWhereIs {
    /// `None` for our own probe.
    request: Option<u64>,
    label: String,
    deadline: Instant,
}

/// The translator of one peer connection. See the module docs.
#[derive(Debug)]
pub struct Translator {
    ctx: Arc<Context>,
    peer: NodeId,
    out: HashMap<(Identifier, Identifier), ConnKey>,
    /// Keys of `out` in the order they were opened (may hold keys closed
    /// since), to close the oldest when there are too many.
    out_order: VecDeque<(Identifier, Identifier)>,
    next_conn: ConnKey,
    inbound: HashMap<u32, Inbound>,
    in_calls: HashMap<u64, InCall>,
    next_tag: u64,
    out_calls: HashMap<i32, OutCall>,
    where_is: HashMap<i32, PendingWhereIs>,
    next_synthetic: i32,
    /// Haskell watches of our actors, by our counter.
    watchers: HashMap<i32, lifecycle::Watchers>,
    /// Our monitors of Haskell processes that have a RemoteActor, by
    /// ractor remote pid.
    monitored: HashMap<u64, dp_wire::dp::MonitorRef>,
    next_monitor_ref: i32,
    /// Actors spawned for the peer whose `usend pid ()` is still due.
    spawned_unit: std::collections::HashSet<i32>,
    learned: Learned,
    counters: Counters,
    actions: VecDeque<DpAction>,
    to_session: VecDeque<NetworkMessage>,
    events: VecDeque<Event>,
    /// What the peer is; the session hears nothing while `Probing`.
    kind: PeerKind,
    /// The peer's `WhereIs` requests (requester, label) held until the
    /// probe is answered or expires.
    held_where_is: Vec<(ProcessId, String)>,
    /// Encapsulated messages from the peer's agent that arrived before the
    /// probe was answered.
    early_agent: VecDeque<NetworkMessage>,
    /// Whether the session marker was given to a kaisui peer's session.
    marker_sent: bool,
    /// Whether a plain peer's session is up (it wrote its `Ready`).
    session_ready: bool,
    /// When held `WhereIs` answers go out even if the session is not up.
    release_at: Option<Instant>,
    /// Warnings logged about the peer's traffic (see [`WARN_BUDGET`]).
    warnings: u64,
}

/// The first bytes of `b` in hex, for logs.
pub(crate) fn hex_prefix(b: &[u8]) -> String {
    const MAX: usize = 32;
    let mut s = String::with_capacity(2 * MAX + 3);
    for x in b.iter().take(MAX) {
        let _ = write!(s, "{x:02x}");
    }
    if b.len() > MAX {
        s.push('…');
    }
    s
}

fn node_msg(msg: node_message::Msg) -> NetworkMessage {
    NetworkMessage {
        message: Some(network_message::Message::Node(node::NodeMessage {
            msg: Some(msg),
        })),
    }
}

fn control_msg(msg: control_message::Msg) -> NetworkMessage {
    NetworkMessage {
        message: Some(network_message::Message::Control(control::ControlMessage {
            msg: Some(msg),
        })),
    }
}

impl Translator {
    /// A translator for the connection to `peer`.
    pub fn new(ctx: Arc<Context>, peer: NodeId) -> Self {
        Self {
            ctx,
            peer,
            out: HashMap::new(),
            out_order: VecDeque::new(),
            next_conn: 0,
            inbound: HashMap::new(),
            in_calls: HashMap::new(),
            next_tag: 1,
            out_calls: HashMap::new(),
            where_is: HashMap::new(),
            next_synthetic: FIRST_SYNTHETIC_COUNTER,
            watchers: HashMap::new(),
            monitored: HashMap::new(),
            next_monitor_ref: 0,
            spawned_unit: std::collections::HashSet::new(),
            learned: Learned::default(),
            counters: Counters::default(),
            actions: VecDeque::new(),
            to_session: VecDeque::new(),
            events: VecDeque::new(),
            kind: PeerKind::Probing,
            held_where_is: Vec::new(),
            early_agent: VecDeque::new(),
            marker_sent: false,
            session_ready: false,
            release_at: None,
            warnings: 0,
        }
    }

    /// Whether one more warning about the peer's traffic may be logged.
    fn take_warning(&mut self) -> bool {
        self.warnings += 1;
        if self.warnings == WARN_BUDGET {
            tracing::warn!(peer = %self.peer, "{WARN_BUDGET} warnings about this peer's traffic; further ones are debug logs (see DpTcp::peer_info for its counters)");
        }
        self.warnings < WARN_BUDGET
    }

    /// What the peer is, as far as known.
    pub fn kind(&self) -> &PeerKind {
        &self.kind
    }

    /// Our NodeId.
    pub fn us(&self) -> &NodeId {
        &self.ctx.node
    }

    /// The peer's NodeId.
    pub fn peer(&self) -> &NodeId {
        &self.peer
    }

    /// What was learned from the peer so far.
    pub fn learned(&self) -> &Learned {
        &self.learned
    }

    /// The peer's lightweight connections open now.
    pub fn incoming_connections(&self) -> usize {
        self.inbound.len()
    }

    /// What was dropped so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The connection is up: probe the peer's node controller once
    /// (`WhereIs` [`PROBE_LABEL`]). Its answer decides what the peer is
    /// ([`Event::Recognized`]); until then the session hears nothing.
    pub fn connected(&mut self, now: Instant) {
        let deadline = now + self.ctx.recognize_timeout;
        self.release_at = Some(deadline + self.ctx.recognize_timeout);
        if let Err(e) = self.send_where_is(None, PROBE_LABEL.to_owned(), deadline) {
            peer_warn!(self, peer = %self.peer, "could not probe the peer: {e}; taking it for a plain DP node");
            self.recognized(PeerKind::Plain);
        }
    }

    fn marker_join(&self) -> NetworkMessage {
        control_msg(control_message::Msg::PgJoin(control::PgJoin {
            group: session_marker_group(&self.ctx.node, &self.peer),
            actors: vec![control::Actor {
                pid: SESSION_MARKER_PID,
                name: Some("kaisui.dp-tcp.session".to_owned()),
            }],
            scope: REMOTE_SCOPE.to_owned(),
        }))
    }

    /// The probe's answer (or its expiry) told what the peer is.
    fn recognized(&mut self, kind: PeerKind) {
        if self.kind != PeerKind::Probing {
            return;
        }
        match &kind {
            PeerKind::Plain => {
                tracing::info!(peer = %self.peer, "peer is a plain distributed-process node");
                // The session's sync comes first: let it reach its ready
                // state, and create the session marker.
                let mut first = VecDeque::from([
                    control_msg(control_message::Msg::Ready(control::Ready {})),
                    self.marker_join(),
                ]);
                first.append(&mut self.to_session);
                self.to_session = first;
                if !self.early_agent.is_empty() {
                    peer_warn!(self, peer = %self.peer, n = self.early_agent.len(), "kaisui messages from a peer taken for a plain DP node dropped");
                    self.counters.ignored += self.early_agent.len() as u64;
                    self.early_agent.clear();
                }
            }
            PeerKind::Kaisui { agent } => {
                tracing::info!(peer = %self.peer, %agent, "peer is a kaisui node; the session runs ractor_cluster's protocol with it");
                self.to_session.append(&mut self.early_agent);
            }
            PeerKind::Probing => return,
        }
        self.kind = kind.clone();
        self.events.push_back(Event::Recognized(kind));
        if !self.answers_held() {
            self.release_where_is();
        }
    }

    /// Whether the peer's `WhereIs` requests wait: until the probe's reply
    /// (to answer in the peer's build), and for a plain peer also until
    /// its session is up, so that whatever the answer lets the Haskell
    /// process do next finds the session there (at the latest
    /// `recognize_timeout` after the probe expired).
    fn answers_held(&self) -> bool {
        match self.kind {
            PeerKind::Probing => true,
            PeerKind::Plain => !self.session_ready,
            PeerKind::Kaisui { .. } => false,
        }
    }

    fn release_where_is(&mut self) {
        for (requester, label) in std::mem::take(&mut self.held_where_is) {
            self.answer_where_is_now(requester, label);
        }
    }

    /// Next action for the driver.
    pub fn poll_action(&mut self) -> Option<DpAction> {
        self.actions.pop_front()
    }

    /// Next message for the session's reader (none until the peer is
    /// recognised).
    pub fn poll_session(&mut self) -> Option<NetworkMessage> {
        if self.kind == PeerKind::Probing {
            return None;
        }
        self.to_session.pop_front()
    }

    /// Next answer to one of `DpTcp`'s requests.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let a = self.in_calls.values().map(|c| c.deadline);
        let b = self.out_calls.values().map(|c| c.deadline);
        let c = self.where_is.values().map(|w| w.deadline);
        let d = self.release_at.filter(|_| !self.held_where_is.is_empty());
        a.chain(b).chain(c).chain(d).min()
    }

    /// Expire pending calls and lookups whose deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let before = self.in_calls.len() + self.out_calls.len() + self.where_is.len();
        self.in_calls.retain(|tag, c| {
            let keep = c.deadline > now;
            if !keep {
                tracing::debug!(tag, reply_to = %c.reply_to, "Haskell→Rust call expired without a reply");
            }
            keep
        });
        self.out_calls.retain(|counter, c| {
            let keep = c.deadline > now;
            if !keep {
                tracing::debug!(
                    reply_counter = counter,
                    to = c.to,
                    tag = c.tag,
                    variant = %c.variant,
                    "Rust→Haskell call expired; a late reply will be dropped"
                );
            }
            keep
        });
        let mut expired = Vec::new();
        self.where_is.retain(|_, w| {
            let keep = w.deadline > now;
            if !keep {
                expired.push((w.request, w.label.clone()));
            }
            keep
        });
        for (request, label) in expired {
            tracing::debug!(label = %label, "WhereIs to {} expired", self.peer);
            match request {
                Some(request) => self.events.push_back(Event::WhereIs {
                    request,
                    result: Err(format!("no WhereIsReply for {label:?} before the timeout")),
                }),
                None => {
                    peer_warn!(self,
                        peer = %self.peer,
                        timeout = ?self.ctx.recognize_timeout,
                        "no answer to the kaisui probe in time; taking the peer for a plain DP node"
                    );
                    self.recognized(PeerKind::Plain);
                }
            }
        }
        let after = self.in_calls.len() + self.out_calls.len() + self.where_is.len();
        self.counters.expired += (before - after) as u64;
        if self.kind == PeerKind::Plain
            && !self.session_ready
            && self.release_at.is_some_and(|t| t <= now)
        {
            peer_warn!(self, peer = %self.peer, "the session did not come up in time; answering the held WhereIs requests");
            self.session_ready = true;
            self.release_where_is();
        }
    }

    /// Ask the peer's node controller for the process registered as
    /// `label`; the answer comes as [`Event::WhereIs`] with `request`.
    pub fn whereis(&mut self, label: &str, request: u64, deadline: Instant) -> Result<(), String> {
        self.send_where_is(Some(request), label.to_owned(), deadline)
    }

    /// Tell the session that the peer has process `pid` (a ractor remote
    /// pid from [`remote_pid`]), named `name` for display.
    ///
    /// This is a `Control::PgJoin` rather than a `Control::Spawn`: both make
    /// the session create the `RemoteActor`, but ractor puts remote actors
    /// in neither its name nor its pid registry, so the process group
    /// [`REMOTE_SCOPE`]/[`remote_group`] is the only place where `DpTcp`
    /// can find the actor's cell afterwards. ractor removes it from the
    /// group when it stops.
    ///
    /// The first announce of a process also monitors it on the peer's node
    /// controller, so that its `Died` ends the RemoteActor.
    pub fn announce(&mut self, pid: u64, name: Option<String>) {
        self.monitor_remote(pid);
        self.to_session
            .push_back(control_msg(control_message::Msg::PgJoin(control::PgJoin {
                group: remote_group(&self.ctx.node, &self.peer, pid),
                actors: vec![control::Actor { pid, name }],
                scope: REMOTE_SCOPE.to_owned(),
            })));
    }

    // ------------------------------------------------------------------
    // Session → peer

    /// A message the session wrote.
    pub fn handle_session(&mut self, msg: NetworkMessage, now: Instant) {
        if let PeerKind::Kaisui { agent } = &self.kind {
            let agent = agent.clone();
            self.encapsulate(agent, msg);
            return;
        }
        match msg.message {
            Some(network_message::Message::Node(n)) => match n.msg {
                Some(node_message::Msg::Cast(c)) => self.session_cast(c),
                Some(node_message::Msg::Call(c)) => self.session_call(c, now),
                Some(node_message::Msg::Reply(r)) => self.session_reply(r),
                None => self.ignore("empty node message from the session"),
            },
            Some(network_message::Message::Control(c)) => match c.msg {
                Some(control_message::Msg::Terminate(t)) => {
                    for pid in t.ids {
                        self.close_from_local(pid);
                    }
                }
                Some(control_message::Msg::Ready(_)) => {
                    // The session is up (the NodeServer lists it): answer
                    // the WhereIs requests held for it. Nothing is sent.
                    self.session_ready = true;
                    self.counters.ignored += 1;
                    self.release_where_is();
                }
                Some(control_message::Msg::Ping(p)) => {
                    // A DP peer has no ping; its liveness is the driver's
                    // NT-TCP probing. Answering here keeps a session that
                    // closes silent peers from closing an idle DP one.
                    self.to_session
                        .push_back(control_msg(control_message::Msg::Pong(control::Pong {
                            timestamp: p.timestamp,
                        })));
                }
                Some(other) => {
                    tracing::trace!(
                        "control message not sent to a DP peer: {}",
                        control_kind(&other)
                    );
                    self.counters.ignored += 1;
                }
                None => self.ignore("empty control message from the session"),
            },
            Some(network_message::Message::Auth(_)) => {
                self.ignore("authentication message; DP peers have no cookie handshake")
            }
            None => self.ignore("empty message from the session"),
        }
    }

    /// Sends `msg` to a kaisui peer's node agent (see "Kaisui peers").
    fn encapsulate(&mut self, agent: ProcessId, mut msg: NetworkMessage) {
        let mut ready = false;
        if let Some(network_message::Message::Control(c)) = &mut msg.message {
            match &mut c.msg {
                Some(control_message::Msg::NodeSessions(ns)) => {
                    // A Haskell node is no ractor node: other Rust nodes
                    // must not take it for one (nor dial it unasked).
                    ns.sessions.retain(|s| !is_plain_dp_session(s));
                }
                Some(control_message::Msg::Ready(_)) => ready = true,
                _ => {}
            }
        }
        let bytes = prost::Message::encode_to_vec(&msg);
        let max = self
            .ctx
            .limits
            .max_bytes_len
            .min(u64::from(self.ctx.limits.max_frame_len).saturating_sub(24));
        if bytes.len() as u64 > max {
            tracing::error!(peer = %self.peer, len = bytes.len(), max, "session message larger than the DP Limits not sent");
            self.counters.ignored += 1;
            return;
        }
        let mut frame = Vec::with_capacity(Fingerprint::LEN + 8 + bytes.len());
        kaisui_wire_fingerprint().encode(&mut frame);
        frame.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        frame.extend_from_slice(&bytes);
        self.send_process(self.ctx.our_pid(NODE_AGENT_COUNTER), agent, frame);
        if ready && !self.marker_sent {
            // Our session sends Ready once authenticated, so it now accepts
            // the marker (control messages before that are refused).
            self.marker_sent = true;
            let marker = self.marker_join();
            self.to_session.push_back(marker);
        }
    }

    /// An encapsulated session message for our node agent.
    fn deliver_agent(&mut self, m: Message) {
        if m.fingerprint != kaisui_wire_fingerprint() {
            peer_warn!(self, peer = %self.peer, fingerprint = %m.fingerprint, "message of another type for our node agent dropped");
            self.counters.unknown_type += 1;
            return;
        }
        let payload = m.payload();
        let body = match payload.get(..8) {
            Some(len)
                if u64::from_be_bytes(len.try_into().unwrap_or([0xff; 8]))
                    == (payload.len() - 8) as u64
                    && (payload.len() - 8) as u64 <= self.ctx.limits.max_bytes_len =>
            {
                payload.slice(8..)
            }
            _ => {
                peer_warn!(self, peer = %self.peer, prefix = %hex_prefix(&payload), "kaisui message whose ByteString length does not match its size dropped");
                self.counters.undecodable += 1;
                return;
            }
        };
        let msg: NetworkMessage = match prost::Message::decode(body) {
            Ok(msg) => msg,
            Err(e) => {
                peer_warn!(self, peer = %self.peer, prefix = %hex_prefix(&payload), "undecodable kaisui message dropped: {e}");
                self.counters.undecodable += 1;
                return;
            }
        };
        match self.kind {
            PeerKind::Kaisui { .. } => self.to_session.push_back(msg),
            PeerKind::Probing if self.early_agent.len() < self.ctx.max_pending => {
                self.early_agent.push_back(msg)
            }
            PeerKind::Probing => {
                peer_warn!(self, peer = %self.peer, "too many kaisui messages before the peer was recognised; dropped");
                self.counters.table_full += 1;
            }
            PeerKind::Plain => {
                peer_warn!(self, peer = %self.peer, "kaisui message from a peer taken for a plain DP node dropped");
                self.counters.ignored += 1;
            }
        }
    }

    fn ignore(&mut self, what: &str) {
        tracing::debug!(peer = %self.peer, "dropped: {what}");
        self.counters.ignored += 1;
    }

    fn haskell_pid(&self, pid: u64) -> ProcessId {
        ProcessId {
            node: self.peer.clone(),
            local: remote_local_id(pid),
        }
    }

    fn session_cast(&mut self, c: node::Cast) {
        let Some(fp) = self.ctx.types.cast_fingerprint(&c.variant) else {
            tracing::error!(
                variant = %c.variant,
                to = %self.haskell_pid(c.to),
                "cast not sent: variant {:?} has no Haskell type in the TypeRegistry",
                c.variant
            );
            self.counters.unknown_type += 1;
            return;
        };
        if c.metadata.is_some() {
            peer_warn!(self, variant = %c.variant, "cast metadata has no DP equivalent and is not sent");
        }
        let mut frame = Vec::with_capacity(Fingerprint::LEN + c.what.len());
        encode_frame(fp, &c.what, &mut frame);
        let from = self.ctx.our_pid(NODE_SENDER_COUNTER);
        let to = self.haskell_pid(c.to);
        self.send_process(from, to, frame);
    }

    fn session_call(&mut self, c: node::Call, now: Instant) {
        if c.variant == BARRIER_VARIANT {
            self.to_session
                .push_back(node_msg(node_message::Msg::Reply(node::CallReply {
                    to: c.to,
                    tag: c.tag,
                    what: Vec::new(),
                })));
            return;
        }
        let target = self.haskell_pid(c.to);
        let Some(types) = self.ctx.types.call_types(&c.variant) else {
            tracing::error!(
                variant = %c.variant,
                to = %target,
                "call not sent: variant {:?} has no Haskell types in the TypeRegistry; the caller will time out",
                c.variant
            );
            self.counters.unknown_type += 1;
            return;
        };
        let Some(counter) = self.alloc_synthetic() else {
            tracing::error!(variant = %c.variant, to = %target, "call not sent: too many pending calls; the caller will time out");
            self.counters.table_full += 1;
            return;
        };
        if c.metadata.is_some() {
            peer_warn!(self, variant = %c.variant, "call metadata has no DP equivalent and is not sent");
        }
        let timeout = c
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.ctx.call_timeout);
        self.out_calls.insert(
            counter,
            OutCall {
                to: c.to,
                tag: c.tag,
                reply_fp: types.reply,
                variant: c.variant,
                deadline: now + timeout,
            },
        );
        let reply_pid = self.ctx.our_pid(counter);
        let mut payload = Vec::with_capacity(64 + c.what.len());
        reply_pid.encode(&mut payload);
        payload.extend_from_slice(&c.what);
        let mut frame = Vec::with_capacity(Fingerprint::LEN + payload.len());
        encode_frame(types.request, &payload, &mut frame);
        let from = self.ctx.our_pid(NODE_SENDER_COUNTER);
        self.send_process(from, target, frame);
    }

    fn session_reply(&mut self, r: node::CallReply) {
        let Some(call) = self.in_calls.remove(&r.tag) else {
            tracing::debug!(
                tag = r.tag,
                from = r.to,
                "reply for an unknown or expired Haskell call dropped"
            );
            self.counters.unmatched_reply += 1;
            return;
        };
        let mut payload = Vec::with_capacity(8 + r.what.len());
        payload.extend_from_slice(&(r.what.len() as u64).to_be_bytes());
        payload.extend_from_slice(&r.what);
        let mut frame = Vec::with_capacity(Fingerprint::LEN + payload.len());
        encode_frame(call.reply_fp, &payload, &mut frame);
        // The reply comes from the actor that answered, as it would in DP.
        let from = self
            .ctx
            .our_pid(local_counter(r.to).unwrap_or(NODE_SENDER_COUNTER));
        self.send_process(from, call.reply_to, frame);
    }

    fn close_from_local(&mut self, pid: u64) {
        let Some(counter) = local_counter(pid) else {
            return;
        };
        let from = Identifier::Process(self.ctx.our_pid(counter));
        let keys: Vec<_> = self
            .out
            .keys()
            .filter(|(f, _)| *f == from)
            .cloned()
            .collect();
        for k in keys {
            if let Some(conn) = self.out.remove(&k) {
                self.actions.push_back(DpAction::Close { conn });
            }
        }
    }

    fn alloc_synthetic(&mut self) -> Option<i32> {
        if self.out_calls.len() + self.where_is.len() >= self.ctx.max_pending {
            return None;
        }
        loop {
            let c = self.next_synthetic;
            self.next_synthetic = if c == i32::MIN {
                FIRST_SYNTHETIC_COUNTER
            } else {
                c - 1
            };
            if !self.out_calls.contains_key(&c) && !self.where_is.contains_key(&c) {
                return Some(c);
            }
        }
    }

    fn send_where_is(
        &mut self,
        request: Option<u64>,
        label: String,
        deadline: Instant,
    ) -> Result<(), String> {
        let Some(counter) = self.alloc_synthetic() else {
            self.counters.table_full += 1;
            return Err("too many pending requests".into());
        };
        let sender = Identifier::Process(self.ctx.our_pid(counter));
        self.where_is.insert(
            counter,
            PendingWhereIs {
                request,
                label: label.clone(),
                deadline,
            },
        );
        self.send_nc(NCMsg {
            sender,
            signal: ProcessSignal::WhereIs(label),
        });
        Ok(())
    }

    /// The connection `from → to`, opened on first use and kept, as DP does.
    fn conn(&mut self, from: Identifier, to: Identifier) -> ConnKey {
        if let Some(c) = self.out.get(&(from.clone(), to.clone())) {
            return *c;
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        let mut first = Vec::new();
        to.encode(&mut first);
        self.out.insert((from.clone(), to.clone()), conn);
        self.out_order.push_back((from.clone(), to.clone()));
        self.evict_connections();
        self.actions.push_back(DpAction::Open { conn, from, to });
        self.actions
            .push_back(DpAction::Send { conn, frame: first });
        conn
    }

    /// Keeps at most [`Context::max_pending`] outgoing connections: every
    /// Haskell caller may use a fresh reply address, and a connection kept
    /// per address would grow without bound. The oldest is closed (DP
    /// delivers what was sent on it; a later message opens a new one).
    fn evict_connections(&mut self) {
        let max = self.ctx.max_pending.max(1);
        while self.out.len() > max {
            let Some(key) = self.out_order.pop_front() else {
                break;
            };
            if let Some(conn) = self.out.remove(&key) {
                tracing::trace!(from = ?key.0, to = ?key.1, "closing the oldest outgoing connection");
                self.actions.push_back(DpAction::Close { conn });
            }
        }
        if self.out_order.len() > 2 * max {
            let out = &self.out;
            self.out_order.retain(|k| out.contains_key(k));
        }
    }

    fn send_process(&mut self, from: ProcessId, to: ProcessId, frame: Vec<u8>) {
        let conn = self.conn(Identifier::Process(from), Identifier::Process(to));
        self.actions.push_back(DpAction::Send { conn, frame });
    }

    fn send_nc(&mut self, msg: NCMsg) {
        let conn = self.conn(
            Identifier::Node(self.ctx.node.clone()),
            Identifier::Node(self.peer.clone()),
        );
        let mut frame = Vec::new();
        msg.encode(&mut frame);
        self.actions.push_back(DpAction::Send { conn, frame });
    }

    // ------------------------------------------------------------------
    // Peer → session

    /// The peer opened lightweight connection `lcid`.
    pub fn handle_peer_opened(&mut self, lcid: u32) {
        self.inbound.insert(
            lcid,
            Inbound {
                decoder: InboundConnection::new(),
                route: Route::Unopened,
            },
        );
    }

    /// The peer closed lightweight connection `lcid`.
    pub fn handle_peer_closed(&mut self, lcid: u32) {
        self.inbound.remove(&lcid);
    }

    /// One frame the peer sent on `lcid`.
    pub fn handle_peer_frame(&mut self, lcid: u32, payload: Bytes, now: Instant) {
        let limits = &self.ctx.limits;
        let Some(ib) = self.inbound.get_mut(&lcid) else {
            peer_warn!(
                self,
                lcid,
                len = payload.len(),
                "frame on a lightweight connection we do not know; dropped"
            );
            self.counters.ignored += 1;
            return;
        };
        if ib.route == Route::Ignored {
            tracing::debug!(
                lcid,
                len = payload.len(),
                "frame on an ignored connection dropped"
            );
            self.counters.ignored += 1;
            return;
        }
        let decoded = ib.decoder.decode(&payload, limits);
        let route = ib.route;
        match decoded {
            Err(e) => {
                peer_warn!(self,
                    lcid,
                    peer = %self.peer,
                    len = payload.len(),
                    prefix = %hex_prefix(&payload),
                    expected = match route { Route::Unopened => "Identifier", Route::Node => "NCMsg", _ => "message" },
                    "undecodable frame dropped: {e}"
                );
                self.counters.undecodable += 1;
                if route == Route::Unopened {
                    self.set_route(lcid, Route::Ignored);
                }
            }
            Ok(Frame::Open(id)) => {
                let r = self.route_for(lcid, &id);
                self.set_route(lcid, r);
            }
            Ok(Frame::Message(m)) => match route {
                Route::Local(pid) => self.deliver_local(pid, m, now, "send"),
                Route::Synthetic(c) => self.deliver_synthetic(c, m),
                Route::Agent => self.deliver_agent(m),
                _ => self.ignore("message on a connection without a process target"),
            },
            Ok(Frame::Control(nc)) => self.handle_nc(nc, now),
            Ok(Frame::Channel(_)) => self.ignore("typed-channel value"),
        }
    }

    fn set_route(&mut self, lcid: u32, route: Route) {
        if let Some(ib) = self.inbound.get_mut(&lcid) {
            ib.route = route;
        }
    }

    fn route_for(&mut self, lcid: u32, id: &Identifier) -> Route {
        match id {
            Identifier::Process(pid) => {
                if pid.node != self.ctx.node {
                    peer_warn!(self, lcid, target = %pid, node = %pid.node, "connection for a process of another node ignored");
                    self.counters.stale_or_foreign += 1;
                    Route::Ignored
                } else if pid.local.unique != self.ctx.incarnation {
                    peer_warn!(self,
                        lcid,
                        target = %pid,
                        unique = pid.local.unique,
                        ours = self.ctx.incarnation,
                        "connection for a pid of an older incarnation of this node ignored; its messages are dropped"
                    );
                    self.counters.stale_or_foreign += 1;
                    Route::Ignored
                } else if pid.local.counter == NODE_AGENT_COUNTER {
                    Route::Agent
                } else if pid.local.counter < 0 {
                    Route::Synthetic(pid.local.counter)
                } else {
                    Route::Local(pid.local.counter as u64)
                }
            }
            Identifier::Node(n) if *n == self.ctx.node => Route::Node,
            Identifier::Node(n) => {
                peer_warn!(self, lcid, node = %n, "connection for another node's controller ignored");
                self.counters.stale_or_foreign += 1;
                Route::Ignored
            }
            Identifier::SendPort(sp) => {
                peer_warn!(self, lcid, port = ?sp, "typed channels are not supported; connection ignored");
                self.counters.ignored += 1;
                Route::Ignored
            }
        }
    }

    fn handle_nc(&mut self, nc: NCMsg, now: Instant) {
        // Everything a peer's node controller forwards comes from one of
        // its own processes or from itself; anything else would let the
        // peer act in a third node's name.
        let sender_node = match &nc.sender {
            Identifier::Process(p) => &p.node,
            Identifier::Node(n) => n,
            Identifier::SendPort(sp) => &sp.process.node,
        };
        if *sender_node != self.peer {
            peer_warn!(self, peer = %self.peer, sender = ?nc.sender, signal = nc.signal.name(), "control message whose sender is not on the peer's node refused");
            self.counters.wrong_sender += 1;
            return;
        }
        match nc.signal {
            ProcessSignal::WhereIs(label) => self.answer_where_is(nc.sender, label),
            ProcessSignal::NamedSend { label, message } => {
                match self.ctx.directory.lookup_name(&label) {
                    Some(pid) => self.deliver_local(pid, message, now, "nsend"),
                    None => {
                        tracing::debug!(label = %label, fingerprint = %message.fingerprint, "NamedSend to a name no exposed actor has; dropped");
                        self.counters.no_such_target += 1;
                    }
                }
            }
            ProcessSignal::UnreliableSend { to, message } => {
                if to.unique != self.ctx.incarnation {
                    peer_warn!(
                        self,
                        unique = to.unique,
                        counter = to.counter,
                        ours = self.ctx.incarnation,
                        "UnreliableSend to a pid of an older incarnation dropped"
                    );
                    self.counters.stale_or_foreign += 1;
                } else if to.counter < 0 {
                    self.deliver_synthetic(to.counter, message);
                } else {
                    self.deliver_local(to.counter as u64, message, now, "usend");
                }
            }
            ProcessSignal::Monitor(r) => {
                let them = r.ident.clone();
                self.watch_request(nc.sender, them, Some(r))
            }
            ProcessSignal::Link(them) => self.watch_request(nc.sender, them, None),
            ProcessSignal::Unmonitor(r) => {
                let them = r.ident.clone();
                self.unwatch_request(nc.sender, them, Some(r))
            }
            ProcessSignal::Unlink(them) => self.unwatch_request(nc.sender, them, None),
            ProcessSignal::Died { who, reason } => self.peer_died(who, reason),
            ProcessSignal::Kill { target, reason } => {
                let Identifier::Process(from) = &nc.sender else {
                    self.ignore("Kill from a non-process sender");
                    return;
                };
                let reason = kill_reason(from, &reason);
                self.kill_request(nc.sender, target, reason, "Kill")
            }
            ProcessSignal::Exit { target, reason } => {
                let Identifier::Process(from) = &nc.sender else {
                    self.ignore("Exit from a non-process sender");
                    return;
                };
                let reason = exit_reason(from, &reason, &self.ctx.limits);
                self.kill_request(nc.sender, target, reason, "Exit")
            }
            ProcessSignal::SigShutdown => {
                // A received SigShutdown closes a Haskell node's endpoint;
                // nobody on another node may shut this one down.
                peer_warn!(self, sender = ?nc.sender, peer = %self.peer, "remote SigShutdown refused");
                self.counters.refused += 1;
            }
            ProcessSignal::Spawn { closure, spawn_ref } => {
                self.spawn_request(nc.sender, closure, spawn_ref)
            }
            // Registrations and info requests come in a later task.
            other => {
                tracing::debug!(signal = other.name(), sender = ?nc.sender, "NC signal not handled yet; ignored");
                self.counters.ignored += 1;
            }
        }
    }

    fn answer_where_is(&mut self, sender: Identifier, label: String) {
        let Identifier::Process(requester) = sender else {
            peer_warn!(self, label = %label, sender = ?sender, "WhereIs from a non-process sender cannot be answered; dropped");
            self.counters.ignored += 1;
            return;
        };
        if requester.node != self.peer {
            peer_warn!(self, label = %label, requester = %requester, "WhereIs from a process of a third node cannot be answered on this connection; dropped");
            self.counters.stale_or_foreign += 1;
            return;
        }
        // Answered in the configured build before the probe's reply taught
        // us the peer's, a Haskell `whereisRemote` would never match the
        // reply. The kaisui label is never held: both kaisui sides probe at
        // once, and a kaisui node takes any WhereIsReply fingerprint.
        if self.answers_held() && label != KAISUI_NODE_LABEL {
            if self.held_where_is.len() < self.ctx.max_pending {
                tracing::debug!(label = %label, requester = %requester, "WhereIs held until the probe is answered");
                self.held_where_is.push((requester, label));
                return;
            }
            peer_warn!(self, label = %label, requester = %requester, "too many WhereIs held; answering in the configured build");
            self.counters.table_full += 1;
        }
        self.answer_where_is_now(requester, label);
    }

    fn answer_where_is_now(&mut self, requester: ProcessId, label: String) {
        let pid = if label == KAISUI_NODE_LABEL {
            Some(self.ctx.our_pid(NODE_AGENT_COUNTER))
        } else {
            self.ctx
                .directory
                .lookup_name(&label)
                .and_then(local_counter)
                .map(|c| self.ctx.our_pid(c))
        };
        tracing::debug!(label = %label, answer = ?pid, requester = %requester, "answering WhereIs");
        let fp = self
            .learned
            .where_is_reply
            .unwrap_or_else(|| self.ctx.build.where_is_reply().fingerprint());
        let mut payload = Vec::new();
        WhereIsReply { label, pid }.encode(&mut payload);
        self.send_nc(NCMsg {
            sender: Identifier::Node(self.ctx.node.clone()),
            signal: ProcessSignal::UnreliableSend {
                to: requester.local,
                message: Message::new(fp, payload),
            },
        });
    }

    /// A message for our actor `pid`; `how` names the DP primitive for logs.
    fn deliver_local(&mut self, pid: u64, m: Message, now: Instant, how: &'static str) {
        let fp = m.fingerprint;
        if local_counter(pid).is_some_and(|c| self.swallow_spawn_unit(c, &m)) {
            return;
        }
        if self.kind == PeerKind::Probing && self.to_session.len() >= self.ctx.max_pending {
            // The session does not exist yet, so nothing drains this
            // queue: shed rather than grow it.
            peer_warn!(self, peer = %self.peer, target_pid = pid, max = self.ctx.max_pending, "message before the peer was recognised dropped: too many already wait for the session");
            self.counters.table_full += 1;
            return;
        }
        if !self.ctx.directory.is_remotable(pid) {
            peer_warn!(self, target_pid = pid, fingerprint = %fp, how, "message for no live remotable actor dropped");
            self.counters.no_such_target += 1;
            return;
        }
        let Some(meaning) = self.ctx.types.incoming(&fp).cloned() else {
            peer_warn!(self,
                target_pid = pid,
                fingerprint = %fp,
                len = m.payload_len(),
                how,
                "message with a fingerprint not in the TypeRegistry dropped"
            );
            self.counters.unknown_type += 1;
            return;
        };
        let payload = m.payload();
        match meaning {
            Incoming::Cast(variant) => {
                self.to_session
                    .push_back(node_msg(node_message::Msg::Cast(node::Cast {
                        to: pid,
                        what: payload.to_vec(),
                        variant,
                        metadata: None,
                    })));
            }
            Incoming::Call { variant, reply } => {
                let limits = &self.ctx.limits;
                let mut r = Reader::shared(&payload, limits);
                let reply_to = match ProcessId::decode(&mut r) {
                    Ok(p) => p,
                    Err(e) => {
                        peer_warn!(self, target_pid = pid, variant = %variant, prefix = %hex_prefix(&payload), "call request without a valid reply ProcessId dropped: {e}");
                        self.counters.undecodable += 1;
                        return;
                    }
                };
                let what = r.take_rest();
                if reply_to.node != self.peer {
                    peer_warn!(self, target_pid = pid, variant = %variant, reply_to = %reply_to, "call whose reply address is on a third node dropped (only the calling peer is reachable on this connection)");
                    self.counters.stale_or_foreign += 1;
                    return;
                }
                if self.in_calls.len() >= self.ctx.max_pending {
                    peer_warn!(self, target_pid = pid, variant = %variant, reply_to = %reply_to, "call dropped: too many pending Haskell calls");
                    self.counters.table_full += 1;
                    return;
                }
                let tag = self.next_tag;
                self.next_tag += 1;
                self.in_calls.insert(
                    tag,
                    InCall {
                        reply_to,
                        reply_fp: reply,
                        deadline: now + self.ctx.call_timeout,
                    },
                );
                self.to_session
                    .push_back(node_msg(node_message::Msg::Call(node::Call {
                        to: pid,
                        what: what.to_vec(),
                        tag,
                        timeout_ms: None,
                        variant,
                        metadata: None,
                    })));
            }
        }
    }

    /// A message for one of our synthetic reply addresses.
    fn deliver_synthetic(&mut self, counter: i32, m: Message) {
        if self.where_is.contains_key(&counter) {
            self.where_is_answered(counter, m);
            return;
        }
        let Some(call) = self.out_calls.get(&counter) else {
            tracing::debug!(reply_counter = counter, fingerprint = %m.fingerprint, "message for an expired or unknown reply address dropped");
            self.counters.unmatched_reply += 1;
            return;
        };
        let (reply_fp, variant) = (call.reply_fp, call.variant.clone());
        if m.fingerprint != reply_fp {
            peer_warn!(self,
                reply_counter = counter,
                fingerprint = %m.fingerprint,
                expected = %reply_fp,
                variant = %variant,
                "reply of the wrong type dropped; still waiting"
            );
            self.counters.unmatched_reply += 1;
            return;
        }
        let payload = m.payload();
        let what = match payload.get(..8) {
            Some(len)
                if u64::from_be_bytes(len.try_into().unwrap_or([0xff; 8]))
                    == (payload.len() - 8) as u64 =>
            {
                payload.slice(8..)
            }
            _ => {
                peer_warn!(self, reply_counter = counter, variant = %variant, prefix = %hex_prefix(&payload), "reply whose ByteString length does not match its size dropped");
                self.counters.undecodable += 1;
                return;
            }
        };
        let call = self.out_calls.remove(&counter).expect("checked above");
        self.to_session
            .push_back(node_msg(node_message::Msg::Reply(node::CallReply {
                to: call.to,
                tag: call.tag,
                what: what.to_vec(),
            })));
    }

    fn where_is_answered(&mut self, counter: i32, m: Message) {
        let pending = self.where_is.remove(&counter).expect("checked by caller");
        let result = match decode_exact_shared::<WhereIsReply>(&m.payload(), &self.ctx.limits) {
            Ok(reply) => {
                if self.learned.where_is_reply != Some(m.fingerprint) {
                    tracing::debug!(peer = %self.peer, fingerprint = %m.fingerprint, "learned the peer's WhereIsReply fingerprint");
                    self.learned.where_is_reply = Some(m.fingerprint);
                }
                if reply.label != pending.label {
                    tracing::debug!(asked = %pending.label, answered = %reply.label, "WhereIsReply label differs from the question");
                }
                Ok(reply.pid)
            }
            Err(e) => {
                peer_warn!(self, label = %pending.label, fingerprint = %m.fingerprint, prefix = %hex_prefix(&m.payload()), "undecodable WhereIsReply: {e}");
                self.counters.undecodable += 1;
                Err(format!("undecodable WhereIsReply: {e}"))
            }
        };
        match pending.request {
            Some(request) => self.events.push_back(Event::WhereIs { request, result }),
            None => {
                let kind = match result {
                    Ok(Some(agent)) if agent.node == self.peer => PeerKind::Kaisui { agent },
                    Ok(Some(other)) => {
                        peer_warn!(self, peer = %self.peer, agent = %other, "kaisui probe answered with a pid of another node; taking the peer for a plain DP node");
                        PeerKind::Plain
                    }
                    _ => PeerKind::Plain,
                };
                self.recognized(kind);
            }
        }
    }
}

fn control_kind(m: &control_message::Msg) -> &'static str {
    match m {
        control_message::Msg::Ping(_) => "Ping",
        control_message::Msg::Pong(_) => "Pong",
        control_message::Msg::Spawn(_) => "Spawn",
        control_message::Msg::Terminate(_) => "Terminate",
        control_message::Msg::PgJoin(_) => "PgJoin",
        control_message::Msg::PgLeave(_) => "PgLeave",
        control_message::Msg::EnumerateNodeSessions(_) => "EnumerateNodeSessions",
        control_message::Msg::NodeSessions(_) => "NodeSessions",
        control_message::Msg::Ready(_) => "Ready",
    }
}

/// The ractor remote pid of a Haskell process (re-exported for drivers).
pub fn ractor_pid_of(pid: &ProcessId) -> u64 {
    remote_pid(pid.local)
}

#[cfg(test)]
mod tests;
