//! `DpTcp`: a `ractor_cluster` transport that makes a ractor node a full
//! member of a Cloud Haskell cluster (distributed-process 0.7.8 over
//! network-transport-tcp 0.8).
//!
//! Rust code uses `ActorRef`, `cast!` and `call!` on Haskell processes;
//! Haskell code uses `send`, `nsendRemote`, `whereisRemoteAsync` and
//! `receiveWait [match ...]` on Rust actors.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use dp_tcp::{DpTcp, DpTcpConfig, TypeRegistry};
//! let types = TypeRegistry::new()
//!     .module("main", "Kaisui.Greeter")
//!     .cast("Hello", "Hello")
//!     .call("Ask", "Ask", "AskReply");
//! let dp = DpTcp::new(DpTcpConfig::new(types))?;
//! let server = ractor_cluster::NodeServer::new(
//!     0, String::new(), "rust".into(), "localhost".into(), None, None,
//! )
//! .with_transport(dp.clone());
//! let (server, _) = ractor::Actor::spawn(None, server, ()).await?;
//! ractor_cluster::client_connect_transport(&server, "127.0.0.1:10501:0").await?;
//! let echo = dp.whereis("127.0.0.1:10501:0", "echo", std::time::Duration::from_secs(5)).await?;
//! # let _ = echo; Ok(()) }
//! ```
//!
//! # Decisions
//!
//! - **Node identity.** Our NodeId is our NT-TCP address `host:port:0`
//!   (host from [`DpTcpConfig::host`], else the listen IP, else
//!   `127.0.0.1`). Each TCP connection to a DP endpoint is one ractor
//!   `NodeSession`, handed to the NodeServer once the peer is recognised
//!   ([`PeerKind`], see "Rust peers" below). A Haskell peer's is
//!   authenticated by the transport as
//!   `{name: "host:port:0", connection_string: "host:port:0"}` (DP has no
//!   cookie). [`ractor_cluster::client_connect_transport`] takes
//!   `host:port:endpointid`. There is one TCP connection per endpoint pair:
//!   connecting to a peer we already have a session with fails with
//!   `io::ErrorKind::AlreadyExists`, also after a crossed request we lost.
//! - **Pids**: see [`ids`].
//! - **Messages and types**: see [`registry`] and the table in
//!   [`translate`].
//! - **Rust handles to Haskell processes.** [`DpTcp::whereis`] sends
//!   `WhereIs` from a synthetic pid; on `Just pid` (and in
//!   [`DpTcp::process`] for a pid from a payload) the session's reader
//!   yields a `Control::PgJoin` into the group
//!   [`translate::remote_group`] of scope [`translate::REMOTE_SCOPE`], which
//!   makes the session create the `RemoteActor`, and DpTcp returns the
//!   group's member. A process group is used because ractor keeps remote
//!   actors out of its name and pid registries.
//! - **Learned vs configured**: application fingerprints are configured in
//!   the [`TypeRegistry`]. distributed-process's own types use
//!   [`DpTcpConfig::build`] (default: the captured build) until learned:
//!   the peer's `WhereIsReply` fingerprint is learned from the first
//!   `WhereIsReply` its node controller sends (each connection probes once
//!   with a `WhereIs`) and used for our answers to its `WhereIs`. Nothing
//!   else is needed yet (README 3.3: ProcessId and application types are
//!   never revealed by the NC).
//! - **Rust peers.** Every connection first asks the peer's node
//!   controller `WhereIs` [`translate::KAISUI_NODE_LABEL`]: a kaisui node
//!   answers with its node agent pid, a plain DP node `Nothing` (no answer
//!   within [`DpTcpConfig::recognize_timeout`] counts as `Nothing`). With a
//!   kaisui peer the session runs ractor_cluster's own protocol, cookie
//!   handshake included: each `NetworkMessage` is one DP message of the
//!   kaisui-private type [`translate::kaisui_wire_fingerprint`] between
//!   the two node agents, and comes out unchanged on the other side.
//!   Haskell peers are left out of the `NodeSessions` a kaisui peer gets,
//!   so transitive connections only reach Rust nodes. See [`translate`],
//!   "Kaisui peers", and `docs/architecture.md`.
//! - **Lifecycle** (monitors, links, kill/exit, spawn, node loss): see
//!   [`translate::lifecycle`] and `docs/lifecycle.md`. RemoteActors end
//!   with the Haskell process's DiedReason as their stop reason
//!   ([`translate::ractor_reason`]); Haskell watchers of Rust actors get the
//!   `Died` a DP node would send ([`translate::died_reason_of`]).

