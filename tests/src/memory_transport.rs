//! An in-memory, message-level [Transport] for tests.
//!
//! Nodes on a [MemoryNetwork] reach each other by name. A connection is a
//! pair of tokio channels carrying [NetworkMessage] values: nothing is
//! encoded, framed or copied into bytes on the way. A node session that
//! works over this transport therefore relies on the [Transport] trait for
//! everything, not only for moving bytes around.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use prost::Message as _;
use ractor_cluster::protocol::NetworkMessage;
use ractor_cluster::transport::{
    BoxFuture, MessageReader, MessageWriter, Transport, TransportConnection, TransportListener,
};
use tokio::sync::mpsc;

/// How many messages may wait in one direction of a connection before the
/// writer has to wait, so a stalled reader pushes back like a socket would.
const CHANNEL_CAPACITY: usize = 256;

/// A set of named listeners that [MemoryTransport]s can connect to.
///
/// Cloning gives another handle to the same network. Tests that must not
/// see each other's nodes use separate networks ([MemoryNetwork::new]);
/// [MemoryNetwork::global] is one process-wide network.
#[derive(Clone, Debug, Default)]
pub struct MemoryNetwork {
    inner: Arc<NetworkInner>,
}

#[derive(Debug, Default)]
struct NetworkInner {
    acceptors: Mutex<HashMap<String, mpsc::UnboundedSender<MemoryConnection>>>,
    /// Messages handed to any writer on this network (delivered or not),
    /// for tests that want to prove traffic really went through it.
    carried: AtomicU64,
    connections: AtomicU64,
    /// Last pseudo port handed to a listener, see [MemoryListener::port].
    last_port: AtomicU64,
}

impl MemoryNetwork {
    /// A new, empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide network.
    pub fn global() -> Self {
        static GLOBAL: OnceLock<MemoryNetwork> = OnceLock::new();
        GLOBAL.get_or_init(Self::new).clone()
    }

    /// A transport that listens under `name` on this network and connects
    /// to other names on it.
    pub fn transport(&self, name: impl Into<String>) -> MemoryTransport {
        MemoryTransport {
            network: self.clone(),
            name: name.into(),
        }
    }

    /// Number of messages handed to the writer of any connection on this
    /// network so far.
    pub fn messages_carried(&self) -> u64 {
        self.inner.carried.load(Ordering::Relaxed)
    }

    /// Number of connections opened on this network so far.
    pub fn connections_opened(&self) -> u64 {
        self.inner.connections.load(Ordering::Relaxed)
    }

    fn acceptors(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<MemoryConnection>>> {
        // A panic while holding this lock cannot leave the map half-updated.
        self.inner
            .acceptors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A [Transport] over a [MemoryNetwork].
///
/// [Transport::listen] registers the transport's name on the network (the
/// address argument is ignored, the port only shows in the listener's
/// made-up local address); [Transport::connect] takes the name of a
/// listening transport as its address.
#[derive(Clone, Debug)]
pub struct MemoryTransport {
    network: MemoryNetwork,
    name: String,
}

impl MemoryTransport {
    /// A transport named `name` on the process-wide network.
    pub fn new(name: impl Into<String>) -> Self {
        MemoryNetwork::global().transport(name)
    }

    /// The name this transport listens under, i.e. its address.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The network this transport belongs to.
    pub fn network(&self) -> &MemoryNetwork {
        &self.network
    }
}

impl Transport for MemoryTransport {
    fn listen(
        &self,
        _listen_addr: Option<IpAddr>,
        port: u16,
    ) -> BoxFuture<'_, io::Result<Box<dyn TransportListener>>> {
        Box::pin(async move {
            let (tx, rx) = mpsc::unbounded_channel();
            let mut acceptors = self.network.acceptors();
            // A listener whose node went away leaves a closed sender behind;
            // only a live one blocks the name.
            if acceptors
                .get(&self.name)
                .is_some_and(|existing| !existing.is_closed())
            {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("memory address {:?} is already listening", self.name),
                ));
            }
            acceptors.insert(self.name.clone(), tx.clone());
            drop(acceptors);
            let port = match port {
                0 => {
                    let next = self.network.inner.last_port.fetch_add(1, Ordering::Relaxed) + 1;
                    // Wrapping past u16 would take 65535 listeners on one
                    // network; uniqueness only matters among live ones.
                    (next % u64::from(u16::MAX)) as u16 + 1
                }
                requested => requested,
            };
            tracing::debug!(name = %self.name, port, "memory transport listening");
            Ok(Box::new(MemoryListener {
                network: self.network.clone(),
                name: self.name.clone(),
                port,
                registered: tx,
                incoming: rx,
            }) as Box<dyn TransportListener>)
        })
    }

