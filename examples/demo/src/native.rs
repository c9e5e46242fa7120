//! Part 1: two ractor nodes in this process over `NativeTransport`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorRef};
use ractor_cluster::transport::NativeTransport;
use ractor_cluster::{NodeServer, NodeServerMessage};

use crate::actors::Greeter;
use crate::msgs::{GreeterMsg, Greeting, Question};
use crate::{Lines, Out};

type Error = Box<dyn std::error::Error>;

async fn start_node(name: &str) -> Result<(ActorRef<NodeServerMessage>, u16), Error> {
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    let server = NodeServer::new(
        port,
        "kaisui-demo-cookie".into(),
        name.into(),
        "127.0.0.1".into(),
        None,
        None,
    )
    .with_listen_addr(IpAddr::V4(Ipv4Addr::LOCALHOST))
    .with_transport(NativeTransport::default());
    let (node, _) = Actor::spawn(None, server, ()).await?;
    Ok((node, port))
}

/// Casts and calls between two native nodes, each way.
pub async fn run(out: &Out, lines: &mut Lines) -> Result<(), Error> {
    println!("== 1. Two ractor nodes over NativeTransport ==");
    let (alpha, port) = start_node("alpha").await?;
    let (beta, _) = start_node("beta").await?;
    let mut greeters: Vec<ActorCell> = Vec::new();
    for who in ["alpha", "beta"] {
        let g = Greeter {
            who,
            out: out.clone(),
            dp: None,
        };
        let (r, _) = Actor::spawn(Some(format!("greeter-{who}")), g, ()).await?;
        // Both nodes share this process's registry, where the name already
        // means the local actor: the remote handles are found by pg group.
        ractor::pg::join(format!("greeters-{who}"), vec![r.get_cell()]);
        greeters.push(r.get_cell());
    }
    ractor_cluster::client_connect_transport(&beta, format!("127.0.0.1:{port}")).await?;
    println!("beta connected to alpha at 127.0.0.1:{port}");
    for (from, to) in [("beta", "alpha"), ("alpha", "beta")] {
        let remote = remote_member(&format!("greeters-{to}")).await?;
        let hello = Greeting {
            text: format!("hi {to}, from {from}"),
            reply_to: vec![],
        };
        println!("[{from} → {to}] cast Hello {:?}", hello.text);
        ractor::cast!(remote, GreeterMsg::Hello(hello))?;
        lines
            .wait_for(&format!("{to} greeter received Hello"))
            .await?;
        let q = Question {
            text: format!("ping from {from}?"),
        };
        println!("[{from} → {to}] call Ask {:?}", q.text);
        let answer = ractor::call_t!(remote, GreeterMsg::Ask, 5_000, q)?;
        lines.drain();
        println!("[{to} → {from}] reply {:?}", answer.text);
    }
    for g in greeters {
        g.stop(None);
    }
    beta.stop(None);
    alpha.stop(None);
    lines.drain();
    Ok(())
}

/// The remote member of a pg group: the RemoteActor a session created.
async fn remote_member(group: &str) -> Result<ActorRef<GreeterMsg>, String> {
    let deadline = tokio::time::Instant::now() + crate::actors::T;
    loop {
        if let Some(cell) = ractor::pg::get_members(&group.to_string())
            .into_iter()
            .find(|cell| !cell.get_id().is_local())
        {
            return Ok(cell.into());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("no remote member of {group:?} appeared"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