mod budget;
pub mod driver;
pub mod guard;
pub mod ids;
pub mod registry;
pub mod translate;
mod watch;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dp_wire::dp::{LocalProcessId, NodeId, ProcessId};
use dp_wire::fingerprint::Build;
use dp_wire::ntt::EndPointAddress;
use dp_wire::Limits;
use ractor::{ActorCell, ActorId, ActorStatus, SpawnErr};
use ractor_cluster::transport::{BoxFuture, Transport, TransportConnection, TransportListener};
use tokio::sync::oneshot;

pub use driver::PeerInfo;
pub use guard::{IpCidr, NodeStats};
pub use registry::{haskell_type_fingerprint, CallTypes, TypeRegistry};
pub use translate::{Counters, Learned, LocalDirectory, PeerKind};

/// Decides whether a named, remotable local actor may be found by Haskell
/// nodes (`WhereIs`, `NamedSend`).
pub type ExposeFn = Arc<dyn Fn(&str, &ActorCell) -> bool + Send + Sync>;

/// Starts the actor for a Haskell `spawn` of one closure label: gets the
/// closure's environment (`encode x` of `$(mkClosure 'f) x`) and returns
/// the started actor. See [`DpTcpConfig::with_spawn`].
pub type SpawnFactory = Arc<
    dyn Fn(Bytes) -> Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>>
        + Send
        + Sync,
>;

/// Errors of [`DpTcp`]'s own API.
#[derive(Debug, thiserror::Error)]
pub enum DpError {
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The transport has not been given to a running `NodeServer` yet.
    #[error("DpTcp is not listening yet; spawn the NodeServer with this transport first")]
    NotListening,
    /// An address is not `host:port:endpointid`.
    #[error("bad DP address {0:?}")]
    BadAddress(String),
    /// No session with that peer.
    #[error("no session with DP peer {0}; connect first with ractor_cluster::client_connect_transport(&server, \"{0}\")")]
    NotConnected(String),
    /// The peer has nobody registered under that name.
    #[error("no process registered as {name:?} on {peer}")]
    NotFound {
        /// The peer.
        peer: String,
        /// The name.
        name: String,
    },
    /// The Haskell process is known to have ended.
    #[error("process {pid} has ended ({reason})")]
    Dead {
        /// The process.
        pid: String,
        /// Its DiedReason as a ractor reason (see [`translate::ractor_reason`]).
        reason: String,
    },
    /// No answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The connection to the peer ended, or the peer answered nonsense.
    #[error("{0}")]
    Peer(String),
    /// The actor has no DP pid (remote, or pid beyond `i32`).
    #[error("actor {0} has no distributed-process pid")]
    NoDpPid(String),
}

