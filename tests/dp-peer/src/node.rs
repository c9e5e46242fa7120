//! The node: one NT-TCP endpoint, its sockets, lightweight connections
//! and processes.
//!
//! All protocol state lives in one `State` behind a synchronous mutex
//! and is only touched in short critical sections; socket tasks feed it
//! bytes and write what the [`Connection`]s transmit. Anything that must
//! wait (TCP connect, the connection response, a mailbox) waits outside the
//! lock, on a `watch` that is bumped whenever the state changes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dp_wire::binary::{decode_exact_shared, Encode};
use dp_wire::dp::{
    DidUnlinkNode, DidUnlinkProcess, DidUnmonitor, DiedReason, Identifier, LocalProcessId, Message,
    MonitorRef, NCMsg, NodeId, NodeMonitorNotification, ProcessId, ProcessMonitorNotification,
    ProcessSignal, Serializable, WhereIsReply,
};
use dp_wire::fingerprint::{Build, Fingerprint};
use dp_wire::ntt::{
    Connection, ConnectionState, EndPointAddress, EndPointId, Endpoint, Event, IncomingDecision,
    OutgoingDecision, RejectReason, SocketId,
};
use dp_wire::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;

use crate::exit::ExitReason;
use crate::msg::Messages;
use crate::PeerError;

/// How long a connect (TCP + NT-TCP handshake) may take. network-transport-tcp
/// has no connect timeout; a test peer must not hang forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long we wait for the peer's own request after it answered ours
/// Crossed before asking again (network-transport-tcp waits forever).
const CROSSED_WAIT: Duration = Duration::from_secs(2);
/// How long `unmonitor`/`unlink` wait for their own NC's acknowledgement
/// (Haskell waits forever; it comes at once).
const LOCAL_ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// lpidCounter of the first user process: 1-7 are a real node's service
/// processes (README 2.2).
const FIRST_USER_COUNTER: i32 = 8;

/// How to start a [`PlainNode`].
#[derive(Debug, Clone)]
pub struct PlainNodeConfig {
    /// Host to bind and to put in the address.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// The Haskell build whose fingerprints this node uses.
    pub build: Build,
    /// Bounds on what is accepted from the wire.
    pub limits: Limits,
    /// `lpidUnique`; random if `None`. Tests that compare bytes with the
    /// captures set the captured value.
    pub unique: Option<i32>,
    /// How long a ProbeSocket waits for its ack.
    pub probe_timeout: Duration,
}

impl PlainNodeConfig {
    /// Defaults (captured build, random port and unique) on `host`.
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: 0,
            build: Build::default(),
            limits: Limits::default(),
            unique: None,
            probe_timeout: dp_wire::ntt::DEFAULT_PROBE_TIMEOUT,
        }
    }
}

/// Every byte received on one TCP connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedStream {
    /// The remote socket address.
    pub peer: SocketAddr,
    /// Whether we opened the TCP connection.
    pub initiated_by_us: bool,
    /// The bytes, starting with the request (listener) or response
    /// (initiator).
    pub bytes: Vec<u8>,
}

/// One live TCP connection as the node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSummary {
    /// The remote endpoint, once known.
    pub endpoint: Option<String>,
    /// Whether we opened the TCP connection.
    pub initiated_by_us: bool,
    /// The NT-TCP state.
    pub state: ConnectionState,
    /// Our open lightweight connections on it.
    pub outgoing: usize,
    /// The peer's open lightweight connections on it.
    pub incoming: usize,
}

enum SockCmd {
    Write(Vec<u8>),
    /// Flush, then shut the socket down.
    Close,
    /// Drop the socket now.
    Abort,
}

/// What happened to our connection request.
enum ConnectOutcome {
    Accepted,
    Rejected(RejectReason, Option<SocketId>),
    Failed(String),
}

/// What an incoming lightweight connection carries (`IncomingTarget`).
#[derive(Debug, Clone, Copy)]
enum Inbound {
    /// Waiting for the Identifier frame.
    Uninit,
    ToProc(LocalProcessId),
    ToNode,
    /// Unknown target: later frames are dropped.
    Forgotten,
}

/// A cached outgoing lightweight connection (`localConnections`).
#[derive(Debug, Clone, Copy)]
enum OutConn {
    Open {
        socket: SocketId,
        lcid: u32,
        /// `WithImplicitReconnect`: forgotten when the peer is lost, so the
        /// next send reconnects. Process-to-process sends stay broken
        /// instead, until [`Process::reconnect`].
        implicit: bool,
    },
    Broken,
}

struct Sock {
    conn: Connection,
    peer: Option<EndPointAddress>,
    initiated_by_us: bool,
    tx: mpsc::UnboundedSender<SockCmd>,
    wake: Arc<Notify>,
    received: Option<usize>,
    inbound: HashMap<u32, Inbound>,
    waiter: Option<oneshot::Sender<ConnectOutcome>>,
}

struct Deferred {
    socket: SocketId,
    from: Option<EndPointAddress>,
    target: EndPointId,
}

pub(crate) struct MbInner {
    pub(crate) queue: VecDeque<Message>,
    died: Option<DiedReason>,
    /// What ended the process, as the process saw it.
    exit: Option<ExitReason>,
}

/// A process's mailbox.
pub(crate) struct Mailbox {
    pub(crate) inner: Mutex<MbInner>,
    notify: Notify,
    /// Wakes every [`Process::wait_exit`] (`notify` wakes one receiver).
    ended: Notify,
}

impl Mailbox {
    fn new() -> Self {
        Self {
            inner: Mutex::new(MbInner {
                queue: VecDeque::new(),
                died: None,
                exit: None,
            }),
            notify: Notify::new(),
            ended: Notify::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, MbInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn push(&self, m: Message) {
        let mut g = self.lock();
        if g.died.is_none() {
            g.queue.push_back(m);
            drop(g);
            self.notify.notify_one();
        }
    }

    fn die(&self, reason: DiedReason) {
        self.end(ExitReason::from(reason.clone()), reason);
    }

    /// The process ends: `exit` is why, `died` what its node reports.
    fn end(&self, exit: ExitReason, died: DiedReason) {
        let mut g = self.lock();
        if g.died.is_none() {
            g.died = Some(died);
            g.exit = Some(exit);
            g.queue.clear();
        }
        drop(g);
        self.notify.notify_one();
        self.ended.notify_waiters();
    }

    /// Waits until the process ended (bounded by `timeout`).
    async fn wait_end(&self, timeout: Duration) -> Result<ExitReason, PeerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the check, so an end in between is seen.
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if let Some(e) = self.lock().exit.clone() {
                return Ok(e);
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return Err(PeerError::Timeout);
            }
        }
    }

    async fn take(
        &self,
        mut pred: impl FnMut(&Message) -> bool,
        timeout: Duration,
    ) -> Result<Message, PeerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let mut g = self.lock();
                if g.died.is_some() {
                    return Err(PeerError::Closed);
                }
                if let Some(i) = g.queue.iter().position(&mut pred) {
                    return Ok(g.queue.remove(i).expect("index from position"));
                }
            }
            // A push between the check and here leaves a permit, so the
            // wakeup is not lost.
            if tokio::time::timeout_at(deadline, self.notify.notified())
                .await
                .is_err()
            {
                return Err(PeerError::Timeout);
            }
        }
    }
}

