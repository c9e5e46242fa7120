//! The tokio side: sockets, the NT-TCP handshake, timers, and the channels
//! to the session's `MessageReader`/`MessageWriter`.
//!
//! - One listener task accepts TCP connections; each gets its own task that
//!   runs the NT-TCP handshake through [`ntt::Connection`] and asks
//!   [`ntt::Endpoint`] what to do with the request (accept, reject, cross).
//! - Every accepted or established TCP connection is one ractor
//!   `NodeSession`: its task feeds socket bytes into the `ntt::Connection`,
//!   hands lightweight-connection events to the connection's
//!   [`Translator`], executes the translator's actions, and writes what the
//!   `ntt::Connection` wants written. Timers come from both `poll_timeout`s.
//! - Channels are bounded. The two between a connection and its session
//!   are bounded in messages ([`DpTcpConfig::channel_capacity`]) and in
//!   bytes ([`DpTcpConfig::max_session_queue_bytes`], see the private
//!   `budget` module). Messages for the session are sent with back-pressure
//!   (the task stops reading the socket while the session is behind), so
//!   nothing the peer sent is dropped for lack of room; the session's
//!   messages wait in the session while the channel to the task is full;
//!   requests from [`crate::DpTcp`] that find a full command queue fail
//!   with an error.
//!
//! - Liveness: a connection that has heard nothing from the peer for
//!   [`DpTcpConfig::probe_interval`] sends NT-TCP's `ProbeSocket`; without
//!   a `ProbeSocketAck` (or any other input) within
//!   [`DpTcpConfig::probe_timeout`] the peer counts as gone. A write that
//!   makes no progress for `probe_timeout` ends the connection too.
//! - Lifecycle (see the private `watch` module and `docs/lifecycle.md`): the
//!   translator's lifecycle events are carried out here; when a
//!   connection ends for any reason, every RemoteActor of the peer is
//!   stopped with `DiedDisconnect` before the session is told.
//!
//! One TCP connection per endpoint pair: a `connect` to a peer we already
//! have a session with fails with [`io::ErrorKind::AlreadyExists`]; a
//! crossed request that we lose waits until the peer's connection is
//! established here and fails the same way.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dp_wire::dp::{DiedReason, NodeId, ProcessId, SpawnRef};
use dp_wire::ntt::{
    self, ConnectionState, EndPointAddress, IncomingDecision, OutgoingDecision, RejectReason,
    SocketId,
};
use ractor_cluster::protocol::NetworkMessage;
use ractor_cluster::transport::{
    AuthenticatedPeer, BoxFuture, MessageReader, MessageWriter, TransportConnection,
    TransportListener,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::budget;
use crate::guard::{ConnSlot, StatsCell};
use crate::translate::{
    remote_group, Context, Counters, DpAction, Event, Learned, PeerKind, Translator,
};
use crate::watch::{self, WatcherMsg};
use crate::DpTcpConfig;

/// Socket read buffer of an established connection.
const READ_BUF: usize = 64 * 1024;
/// Socket read buffer during the handshake: a request is at most
/// `12 + max_address_len` bytes, and a small buffer keeps many
/// half-open sockets cheap (the decoder keeps whatever follows).
const HANDSHAKE_BUF: usize = 4 * 1024;
/// After reading resumes (the session caught up), how long the peer's
/// silence is not held against it: what it sent meanwhile, a probe's ack
/// included, is still in the socket.
const RESUME_GRACE: Duration = Duration::from_millis(500);

/// Requests from [`crate::DpTcp`] to one connection's task.
#[derive(Debug)]
pub(crate) enum Command {
    WhereIs {
        label: String,
        deadline: Instant,
        reply: oneshot::Sender<Result<Option<ProcessId>, String>>,
    },
    Announce {
        pid: u64,
        name: Option<String>,
    },
    Probe,
    Info {
        reply: oneshot::Sender<PeerInfo>,
    },
}

/// Lifecycle news for one connection's translator, from outside its task
/// (unbounded: each is one actor's death or one spawn, and none may be
/// lost).
#[derive(Debug)]
pub(crate) enum Notice {
    /// A local actor ended.
    LocalDied { pid: u64, reason: DiedReason },
    /// A Haskell `spawn` was carried out.
    Spawned {
        spawner: ProcessId,
        spawn_ref: SpawnRef,
        pid: u64,
    },
}

/// What one peer connection learned and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's NodeId.
    pub peer: String,
    /// Fingerprints learned from it.
    pub learned: Learned,
    /// Drop counters of its translator.
    pub counters: Counters,
    /// What the peer is (a plain DP node or a kaisui node).
    pub kind: PeerKind,
    /// The peer's lightweight connections open now.
    pub incoming_connections: usize,
    /// Bytes waiting to be written to the peer now.
    pub outbound_bytes: usize,
    /// Most bytes that ever waited to be written to the peer.
    pub outbound_peak: usize,
    /// How often reading from the peer paused because the session was
    /// behind (back-pressure; nothing is dropped).
    pub session_waits: u64,
}

/// An established connection, as seen from [`crate::DpTcp`].
#[derive(Debug)]
pub(crate) struct PeerHandle {
    socket: SocketId,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) notices: mpsc::UnboundedSender<Notice>,
}

#[derive(Debug, Default)]
pub(crate) struct EndpointState {
    endpoint: Option<ntt::Endpoint>,
    next_socket: SocketId,
    pub(crate) peers: HashMap<EndPointAddress, PeerHandle>,
    /// Peers whose connection ended but whose `NodeSession` is still
    /// stopping; a new connection with them waits (the NodeServer would
    /// otherwise elect the dying session over the new one).
    draining: std::collections::HashSet<EndPointAddress>,
}

/// State shared by the transport, its listener and all connection tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: DpTcpConfig,
    pub(crate) incarnation: i32,
    /// Set once by `listen`: our address and the translators' context.
    pub(crate) ctx: OnceLock<(EndPointAddress, Arc<Context>)>,
    state: Mutex<EndpointState>,
    changed: Notify,
    /// Set once by `listen`.
    pub(crate) watcher: OnceLock<ractor::ActorRef<WatcherMsg>>,
    /// Haskell processes known dead (see [`watch::DeadRemotes`]).
    pub(crate) dead: watch::DeadMap,
    /// Local actors Haskell watches.
    pub(crate) watched: watch::Watched,
    /// Node-wide counters ([`crate::NodeStats`]).
    pub(crate) stats: StatsCell,
}