/// Configuration of a [`DpTcp`].
#[derive(Clone)]
pub struct DpTcpConfig {
    /// Host part of our NodeId; default: the listen IP if one is set, else
    /// `127.0.0.1` (and then we bind to 127.0.0.1 only).
    pub host: Option<String>,
    /// Variant ↔ Haskell type mapping.
    pub types: TypeRegistry,
    /// Assumed unit ids of the peers' distributed-process and bytestring,
    /// until learned from the wire.
    pub build: Build,
    /// Bounds for everything decoded from the wire.
    pub limits: Limits,
    /// Timeout of calls (either direction) that carry none.
    pub call_timeout: Duration,
    /// Bound of each per-connection table of pending calls and lookups.
    pub max_pending: usize,
    /// Capacity of each bounded channel between tasks and the session, in
    /// messages (see also
    /// [`max_session_queue_bytes`](Self::max_session_queue_bytes)).
    pub channel_capacity: usize,
    /// Most bytes (encoded size) of the messages waiting in each channel
    /// between a peer's connection and its session: received from the
    /// peer and not yet taken by the session, or written by the session
    /// and not yet taken by the connection. When they would exceed it, the
    /// connection stops reading the peer (TCP flow control then slows the
    /// peer), or the session's messages wait in the session (whose
    /// `NodeServer::with_max_outbound_buffer` then applies). A message
    /// larger than the whole budget still passes, alone. Without it only
    /// [`channel_capacity`](Self::channel_capacity) would bound a channel,
    /// at up to `channel_capacity ×` [`Limits::max_frame_len`] (16 GiB by
    /// default). Default 16 MiB.
    pub max_session_queue_bytes: usize,
    /// Which named remotable actors Haskell may find by name (`WhereIs`,
    /// `NamedSend`); `None` (the default) exposes every named actor that
    /// supports remoting. See [`expose_only`](Self::expose_only) and
    /// [`with_expose`](Self::with_expose). Messages sent to a *pid* reach
    /// any remotable actor whose pid the peer has.
    pub expose: Option<ExposeFn>,
    /// Our `lpidUnique`; `None` draws a random one (the normal case).
    pub incarnation: Option<i32>,
    /// Closure label → factory, for Haskell `spawn`s on this node.
    pub spawn: HashMap<String, SpawnFactory>,
    /// A connection that heard nothing from its peer for this long probes
    /// it (NT-TCP `ProbeSocket`); `None` never probes (network-transport-tcp
    /// only probes when a peer reconnects). Default 5 s.
    pub probe_interval: Option<Duration>,
    /// How long a probe waits for `ProbeSocketAck`, and how long a write
    /// may make no progress, before the peer counts as gone. Default 10 s
    /// (so a silent peer is noticed within `probe_interval + probe_timeout`).
    pub probe_timeout: Duration,
    /// Declares the peer gone when nothing at all arrives for this long
    /// (`None`, the default: only probes decide).
    pub liveness_timeout: Option<Duration>,
    /// How long a new connection waits for the peer's answer to the probe
    /// that tells a kaisui node from a plain DP node (see
    /// [`translate`], "Kaisui peers"); without an answer in time the peer
    /// counts as a plain DP node (warning). Default 5 s.
    pub recognize_timeout: Duration,
    /// How long an NT-TCP connection request/response exchange may take
    /// (either side); a socket that has not completed it in time is
    /// closed. Default 10 s.
    pub handshake_timeout: Duration,
    /// Most TCP connections open at once, counting those still in the
    /// handshake or in recognition; connections beyond it are closed as
    /// soon as they are accepted. Default 1024 (ractor_cluster's
    /// `DEFAULT_MAX_SESSIONS`).
    pub max_peers: usize,
    /// Most lightweight connections one peer may have open towards us at
    /// once; a peer that opens more has its TCP connection closed. A DP
    /// node opens one per (sending process, receiver) pair. Default 16384.
    pub max_incoming_connections: usize,
    /// Most bytes waiting to be written to one peer; a peer that reads so
    /// slowly that more pile up has its connection closed. While more than
    /// a quarter of it waits, the session's own messages wait in the
    /// session (back-pressure). Default 64 MiB (ractor_cluster's
    /// `DEFAULT_MAX_OUTBOUND_BUFFER`); at least twice
    /// [`Limits::max_frame_len`] is sensible.
    pub max_outbound_bytes: usize,
    /// Peer IP networks that may connect; `None` (the default) allows all.
    /// Others are closed right after `accept`, before any byte is read.
    pub allow: Option<Vec<IpCidr>>,
}

impl std::fmt::Debug for DpTcpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpTcpConfig")
            .field("host", &self.host)
            .field("types", &self.types)
            .field("build", &self.build)
            .field("limits", &self.limits)
            .field("call_timeout", &self.call_timeout)
            .field("max_pending", &self.max_pending)
            .field("channel_capacity", &self.channel_capacity)
            .field("max_session_queue_bytes", &self.max_session_queue_bytes)
            .field("expose", &self.expose.as_ref().map(|_| "custom"))
            .field("incarnation", &self.incarnation)
            .field("spawn", &self.spawn.keys().collect::<Vec<_>>())
            .field("probe_interval", &self.probe_interval)
            .field("probe_timeout", &self.probe_timeout)
            .field("liveness_timeout", &self.liveness_timeout)
            .field("recognize_timeout", &self.recognize_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_peers", &self.max_peers)
            .field("max_incoming_connections", &self.max_incoming_connections)
            .field("max_outbound_bytes", &self.max_outbound_bytes)
            .field("allow", &self.allow)
            .finish()
    }
}