pub(crate) struct State {
    endpoint: Endpoint,
    sockets: HashMap<SocketId, Sock>,
    next_socket: SocketId,
    pub(crate) processes: HashMap<LocalProcessId, Arc<Mailbox>>,
    next_counter: i32,
    /// `registeredHere`.
    pub(crate) registry: BTreeMap<String, ProcessId>,
    /// `registeredOnNodes`: local pids registered in other nodes'
    /// registries, so their death can be forwarded there.
    pub(crate) registered_on_nodes: BTreeMap<ProcessId, Vec<(NodeId, i32)>>,
    /// The NC's link and monitor tables (`_links`, `_monitors`).
    pub(crate) watches: crate::nc::Watches,
    conns: HashMap<(Identifier, Identifier), OutConn>,
    received: Vec<ReceivedStream>,
    deferred: Vec<Deferred>,
    crossed_pending: HashMap<EndPointAddress, Instant>,
    pub(crate) violations: Vec<String>,
    pub(crate) closed: bool,
    tasks: Vec<JoinHandle<()>>,
    writers: Vec<JoinHandle<()>>,
}

pub(crate) struct Shared {
    pub(crate) node_id: NodeId,
    address: EndPointAddress,
    pub(crate) messages: Messages,
    pub(crate) limits: Limits,
    unique: i32,
    probe_timeout: Duration,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
    pub(crate) nc_tx: crate::nc::NcTx,
}

/// A handle on a plain distributed-process node (cheap to clone).
#[derive(Clone)]
pub struct PlainNode {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PlainNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainNode")
            .field("node_id", &self.shared.node_id)
            .finish()
    }
}

fn random_unique() -> i32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish() as i32
}

impl PlainNode {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Listens on `host:0`; the NodeId is `host:port:0`.
    pub async fn start(host: &str) -> std::io::Result<PlainNode> {
        Self::start_with(PlainNodeConfig::new(host)).await
    }

    /// Starts a node as configured.
    pub async fn start_with(config: PlainNodeConfig) -> std::io::Result<PlainNode> {
        let listener = TcpListener::bind((config.host.as_str(), config.port)).await?;
        let port = listener.local_addr()?.port();
        let address = EndPointAddress::new(&config.host, &port.to_string(), 0)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let node_id = NodeId::new(address.as_str());
        let (nc_tx, nc_rx) = crate::nc::NcTx::channel();
        let shared = Arc::new(Shared {
            node_id,
            messages: Messages::new(config.build),
            limits: config.limits,
            unique: config.unique.unwrap_or_else(random_unique),
            probe_timeout: config.probe_timeout,
            state: Mutex::new(State {
                endpoint: Endpoint::new(address.clone()),
                sockets: HashMap::new(),
                next_socket: 1,
                processes: HashMap::new(),
                next_counter: FIRST_USER_COUNTER,
                registry: BTreeMap::new(),
                registered_on_nodes: BTreeMap::new(),
                watches: Default::default(),
                conns: HashMap::new(),
                received: Vec::new(),
                deferred: Vec::new(),
                crossed_pending: HashMap::new(),
                violations: Vec::new(),
                closed: false,
                tasks: Vec::new(),
                writers: Vec::new(),
            }),
            address,
            changed: watch::Sender::new(0),
            nc_tx,
        });
        tracing::debug!(node = %shared.node_id, "plain DP node started");
        let accept = tokio::spawn(accept_loop(shared.clone(), listener));
        let nc = tokio::spawn(crate::nc::run(shared.clone(), nc_rx));
        shared.lock().tasks.extend([accept, nc]);
        Ok(PlainNode { shared })
    }

    /// This node's id (`host:port:0`).
    pub fn node_id(&self) -> NodeId {
        self.shared.node_id.clone()
    }

    /// The Haskell build this node pretends to be.
    pub fn build(&self) -> &Build {
        self.shared.messages.build()
    }

    /// Message builders with this node's build.
    pub fn messages(&self) -> &Messages {
        &self.shared.messages
    }

    /// A new process. Counters start at 8, as on a real node.
    pub fn spawn(&self) -> Process {
        let mut st = self.shared.lock();
        let local = LocalProcessId {
            unique: self.shared.unique,
            counter: st.next_counter,
        };
        st.next_counter += 1;
        let mailbox = Arc::new(Mailbox::new());
        if st.closed {
            mailbox.die(DiedReason::Exception("node closed".into()));
        } else {
            st.processes.insert(local, mailbox.clone());
        }
        Process {
            shared: self.shared.clone(),
            pid: ProcessId {
                node: self.shared.node_id.clone(),
                local,
            },
            mailbox,
            monitor_counter: AtomicI32::new(0),
        }
    }

    /// Registers `name` in the local registry (like `register`; an
    /// existing name is replaced, with a warning).
    pub fn register(&self, name: &str, pid: &ProcessId) {
        let mut st = self.shared.lock();
        if let Some(old) = st.registry.insert(name.to_owned(), pid.clone()) {
            tracing::warn!(name, %old, new = %pid, "register replaced an existing name");
        }
    }

    /// The local registry's entry for `name` (like `whereis`).
    pub fn whereis(&self, name: &str) -> Option<ProcessId> {
        self.shared.lock().registry.get(name).cloned()
    }

    /// Waits until the node controller has nothing left to do: everything
    /// queued before the call is handled, and so is whatever that queued in
    /// turn (a link exception's `Died`, a lost send's disconnect). Its
    /// sends are written to the sockets by then. For tests that must show
    /// that nothing happens.
    pub async fn nc_settled(&self) -> Result<(), PeerError> {
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        loop {
            let rx = self.shared.nc_tx.barrier().ok_or(PeerError::Closed)?;
            match tokio::time::timeout_at(deadline, rx).await {
                Err(_) => return Err(PeerError::Timeout),
                Ok(Err(_)) => return Err(PeerError::Closed),
                Ok(Ok(true)) => return Ok(()),
                Ok(Ok(false)) => {}
            }
        }
    }

    /// The NC's monitors: `(watched, watcher, ref)`, in Haskell's order.
    /// Both ends of a remote monitor keep an entry, as in Node.hs.
    pub fn monitors(&self) -> Vec<(Identifier, ProcessId, MonitorRef)> {
        self.shared.lock().watches.monitor_list()
    }

    /// The NC's links: `(linked-to, linker)`, in Haskell's order.
    pub fn links(&self) -> Vec<(Identifier, ProcessId)> {
        self.shared.lock().watches.link_list()
    }

    /// Every byte received, per TCP connection, in accept/connect order.
    pub fn received(&self) -> Vec<ReceivedStream> {
        self.shared.lock().received.clone()
    }

    /// The live TCP connections.
    pub fn sockets(&self) -> Vec<SocketSummary> {
        let st = self.shared.lock();
        let mut ids: Vec<_> = st.sockets.keys().copied().collect();
        ids.sort_unstable();
        ids.iter()
            .map(|id| {
                let s = &st.sockets[id];
                SocketSummary {
                    endpoint: s.peer.as_ref().map(|p| p.to_string()),
                    initiated_by_us: s.initiated_by_us,
                    state: s.conn.state(),
                    outgoing: s.conn.outgoing().count(),
                    incoming: s.conn.incoming().count(),
                }
            })
            .collect()
    }