impl Shared {
    pub(crate) fn new(config: DpTcpConfig, incarnation: i32) -> Self {
        Self {
            config,
            incarnation,
            ctx: OnceLock::new(),
            state: Mutex::new(EndpointState::default()),
            changed: Notify::new(),
            watcher: OnceLock::new(),
            dead: watch::DeadMap::default(),
            watched: watch::Watched::default(),
            stats: StatsCell::default(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, EndpointState> {
        // A panic while holding the lock leaves plain bookkeeping behind;
        // keep serving rather than poisoning every later call.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_socket(&self, st: &mut EndpointState) -> SocketId {
        st.next_socket += 1;
        st.next_socket
    }

    /// Wait until the endpoint bookkeeping changes, or `deadline`.
    async fn wait_change(&self, deadline: tokio::time::Instant) -> bool {
        tokio::time::timeout_at(deadline, self.changed.notified())
            .await
            .is_ok()
    }

    fn notify(&self) {
        self.changed.notify_waiters();
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last DpTcp handle is gone: nobody reports deaths any more.
        if let Some(w) = self.watcher.get() {
            w.stop(None);
        }
    }
}

fn channel_closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the DP connection task ended")
}

// ----------------------------------------------------------------------
// Listening

/// Binds the listener and starts accepting.
pub(crate) async fn listen(
    shared: Arc<Shared>,
    listen_addr: Option<IpAddr>,
    port: u16,
) -> io::Result<Box<dyn TransportListener>> {
    let cfg = &shared.config;
    let bind_ip = listen_addr.unwrap_or(if cfg.host.is_some() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    });
    let listener = TcpListener::bind(SocketAddr::new(bind_ip, port)).await?;
    let local = listener.local_addr()?;
    let host = match (&cfg.host, listen_addr) {
        (Some(h), _) => h.clone(),
        (None, Some(ip)) if !ip.is_unspecified() => ip.to_string(),
        _ => "127.0.0.1".to_owned(),
    };
    let address = EndPointAddress::new(&host, &local.port().to_string(), 0)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let ctx = Arc::new(Context {
        node: NodeId::new(address.as_str()),
        incarnation: shared.incarnation,
        types: cfg.types.clone(),
        build: cfg.build.clone(),
        limits: cfg.limits.clone(),
        call_timeout: cfg.call_timeout,
        max_pending: cfg.max_pending,
        directory: Arc::new(crate::RactorDirectory {
            expose: cfg.expose.clone(),
        }),
        spawnable: cfg.spawn.keys().cloned().collect(),
        recognize_timeout: cfg.recognize_timeout,
    });
    if shared.ctx.set((address.clone(), ctx)).is_err() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "this DpTcp instance is already listening; use one DpTcp per NodeServer",
        ));
    }
    let watcher = watch::start(&shared)
        .await
        .map_err(|e| io::Error::other(format!("cannot start DpTcp's watcher actor: {e}")))?;
    let _ = shared.watcher.set(watcher);
    shared.lock().endpoint = Some(ntt::Endpoint::new(address.clone()));
    tracing::info!(%address, bind = %local, incarnation = shared.incarnation, "DP endpoint listening");

    let (tx, rx) = mpsc::channel(cfg.channel_capacity.max(1));
    let task = tokio::spawn(accept_loop(shared, listener, tx));
    Ok(Box::new(DpListener {
        local,
        rx,
        task: Some(task),
    }))
}

type Accepted = io::Result<Box<dyn TransportConnection>>;

