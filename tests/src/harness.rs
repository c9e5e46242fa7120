//! Building blocks of the cluster tests: transports to run under, test
//! nodes with an event log, and bounded waiting.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kaisui_interop_msgs::{EchoEvent, EchoMsg, Report};
use ractor::{Actor, ActorCell, ActorRef};
use ractor_cluster::node::NodeConnectionMode;
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::transport::{
    BoxFuture, NativeTransport, Transport, TransportConnection, TransportListener,
};
use ractor_cluster::{NodeEventSubscription, NodeId, NodeServer, NodeServerMessage};
use tokio::sync::{mpsc, watch, Mutex, MutexGuard};

use crate::memory_transport::MemoryNetwork;

/// How long any single expected thing may take before the test fails.
/// Generous: it only matters when something is broken.
pub const WAIT: Duration = Duration::from_secs(15);

/// The cookie of the nodes that are meant to authenticate each other.
pub const COOKIE: &str = "kaisui-integration-cookie";

/// Hostname part of every test node's name.
pub const HOST: &str = "localhost";

/// A transport the two-node scenarios can run over.
///
/// Adding a transport to the suite means implementing this and adding one
/// line to the list in `tests/two_nodes.rs`.
pub trait TransportKind: Send + Sync {
    /// Short name used in test, node, actor and group names.
    fn label(&self) -> &'static str;

    /// The transport for the node called `node_name`.
    fn transport_for(&self, node_name: &str) -> Arc<dyn Transport>;

    /// The address other nodes pass to `client_connect_transport` to reach
    /// the node `node_name`, whose listener reported `bound` as its address.
    fn dial_address(&self, node_name: &str, bound: SocketAddr) -> String;

    /// Messages the transport has carried so far, if it counts them.
    fn messages_carried(&self) -> Option<u64> {
        None
    }
}

/// The native transport (length-prefixed protobuf) over loopback TCP,
/// selected explicitly through `NodeServer::with_transport`.
#[derive(Debug, Default)]
pub struct Native;

impl TransportKind for Native {
    fn label(&self) -> &'static str {
        "native"
    }

    fn transport_for(&self, _node_name: &str) -> Arc<dyn Transport> {
        Arc::new(NativeTransport::default())
    }

    fn dial_address(&self, _node_name: &str, bound: SocketAddr) -> String {
        // The listener binds the dual-stack wildcard; dial loopback.
        format!("127.0.0.1:{}", bound.port())
    }
}

/// The in-memory transport, on a network private to one test.
#[derive(Debug, Default)]
pub struct Memory {
    network: MemoryNetwork,
}

impl TransportKind for Memory {
    fn label(&self) -> &'static str {
        "memory"
    }

    fn transport_for(&self, node_name: &str) -> Arc<dyn Transport> {
        Arc::new(self.network.transport(node_name))
    }

    fn dial_address(&self, node_name: &str, _bound: SocketAddr) -> String {
        node_name.to_string()
    }

    fn messages_carried(&self) -> Option<u64> {
        Some(self.network.messages_carried())
    }
}

/// DpTcp (distributed-process over network-transport-tcp) between Rust
/// nodes: each recognises the other as a kaisui node and runs
/// ractor_cluster's own protocol, cookie handshake included, inside DP
/// messages. No Haskell types are registered: nothing here goes to a
/// Haskell node.
#[derive(Debug, Default)]
pub struct DpTcpKind;

impl TransportKind for DpTcpKind {
    fn label(&self) -> &'static str {
        "dp-tcp"
    }

    fn transport_for(&self, _node_name: &str) -> Arc<dyn Transport> {
        Arc::new(dp_tcp_transport())
    }

    fn dial_address(&self, _node_name: &str, bound: SocketAddr) -> String {
        // DpTcp listens on 127.0.0.1 and is dialled by NT-TCP address.
        format!("127.0.0.1:{}:0", bound.port())
    }
}

/// A DpTcp transport for a test node, with no Haskell types.
pub fn dp_tcp_transport() -> dp_tcp::DpTcp {
    dp_tcp::DpTcp::new(dp_tcp::DpTcpConfig::new(dp_tcp::TypeRegistry::new()))
        .expect("an empty type registry is a valid DpTcp configuration")
}

/// Wraps a transport to report the address its listener bound, which is
/// how a test learns the port the OS picked for port 0.
#[derive(Debug)]
struct Observed {
    inner: Arc<dyn Transport>,
    bound: watch::Sender<Option<SocketAddr>>,
}