impl DpTcpConfig {
    /// Defaults around a type registry.
    pub fn new(types: TypeRegistry) -> Self {
        Self {
            host: None,
            types,
            build: Build::default(),
            limits: Limits::default(),
            call_timeout: Duration::from_secs(30),
            max_pending: 4096,
            channel_capacity: 1024,
            max_session_queue_bytes: 16 * 1024 * 1024,
            expose: None,
            incarnation: None,
            spawn: HashMap::new(),
            probe_interval: Some(Duration::from_secs(5)),
            probe_timeout: dp_wire::ntt::DEFAULT_PROBE_TIMEOUT,
            liveness_timeout: None,
            recognize_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
            max_peers: 1024,
            max_incoming_connections: 16 * 1024,
            max_outbound_bytes: 64 * 1024 * 1024,
            allow: None,
        }
    }

    /// Set the NT-TCP handshake timeout (see
    /// [`handshake_timeout`](Self::handshake_timeout)).
    pub fn with_handshake_timeout(mut self, t: Duration) -> Self {
        self.handshake_timeout = t;
        self
    }

    /// Set the most TCP connections open at once (see
    /// [`max_peers`](Self::max_peers)).
    pub fn with_max_peers(mut self, n: usize) -> Self {
        self.max_peers = n;
        self
    }

    /// Set the most lightweight connections per peer (see
    /// [`max_incoming_connections`](Self::max_incoming_connections)).
    pub fn with_max_incoming_connections(mut self, n: usize) -> Self {
        self.max_incoming_connections = n;
        self
    }

    /// Set the outbound byte bound per peer (see
    /// [`max_outbound_bytes`](Self::max_outbound_bytes)).
    pub fn with_max_outbound_bytes(mut self, n: usize) -> Self {
        self.max_outbound_bytes = n;
        self
    }

    /// Set the byte bound of each channel between a connection and its
    /// session (see
    /// [`max_session_queue_bytes`](Self::max_session_queue_bytes)).
    pub fn with_max_session_queue_bytes(mut self, n: usize) -> Self {
        self.max_session_queue_bytes = n;
        self
    }

    /// Only let peers from these networks connect (see
    /// [`allow`](Self::allow)).
    pub fn allow_from(mut self, nets: impl IntoIterator<Item = IpCidr>) -> Self {
        self.allow = Some(nets.into_iter().collect());
        self
    }

    /// Let Haskell find by name only the actors registered under `names`
    /// (and still only if they support remoting).
    pub fn expose_only<S: Into<String>>(self, names: impl IntoIterator<Item = S>) -> Self {
        let names: std::collections::HashSet<String> = names.into_iter().map(Into::into).collect();
        self.with_expose(move |name, _| names.contains(name))
    }

    /// Set how long a new connection waits to recognise a kaisui peer
    /// (see [`recognize_timeout`](Self::recognize_timeout)).
    pub fn with_recognize_timeout(mut self, t: Duration) -> Self {
        self.recognize_timeout = t;
        self
    }

    /// Let Haskell `spawn` closures labelled `label` (the `remotable`
    /// name `Module.function`) on this node: `factory` gets the closure's
    /// environment bytes and starts the actor; Haskell gets its pid in
    /// `DidSpawn`. A closure with no factory (or whose factory fails or
    /// takes longer than [`call_timeout`](Self::call_timeout)) gets the pid
    /// of a process that has already ended, as a DP node answers for a
    /// closure it cannot resolve.
    pub fn with_spawn<F, Fut>(mut self, label: impl Into<String>, factory: F) -> Self
    where
        F: Fn(Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActorCell, SpawnErr>> + Send + 'static,
    {
        self.spawn
            .insert(label.into(), Arc::new(move |env| Box::pin(factory(env))));
        self
    }

    /// Set the probing of silent peers (see
    /// [`probe_interval`](Self::probe_interval)).
    pub fn with_probe(mut self, interval: Option<Duration>, timeout: Duration) -> Self {
        self.probe_interval = interval;
        self.probe_timeout = timeout;
        self
    }

    /// Set the host part of our NodeId.
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Set the peers' assumed build.
    pub fn with_build(mut self, build: Build) -> Self {
        self.build = build;
        self
    }

    /// Set the decoding limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Set the default call timeout.
    pub fn with_call_timeout(mut self, t: Duration) -> Self {
        self.call_timeout = t;
        self
    }

    /// Restrict which named actors Haskell may find.
    pub fn with_expose(
        mut self,
        f: impl Fn(&str, &ActorCell) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.expose = Some(Arc::new(f));
        self
    }
}

/// ractor's global registries as the translators' [`LocalDirectory`].
#[derive(Clone)]
pub(crate) struct RactorDirectory {
    pub(crate) expose: Option<ExposeFn>,
}

impl std::fmt::Debug for RactorDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RactorDirectory")
    }
}