struct DpListener {
    local: SocketAddr,
    rx: mpsc::Receiver<Accepted>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for DpListener {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl TransportListener for DpListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn accept(&mut self) -> BoxFuture<'_, Accepted> {
        Box::pin(async move {
            self.rx.recv().await.unwrap_or_else(|| {
                Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the DP accept loop ended",
                ))
            })
        })
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, tx: mpsc::Sender<Accepted>) {
    let cfg = &shared.config;
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                StatsCell::bump(&shared.stats.accepted);
                // Checked before a byte is read: a refused address costs
                // one accept and one close.
                if let Some(allow) = &cfg.allow {
                    if !allow.iter().any(|net| net.contains(from.ip())) {
                        tracing::warn!(%from, "DP connection from an address outside DpTcpConfig::allow closed");
                        StatsCell::bump(&shared.stats.refused_not_allowed);
                        continue;
                    }
                }
                let Some(slot) = ConnSlot::take(&shared, cfg.max_peers) else {
                    tracing::warn!(%from, max_peers = cfg.max_peers, "too many open DP connections (DpTcpConfig::max_peers); new connection closed");
                    StatsCell::bump(&shared.stats.refused_max_peers);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Some(conn) = incoming(shared, stream, from, slot).await {
                        if tx.send(Ok(conn)).await.is_err() {
                            tracing::warn!(%from, "listener gone; accepted DP connection dropped");
                        }
                    }
                });
            }
            Err(e) => {
                tracing::warn!("DP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Runs the listener side of the handshake; returns the session's
/// connection if the request was accepted.
async fn incoming(
    shared: Arc<Shared>,
    stream: TcpStream,
    from: SocketAddr,
    slot: ConnSlot,
) -> Option<Box<dyn TransportConnection>> {
    let (_, ctx) = shared.ctx.get()?;
    let local = stream.local_addr().ok()?;
    let (mut rd, mut wr) = stream.into_split();
    let mut conn = ntt::Connection::listener(ctx.limits.clone());
    let limit = shared.config.handshake_timeout;
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = vec![0u8; HANDSHAKE_BUF];
    let (target, peer) = loop {
        let mut requested = None;
        while let Some(ev) = conn.poll_event() {
            match ev {
                ntt::Event::ConnectionRequested { target, from } => {
                    requested = Some((target, from))
                }
                ntt::Event::ProtocolError(e) => {
                    tracing::warn!(%from, "NT-TCP handshake error; closing the socket: {e}");
                    StatsCell::bump(&shared.stats.handshake_failures);
                }
                other => tracing::debug!(%from, ?other, "NT-TCP event during handshake"),
            }
        }
        if let Some(tx) = conn.poll_transmit() {
            // Bounded too: a peer that does not read its handshake
            // response must not hold the socket.
            match tokio::time::timeout_at(deadline, wr.write_all(&tx)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return None,
                Err(_) => {
                    tracing::warn!(%from, ?limit, "NT-TCP handshake timed out (DpTcpConfig::handshake_timeout); closing the socket");
                    StatsCell::bump(&shared.stats.handshake_timeouts);
                    return None;
                }
            }
        }
        if let Some(r) = requested {
            break r;
        }
        if matches!(
            conn.state(),
            ConnectionState::Closed | ConnectionState::Failed
        ) {
            return None;
        }
        match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => conn.handle_input(&buf[..n]),
            Err(_) => {
                tracing::warn!(%from, ?limit, state = ?conn.state(), "NT-TCP handshake timed out (DpTcpConfig::handshake_timeout); closing the socket");
                StatsCell::bump(&shared.stats.handshake_timeouts);
                return None;
            }
        }
    };
    let Some(peer) = peer else {
        // distributed-process nodes are always addressable; a node id we
        // cannot answer to is of no use.
        tracing::warn!(%from, "unaddressable NT-TCP peer refused");
        StatsCell::bump(&shared.stats.handshake_failures);
        let _ = conn.reject(RejectReason::Invalid);
        if let Some(tx) = conn.poll_transmit() {
            let _ = wr.write_all(&tx).await;
        }
        return None;
    };
    // A restarted peer may be faster than the end of its old session.
    loop {
        let notified = shared.changed.notified();
        if !shared.lock().draining.contains(&peer) {
            break;
        }
        tracing::debug!(%peer, "waiting for the peer's previous session to end");
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            tracing::warn!(%peer, "previous session did not end in time; refusing the request");
            return None;
        }
    }

    loop {
        let decision;
        let socket;
        {
            let mut st = shared.lock();
            socket = shared.new_socket(&mut st);
            let ep = st.endpoint.as_mut()?;
            decision = ep.incoming(Some(&peer), target, socket);
        }
        match decision {
            IncomingDecision::Accept { crossed_outgoing } => {
                if let Some(ours) = crossed_outgoing {
                    tracing::debug!(%peer, ours, "crossed connection requests; accepting the peer's");
                }
                if conn.accept().is_err() {
                    return None;
                }
                tracing::info!(%peer, %from, "DP peer connected to us");
                return start_session(
                    shared.clone(),
                    socket,
                    peer.clone(),
                    conn,
                    rd,
                    wr,
                    from,
                    local,
                    slot,
                )
                .await
                .map_err(
                    |e| tracing::warn!(%peer, "DP connection not handed to the NodeServer: {e}"),
                )
                .ok();
            }
            IncomingDecision::Reject(reason) => {
                tracing::info!(%peer, %from, ?reason, "NT-TCP request rejected");
                StatsCell::bump(&shared.stats.handshake_failures);
                let _ = conn.reject(reason);
            }
            IncomingDecision::RejectAndProbe { existing } => {
                tracing::debug!(%peer, existing, "peer reconnects while we think we are connected; probing the old socket");
                let _ = conn.reject(RejectReason::Crossed);
                let st = shared.lock();
                if let Some(h) = st.peers.get(&peer) {
                    let _ = h.commands.try_send(Command::Probe);
                }
            }
            IncomingDecision::Defer { existing } => {
                tracing::debug!(%peer, existing, "deferring the request until our close resolves");
                if shared.wait_change(deadline).await {
                    continue;
                }
                let _ = conn.reject(RejectReason::Crossed);
            }
        }
        if let Some(tx) = conn.poll_transmit() {
            let _ = wr.write_all(&tx).await;
        }
        let _ = wr.shutdown().await;
        return None;
    }
}

// ----------------------------------------------------------------------
// Connecting

