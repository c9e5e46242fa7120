//! A raw socket feeding a PlainNode bad input: the node logs, records a
//! violation where a Haskell node would choke, drops the connection as
//! network-transport-tcp does, and keeps serving others.

mod common;

use common::{wait_until, T};
use dp_peer::PlainNode;
use dp_wire::binary::Encode;
use dp_wire::dp::{Identifier, NCMsg, NodeId, ProcessSignal};
use dp_wire::ntt::{ConnectionRequest, EndPointAddress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn raw(node: &PlainNode, endpoint_id: u32) -> TcpStream {
    let addr = node.node_id().as_str().unwrap().to_owned();
    let (host_port, _) = addr.rsplit_once(':').unwrap();
    let mut s = TcpStream::connect(host_port).await.unwrap();
    let me: EndPointAddress = "127.0.0.1:1:0".parse().unwrap();
    let mut req = Vec::new();
    ConnectionRequest::v0(endpoint_id, Some(&me)).encode(&mut req);
    s.write_all(&req).await.unwrap();
    s
}

async fn read_to_end(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut out))
        .await
        .expect("the node closes the socket")
        .unwrap_or(0);
    out
}

#[test_log::test(tokio::test)]
async fn unknown_endpoint_id_is_refused() {
    let node = PlainNode::start("127.0.0.1").await.unwrap();
    let s = raw(&node, 7).await;
    assert_eq!(
        read_to_end(s).await,
        [0, 0, 0, 1],
        "ConnectionRequestInvalid"
    );
    assert!(node.violations().is_empty());
}

#[test_log::test(tokio::test)]
async fn invalid_control_header_drops_the_connection() {
    let node = PlainNode::start("127.0.0.1").await.unwrap();
    let mut s = raw(&node, 0).await;
    s.write_all(&[0, 0, 0, 9]).await.unwrap();
    assert_eq!(read_to_end(s).await, [0, 0, 0, 0], "accepted, then dropped");
    wait_until("violation recorded", || !node.violations().is_empty()).await;
    assert!(node.sockets().is_empty());
    // Still serving: a proper peer works.
    let other = PlainNode::start("127.0.0.1").await.unwrap();
    let (p, q) = (other.spawn(), node.spawn());
    p.send(&q.pid(), other.messages().unit()).await.unwrap();
    q.expect(T).await.unwrap();
}

#[test_log::test(tokio::test)]
async fn undecodable_frames_are_recorded_not_fatal() {
    let node = PlainNode::start("127.0.0.1").await.unwrap();
    let mut s = raw(&node, 0).await;
    let mut bytes = Vec::new();
    // lcid 1024: garbage Identifier. lcid 1025: NodeIdentifier, then a
    // garbage NCMsg. lcid 1026: a NodeIdentifier connection with a
    // request from a node sender, which a Haskell NC rejects.
    let node_ident = Identifier::Node(node.node_id()).to_binary();
    let bad_sender = NCMsg {
        sender: Identifier::Node(NodeId::new("127.0.0.1:1:0")),
        signal: ProcessSignal::WhereIs("x".into()),
    }
    .to_binary();
    for (lcid, frames) in [
        (1024u32, vec![vec![9u8, 9, 9]]),
        (1025, vec![node_ident.clone(), vec![0xff]]),
        (1026, vec![node_ident, bad_sender]),
    ] {
        bytes.extend([0, 0, 0, 0]);
        bytes.extend(lcid.to_be_bytes());
        for f in frames {
            dp_wire::ntt::encode_data(lcid, &f, &mut bytes);
        }
    }
    s.write_all(&bytes).await.unwrap();
    wait_until("three violations", || node.violations().len() == 3).await;
    // The socket itself stays up: these are DP-level problems.
    assert_eq!(node.sockets().len(), 1);
    drop(s);
    wait_until("EOF seen", || node.sockets().is_empty()).await;
}