    /// Things the peer received that a Haskell node would have choked on
    /// (NT-TCP protocol errors, undecodable frames, NCMsgs the node
    /// controller rejects). Tests of another implementation assert this
    /// stays empty.
    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }

    /// `closeLocalNode`: CloseEndPoint on every connection, then shut
    /// down. Processes die without closing their connections one by one
    /// (capture 08).
    pub async fn close(self) {
        let writers = {
            let mut st = self.shared.lock();
            if st.closed {
                return;
            }
            st.closed = true;
            for s in st.sockets.values_mut() {
                if matches!(
                    s.conn.state(),
                    ConnectionState::Valid | ConnectionState::Closing
                ) {
                    let _ = s.conn.close_endpoint();
                }
            }
            self.shared.flush(&mut st);
            // Sockets still handshaking just close.
            for (_, s) in st.sockets.drain() {
                let _ = s.tx.send(SockCmd::Close);
                s.wake.notify_one();
            }
            for (_, mb) in st.processes.drain() {
                mb.die(DiedReason::Exception("thread killed".into()));
            }
            for t in st.tasks.drain(..) {
                t.abort();
            }
            std::mem::take(&mut st.writers)
        };
        self.shared.changed.send_modify(|g| *g += 1);
        for w in writers {
            let _ = tokio::time::timeout(Duration::from_secs(2), w).await;
        }
        tracing::debug!(node = %self.shared.node_id, "plain DP node closed");
    }

    /// Abrupt end, like SIGKILL: every socket is dropped with no goodbye.
    pub fn kill(self) {
        {
            let mut guard = self.shared.lock();
            let st = &mut *guard;
            st.closed = true;
            for t in st.tasks.drain(..).chain(st.writers.drain(..)) {
                t.abort();
            }
            st.sockets.clear();
            for (_, mb) in st.processes.drain() {
                mb.die(DiedReason::Exception("killed".into()));
            }
        }
        self.shared.changed.send_modify(|g| *g += 1);
    }
}

/// A process on a [`PlainNode`]. Dropping it ends the process normally.
pub struct Process {
    shared: Arc<Shared>,
    pid: ProcessId,
    mailbox: Arc<Mailbox>,
    /// `monitorCounter`: MonitorRef counters are per process, from 0.
    monitor_counter: AtomicI32,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process").field("pid", &self.pid).finish()
    }
}

impl Process {
    /// Its pid.
    pub fn pid(&self) -> ProcessId {
        self.pid.clone()
    }

    /// Whether it still runs (it may have been killed by an NCMsg).
    pub fn is_alive(&self) -> bool {
        self.mailbox.lock().died.is_none()
    }

    /// Why it ended, if it did.
    pub fn died(&self) -> Option<DiedReason> {
        self.mailbox.lock().died.clone()
    }

    fn check_alive(&self) -> Result<(), PeerError> {
        if self.is_alive() {
            Ok(())
        } else {
            Err(PeerError::Closed)
        }
    }

    /// `send`: over the lightweight connection ProcessIdentifier me ->
    /// ProcessIdentifier `to`, set up on first use. A local target gets the
    /// message directly. After the connection to the peer was lost, sends
    /// to its processes fail with [`PeerError::Closed`] (a Haskell `send`
    /// drops them silently) until [`reconnect`](Self::reconnect).
    pub async fn send(&self, to: &ProcessId, msg: Message) -> Result<(), PeerError> {
        self.check_alive()?;
        if to.node == self.shared.node_id {
            self.shared.deliver_local(to, msg);
            return Ok(());
        }
        let mut frame = Vec::new();
        msg.encode_frame(&mut frame);
        self.shared
            .send_payload(
                Identifier::Process(self.pid.clone()),
                Identifier::Process(to.clone()),
                frame,
                false,
            )
            .await
    }

    /// `reconnect`: forgets (and closes) the connection to `to`, so the
    /// next send opens a new one.
    pub fn reconnect(&self, to: &ProcessId) {
        self.shared.disconnect(
            &Identifier::Process(self.pid.clone()),
            &Identifier::Process(to.clone()),
        );
    }

    /// `sendCtrlMsg (Just node)`: an NCMsg from ProcessIdentifier me,
    /// straight to `node`'s NC over the node-to-node connection.
    pub async fn send_ctrl(&self, node: &NodeId, signal: ProcessSignal) -> Result<(), PeerError> {
        self.check_alive()?;
        let msg = NCMsg {
            sender: Identifier::Process(self.pid.clone()),
            signal,
        };
        if *node == self.shared.node_id {
            return self.shared.nc_tx.send(msg);
        }
        self.shared.send_ctrl_to_node(node, &msg).await
    }

    /// `nsendRemote`: NamedSend from ProcessIdentifier me to `node`'s NC.
    pub async fn nsend_remote(
        &self,
        node: &NodeId,
        name: &str,
        msg: Message,
    ) -> Result<(), PeerError> {
        self.check_alive()?;
        if *node == self.shared.node_id {
            // `nsendRemote` to the own node is `nsend`.
            if let Some(to) = self.shared.lock().registry.get(name).cloned() {
                self.shared.deliver_local(&to, msg);
            }
            return Ok(());
        }
        self.send_ctrl(
            node,
            ProcessSignal::NamedSend {
                label: name.to_owned(),
                message: msg,
            },
        )
        .await
    }

    /// `usend`: UnreliableSend from ProcessIdentifier me to the NC of
    /// `to`'s node (no process connection).
    pub async fn usend(&self, to: &ProcessId, msg: Message) -> Result<(), PeerError> {
        self.send_ctrl(
            &to.node,
            ProcessSignal::UnreliableSend {
                to: to.local,
                message: msg,
            },
        )
        .await
    }