impl LocalDirectory for RactorDirectory {
    fn lookup_name(&self, name: &str) -> Option<u64> {
        let cell = ractor::registry::where_is(name)?;
        let ok = cell.get_id().is_local()
            && cell.supports_remoting()
            && self.expose.as_ref().is_none_or(|f| f(name, &cell));
        ok.then(|| cell.get_id().pid())
    }

    fn is_remotable(&self, pid: u64) -> bool {
        ractor::registry::where_is_pid(ActorId::Local(pid)).is_some_and(|c| c.supports_remoting())
    }

    fn is_alive(&self, pid: u64) -> bool {
        ractor::registry::where_is_pid(ActorId::Local(pid))
            .is_some_and(|c| c.get_status() < ActorStatus::Stopping)
    }
}

/// The Cloud Haskell transport. Cheap to clone; give one clone to
/// `NodeServer::with_transport` and keep another for [`DpTcp::whereis`],
/// [`DpTcp::process`] and [`DpTcp::pid_of`].
#[derive(Clone, Debug)]
pub struct DpTcp {
    shared: Arc<driver::Shared>,
}

impl DpTcp {
    /// A transport with this configuration.
    pub fn new(config: DpTcpConfig) -> Result<Self, DpError> {
        config.types.validate()?;
        if config.max_peers == 0
            || config.max_incoming_connections == 0
            || config.max_outbound_bytes == 0
            || config.max_session_queue_bytes == 0
        {
            return Err(DpError::Config(
                "max_peers, max_incoming_connections, max_outbound_bytes and max_session_queue_bytes must be positive"
                    .into(),
            ));
        }
        let incarnation = config.incarnation.unwrap_or_else(rand::random);
        Ok(Self {
            shared: Arc::new(driver::Shared::new(config, incarnation)),
        })
    }

    /// Our `lpidUnique`.
    pub fn incarnation(&self) -> i32 {
        self.shared.incarnation
    }

    /// Our NodeId, once listening.
    pub fn node_id(&self) -> Option<NodeId> {
        self.shared.ctx.get().map(|(_, c)| c.node.clone())
    }

    /// The DP pid of local actor `actor`, to put in a payload for Haskell
    /// to `send` to.
    pub fn pid_of(&self, actor: &ActorCell) -> Result<ProcessId, DpError> {
        let node = self.node_id().ok_or(DpError::NotListening)?;
        let id = actor.get_id();
        let counter = match id {
            ActorId::Local(pid) => ids::local_counter(pid),
            ActorId::Remote { .. } => None,
        }
        .ok_or_else(|| DpError::NoDpPid(id.to_string()))?;
        Ok(ProcessId {
            node,
            local: LocalProcessId {
                unique: self.shared.incarnation,
                counter,
            },
        })
    }