/// The initiator side: `address` is `host:port:endpointid`.
pub(crate) async fn connect(
    shared: Arc<Shared>,
    address: String,
) -> io::Result<Box<dyn TransportConnection>> {
    let to: EndPointAddress = address.parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{address:?} is not an NT-TCP address host:port:endpointid: {e}"),
        )
    })?;
    let Some((ours, ctx)) = shared.ctx.get() else {
        return Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "DpTcp is not listening yet; start the NodeServer first",
        ));
    };
    if to == *ours {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot connect a DP endpoint to itself",
        ));
    }
    let deadline = tokio::time::Instant::now() + shared.config.handshake_timeout;
    let Some(slot) = ConnSlot::take(&shared, shared.config.max_peers) else {
        return Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "{} DP connections are open (DpTcpConfig::max_peers); not connecting to {to}",
                shared.config.max_peers
            ),
        ));
    };
    let already = || {
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("a session with DP peer {to} already exists"),
        )
    };
    let socket = loop {
        let notified = shared.changed.notified();
        let decision = {
            let mut st = shared.lock();
            if st.peers.contains_key(&to) {
                return Err(already());
            }
            if st.draining.contains(&to) {
                // The previous session with this peer is still stopping.
                None
            } else {
                let socket = shared.new_socket(&mut st);
                match st.endpoint.as_mut() {
                    Some(ep) => Some(ep.outgoing(&to, socket)),
                    None => return Err(io::Error::other("DP endpoint not initialised")),
                }
            }
        };
        let Some(decision) = decision else {
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the previous session with {to} did not end"),
                ));
            }
            continue;
        };
        match decision {
            OutgoingDecision::Connect(s) => break s,
            OutgoingDecision::Reuse(_) => return Err(already()),
            OutgoingDecision::Wait(_) => {
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connection to {to} stayed pending"),
                    ));
                }
            }
        }
    };

    let fail = |shared: &Shared, e: io::Error| {
        if let Some(ep) = shared.lock().endpoint.as_mut() {
            ep.closed(&to, socket);
        }
        shared.notify();
        e
    };

    let stream = match tokio::time::timeout_at(
        deadline,
        TcpStream::connect(format!("{}:{}", to.host(), to.port())),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(fail(&shared, e)),
        Err(_) => {
            return Err(fail(
                &shared,
                io::Error::new(io::ErrorKind::TimedOut, format!("TCP connect to {to}")),
            ))
        }
    };
    let _ = stream.set_nodelay(true);
    let (peer_addr, local) = (stream.peer_addr()?, stream.local_addr()?);
    let (mut rd, mut wr) = stream.into_split();
    let mut conn = ntt::Connection::initiator(Some(ours), &to, ctx.limits.clone());
    let mut buf = vec![0u8; HANDSHAKE_BUF];
    let outcome = loop {
        if let Some(tx) = conn.poll_transmit() {
            if let Err(e) = wr.write_all(&tx).await {
                return Err(fail(&shared, e));
            }
        }
        let mut outcome = None;
        while let Some(ev) = conn.poll_event() {
            match ev {
                ntt::Event::Accepted => outcome = Some(Ok(())),
                ntt::Event::Rejected(r) => outcome = Some(Err(r)),
                ntt::Event::ProtocolError(e) => {
                    return Err(fail(
                        &shared,
                        io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
                    ))
                }
                // Bytes pipelined behind the response are kept by `conn`.
                other => tracing::trace!(?other, "NT-TCP event during handshake"),
            }
            if outcome.is_some() {
                break;
            }
        }
        if let Some(o) = outcome {
            break o;
        }
        match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
            Ok(Ok(0)) => {
                return Err(fail(
                    &shared,
                    io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed during handshake"),
                ))
            }
            Ok(Ok(n)) => conn.handle_input(&buf[..n]),
            Ok(Err(e)) => return Err(fail(&shared, e)),
            Err(_) => {
                return Err(fail(
                    &shared,
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("NT-TCP handshake with {to}"),
                    ),
                ))
            }
        }
    };

    match outcome {
        Ok(()) => {
            {
                let mut st = shared.lock();
                if let Some(ep) = st.endpoint.as_mut() {
                    ep.established(&to, socket);
                }
            }
            tracing::info!(peer = %to, "connected to DP peer");
            start_session(
                shared.clone(),
                socket,
                to,
                conn,
                rd,
                wr,
                peer_addr,
                local,
                slot,
            )
            .await
        }
        Err(RejectReason::Crossed) => {
            // The peer's own request to us won the tie-break (or is about
            // to): that connection carries the session.
            let _ = wr.shutdown().await;
            let valid = shared
                .lock()
                .endpoint
                .as_mut()
                .and_then(|ep| ep.rejected(&to, socket));
            shared.notify();
            tracing::debug!(peer = %to, ?valid, "our request crossed the peer's");
            loop {
                let notified = shared.changed.notified();
                if shared.lock().peers.contains_key(&to) {
                    return Err(already());
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("crossed with {to}, but its connection never arrived"),
                    ));
                }
            }
        }
        Err(reason) => {
            let _ = wr.shutdown().await;
            if let Some(ep) = shared.lock().endpoint.as_mut() {
                ep.rejected(&to, socket);
            }
            shared.notify();
            Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!("DP peer {to} refused the connection: {reason:?}"),
            ))
        }
    }
}

// ----------------------------------------------------------------------
// One established connection

/// Starts the connection's task and returns the session's view of it once
/// the peer is recognised (plain DP node or kaisui node, see
/// [`crate::translate`]): only then is it known whether the session runs
/// the cookie handshake.
#[allow(clippy::too_many_arguments)]
async fn start_session(
    shared: Arc<Shared>,
    socket: SocketId,
    peer: EndPointAddress,
    conn: ntt::Connection,
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    peer_addr: SocketAddr,
    local_addr: SocketAddr,
    slot: ConnSlot,
) -> io::Result<Box<dyn TransportConnection>> {
    let cap = shared.config.channel_capacity.max(1);
    let bytes = shared.config.max_session_queue_bytes;
    let handshake_timeout = shared.config.handshake_timeout;
    let (session_tx, session_rx) = budget::channel(cap, bytes);
    let (writer_tx, writer_rx) = budget::channel(cap, bytes);
    let (cmd_tx, cmd_rx) = mpsc::channel(cap);
    let (notice_tx, notice_rx) = mpsc::unbounded_channel();
    let (kind_tx, kind_rx) = oneshot::channel();
    let recognize_timeout = shared.config.recognize_timeout;
    {
        let mut st = shared.lock();
        st.peers.insert(
            peer.clone(),
            PeerHandle {
                socket,
                commands: cmd_tx,
                notices: notice_tx.clone(),
            },
        );
    }
    shared.notify();
    let task = ConnTask {
        shared,
        socket,
        peer: peer.clone(),
        conn,
        lcids: HashMap::new(),
        whereis: HashMap::new(),
        next_request: 0,
        notices: notice_tx,
        last_heard: Instant::now(),
        probing: false,
        dying: Arc::default(),
        ending: false,
        recognized: Some(kind_tx),
        out: OutBuf::default(),
        session_pending: None,
        session_waits: 0,
        grace_until: None,
        _slot: slot,
    };
    tokio::spawn(task.run(rd, wr, session_tx, writer_rx, cmd_rx, notice_rx));
    // The translator decides by its own deadline; this one only guards
    // against a task that neither decides nor ends.
    let kind = match tokio::time::timeout(recognize_timeout + handshake_timeout, kind_rx).await {
        Ok(Ok(kind)) => kind,
        Ok(Err(_)) => {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("the connection to DP peer {peer} ended before the peer was recognised"),
            ))
        }
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("DP peer {peer} was not recognised in time"),
            ))
        }
    };
    Ok(Box::new(DpConnection {
        peer,
        peer_addr,
        local_addr,
        session_rx,
        writer_tx,
        kind,
    }))
}