impl Transport for Observed {
    fn listen(
        &self,
        listen_addr: Option<IpAddr>,
        port: u16,
    ) -> BoxFuture<'_, io::Result<Box<dyn TransportListener>>> {
        Box::pin(async move {
            let listener = self.inner.listen(listen_addr, port).await?;
            self.bound.send_replace(Some(listener.local_addr()?));
            Ok(listener)
        })
    }

    fn connect(&self, address: String) -> BoxFuture<'_, io::Result<Box<dyn TransportConnection>>> {
        self.inner.connect(address)
    }

    // The node advertises this (and checks for self-connections with
    // it): it must be the wrapped transport's own format.
    fn connection_string(&self, hostname: &str, port: u16) -> String {
        self.inner.connection_string(hostname, port)
    }
}

/// Spawn a node server named `node_name` on port 0 over `transport`,
/// configured by `configure`, with `subscription` subscribed to its events
/// as `id`, and wait until it listens. Returns the server and the address
/// its listener bound.
///
/// The one way the suite starts a node: [TestNode] and
/// [crate::hostile::HardenedNode] differ only in `configure` and
/// `subscription`.
pub(crate) async fn spawn_listening(
    node_name: &str,
    cookie: &str,
    connection_mode: Option<NodeConnectionMode>,
    transport: Arc<dyn Transport>,
    configure: impl FnOnce(NodeServer) -> NodeServer,
    id: &str,
    subscription: Box<dyn NodeEventSubscription>,
) -> (ActorRef<NodeServerMessage>, SocketAddr) {
    let (bound_tx, mut bound_rx) = watch::channel(None);
    let transport = Observed {
        inner: transport,
        bound: bound_tx,
    };
    let server = NodeServer::new(
        0,
        cookie.to_string(),
        node_name.to_string(),
        HOST.to_string(),
        None,
        connection_mode,
    )
    .with_transport(transport);
    let (server, _) = Actor::spawn(None, configure(server), ())
        .await
        .unwrap_or_else(|err| panic!("node {node_name} failed to start: {err}"));
    server
        .cast(NodeServerMessage::SubscribeToEvents {
            id: id.to_string(),
            subscription,
        })
        .expect("node server accepts a subscription");
    let bound = tokio::time::timeout(WAIT, bound_rx.wait_for(Option::is_some))
        .await
        .unwrap_or_else(|_| panic!("node {node_name} never started listening"))
        .expect("listener address channel open")
        .expect("checked by wait_for");
    (server, bound)
}

/// Serializes the tests of one test binary.
///
/// ractor's name registry, pid registry and process groups are process
/// wide, and every node session advertises every remotable local actor and
/// group in the process. Two tests running at once would see (and could
/// be satisfied by) each other's actors and sessions.
pub async fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::const_new(());
    LOCK.lock().await
}

/// A process-unique suffix for names, e.g. `memory-3`.
pub fn unique_tag(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{label}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Poll `probe` until it yields a value, failing the test after [WAIT].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("gave up after {WAIT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A node server event, as seen by a [TestNode]'s subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// A session started (its peer is not known yet on the accepting side).
    Opened(Option<String>),
    /// A session authenticated with the named peer.
    Authenticated(Option<String>),
    /// A session finished its initial state exchange.
    Ready(Option<String>),
    /// A session ended.
    Disconnected(Option<String>),
}

/// Forwards node server events into a channel the test reads.
struct EventForwarder(mpsc::UnboundedSender<NodeEvent>);

fn peer_of(ses: &NodeServerSessionInformation) -> Option<String> {
    ses.peer_name.as_ref().map(|name| name.name.clone())
}

impl NodeEventSubscription for EventForwarder {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.send(NodeEvent::Opened(peer_of(&ses)));
    }

    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.send(NodeEvent::Disconnected(peer_of(&ses)));
    }

    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.send(NodeEvent::Authenticated(peer_of(&ses)));
    }

    fn node_session_ready(&self, ses: NodeServerSessionInformation) {
        let _ = self.0.send(NodeEvent::Ready(peer_of(&ses)));
    }
}