    fn connect(&self, address: String) -> BoxFuture<'_, io::Result<Box<dyn TransportConnection>>> {
        Box::pin(async move {
            let acceptor = self.network.acceptors().get(&address).cloned();
            let Some(acceptor) = acceptor else {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("nothing listens on memory address {address:?}"),
                ));
            };
            let (to_listener, from_dialer) = mpsc::channel(CHANNEL_CAPACITY);
            let (to_dialer, from_listener) = mpsc::channel(CHANNEL_CAPACITY);
            let accepted = MemoryConnection {
                peer: self.name.clone(),
                network: self.network.clone(),
                tx: to_dialer,
                rx: from_dialer,
            };
            acceptor.send(accepted).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("the listener on memory address {address:?} has closed"),
                )
            })?;
            self.network
                .inner
                .connections
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(from = %self.name, to = %address, "memory connection opened");
            Ok(Box::new(MemoryConnection {
                peer: address,
                network: self.network.clone(),
                tx: to_listener,
                rx: from_listener,
            }) as Box<dyn TransportConnection>)
        })
    }
}

/// The accepting side of a [MemoryTransport].
struct MemoryListener {
    network: MemoryNetwork,
    name: String,
    /// A made-up port, unique on the network unless the node asked for a
    /// specific one.
    ///
    /// The node server advertises `hostname:port` of its listener as its
    /// connection string and treats a peer with the same connection string
    /// as itself. Memory nodes in one process share a hostname, so they
    /// need distinct ports to be told apart.
    port: u16,
    /// Our own registration, to recognise it when unregistering.
    registered: mpsc::UnboundedSender<MemoryConnection>,
    incoming: mpsc::UnboundedReceiver<MemoryConnection>,
}

impl TransportListener for MemoryListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port))
    }

    fn accept(&mut self) -> BoxFuture<'_, io::Result<Box<dyn TransportConnection>>> {
        Box::pin(async move {
            match self.incoming.recv().await {
                Some(connection) => Ok(Box::new(connection) as Box<dyn TransportConnection>),
                // We hold a sender ourselves, so this cannot happen; waiting
                // forever beats handing the node server's accept loop an
                // error it would retry in a hot loop.
                None => std::future::pending().await,
            }
        })
    }
}

impl Drop for MemoryListener {
    fn drop(&mut self) {
        let mut acceptors = self.network.acceptors();
        // A newer listener may have taken the name over; leave it alone.
        if acceptors
            .get(&self.name)
            .is_some_and(|current| current.same_channel(&self.registered))
        {
            acceptors.remove(&self.name);
        }
    }
}

/// One end of a memory connection.
struct MemoryConnection {
    /// Name of the transport at the other end.
    peer: String,
    network: MemoryNetwork,
    tx: mpsc::Sender<NetworkMessage>,
    rx: mpsc::Receiver<NetworkMessage>,
}

impl TransportConnection for MemoryConnection {
    fn peer_label(&self) -> String {
        format!("memory:{}", self.peer)
    }

    fn split(
        self: Box<Self>,
        max_inbound_frame_size: u64,
    ) -> (Box<dyn MessageReader>, Box<dyn MessageWriter>) {
        let this = *self;
        (
            Box::new(MemoryReader {
                rx: this.rx,
                max_message_size: max_inbound_frame_size,
            }),
            Box::new(MemoryWriter {
                tx: this.tx,
                network: this.network,
            }),
        )
    }
}

struct MemoryReader {
    rx: mpsc::Receiver<NetworkMessage>,
    max_message_size: u64,
}

impl MessageReader for MemoryReader {
    fn read_message(&mut self) -> BoxFuture<'_, io::Result<NetworkMessage>> {
        Box::pin(async move {
            let Some(message) = self.rx.recv().await else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the memory peer closed the connection",
                ));
            };
            // Honour the node's inbound limit as a real transport would, by
            // the size the message would have on the native wire.
            let size = message.encoded_len() as u64;
            if size > self.max_message_size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "inbound message of {size} bytes exceeds the limit of {} bytes",
                        self.max_message_size
                    ),
                ));
            }
            Ok(message)
        })
    }
}

struct MemoryWriter {
    tx: mpsc::Sender<NetworkMessage>,
    network: MemoryNetwork,
}

impl MessageWriter for MemoryWriter {
    fn write_messages<'a>(
        &'a mut self,
        messages: &'a [NetworkMessage],
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            for message in messages {
                // Counted before the send: once it is sent, the receiver may
                // act on it (and a test look at the count) before we resume.
                self.network.inner.carried.fetch_add(1, Ordering::Relaxed);
                self.tx.send(message.clone()).await.map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the memory peer closed the connection",
                    )
                })?;
            }
            Ok(())
        })
    }
}