    /// Look up the process registered as `name` on DP peer `peer`
    /// (`host:port:0`) and return a ractor handle to it: cast to it with
    /// `cast!`, call it with `call!` (after converting with
    /// `ActorRef::from`).
    ///
    /// The handle carries `name` (`get_name`), but ractor keeps remote
    /// actors out of its name registry: keep the returned cell, or call
    /// this again (a second lookup returns the same actor).
    pub async fn whereis(
        &self,
        peer: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<ActorCell, DpError> {
        let deadline = Instant::now() + timeout;
        let addr = parse_peer(peer)?;
        let (tx, rx) = oneshot::channel();
        self.command(
            &addr,
            driver::Command::WhereIs {
                label: name.to_owned(),
                deadline,
                reply: tx,
            },
        )?;
        let answer = tokio::time::timeout_at(deadline.into(), rx)
            .await
            .map_err(|_| DpError::Timeout(format!("WhereIs {name:?} on {peer}")))?
            .map_err(|_| DpError::Peer(format!("connection to {peer} ended")))?;
        match answer {
            Ok(Some(pid)) => self.attach(&addr, &pid, Some(name), deadline).await,
            Ok(None) => Err(DpError::NotFound {
                peer: peer.to_owned(),
                name: name.to_owned(),
            }),
            Err(e) => Err(DpError::Peer(e)),
        }
    }

    /// A ractor handle to a Haskell process whose pid was learned from a
    /// payload. Its node must be a peer we have a session with.
    pub async fn process(&self, pid: &ProcessId) -> Result<ActorCell, DpError> {
        let peer = pid
            .node
            .as_str()
            .ok_or_else(|| DpError::BadAddress(pid.node.to_string()))?;
        let addr = parse_peer(peer)?;
        // A session only starts once its peer is recognised.
        let deadline =
            Instant::now() + Duration::from_secs(5) + self.shared.config.recognize_timeout;
        self.attach(&addr, pid, None, deadline).await
    }

    /// Node-wide counters: connections open, refused and closed by limits.
    pub fn stats(&self) -> NodeStats {
        self.shared.stats.snapshot()
    }

    /// What the connection to `peer` learned and dropped.
    pub async fn peer_info(&self, peer: &str) -> Result<PeerInfo, DpError> {
        let addr = parse_peer(peer)?;
        let (tx, rx) = oneshot::channel();
        self.command(&addr, driver::Command::Info { reply: tx })?;
        rx.await
            .map_err(|_| DpError::Peer(format!("connection to {peer} ended")))
    }

    fn command(&self, peer: &EndPointAddress, c: driver::Command) -> Result<(), DpError> {
        let st = self.shared.lock();
        let h = st
            .peers
            .get(peer)
            .ok_or_else(|| DpError::NotConnected(peer.to_string()))?;
        h.commands
            .try_send(c)
            .map_err(|e| DpError::Peer(format!("connection to {peer} is busy or gone: {e}")))
    }

    /// Have the session create (or reuse) the RemoteActor for `pid` and
    /// find its cell in its process group (see [`translate::Translator::announce`]).
    async fn attach(
        &self,
        peer: &EndPointAddress,
        pid: &ProcessId,
        name: Option<&str>,
        deadline: Instant,
    ) -> Result<ActorCell, DpError> {
        let rpid = ids::remote_pid(pid.local);
        let scope = translate::REMOTE_SCOPE.to_owned();
        let us = self.node_id().ok_or(DpError::NotListening)?;
        let group = translate::remote_group(&us, &NodeId::new(peer.as_str()), rpid);
        let dead = || {
            self.shared
                .dead
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&group)
                .cloned()
                .map(|reason| DpError::Dead {
                    pid: pid.to_string(),
                    reason,
                })
        };
        if let Some(e) = dead() {
            return Err(e);
        }
        let find = || {
            ractor::pg::get_scoped_members(&scope, &group)
                .into_iter()
                .find(|c| {
                    matches!(c.get_id(), ActorId::Remote { pid, .. } if pid == rpid)
                        && !matches!(c.get_status(), ActorStatus::Stopping | ActorStatus::Stopped)
                })
        };
        if let Some(c) = find() {
            return Ok(c);
        }
        self.command(
            peer,
            driver::Command::Announce {
                pid: rpid,
                name: name.map(str::to_owned),
            },
        )?;
        loop {
            if let Some(c) = find() {
                return Ok(c);
            }
            if let Some(e) = dead() {
                return Err(e);
            }
            if Instant::now() >= deadline {
                return Err(DpError::Timeout(format!(
                    "the session with {peer} did not create an actor for {pid}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn parse_peer(peer: &str) -> Result<EndPointAddress, DpError> {
    peer.parse()
        .map_err(|_| DpError::BadAddress(peer.to_owned()))
}

impl Transport for DpTcp {
    fn listen(
        &self,
        listen_addr: Option<IpAddr>,
        port: u16,
    ) -> BoxFuture<'_, io::Result<Box<dyn TransportListener>>> {
        Box::pin(driver::listen(self.shared.clone(), listen_addr, port))
    }

    fn connect(&self, address: String) -> BoxFuture<'_, io::Result<Box<dyn TransportConnection>>> {
        Box::pin(driver::connect(self.shared.clone(), address))
    }

    /// Our NT-TCP address `host:port:0`, which is also our NodeId, so that
    /// peers (and the session's self-connection check) see the same
    /// string DP nodes use.
    fn connection_string(&self, _hostname: &str, port: u16) -> String {
        match self.shared.ctx.get() {
            Some((address, _)) => address.to_string(),
            None => {
                let host = self.shared.config.host.as_deref().unwrap_or("127.0.0.1");
                format!("{host}:{port}:0")
            }
        }
    }
}