/// A running `NodeServer` with a log of its events. Stopped on drop.
pub struct TestNode {
    /// The node name given to `NodeServer::new`
    pub node_name: String,
    /// The name peers know this node by (`node_name@HOST`)
    pub full_name: String,
    /// The node server actor
    pub server: ActorRef<NodeServerMessage>,
    /// The address other nodes dial to reach this node
    pub address: String,
    events: mpsc::UnboundedReceiver<NodeEvent>,
    seen: Vec<NodeEvent>,
}

impl std::fmt::Debug for TestNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNode")
            .field("full_name", &self.full_name)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl TestNode {
    /// Start a node named `node_name` over `kind`'s transport.
    pub async fn start(kind: &dyn TransportKind, node_name: &str, cookie: &str) -> TestNode {
        Self::start_on(kind, kind.transport_for(node_name), node_name, cookie, None).await
    }

    /// Start a node like [TestNode::start] whose sessions each hold at most
    /// `window` bytes of received messages before they stop reading from
    /// their peer (`NodeServer::with_inbound_window`).
    pub async fn start_with_inbound_window(
        kind: &dyn TransportKind,
        node_name: &str,
        cookie: &str,
        window: usize,
    ) -> TestNode {
        let transport = kind.transport_for(node_name);
        Self::launch(kind, transport, node_name, cookie, None, window).await
    }

    /// Start a node named `node_name` over `transport`, which is `kind`'s
    /// (for a test that keeps its own handle to the transport), in
    /// `connection_mode` (default: isolated).
    pub async fn start_on(
        kind: &dyn TransportKind,
        transport: Arc<dyn Transport>,
        node_name: &str,
        cookie: &str,
        connection_mode: Option<NodeConnectionMode>,
    ) -> TestNode {
        let window = ractor_cluster::DEFAULT_INBOUND_WINDOW;
        Self::launch(kind, transport, node_name, cookie, connection_mode, window).await
    }

    async fn launch(
        kind: &dyn TransportKind,
        transport: Arc<dyn Transport>,
        node_name: &str,
        cookie: &str,
        connection_mode: Option<NodeConnectionMode>,
        inbound_window: usize,
    ) -> TestNode {
        let (tx, events) = mpsc::unbounded_channel();
        let (server, bound) = spawn_listening(
            node_name,
            cookie,
            connection_mode,
            transport,
            |server| server.with_inbound_window(inbound_window),
            "kaisui-tests",
            Box::new(EventForwarder(tx)),
        )
        .await;
        let address = kind.dial_address(node_name, bound);
        tracing::info!(node = node_name, %address, "test node listening");
        TestNode {
            node_name: node_name.to_string(),
            full_name: format!("{node_name}@{HOST}"),
            server,
            address,
            events,
            seen: Vec::new(),
        }
    }

    /// Ask this node to connect to `peer` through its transport.
    pub async fn connect_to(&self, peer: &TestNode) {
        self.connect_to_address(&peer.address).await;
    }

    /// Ask this node to connect to `address` through its transport.
    pub async fn connect_to_address(&self, address: &str) {
        ractor_cluster::client_connect_transport(&self.server, address)
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "{} could not open a connection to {address}: {err}",
                    self.full_name
                )
            });
    }

    /// Wait for an event matching `wanted`; all events stay in the log.
    pub async fn wait_event(&mut self, what: &str, wanted: impl Fn(&NodeEvent) -> bool) {
        if self.seen.iter().any(&wanted) {
            return;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => {
                    tracing::debug!(node = %self.full_name, ?event, "node event");
                    let matched = wanted(&event);
                    self.seen.push(event);
                    if matched {
                        return;
                    }
                }
                Ok(None) => panic!("{}: event subscription ended", self.full_name),
                Err(_) => panic!(
                    "{}: gave up after {WAIT:?} waiting for {what}; events so far: {:?}",
                    self.full_name, self.seen
                ),
            }
        }
    }

    /// Every event received so far, without waiting.
    pub fn events_so_far(&mut self) -> &[NodeEvent] {
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event);
        }
        &self.seen
    }

    /// The node's authenticated sessions (`NodeServerMessage::GetSessions`).
    pub async fn sessions(&self) -> HashMap<NodeId, NodeServerSessionInformation> {
        ractor::call_t!(self.server, NodeServerMessage::GetSessions, 5_000)
            .unwrap_or_else(|err| panic!("{}: GetSessions failed: {err}", self.full_name))
    }

    /// The remote actor called `name` that one of this node's sessions
    /// created for its peer's actor, if any.
    ///
    /// Node sessions supervise the `RemoteActor`s of their peer, so they are
    /// found among the session actors' children. (ractor does not put
    /// remote actors in its name registry, so `registry::where_is` cannot
    /// find them.)
    pub async fn remote_actor(&self, name: &str) -> Option<ActorCell> {
        self.sessions().await.into_values().find_map(|session| {
            session
                .actor
                .get_cell()
                .get_children()
                .into_iter()
                .find(|child| {
                    !child.get_id().is_local() && child.get_name().as_deref() == Some(name)
                })
        })
    }

    /// Wait until this node has a remote actor for the peer's actor `name`.
    pub async fn wait_remote_actor(&self, name: &str) -> ActorRef<EchoMsg> {
        let what = format!("{} to learn of the remote actor {name:?}", self.full_name);
        let cell = eventually(&what, || self.remote_actor(name)).await;
        assert!(
            !cell.get_id().is_local(),
            "{name:?} on {} is a local actor",
            self.full_name
        );
        cell.into()
    }

    /// Stop the node server and wait until every actor below it (listener,
    /// sessions, their remote actors) has stopped.
    ///
    /// Waiting for the whole tree matters: a session that outlives its test
    /// still mirrors the next test's actors, and when its `RemoteActor`s
    /// finally stop, ractor removes their names from the (process wide)
    /// name registry, taking the next test's local actors of the same name
    /// with them.
    pub async fn shutdown(self) {
        shutdown_all(vec![self]).await;
    }
}

