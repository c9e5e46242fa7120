//! kaisui demo: two ractor nodes in one process, connected through
//! `NodeServer::with_transport`, exchanging casts and calls in both
//! directions and printing what crossed.
//!
//! Run it with `cargo xtask demo`. `RUST_LOG=debug` shows the sessions'
//! own logs.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::node::{NodeServer, NodeServerMessage, NodeServerSessionInformation};
use ractor_cluster::transport::NativeTransport;
use ractor_cluster::{NodeEventSubscription, RactorClusterMessage};
use tokio::sync::mpsc;

/// What a greeter understands; both variants cross the network.
#[derive(RactorClusterMessage)]
enum GreeterMessage {
    /// Fire and forget.
    Hello(String),
    /// Request and reply.
    #[rpc]
    Ask(String, RpcReplyPort<String>),
}

/// A greeter that reports what it received on a channel the demo prints from.
struct Greeter {
    node: &'static str,
    seen: mpsc::UnboundedSender<String>,
}

impl Actor for Greeter {
    type Msg = GreeterMessage;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match message {
            GreeterMessage::Hello(text) => {
                let _ = self
                    .seen
                    .send(format!("node {} received cast: {text:?}", self.node));
            }
            GreeterMessage::Ask(question, reply) => {
                let answer = format!("{} answers {question:?}", self.node);
                let _ = self.seen.send(format!(
                    "node {} received call: {question:?}, replying {answer:?}",
                    self.node
                ));
                let _ = reply.send(answer);
            }
        }
        Ok(())
    }
}

/// Forwards node events to the demo's output.
struct PrintEvents {
    node: &'static str,
    out: mpsc::UnboundedSender<String>,
}

impl NodeEventSubscription for PrintEvents {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        let _ = self.out.send(format!(
            "node {}: session opened with {}",
            self.node, ses.peer_addr
        ));
    }

    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        let _ = self.out.send(format!(
            "node {}: session with {:?} closed",
            self.node,
            ses.peer_name.map(|n| n.name)
        ));
    }

    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        let _ = self.out.send(format!(
            "node {}: authenticated {:?}",
            self.node,
            ses.peer_name.map(|n| n.name)
        ));
    }

    fn node_session_ready(&self, ses: NodeServerSessionInformation) {
        let _ = self.out.send(format!(
            "node {}: ready with {:?}",
            self.node,
            ses.peer_name.map(|n| n.name)
        ));
    }
}

type Spawned<M> = (ActorRef<M>, JoinHandle<()>);

async fn start_node(
    name: &'static str,
    port: u16,
    out: &mpsc::UnboundedSender<String>,
) -> Result<Spawned<NodeServerMessage>, Box<dyn std::error::Error>> {
    let server = NodeServer::new(
        port,
        "kaisui-demo-cookie".to_string(),
        name.to_string(),
        "127.0.0.1".to_string(),
        None,
        None,
    )
    .with_listen_addr(IpAddr::V4(Ipv4Addr::LOCALHOST))
    .with_transport(NativeTransport::default());
    let (node, handle) = Actor::spawn(None, server, ()).await?;
    node.cast(NodeServerMessage::SubscribeToEvents {
        id: "demo".to_string(),
        subscription: Box::new(PrintEvents {
            node: name,
            out: out.clone(),
        }),
    })?;
    Ok((node, handle))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();

    let (out, mut printed) = mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(line) = printed.recv().await {
            println!("{line}");
        }
    });

    let port_a = free_port()?;
    let (node_a, node_a_handle) = start_node("alpha", port_a, &out).await?;
    let (node_b, node_b_handle) = start_node("beta", 0, &out).await?;

    let (greeter_a, greeter_a_handle) = Actor::spawn(
        Some("greeter-alpha".to_string()),
        Greeter {
            node: "alpha",
            seen: out.clone(),
        },
        (),
    )
    .await?;
    let (greeter_b, greeter_b_handle) = Actor::spawn(
        Some("greeter-beta".to_string()),
        Greeter {
            node: "beta",
            seen: out.clone(),
        },
        (),
    )
    .await?;

    println!("beta connects to alpha at 127.0.0.1:{port_a} through NativeTransport");
    ractor_cluster::client_connect_transport(&node_b, format!("127.0.0.1:{port_a}")).await?;

    // Both nodes live in this process and share its registry, where each
    // greeter's name already points at the local actor. The sessions' remote
    // handles are found through pg groups instead.
    ractor::pg::join("greeters-alpha".to_string(), vec![greeter_a.get_cell()]);
    ractor::pg::join("greeters-beta".to_string(), vec![greeter_b.get_cell()]);
    let remote_a = remote_member("greeters-alpha").await?;
    let remote_b = remote_member("greeters-beta").await?;
    println!("remote handle for alpha's greeter: {}", remote_a.get_id());
    println!("remote handle for beta's greeter: {}", remote_b.get_id());

    ractor::cast!(
        remote_a,
        GreeterMessage::Hello("hi alpha, from beta".to_string())
    )?;
    ractor::cast!(
        remote_b,
        GreeterMessage::Hello("hi beta, from alpha".to_string())
    )?;
    let answer = ractor::call_t!(remote_a, GreeterMessage::Ask, 2_000, "ping?".to_string())?;
    println!("beta's call to alpha returned {answer:?}");
    let answer = ractor::call_t!(remote_b, GreeterMessage::Ask, 2_000, "pong?".to_string())?;
    println!("alpha's call to beta returned {answer:?}");

    tokio::time::sleep(Duration::from_millis(100)).await;
    for actor in [greeter_a.get_cell(), greeter_b.get_cell()] {
        actor.stop(None);
    }
    greeter_a_handle.await?;
    greeter_b_handle.await?;
    node_b.stop(None);
    node_a.stop(None);
    node_b_handle.await?;
    node_a_handle.await?;
    drop(out);
    printer.await?;
    println!("demo finished");
    Ok(())
}

/// The remote member of a pg group: the RemoteActor a session created.
async fn remote_member(group: &str) -> Result<ActorRef<GreeterMessage>, String> {
    for _ in 0..200 {
        if let Some(cell) = ractor::pg::get_members(&group.to_string())
            .into_iter()
            .find(|cell| !cell.get_id().is_local())
        {
            return Ok(cell.into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(format!("no remote member of {group:?} appeared"))
}