struct ConnTask {
    shared: Arc<Shared>,
    socket: SocketId,
    peer: EndPointAddress,
    conn: ntt::Connection,
    /// Our translator handles → NT-TCP lcids.
    lcids: HashMap<u64, u32>,
    whereis: HashMap<u64, oneshot::Sender<Result<Option<ProcessId>, String>>>,
    next_request: u64,
    /// For spawn tasks to report back.
    notices: mpsc::UnboundedSender<Notice>,
    /// When the peer last sent anything.
    last_heard: Instant,
    /// Whether our ProbeSocket waits for its ack.
    probing: bool,
    /// RemoteActor groups to stop once their barrier is answered, with
    /// the reason (see [`ConnTask::stop_after_barrier`]).
    dying: Arc<Mutex<HashMap<String, String>>>,
    /// The connection ended: stop RemoteActors at once.
    ending: bool,
    /// Told what the peer is, once ([`Event::Recognized`]).
    recognized: Option<oneshot::Sender<PeerKind>>,
    /// Bytes for the peer not yet written.
    out: OutBuf,
    /// A message for the session that found its channel full (in messages
    /// or in bytes), with its cost in bytes; the socket is not read until
    /// it is delivered (back-pressure).
    session_pending: Option<(NetworkMessage, u32)>,
    /// How often `session_pending` was set.
    session_waits: u64,
    /// Until when liveness checks wait after reading resumed.
    grace_until: Option<Instant>,
    /// This connection's place under [`DpTcpConfig::max_peers`].
    _slot: ConnSlot,
}

/// Why a connection task ended.
enum End {
    Peer(String),
    /// The peer broke a limit or the protocol: warn, count, close.
    Limit(String),
    Session,
}

/// What waits to be written to the peer: the `ntt::Connection`'s
/// transmissions, in order, written as the socket takes them so that the
/// task keeps serving the session, timers and commands meanwhile.
#[derive(Debug, Default)]
struct OutBuf {
    chunks: std::collections::VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already written.
    off: usize,
    len: usize,
    peak: usize,
    /// Since when the socket has taken nothing while bytes wait.
    stalled_since: Option<Instant>,
}

impl OutBuf {
    fn push(&mut self, bytes: Vec<u8>, now: Instant) {
        if bytes.is_empty() {
            return;
        }
        if self.len == 0 {
            self.stalled_since = Some(now);
        }
        self.len += bytes.len();
        self.peak = self.peak.max(self.len);
        self.chunks.push_back(bytes);
    }

    fn front(&self) -> &[u8] {
        self.chunks.front().map_or(&[], |c| &c[self.off..])
    }

    fn consume(&mut self, n: usize, now: Instant) {
        self.len -= n;
        self.off += n;
        while let Some(c) = self.chunks.front() {
            if self.off < c.len() {
                break;
            }
            self.off -= c.len();
            self.chunks.pop_front();
        }
        self.stalled_since = (self.len > 0).then_some(now);
    }