    /// `whereisRemote`: WhereIs to `node`'s NC, then waits for the
    /// WhereIsReply with this label in the mailbox.
    pub async fn whereis_remote(
        &self,
        node: &NodeId,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<ProcessId>, PeerError> {
        self.send_ctrl(node, ProcessSignal::WhereIs(name.to_owned()))
            .await?;
        let build = self.shared.messages.build().clone();
        let fp = <WhereIsReply as Serializable>::fingerprint(&build);
        let limits = self.shared.limits.clone();
        let m = self
            .mailbox
            .take(
                |m| {
                    m.fingerprint == fp
                        && m.decode_as::<WhereIsReply>(&build, &limits)
                            .ok()
                            .flatten()
                            .is_some_and(|r| r.label == name)
                },
                timeout,
            )
            .await?;
        let reply: WhereIsReply = m
            .decode_as(&build, &limits)
            .map_err(|e| PeerError::Protocol(e.to_string()))?
            .ok_or_else(|| PeerError::Protocol("not a WhereIsReply".into()))?;
        Ok(reply.pid)
    }

    /// The next message in the mailbox.
    pub async fn expect(&self, timeout: Duration) -> Result<Message, PeerError> {
        self.mailbox.take(|_| true, timeout).await
    }

    /// The first message of type `fp` (others stay queued), like
    /// `expect :: Process a`.
    pub async fn expect_fp(
        &self,
        fp: Fingerprint,
        timeout: Duration,
    ) -> Result<Message, PeerError> {
        self.mailbox.take(|m| m.fingerprint == fp, timeout).await
    }

    /// The first message `pred` accepts (others stay queued), like
    /// `receiveWait [matchIf ...]`.
    pub async fn receive_matching(
        &self,
        pred: impl FnMut(&Message) -> bool,
        timeout: Duration,
    ) -> Result<Message, PeerError> {
        self.mailbox.take(pred, timeout).await
    }

    /// Messages waiting in the mailbox.
    pub fn queue_len(&self) -> usize {
        self.mailbox.lock().queue.len()
    }

    /// `sendCtrlMsg Nothing`: an NCMsg from this process to its own NC,
    /// which forwards it to the node the signal names (`destNid`).
    fn send_local_ctrl(&self, signal: ProcessSignal) -> Result<(), PeerError> {
        self.check_alive()?;
        self.shared.nc_tx.send(NCMsg {
            sender: Identifier::Process(self.pid.clone()),
            signal,
        })
    }

    /// `monitor'`: a new MonitorRef for `ident`, and a Monitor to the NC.
    fn monitor_ident(&self, ident: Identifier) -> Result<MonitorRef, PeerError> {
        self.check_alive()?;
        let r = MonitorRef {
            ident,
            counter: self.monitor_counter.fetch_add(1, Ordering::Relaxed),
        };
        tracing::debug!(pid = %self.pid, monitor = ?r, "monitor");
        self.send_local_ctrl(ProcessSignal::Monitor(r.clone()))?;
        Ok(r)
    }

    /// `monitor`: when `pid` ends, is unknown, or its node is lost, a
    /// `ProcessMonitorNotification` with this ref arrives in the mailbox
    /// (see [`expect_monitor_notification`](Self::expect_monitor_notification)).
    pub fn monitor(&self, pid: &ProcessId) -> Result<MonitorRef, PeerError> {
        self.monitor_ident(Identifier::Process(pid.clone()))
    }

    /// `monitorNode`: a `NodeMonitorNotification` arrives when the
    /// connection to `node` is lost (a clean `closeLocalNode` there looks
    /// the same, capture 18).
    pub fn monitor_node(&self, node: &NodeId) -> Result<MonitorRef, PeerError> {
        self.monitor_ident(Identifier::Node(node.clone()))
    }

    /// `unmonitorAsync`: an Unmonitor to the NC, without waiting.
    pub fn unmonitor_async(&self, r: &MonitorRef) -> Result<(), PeerError> {
        self.send_local_ctrl(ProcessSignal::Unmonitor(r.clone()))
    }

    /// `unmonitor`: waits for the own NC's `DidUnmonitor`, then drops a
    /// notification for `r` that may already be queued. No notification
    /// for `r` arrives afterwards.
    pub async fn unmonitor(&self, r: &MonitorRef) -> Result<(), PeerError> {
        self.unmonitor_async(r)?;
        let (build, limits) = (self.shared.messages.build(), &self.shared.limits);
        let fp = <DidUnmonitor as Serializable>::fingerprint(build);
        self.mailbox
            .take(
                |m| {
                    m.fingerprint == fp
                        && m.decode_as::<DidUnmonitor>(build, limits)
                            .ok()
                            .flatten()
                            .is_some_and(|d| d.0 == *r)
                },
                LOCAL_ACK_TIMEOUT,
            )
            .await?;
        let nfp = <ProcessMonitorNotification as Serializable>::fingerprint(build);
        let mut g = self.mailbox.lock();
        if let Some(i) = g.queue.iter().position(|m| {
            m.fingerprint == nfp
                && m.decode_as::<ProcessMonitorNotification>(build, limits)
                    .ok()
                    .flatten()
                    .is_some_and(|n| n.monitor_ref == *r)
        }) {
            g.queue.remove(i);
        }
        Ok(())
    }

    /// `link`: when `pid` ends (normally too), is unknown, or its node is
    /// lost, this process ends with a `ProcessLinkException` (see
    /// [`exit_reason`](Self::exit_reason)). Links are one-way.
    pub fn link(&self, pid: &ProcessId) -> Result<(), PeerError> {
        self.send_local_ctrl(ProcessSignal::Link(Identifier::Process(pid.clone())))
    }

    /// `linkNode`: this process ends with a `NodeLinkException` when the
    /// connection to `node` is lost.
    pub fn link_node(&self, node: &NodeId) -> Result<(), PeerError> {
        self.send_local_ctrl(ProcessSignal::Link(Identifier::Node(node.clone())))
    }

    /// `unlink`: waits for the own NC's `DidUnlinkProcess`; no link
    /// exception for `pid` comes afterwards.
    pub async fn unlink(&self, pid: &ProcessId) -> Result<(), PeerError> {
        self.send_local_ctrl(ProcessSignal::Unlink(Identifier::Process(pid.clone())))?;
        self.expect_local_ack(&DidUnlinkProcess(pid.clone())).await
    }

    /// `unlinkNode`: waits for the own NC's `DidUnlinkNode`.
    pub async fn unlink_node(&self, node: &NodeId) -> Result<(), PeerError> {
        self.send_local_ctrl(ProcessSignal::Unlink(Identifier::Node(node.clone())))?;
        self.expect_local_ack(&DidUnlinkNode(node.clone())).await
    }

    /// Takes the acknowledgement equal to `ack` from the mailbox.
    async fn expect_local_ack<T: Serializable + PartialEq>(
        &self,
        ack: &T,
    ) -> Result<(), PeerError> {
        let (build, limits) = (self.shared.messages.build(), &self.shared.limits);
        let fp = T::fingerprint(build);
        self.mailbox
            .take(
                |m| {
                    m.fingerprint == fp
                        && m.decode_as::<T>(build, limits)
                            .ok()
                            .flatten()
                            .is_some_and(|d| d == *ack)
                },
                LOCAL_ACK_TIMEOUT,
            )
            .await
            .map(drop)
    }

    /// `kill pid reason`: via the own NC (so it cannot overtake an
    /// earlier monitor or link); `pid` ends with
    /// `DiedException "killed-by=<me>,reason=<reason>"`.
    pub fn kill(&self, pid: &ProcessId, reason: &str) -> Result<(), PeerError> {
        self.send_local_ctrl(ProcessSignal::Kill {
            target: pid.clone(),
            reason: reason.to_owned(),
        })
    }

    /// `exit pid reason` (named so because [`exit`](Self::exit) ends this
    /// process): via the own NC; `pid` ends with
    /// `DiedException "exit-from=<me>,reason=<r>"` for a String reason,
    /// `"exit-from=<me>"` for any other type.
    pub fn exit_process(&self, pid: &ProcessId, reason: Message) -> Result<(), PeerError> {
        self.send_local_ctrl(ProcessSignal::Exit {
            target: pid.clone(),
            reason,
        })
    }

    /// `die reason`: ends this process with
    /// `DiedException "exit-from=<me>,reason=<reason>"`.
    pub fn die(&self, reason: &str) {
        self.die_with(self.shared.messages.string(reason));
    }

    /// `die` with a reason of any type.
    pub fn die_with(&self, reason: Message) {
        self.shared.terminate_with(
            &self.pid,
            ExitReason::Exit {
                from: self.pid.clone(),
                reason,
            },
        );
    }

    /// Ends this process by an uncaught exception whose `show` is `shown`
    /// (`error "kaboom"` shows as the message plus its call stack).
    pub fn crash(&self, shown: &str) {
        self.shared
            .terminate_with(&self.pid, ExitReason::Exception(shown.to_owned()));
    }

    /// Ends this process so that its node reports exactly `reason` to
    /// watchers (any `DiedReason`, including ones no exception gives).
    pub fn end_with(&self, reason: DiedReason) {
        self.shared
            .terminate_with(&self.pid, ExitReason::Reported(reason));
    }

    /// What ended this process, if it ended: a link exception, a kill, an
    /// exit, its own `die`, …
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.mailbox.lock().exit.clone()
    }

