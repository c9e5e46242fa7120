//! A Haskell server process that answers one call and ends:
//!
//! ```haskell
//! serveOnce = receiveWait [match $ \(Ask from b) -> send from (AskReply (answer b))]
//! ```
//!
//! The reply is sent before the process dies, on the same TCP connection
//! as the `Died` that DpTcp's monitor gets afterwards, so the Rust caller
//! must get it.

mod common;

use common::*;
use dp_peer::PlainNode;
use dp_wire::dp::Message;
use ractor::{call_t, ActorRef};

/// How many one-shot servers are called; the loss is a race, so one call
/// alone would rarely show it.
const ROUNDS: usize = 20;

/// A reply the Haskell process sent just before it ended must reach the
/// caller: the `Died` that follows it may only stop the RemoteActor after
/// the reply went through the session (it used to overtake it, and the
/// caller got `RecvErr`).
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn reply_sent_just_before_the_process_ends_reaches_the_rust_caller() {
    let rust = rust_node("reply-then-exit").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let peer_id = peer.node_id().as_str().unwrap().to_owned();
    ractor_cluster::client_connect_transport(&rust.server, peer_id.clone())
        .await
        .unwrap();
    let mut lost = Vec::new();
    for round in 0..ROUNDS {
        let name = format!("serve-once-{round}");
        let server = peer.spawn();
        peer.register(&name, &server.pid());
        let to: ActorRef<GreeterMsg> = rust.dp.whereis(&peer_id, &name, T).await.unwrap().into();
        let serve_once = tokio::spawn(async move {
            let m = server.expect_fp(fp("Ask"), T).await.unwrap();
            let (reply_to, g) = parse_ask(&m);
            let answer = Greeting::new(&format!("once: {}", g.text));
            server
                .send(&reply_to, Message::new(fp("AskReply"), packed(&answer)))
                .await
                .unwrap();
            // `server` is dropped here: the process ends normally.
        });
        let r = call_t!(to, GreeterMsg::Ask, 10_000, Greeting::new("hi"));
        serve_once.await.unwrap();
        match r {
            Ok(g) => assert_eq!(g.text, "once: hi"),
            Err(e) => lost.push(format!("round {round}: {e:?}")),
        }
    }
    assert!(lost.is_empty(), "replies lost: {lost:#?}");
}