/// Stop all `nodes` at once and wait for their actor trees, see
/// [TestNode::shutdown].
pub async fn shutdown_all(nodes: Vec<TestNode>) {
    let roots = nodes.iter().map(|node| node.server.get_cell()).collect();
    let names: Vec<String> = nodes.iter().map(|node| node.full_name.clone()).collect();
    stop_trees(roots, &names, move || drop(nodes)).await;
}

/// Run `stop`, then wait until every actor below `roots` (as they were
/// before `stop`), roots included, has stopped; `owners` names them in the
/// failure message.
pub(crate) async fn stop_trees(roots: Vec<ActorCell>, owners: &dyn Debug, stop: impl FnOnce()) {
    let mut tree = Vec::new();
    let mut pending = roots;
    while let Some(cell) = pending.pop() {
        pending.extend(cell.get_children());
        tree.push(cell);
    }
    stop();
    for cell in tree {
        if cell.wait(Some(WAIT)).await.is_err() {
            panic!(
                "actor {} ({:?}) of {owners:?} still runs {WAIT:?} after shutdown",
                cell.get_id(),
                cell.get_name()
            );
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        // Stopping the server also kills its sessions and their remote
        // actors, so a failed test leaves nothing advertised behind.
        self.server.stop(Some("test node dropped".to_string()));
    }
}

/// Receives what [kaisui_interop_msgs::EchoActor]s report.
#[derive(Debug)]
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<EchoEvent>,
    seen: Vec<EchoEvent>,
}

impl Inbox {
    /// A new inbox and the callback that feeds it.
    pub fn new() -> (Inbox, Report) {
        let (tx, rx) = mpsc::unbounded_channel();
        let report: Report = Arc::new(move |event| {
            let _ = tx.send(event);
        });
        (
            Inbox {
                rx,
                seen: Vec::new(),
            },
            report,
        )
    }

    /// Wait until the actor `actor` reports the note `text`.
    pub async fn expect_note(&mut self, actor: &str, text: &str) {
        self.expect(EchoEvent::Noted {
            actor: actor.to_string(),
            text: text.to_string(),
        })
        .await;
    }

    /// Wait until the actor `actor` reports the unanswered call `text`.
    pub async fn expect_stalled(&mut self, actor: &str, text: &str) {
        self.expect(EchoEvent::Stalled {
            actor: actor.to_string(),
            text: text.to_string(),
        })
        .await;
    }

    async fn expect(&mut self, wanted: EchoEvent) {
        if let Some(at) = self.seen.iter().position(|event| *event == wanted) {
            self.seen.remove(at);
            return;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(event)) if event == wanted => return,
                Ok(Some(event)) => self.seen.push(event),
                Ok(None) => panic!("every echo actor reporting to this inbox is gone"),
                Err(_) => panic!(
                    "gave up after {WAIT:?} waiting for the report {wanted:?}; \
                     other reports: {:?}",
                    self.seen
                ),
            }
        }
    }
}