    /// Waits (up to `timeout`) until this process ends, and says why.
    pub async fn wait_exit(&self, timeout: Duration) -> Result<ExitReason, PeerError> {
        self.mailbox.wait_end(timeout).await
    }

    /// The `ProcessMonitorNotification` for `r` (other messages stay
    /// queued).
    pub async fn expect_monitor_notification(
        &self,
        r: &MonitorRef,
        timeout: Duration,
    ) -> Result<ProcessMonitorNotification, PeerError> {
        self.expect_decoded(
            |n: &ProcessMonitorNotification| n.monitor_ref == *r,
            timeout,
        )
        .await
    }

    /// The `NodeMonitorNotification` for `r` (other messages stay queued).
    pub async fn expect_node_notification(
        &self,
        r: &MonitorRef,
        timeout: Duration,
    ) -> Result<NodeMonitorNotification, PeerError> {
        self.expect_decoded(|n: &NodeMonitorNotification| n.monitor_ref == *r, timeout)
            .await
    }

    /// The first message of type `T` that `pred` accepts, decoded.
    pub async fn expect_decoded<T: Serializable>(
        &self,
        mut pred: impl FnMut(&T) -> bool,
        timeout: Duration,
    ) -> Result<T, PeerError> {
        let (build, limits) = (self.shared.messages.build(), &self.shared.limits);
        let fp = T::fingerprint(build);
        let m = self
            .mailbox
            .take(
                |m| {
                    m.fingerprint == fp
                        && m.decode_as::<T>(build, limits)
                            .ok()
                            .flatten()
                            .is_some_and(|v| pred(&v))
                },
                timeout,
            )
            .await?;
        m.decode_as(build, limits)
            .map_err(|e| PeerError::Protocol(e.to_string()))?
            .ok_or_else(|| PeerError::Protocol("fingerprint changed".into()))
    }