    /// Writes what the socket takes without waiting; `Err` if it failed.
    fn flush_ready(&mut self, wr: &OwnedWriteHalf) -> io::Result<()> {
        while self.len > 0 {
            match wr.try_write(self.front()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.consume(n, Instant::now()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl ConnTask {
    async fn run(
        mut self,
        mut rd: OwnedReadHalf,
        mut wr: OwnedWriteHalf,
        session_tx: budget::Sender<NetworkMessage>,
        mut writer_rx: budget::Receiver<Vec<NetworkMessage>>,
        mut cmd_rx: mpsc::Receiver<Command>,
        mut notice_rx: mpsc::UnboundedReceiver<Notice>,
    ) {
        let Some((_, ctx)) = self.shared.ctx.get() else {
            return;
        };
        let shared = self.shared.clone();
        let cfg = &shared.config;
        // Above this much unwritten, the session's messages wait in the
        // session (whose own outbound bound then applies); what the peer
        // itself provokes still counts against `max_outbound_bytes`.
        let high_water = (cfg.max_outbound_bytes / 4).max(1);
        let mut tr = Translator::new(ctx.clone(), NodeId::new(self.peer.as_str()));
        let now = Instant::now();
        self.conn.set_probe_timeout(cfg.probe_timeout);
        self.conn.set_liveness_timeout(cfg.liveness_timeout, now);
        self.last_heard = now;
        tr.connected(now);
        let mut buf = vec![0u8; READ_BUF];
        let end = loop {
            if let Some(end) = self.pump(&mut tr, &wr, &session_tx) {
                break end;
            }
            let read_enabled = self.session_pending.is_none();
            if !read_enabled {
                // Not reading is our doing, not the peer's silence.
                self.last_heard = Instant::now();
            }
            let grace = |t: Instant| self.grace_until.map_or(t, |g| t.max(g));
            let next_probe = match (self.probing, cfg.probe_interval, read_enabled) {
                (false, Some(i), true) => Some(grace(self.last_heard + i)),
                _ => None,
            };
            let conn_timeout = self.conn.poll_timeout().filter(|_| read_enabled).map(grace);
            let write_stall = self.out.stalled_since.map(|t| t + cfg.probe_timeout);
            let deadline = [conn_timeout, tr.poll_timeout(), next_probe, write_stall]
                .into_iter()
                .flatten()
                .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            let session_enabled = self.out.len < high_water;
            let writing = self.out.len > 0;
            let waiting_cost = self.session_pending.as_ref().map(|(_, cost)| *cost);
            tokio::select! {
                r = rd.read(&mut buf), if read_enabled => match r {
                    Ok(0) | Err(_) => self.conn.handle_eof(),
                    Ok(n) => {
                        self.last_heard = Instant::now();
                        self.conn.handle_input(&buf[..n]);
                    }
                },
                w = wr.write(self.out.front()), if writing => match w {
                    Ok(0) | Err(_) => self.conn.handle_eof(),
                    Ok(n) => self.out.consume(n, Instant::now()),
                },
                p = session_tx.room(waiting_cost.unwrap_or(0)), if waiting_cost.is_some() => match p {
                    Ok(slot) => {
                        if let Some((m, _)) = self.session_pending.take() {
                            slot.send(m);
                        }
                        self.grace_until = Some(Instant::now() + RESUME_GRACE);
                    }
                    Err(budget::Closed) => break End::Session,
                },
                m = writer_rx.recv(), if session_enabled => match m {
                    Some(batch) => {
                        let now = Instant::now();
                        for msg in batch {
                            tr.handle_session(msg, now);
                        }
                    }
                    None => break End::Session,
                },
                Some(c) = cmd_rx.recv() => self.command(&mut tr, c),
                Some(n) = notice_rx.recv() => match n {
                    Notice::LocalDied { pid, reason } => tr.local_died(pid, &reason),
                    Notice::Spawned { spawner, spawn_ref, pid } => tr.spawned(&spawner, spawn_ref, pid),
                },
                () = sleep => {
                    let now = Instant::now();
                    if self.out.stalled_since.is_some_and(|t| now >= t + cfg.probe_timeout) {
                        break End::Limit(format!(
                            "the peer read nothing for {:?} (DpTcpConfig::probe_timeout) with {} bytes waiting",
                            cfg.probe_timeout, self.out.len
                        ));
                    }
                    tr.handle_timeout(now);
                    let quiet = !read_enabled || self.grace_until.is_some_and(|g| now < g);
                    if !quiet {
                        self.conn.handle_timeout(now);
                    }
                    if let (false, Some(i), false) = (self.probing, cfg.probe_interval, quiet) {
                        if now >= self.last_heard + i {
                            // Silent for a whole interval: ask for a sign
                            // of life (NT-TCP's ProbeSocket).
                            match self.conn.probe(now) {
                                Ok(()) => {
                                    tracing::trace!(peer = %self.peer, "probing a silent peer");
                                    self.probing = true;
                                }
                                Err(e) => tracing::debug!(peer = %self.peer, "cannot probe: {e}"),
                            }
                        }
                    }
                }
            }
        };
        match &end {
            End::Session => {
                // The session is gone; tell the peer our side of the
                // endpoint pair is closed, as closeEndPoint would, after
                // what is still due to it (bounded: the peer may not read).
                tracing::info!(peer = %self.peer, "session ended; closing the DP connection");
                if self.conn.close_endpoint().is_ok() {
                    if let Some(tx) = self.conn.poll_transmit() {
                        self.out.push(tx, Instant::now());
                    }
                }
                let out = &mut self.out;
                let _ = tokio::time::timeout(cfg.probe_timeout, async {
                    while out.len > 0 {
                        match wr.write(out.front()).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => out.consume(n, Instant::now()),
                        }
                    }
                })
                .await;
            }
            End::Peer(why) => {
                tracing::info!(peer = %self.peer, "DP connection ended: {why}");
            }
            End::Limit(why) => {
                tracing::warn!(peer = %self.peer, "closing the DP connection: {why}");
                StatsCell::bump(&self.shared.stats.closed_by_limit);
            }
        }
        // Every RemoteActor of the peer ends before the session hears of
        // the end (which would kill them as its children): those whose
        // process died with their reason, the others with DiedDisconnect.
        self.ending = true;
        let dying: Vec<_> = self
            .dying
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (group, reason) in dying {
            watch::stop_group(&group, &reason);
        }
        tr.connection_lost();
        self.lifecycle_events(&mut tr);
        self.shared
            .dead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget_peer(self.peer.as_str());
        let _ = tokio::time::timeout(cfg.probe_timeout, wr.shutdown()).await;
        let c = tr.counters();
        if c != Counters::default() {
            tracing::info!(peer = %self.peer, counters = ?c, "dropped traffic on this connection");
        }
        // The session (the marker RemoteActor's supervisor), to wait for.
        let session = ractor::pg::get_scoped_members(
            &crate::translate::REMOTE_SCOPE.to_owned(),
            &crate::translate::session_marker_group(tr.us(), &NodeId::new(self.peer.as_str())),
        )
        .into_iter()
        .find(|c| c.get_id().pid() == crate::translate::SESSION_MARKER_PID)
        .and_then(|c| c.try_get_supervisor())
        .filter(|s| s.is_message_type_of::<ractor_cluster::NodeSessionMessage>() == Some(true));
        {
            let mut st = self.shared.lock();
            if let Some(ep) = st.endpoint.as_mut() {
                ep.closed(&self.peer, self.socket);
            }
            if st.peers.get(&self.peer).map(|h| h.socket) == Some(self.socket) {
                st.peers.remove(&self.peer);
            }
            if session.is_some() {
                st.draining.insert(self.peer.clone());
            }
        }
        self.shared.notify();
        // Dropping `session_tx` ends the session's reader with EOF.
        drop(session_tx);
        if let Some(session) = session {
            let deadline = tokio::time::Instant::now() + cfg.handshake_timeout;
            while session.get_status() != ractor::ActorStatus::Stopped
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tracing::debug!(peer = %self.peer, status = ?session.get_status(), "previous session ended");
            self.shared.lock().draining.remove(&self.peer);
            self.shared.notify();
        }
    }

    fn command(&mut self, tr: &mut Translator, c: Command) {
        match c {
            Command::WhereIs {
                label,
                deadline,
                reply,
            } => {
                let id = self.next_request;
                self.next_request += 1;
                match tr.whereis(&label, id, deadline) {
                    Ok(()) => {
                        self.whereis.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Announce { pid, name } => tr.announce(pid, name),
            Command::Probe => match self.conn.probe(Instant::now()) {
                Ok(()) => self.probing = true,
                Err(e) => tracing::debug!(peer = %self.peer, "cannot probe: {e}"),
            },
            Command::Info { reply } => {
                let _ = reply.send(PeerInfo {
                    peer: self.peer.to_string(),
                    learned: tr.learned().clone(),
                    counters: tr.counters(),
                    kind: tr.kind().clone(),
                    incoming_connections: tr.incoming_connections(),
                    outbound_bytes: self.out.len,
                    outbound_peak: self.out.peak,
                    session_waits: self.session_waits,
                });
            }
        }
    }

    /// Moves everything that is ready between `conn`, the translator, the
    /// socket and the session, without waiting. Returns why to stop, if so.
    fn pump(
        &mut self,
        tr: &mut Translator,
        wr: &OwnedWriteHalf,
        session_tx: &budget::Sender<NetworkMessage>,
    ) -> Option<End> {
        let shared = self.shared.clone();
        let cfg = &shared.config;
        let mut end = None;
        loop {
            let mut progressed = false;
            let now = Instant::now();
            while let Some(ev) = self.conn.poll_event() {
                progressed = true;
                match ev {
                    ntt::Event::IncomingConnectionOpened(lcid) => {
                        tr.handle_peer_opened(lcid);
                        let open = tr.incoming_connections();
                        if open > cfg.max_incoming_connections && end.is_none() {
                            end = Some(End::Limit(format!(
                                "the peer opened {open} lightweight connections, more than DpTcpConfig::max_incoming_connections = {}",
                                cfg.max_incoming_connections
                            )));
                        }
                    }
                    ntt::Event::Received { lcid, payload } => {
                        tr.handle_peer_frame(lcid, payload, now)
                    }
                    ntt::Event::IncomingConnectionClosed(lcid) => tr.handle_peer_closed(lcid),
                    ntt::Event::CloseCancelled => {
                        if let Some(ep) = self.shared.lock().endpoint.as_mut() {
                            ep.reopened(&self.peer, self.socket);
                        }
                    }
                    ntt::Event::ProbeAck => {
                        tracing::trace!(peer = %self.peer, "probe answered");
                        self.probing = false;
                    }
                    ntt::Event::SocketClosed => end = Some(End::Peer("closed by handshake".into())),
                    ntt::Event::EndPointClosed { outgoing_lost } => {
                        end = Some(End::Peer(format!(
                            "peer closed its endpoint ({} of our connections lost)",
                            outgoing_lost.len()
                        )))
                    }
                    ntt::Event::PeerUnresponsive(kind) => {
                        end = Some(End::Peer(format!("peer unresponsive ({kind:?})")))
                    }
                    ntt::Event::ConnectionLost => end = Some(End::Peer("connection lost".into())),
                    ntt::Event::ProtocolError(e) => {
                        // Only this connection: the bytes that follow
                        // cannot be framed any more.
                        end = Some(End::Limit(format!("NT-TCP protocol error: {e}")));
                    }
                    other => tracing::debug!(peer = %self.peer, ?other, "unexpected NT-TCP event"),
                }
            }
            while let Some(a) = tr.poll_action() {
                progressed = true;
                self.act(a);
            }
            progressed |= self.lifecycle_events(tr);
            if let Some(bytes) = self.conn.poll_transmit() {
                progressed = true;
                self.out.push(bytes, now);
                if let Err(e) = self.out.flush_ready(wr) {
                    self.conn.handle_eof();
                    end.get_or_insert(End::Peer(format!("write failed: {e}")));
                }
                if self.out.len > cfg.max_outbound_bytes {
                    end.get_or_insert(End::Limit(format!(
                        "{} bytes wait to be written to a peer that does not read them, more than DpTcpConfig::max_outbound_bytes = {}",
                        self.out.len, cfg.max_outbound_bytes
                    )));
                }
            }
            while self.session_pending.is_none() {
                let Some(m) = tr.poll_session() else { break };
                progressed = true;
                let len = prost::Message::encoded_len(&m);
                match session_tx.try_send(m, len) {
                    Ok(()) => {}
                    Err(budget::TrySendError::Full(m, cost)) => {
                        // Back-pressure: stop reading the peer until the
                        // session has taken enough (messages or bytes) for
                        // this one to fit.
                        self.session_pending = Some((m, cost));
                        self.session_waits += 1;
                    }
                    Err(budget::TrySendError::Closed) => return Some(End::Session),
                }
            }
            if !progressed || end.is_some() {
                break;
            }
        }
        if end.is_none()
            && matches!(
                self.conn.state(),
                ConnectionState::Closed | ConnectionState::Failed
            )
        {
            end = Some(End::Peer(format!("connection {:?}", self.conn.state())));
        }
        end
    }

    /// Carries out the translator's events; returns whether there were any.
    fn lifecycle_events(&mut self, tr: &mut Translator) -> bool {
        let mut any = false;
        while let Some(ev) = tr.poll_event() {
            any = true;
            match ev {
                Event::Recognized(kind) => {
                    if let Some(tx) = self.recognized.take() {
                        let _ = tx.send(kind);
                    }
                }
                Event::WhereIs { request, result } => {
                    if let Some(tx) = self.whereis.remove(&request) {
                        let _ = tx.send(result);
                    }
                }
                Event::WatchLocal { pid } => {
                    let cell = ractor::registry::where_is_pid(ractor::ActorId::Local(pid))
                        .filter(|c| c.get_status() < ractor::ActorStatus::Stopping);
                    match cell {
                        Some(cell) => {
                            if !watch::watch(&self.shared, cell) {
                                tracing::error!(pid, "DpTcp's watcher is gone; this actor's death will not be reported");
                            }
                        }
                        None => tr.local_died(pid, &DiedReason::UnknownId),
                    }
                }
                Event::StopLocal { pid, reason } => {
                    match ractor::registry::where_is_pid(ractor::ActorId::Local(pid)) {
                        Some(cell) => cell.stop(Some(reason)),
                        None => tracing::debug!(pid, "actor to stop is already gone"),
                    }
                }
                Event::RemoteDied { pid, reason } => {
                    let group = remote_group(tr.us(), &NodeId::new(self.peer.as_str()), pid);
                    // Remember first: a RemoteActor the session creates
                    // after this is stopped by the watcher.
                    self.shared
                        .dead
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(group.clone(), reason.clone());
                    if self.ending {
                        watch::stop_group(&group, &reason);
                    } else {
                        self.stop_after_barrier(group, reason);
                    }
                }
                Event::Spawn {
                    spawner,
                    spawn_ref,
                    label,
                    env,
                } => self.spawn(spawner, spawn_ref, label, env),
            }
        }
        any
    }

    /// Stops the RemoteActors of `group` once every message queued for
    /// them before their process's `Died` was handled (a reply sent just
    /// before the process ended must reach its caller): a barrier call
    /// ([`crate::translate::BARRIER_VARIANT`]) goes through the same path
    /// and is answered after them. Until then the stop is pending in
    /// `dying`, which the end of the connection carries out at once.
    fn stop_after_barrier(&self, group: String, reason: String) {
        let cells: Vec<_> =
            ractor::pg::get_scoped_members(&crate::translate::REMOTE_SCOPE.to_owned(), &group)
                .into_iter()
                .filter(|c| c.get_status() < ractor::ActorStatus::Stopping)
                .collect();
        if cells.is_empty() {
            return;
        }
        self.dying
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group.clone(), reason.clone());
        let dying = self.dying.clone();
        let limit = self.shared.config.call_timeout;
        tokio::spawn(async move {
            for cell in cells {
                let (tx, rx) = ractor::concurrency::oneshot();
                let barrier = ractor::message::SerializedMessage::Call {
                    args: Vec::new(),
                    reply: tx.into(),
                    variant: crate::translate::BARRIER_VARIANT.to_owned(),
                    metadata: None,
                };
                if cell.send_serialized(barrier).is_ok() {
                    // An error means the actor or the connection ended
                    // meanwhile; stopping is then all that is left.
                    let _ = tokio::time::timeout(limit, rx).await;
                }
            }
            let pending = dying
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&group);
            if pending.is_some() {
                watch::stop_group(&group, &reason);
            }
        });
    }

    /// Runs a Haskell `spawn` off this task; the answer comes back as
    /// [`Notice::Spawned`].
    fn spawn(&self, spawner: ProcessId, spawn_ref: SpawnRef, label: Option<String>, env: Bytes) {
        let factory = label
            .as_ref()
            .and_then(|l| self.shared.config.spawn.get(l))
            .cloned();
        let timeout = self.shared.config.call_timeout;
        let notices = self.notices.clone();
        let peer = self.peer.clone();
        tokio::spawn(async move {
            let started = match factory {
                Some(f) => match tokio::time::timeout(timeout, f(env)).await {
                    Ok(Ok(cell)) => {
                        tracing::info!(%peer, label = ?label, actor = %cell.get_id(), "Haskell spawned an actor");
                        Some(cell.get_id().pid())
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, label = ?label, "spawn factory failed: {e}; answering with a dead pid");
                        None
                    }
                    Err(_) => {
                        tracing::warn!(%peer, label = ?label, "spawn factory did not finish within {timeout:?}; answering with a dead pid");
                        None
                    }
                },
                None => {
                    tracing::warn!(%peer, label = ?label, "Haskell spawned a closure this node has no factory for; answering with a dead pid, as a DP node does");
                    None
                }
            };
            let pid = match started {
                Some(p) => Some(p),
                None => watch::stillborn_pid(format!("{label:?}")).await,
            };
            match pid {
                Some(pid) => {
                    let _ = notices.send(Notice::Spawned {
                        spawner,
                        spawn_ref,
                        pid,
                    });
                }
                None => {
                    tracing::error!(%peer, "could not even start a stand-in actor; spawn left unanswered")
                }
            }
        });
    }

    fn act(&mut self, a: DpAction) {
        match a {
            DpAction::Open { conn, from, to } => match self.conn.open() {
                Ok(lcid) => {
                    tracing::trace!(lcid, ?from, ?to, "opened lightweight connection");
                    self.lcids.insert(conn, lcid);
                }
                Err(e) => {
                    tracing::warn!(peer = %self.peer, ?to, "cannot open a lightweight connection: {e}")
                }
            },
            DpAction::Send { conn, frame } => {
                let Some(&lcid) = self.lcids.get(&conn) else {
                    tracing::warn!(peer = %self.peer, len = frame.len(), "frame for a connection that failed to open dropped");
                    return;
                };
                if let Err(e) = self.conn.send(lcid, &frame) {
                    tracing::warn!(peer = %self.peer, lcid, len = frame.len(), "frame not sent: {e}");
                }
            }
            DpAction::Close { conn } => {
                if let Some(lcid) = self.lcids.remove(&conn) {
                    if let Err(e) = self.conn.close(lcid) {
                        tracing::debug!(peer = %self.peer, lcid, "close failed: {e}");
                    }
                    if self.conn.state() == ConnectionState::Closing {
                        if let Some(ep) = self.shared.lock().endpoint.as_mut() {
                            ep.closing(&self.peer, self.socket);
                        }
                    }
                }
            }
        }
    }
}

// ----------------------------------------------------------------------
// The session's view

struct DpConnection {
    peer: EndPointAddress,
    peer_addr: SocketAddr,
    local_addr: SocketAddr,
    session_rx: budget::Receiver<NetworkMessage>,
    writer_tx: budget::Sender<Vec<NetworkMessage>>,
    kind: PeerKind,
}

impl TransportConnection for DpConnection {
    fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn peer_label(&self) -> String {
        self.peer.to_string()
    }

    fn authenticated_peer(&self) -> Option<AuthenticatedPeer> {
        match self.kind {
            // A kaisui node runs ractor_cluster's cookie handshake with us,
            // carried inside DP messages.
            PeerKind::Kaisui { .. } => None,
            // DP has no cookie: the peer is who its NT-TCP address says.
            PeerKind::Plain | PeerKind::Probing => Some(AuthenticatedPeer {
                name: self.peer.to_string(),
                connection_string: self.peer.to_string(),
            }),
        }
    }

    fn split(self: Box<Self>, _max: u64) -> (Box<dyn MessageReader>, Box<dyn MessageWriter>) {
        // Frame sizes are bounded by `Limits::max_frame_len` in the NT-TCP
        // decoder, before anything reaches the session.
        (
            Box::new(DpReader {
                rx: self.session_rx,
            }),
            Box::new(DpWriter { tx: self.writer_tx }),
        )
    }
}

struct DpReader {
    /// Taking a message gives its bytes back to the connection task.
    rx: budget::Receiver<NetworkMessage>,
}

impl MessageReader for DpReader {
    fn read_message(&mut self) -> BoxFuture<'_, io::Result<NetworkMessage>> {
        Box::pin(async move {
            self.rx
                .recv()
                .await
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "DP connection closed"))
        })
    }
}

struct DpWriter {
    tx: budget::Sender<Vec<NetworkMessage>>,
}

impl MessageWriter for DpWriter {
    fn write_messages<'a>(
        &'a mut self,
        messages: &'a [NetworkMessage],
    ) -> BoxFuture<'a, io::Result<()>> {
        // Waits while the channel is full in messages or in bytes: until
        // this returns, the session counts the batch against its own
        // outbound bound (`NodeServer::with_max_outbound_buffer`).
        let len = messages.iter().map(prost::Message::encoded_len).sum();
        Box::pin(async move {
            self.tx
                .send(messages.to_vec(), len)
                .await
                .map_err(|_| channel_closed())
        })
    }
}