    /// Ends the process normally: its outgoing lightweight connections are
    /// closed (CloseConnection, then CloseSocket if nothing else is open),
    /// and the NC learns `Died pid DiedNormal`.
    pub fn exit(self) {
        drop(self);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.shared.terminate(&self.pid, DiedReason::Normal);
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn violation(&self, st: &mut State, what: String) {
        tracing::warn!(node = %self.node_id, "{what}");
        st.violations.push(what);
    }

    /// Puts `msg` in the mailbox of local process `to`, if it lives
    /// (`ncEffectLocalSend`: looked up by local id only).
    pub(crate) fn deliver_local(&self, to: &ProcessId, msg: Message) {
        let mb = self.lock().processes.get(&to.local).cloned();
        match mb {
            Some(mb) => mb.push(msg),
            None => tracing::debug!(%to, "message to a dead or unknown local process dropped"),
        }
    }

    /// A local process ends with `reason` (no particular exception).
    pub(crate) fn terminate(&self, pid: &ProcessId, reason: DiedReason) {
        self.terminate_with(pid, ExitReason::from(reason));
    }

    /// A local process ends: close the connections it opened
    /// (`cleanupProcess`), then tell the NC (`Died pid reason`).
    pub(crate) fn terminate_with(&self, pid: &ProcessId, exit: ExitReason) {
        let reason = exit.died_reason(self.messages.build());
        let mut st = self.lock();
        let Some(mb) = st.processes.remove(&pid.local) else {
            return;
        };
        mb.end(exit, reason.clone());
        if st.closed {
            return;
        }
        let me = Identifier::Process(pid.clone());
        let mut mine: Vec<_> = st
            .conns
            .keys()
            .filter(|(from, _)| *from == me)
            .cloned()
            .collect();
        // Closed in `Map` key order, as `cleanupProcess` does (capture 04:
        // lcids 1025, 1026, 1027 for targets 8, 9, 10).
        mine.sort_by(|a, b| crate::nc::hs_cmp(&a.1, &b.1));
        for key in mine {
            if let Some(OutConn::Open { socket, lcid, .. }) = st.conns.remove(&key) {
                close_lightweight(&mut st, socket, lcid);
            }
        }
        self.pump(&mut st);
        drop(st);
        tracing::debug!(%pid, ?reason, "process ended");
        let _ = self.nc_tx.send(NCMsg {
            sender: me.clone(),
            signal: ProcessSignal::Died { who: me, reason },
        });
    }

    /// Forgets and closes the cached connection `from -> to`.
    fn disconnect(&self, from: &Identifier, to: &Identifier) {
        let mut st = self.lock();
        if let Some(OutConn::Open { socket, lcid, .. }) =
            st.conns.remove(&(from.clone(), to.clone()))
        {
            close_lightweight(&mut st, socket, lcid);
            self.pump(&mut st);
        }
    }

    /// An NCMsg on the node-to-node connection to `node`
    /// (`WithImplicitReconnect`).
    pub(crate) async fn send_ctrl_to_node(
        self: &Arc<Self>,
        node: &NodeId,
        msg: &NCMsg,
    ) -> Result<(), PeerError> {
        self.send_payload(
            Identifier::Node(self.node_id.clone()),
            Identifier::Node(node.clone()),
            msg.to_binary(),
            true,
        )
        .await
    }

    /// `sendPayload`: one frame on the cached connection `from -> to`,
    /// setting it up (connect, CreatedNewConnection, Identifier frame) if
    /// there is none. A failure tells the NC
    /// `Died (NodeIdentifier (nodeOf to)) DiedDisconnect`, as Messaging.hs
    /// does, so monitors and links of that node fire (unreachable node).
    pub(crate) async fn send_payload(
        self: &Arc<Self>,
        from: Identifier,
        to: Identifier,
        payload: Vec<u8>,
        implicit: bool,
    ) -> Result<(), PeerError> {
        let r = self
            .send_payload_once(from, to.clone(), payload, implicit)
            .await;
        if let Err(e) = &r {
            if !self.lock().closed {
                tracing::debug!(node = %self.node_id, ?to, error = %e, "send failed: reporting a disconnect");
                let _ = self.nc_tx.send(NCMsg {
                    sender: to.clone(),
                    signal: ProcessSignal::Died {
                        who: Identifier::Node(to.node().clone()),
                        reason: DiedReason::Disconnect,
                    },
                });
            }
        }
        r
    }

    async fn send_payload_once(
        self: &Arc<Self>,
        from: Identifier,
        to: Identifier,
        payload: Vec<u8>,
        implicit: bool,
    ) -> Result<(), PeerError> {
        let key = (from, to);
        // Two rounds: set up, then send; a third only if the socket went
        // away in between.
        for _ in 0..3 {
            {
                let mut st = self.lock();
                if st.closed {
                    return Err(PeerError::Closed);
                }
                match st.conns.get(&key).copied() {
                    Some(OutConn::Open { socket, lcid, .. }) => {
                        let sent = st
                            .sockets
                            .get_mut(&socket)
                            .map(|s| s.conn.send(lcid, &payload));
                        if let Some(Ok(())) = sent {
                            self.pump(&mut st);
                            return Ok(());
                        }
                        // What `sendPayload` reports to its NC as
                        // `Died (NodeIdentifier ..) DiedDisconnect`.
                        tracing::debug!(to = ?key.1, ?sent, "send on a broken connection");
                        if implicit {
                            st.conns.remove(&key);
                        } else {
                            st.conns.insert(key.clone(), OutConn::Broken);
                        }
                        return Err(PeerError::Closed);
                    }
                    Some(OutConn::Broken) => return Err(PeerError::Closed),
                    None => {}
                }
            }
            let addr = EndPointAddress::parse(key.1.node().as_bytes())
                .map_err(|e| PeerError::Protocol(format!("bad node address: {e}")))?;
            let socket = self.nt_connect(&addr).await?;
            let mut st = self.lock();
            let Some(s) = st.sockets.get_mut(&socket) else {
                continue;
            };
            match s.conn.open() {
                Ok(lcid) => {
                    s.conn
                        .send(lcid, &key.1.to_binary())
                        .map_err(|e| PeerError::Protocol(e.to_string()))?;
                    // A concurrent setup may have cached another one
                    // already; the later one wins, as in `connBetween`.
                    st.conns.insert(
                        key.clone(),
                        OutConn::Open {
                            socket,
                            lcid,
                            implicit,
                        },
                    );
                    self.pump(&mut st);
                }
                Err(e) => tracing::debug!(error = %e, "open failed; retrying"),
            }
        }
        Err(PeerError::Closed)
    }

    /// `NT.connect`'s socket part: a Valid socket to `to`, reusing the one
    /// we have in either direction.
    async fn nt_connect(self: &Arc<Self>, to: &EndPointAddress) -> Result<SocketId, PeerError> {
        let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        loop {
            let mut changed = self.changed.subscribe();
            let action = {
                let mut st = self.lock();
                if st.closed {
                    return Err(PeerError::Closed);
                }
                let waiting_for_crossed = match st.crossed_pending.get(to) {
                    Some(t) if t.elapsed() < CROSSED_WAIT && st.endpoint.peer(to).is_none() => true,
                    Some(_) => {
                        st.crossed_pending.remove(to);
                        false
                    }
                    None => false,
                };
                if waiting_for_crossed {
                    None
                } else {
                    let id = st.next_socket;
                    match st.endpoint.outgoing(to, id) {
                        OutgoingDecision::Reuse(s) => {
                            if st
                                .sockets
                                .get(&s)
                                .is_some_and(|s| s.conn.state() == ConnectionState::Valid)
                            {
                                return Ok(s);
                            }
                            None
                        }
                        OutgoingDecision::Wait(_) => None,
                        OutgoingDecision::Connect(id) => {
                            st.next_socket += 1;
                            Some(self.new_outgoing(&mut st, id, to))
                        }
                    }
                }
            };
            match action {
                None => {
                    // Poll now and then too: the crossed wait ends by time.
                    let wake = tokio::time::Instant::now() + Duration::from_millis(100);
                    if tokio::time::timeout_at(deadline.min(wake), changed.changed())
                        .await
                        .is_err()
                        && tokio::time::Instant::now() >= deadline
                    {
                        return Err(PeerError::Timeout);
                    }
                }
                Some((id, outcome)) => {
                    match tokio::time::timeout_at(deadline, outcome).await {
                        Err(_) => return Err(PeerError::Timeout),
                        Ok(Err(_)) => return Err(PeerError::Closed),
                        Ok(Ok(ConnectOutcome::Accepted)) => return Ok(id),
                        Ok(Ok(ConnectOutcome::Rejected(RejectReason::Crossed, Some(other)))) => {
                            return Ok(other)
                        }
                        // Crossed, and the peer's request is still on its
                        // way: the loop waits for it.
                        Ok(Ok(ConnectOutcome::Rejected(RejectReason::Crossed, None))) => {}
                        Ok(Ok(ConnectOutcome::Rejected(r, _))) => {
                            return Err(PeerError::Protocol(format!(
                                "connection request rejected: {r:?}"
                            )))
                        }
                        Ok(Ok(ConnectOutcome::Failed(e))) => {
                            return Err(PeerError::Io(std::io::Error::new(
                                std::io::ErrorKind::ConnectionRefused,
                                e,
                            )))
                        }
                    }
                }
            }
        }
    }

    /// Registers socket `id` for a request to `to` and starts connecting.
    fn new_outgoing(
        self: &Arc<Self>,
        st: &mut State,
        id: SocketId,
        to: &EndPointAddress,
    ) -> (SocketId, oneshot::Receiver<ConnectOutcome>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (wtx, wrx) = oneshot::channel();
        let mut conn = Connection::initiator(Some(&self.address), to, self.limits.clone());
        conn.set_probe_timeout(self.probe_timeout);
        st.sockets.insert(
            id,
            Sock {
                conn,
                peer: Some(to.clone()),
                initiated_by_us: true,
                tx,
                wake: Arc::new(Notify::new()),
                received: None,
                inbound: HashMap::new(),
                waiter: Some(wtx),
            },
        );
        // The request waits in the channel until the socket is up.
        self.flush(st);
        let task = tokio::spawn(connect_task(self.clone(), id, to.clone(), rx));
        st.tasks.push(task);
        (id, wrx)
    }

    /// Starts the reader and writer of socket `id`.
    fn start_socket(
        self: &Arc<Self>,
        st: &mut State,
        id: SocketId,
        stream: TcpStream,
        rx: mpsc::UnboundedReceiver<SockCmd>,
    ) {
        let peer = stream
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let _ = stream.set_nodelay(true);
        let Some(s) = st.sockets.get_mut(&id) else {
            return;
        };
        st.received.push(ReceivedStream {
            peer,
            initiated_by_us: s.initiated_by_us,
            bytes: Vec::new(),
        });
        s.received = Some(st.received.len() - 1);
        let wake = s.wake.clone();
        let (rd, wr) = stream.into_split();
        let writer = tokio::spawn(writer_task(wr, rx));
        let reader = tokio::spawn(reader_task(self.clone(), id, rd, wake));
        st.writers.retain(|t| !t.is_finished());
        st.tasks.retain(|t| !t.is_finished());
        st.writers.push(writer);
        st.tasks.push(reader);
    }

    /// Moves transmit buffers to the writers and retires ended sockets.
    fn flush(&self, st: &mut State) {
        let mut gone = Vec::new();
        for (id, s) in st.sockets.iter_mut() {
            if let Some(bytes) = s.conn.poll_transmit() {
                let _ = s.tx.send(SockCmd::Write(bytes));
            }
            match s.conn.state() {
                ConnectionState::Closed => {
                    let _ = s.tx.send(SockCmd::Close);
                    gone.push(*id);
                }
                ConnectionState::Failed => {
                    let _ = s.tx.send(SockCmd::Abort);
                    gone.push(*id);
                }
                _ => {}
            }
        }
        for id in gone {
            if let Some(s) = st.sockets.remove(&id) {
                s.wake.notify_one();
                if let Some(p) = &s.peer {
                    st.endpoint.closed(p, id);
                }
                if let Some(w) = s.waiter {
                    let _ = w.send(ConnectOutcome::Failed("socket closed".into()));
                }
            }
        }
    }

    /// Handles every pending event, then flushes and wakes waiters.
    pub(crate) fn pump(&self, st: &mut State) {
        loop {
            let mut events = Vec::new();
            for (id, s) in st.sockets.iter_mut() {
                while let Some(ev) = s.conn.poll_event() {
                    events.push((*id, ev));
                }
            }
            if events.is_empty() {
                break;
            }
            for (id, ev) in events {
                self.on_event(st, id, ev);
            }
        }
        self.flush(st);
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
    }

    fn on_event(&self, st: &mut State, id: SocketId, ev: Event) {
        tracing::trace!(node = %self.node_id, socket = id, ?ev, "NT-TCP event");
        match ev {
            Event::ConnectionRequested { target, from } => self.on_request(st, id, target, from),
            Event::Accepted => {
                let Some(s) = st.sockets.get_mut(&id) else {
                    return;
                };
                let waiter = s.waiter.take();
                if let Some(p) = s.peer.clone() {
                    st.endpoint.established(&p, id);
                }
                if let Some(w) = waiter {
                    let _ = w.send(ConnectOutcome::Accepted);
                }
            }
            Event::Rejected(reason) => {
                let Some(s) = st.sockets.get_mut(&id) else {
                    return;
                };
                let waiter = s.waiter.take();
                let peer = s.peer.clone();
                let other = peer.as_ref().and_then(|p| st.endpoint.rejected(p, id));
                if let (RejectReason::Crossed, None, Some(p)) = (&reason, other, &peer) {
                    st.crossed_pending.insert(p.clone(), Instant::now());
                }
                tracing::debug!(?reason, ?other, "our connection request was rejected");
                if let Some(w) = waiter {
                    let _ = w.send(ConnectOutcome::Rejected(reason, other));
                }
            }
            Event::IncomingConnectionOpened(lcid) => {
                if let Some(s) = st.sockets.get_mut(&id) {
                    s.inbound.insert(lcid, Inbound::Uninit);
                }
            }
            Event::Received { lcid, payload } => self.on_frame(st, id, lcid, payload),
            Event::IncomingConnectionClosed(lcid) => {
                if let Some(s) = st.sockets.get_mut(&id) {
                    s.inbound.remove(&lcid);
                }
            }
            Event::CloseCancelled => {
                if let Some(p) = st.sockets.get(&id).and_then(|s| s.peer.clone()) {
                    st.endpoint.reopened(&p, id);
                }
                self.retry_deferred(st);
            }
            Event::SocketClosed => self.socket_gone(st, id, false),
            Event::EndPointClosed { outgoing_lost } => {
                // NT-TCP reports a loss only if we had connections open.
                self.socket_gone(st, id, !outgoing_lost.is_empty())
            }
            Event::ProbeAck => tracing::debug!(socket = id, "probe acknowledged"),
            Event::PeerUnresponsive(kind) => {
                tracing::debug!(socket = id, ?kind, "peer unresponsive");
                self.socket_gone(st, id, true)
            }
            Event::ConnectionLost => self.socket_gone(st, id, true),
            Event::ProtocolError(e) => {
                let peer = st.sockets.get(&id).and_then(|s| s.peer.clone());
                self.violation(st, format!("NT-TCP protocol error from {peer:?}: {e}"));
                self.socket_gone(st, id, true)
            }
        }
    }

    fn on_request(
        &self,
        st: &mut State,
        id: SocketId,
        target: EndPointId,
        from: Option<EndPointAddress>,
    ) {
        let decision = st.endpoint.incoming(from.as_ref(), target, id);
        tracing::debug!(socket = id, ?from, ?decision, "connection request");
        match decision {
            IncomingDecision::Accept { .. } => {
                let peer = from.clone().or_else(|| {
                    // network-transport-tcp makes up an address for an
                    // unaddressable peer.
                    EndPointAddress::new(&format!("unaddressable-{id}"), "0", 0).ok()
                });
                if let Some(f) = &from {
                    st.crossed_pending.remove(f);
                }
                if let Some(s) = st.sockets.get_mut(&id) {
                    s.peer = peer;
                    let _ = s.conn.accept();
                }
            }
            IncomingDecision::Reject(reason) => {
                if let Some(s) = st.sockets.get_mut(&id) {
                    let _ = s.conn.reject(reason);
                }
            }
            IncomingDecision::RejectAndProbe { existing } => {
                if let Some(s) = st.sockets.get_mut(&id) {
                    let _ = s.conn.reject(RejectReason::Crossed);
                }
                if let Some(s) = st.sockets.get_mut(&existing) {
                    if s.conn.probe(Instant::now()).is_ok() {
                        s.wake.notify_one();
                    }
                }
            }
            IncomingDecision::Defer { .. } => st.deferred.push(Deferred {
                socket: id,
                from,
                target,
            }),
        }
    }

    /// Decides deferred requests again once a close was resolved.
    fn retry_deferred(&self, st: &mut State) {
        for d in std::mem::take(&mut st.deferred) {
            if st.sockets.contains_key(&d.socket) {
                self.on_request(st, d.socket, d.target, d.from);
            }
        }
    }

    /// Socket `id` ended; `lost` if distributed-process sees it as a
    /// connection loss (`EventConnectionLost`).
    fn socket_gone(&self, st: &mut State, id: SocketId, lost: bool) {
        let Some(s) = st.sockets.get_mut(&id) else {
            return;
        };
        s.inbound.clear();
        let peer = s.peer.clone();
        if let Some(w) = s.waiter.take() {
            let _ = w.send(ConnectOutcome::Failed("connection lost".into()));
        }
        if let Some(p) = &peer {
            st.endpoint.closed(p, id);
        }
        for v in st.conns.values_mut() {
            if let OutConn::Open {
                socket, implicit, ..
            } = *v
            {
                if socket == id && !implicit {
                    *v = OutConn::Broken;
                }
            }
        }
        // `closeImplicitReconnections`.
        st.conns.retain(
            |_, v| !matches!(v, OutConn::Open { socket, implicit: true, .. } if *socket == id),
        );
        if let (true, Some(p)) = (lost, peer) {
            let nid = Identifier::Node(NodeId::new(p.as_str()));
            tracing::debug!(node = %self.node_id, peer = %p, "connection lost");
            let _ = self.nc_tx.send(NCMsg {
                sender: nid.clone(),
                signal: ProcessSignal::Died {
                    who: nid,
                    reason: DiedReason::Disconnect,
                },
            });
        }
        self.retry_deferred(st);
    }

    /// One data frame of incoming lightweight connection `lcid`
    /// (`handleIncomingMessages`).
    fn on_frame(&self, st: &mut State, id: SocketId, lcid: u32, payload: Bytes) {
        let Some(target) = st
            .sockets
            .get(&id)
            .and_then(|s| s.inbound.get(&lcid))
            .copied()
        else {
            return;
        };
        match target {
            Inbound::Uninit => {
                let next = match decode_exact_shared::<Identifier>(&payload, &self.limits) {
                    Ok(Identifier::Process(pid)) => {
                        // Looked up by local id only, as Node.hs does.
                        if st.processes.contains_key(&pid.local) {
                            Inbound::ToProc(pid.local)
                        } else {
                            tracing::debug!(%pid, "connection to an unknown process forgotten");
                            Inbound::Forgotten
                        }
                    }
                    Ok(Identifier::SendPort(port)) => {
                        // We have no typed channels: an unknown channel of a
                        // live process is an invalid request, of a dead one
                        // a forgotten connection.
                        tracing::debug!(?port, "connection to an unknown channel forgotten");
                        Inbound::Forgotten
                    }
                    Ok(Identifier::Node(nid)) if nid == self.node_id => Inbound::ToNode,
                    Ok(Identifier::Node(nid)) => {
                        tracing::warn!(%nid, "invalid request: connection for a different node");
                        Inbound::Forgotten
                    }
                    Err(e) => {
                        self.violation(
                            st,
                            format!(
                                "undecodable Identifier frame ({e}); a Haskell node's receive loop would stop"
                            ),
                        );
                        Inbound::Forgotten
                    }
                };
                if let Some(s) = st.sockets.get_mut(&id) {
                    s.inbound.insert(lcid, next);
                }
            }
            Inbound::ToProc(lpid) => match Message::decode_frame(&payload) {
                Ok(m) => match st.processes.get(&lpid) {
                    Some(mb) => mb.push(m),
                    None => tracing::debug!(?lpid, "message for a dead process dropped"),
                },
                Err(e) => self.violation(st, format!("message frame without a fingerprint: {e}")),
            },
            Inbound::ToNode => match NCMsg::decode_frame(&payload, &self.limits) {
                Ok(m) => {
                    let _ = self.nc_tx.send(m);
                }
                Err(e) => self.violation(
                    st,
                    format!("undecodable NCMsg ({e}); a Haskell node's receive loop would stop"),
                ),
            },
            Inbound::Forgotten => {
                tracing::debug!(lcid, "message received from an unknown connection dropped")
            }
        }
    }

    fn on_input(&self, id: SocketId, bytes: &[u8]) {
        let mut st = self.lock();
        let Some(s) = st.sockets.get_mut(&id) else {
            return;
        };
        if let Some(i) = s.received {
            st.received[i].bytes.extend_from_slice(bytes);
        }
        if let Some(s) = st.sockets.get_mut(&id) {
            s.conn.handle_input(bytes);
        }
        self.pump(&mut st);
    }

    fn on_eof(&self, id: SocketId) {
        let mut st = self.lock();
        if let Some(s) = st.sockets.get_mut(&id) {
            s.conn.handle_eof();
        }
        self.pump(&mut st);
    }

    /// `None` once the socket is gone; else its next timer.
    fn reader_poll(&self, id: SocketId) -> Option<Option<Instant>> {
        let mut st = self.lock();
        let s = st.sockets.get_mut(&id)?;
        let now = Instant::now();
        if s.conn.poll_timeout().is_some_and(|t| t <= now) {
            s.conn.handle_timeout(now);
            self.pump(&mut st);
            return st.sockets.get(&id).map(|s| s.conn.poll_timeout());
        }
        Some(s.conn.poll_timeout())
    }
}

/// Closes our lightweight connection; starts the CloseSocket handshake if
/// it was the last one (`closeIfUnused`).
fn close_lightweight(st: &mut State, socket: SocketId, lcid: u32) {
    let Some(s) = st.sockets.get_mut(&socket) else {
        return;
    };
    if let Err(e) = s.conn.close(lcid) {
        tracing::debug!(error = %e, lcid, "close of a lightweight connection failed");
        return;
    }
    if s.conn.state() == ConnectionState::Closing {
        if let Some(p) = s.peer.clone() {
            st.endpoint.closing(&p, socket);
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        tracing::trace!(%addr, "TCP connection accepted");
        let mut st = shared.lock();
        if st.closed {
            return;
        }
        let id = st.next_socket;
        st.next_socket += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut conn = Connection::listener(shared.limits.clone());
        conn.set_probe_timeout(shared.probe_timeout);
        st.sockets.insert(
            id,
            Sock {
                conn,
                peer: None,
                initiated_by_us: false,
                tx,
                wake: Arc::new(Notify::new()),
                received: None,
                inbound: HashMap::new(),
                waiter: None,
            },
        );
        shared.start_socket(&mut st, id, stream, rx);
    }
}

async fn connect_task(
    shared: Arc<Shared>,
    id: SocketId,
    to: EndPointAddress,
    rx: mpsc::UnboundedReceiver<SockCmd>,
) {
    let port: u16 = match to.port().parse() {
        Ok(p) => p,
        Err(_) => {
            fail_connect(&shared, id, format!("bad port in {to}"));
            return;
        }
    };
    match TcpStream::connect((to.host(), port)).await {
        Ok(stream) => {
            let mut st = shared.lock();
            shared.start_socket(&mut st, id, stream, rx);
        }
        Err(e) => fail_connect(&shared, id, format!("connect to {to}: {e}")),
    }
}

fn fail_connect(shared: &Shared, id: SocketId, why: String) {
    tracing::debug!(socket = id, "{why}");
    let mut st = shared.lock();
    if let Some(mut s) = st.sockets.remove(&id) {
        if let Some(p) = &s.peer {
            st.endpoint.closed(p, id);
        }
        if let Some(w) = s.waiter.take() {
            let _ = w.send(ConnectOutcome::Failed(why));
        }
    }
    shared.retry_deferred(&mut st);
    shared.changed.send_modify(|g| *g = g.wrapping_add(1));
}

async fn reader_task(shared: Arc<Shared>, id: SocketId, mut rd: OwnedReadHalf, wake: Arc<Notify>) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Some(deadline) = shared.reader_poll(id) {
        let sleep_until = deadline
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep_until(sleep_until) => {}
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    shared.on_eof(id);
                    break;
                }
                Ok(n) => shared.on_input(id, &buf[..n]),
            },
        }
    }
}

async fn writer_task(mut wr: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<SockCmd>) {
    while let Some(cmd) = rx.recv().await {
        match cmd {
            SockCmd::Write(b) => {
                if wr.write_all(&b).await.is_err() {
                    break;
                }
            }
            SockCmd::Close => {
                let _ = wr.shutdown().await;
                break;
            }
            SockCmd::Abort => break,
        }
    }
}
