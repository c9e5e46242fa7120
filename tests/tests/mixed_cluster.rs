//! A mixed cluster over DpTcp: Rust nodes that recognise each other as
//! kaisui nodes (ractor_cluster's own protocol, cookie included, inside DP
//! messages) and a plain distributed-process node (`dp_peer::PlainNode`,
//! the Haskell stand-in) that only ever sees valid DP traffic.

use std::collections::HashMap;
use std::sync::Arc;

use dp_peer::{PlainNode, Process};
use dp_tcp::translate::{is_plain_dp_session, kaisui_wire_fingerprint};
use dp_tcp::{haskell_type_fingerprint, DpTcp, DpTcpConfig, PeerKind, TypeRegistry};
use dp_wire::binary::Encode;
use dp_wire::dp::{Frame, Identifier, InboundConnection, Message, NodeId, ProcessId};
use dp_wire::fingerprint::Fingerprint;
use dp_wire::ntt::{ControlHeader, Role, StreamDecoder, Unit};
use dp_wire::Limits;
use kaisui_integration_tests::harness::{
    eventually, exclusive, shutdown_all, unique_tag, DpTcpKind, Inbox, NodeEvent, TestNode, COOKIE,
    WAIT,
};
use kaisui_interop_msgs::{echo_reply, spawn_echo, EchoMsg, Report};
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use ractor_cluster::node::{NodeConnectionMode, NodeServerSessionInformation};
use ractor_cluster::{NodeEventSubscription, NodeServerMessage};
use tokio::sync::mpsc;

/// `EchoMsg` as the Haskell side declares it, in module `Kaisui.Echo`:
/// `data Note = Note !ByteString`, `data Ask = Ask !ProcessId !ByteString`,
/// `newtype AskReply = AskReply ByteString`.
fn echo_types() -> TypeRegistry {
    TypeRegistry::new()
        .module("main", "Kaisui.Echo")
        .cast("Note", "Note")
        .call("Ask", "Ask", "AskReply")
}

fn fp(name: &str) -> Fingerprint {
    haskell_type_fingerprint("main", "Kaisui.Echo", name)
}

/// A Data.Binary strict ByteString (also ractor's packing of one field).
fn bytestring(text: &str) -> Vec<u8> {
    let mut v = (text.len() as u64).to_be_bytes().to_vec();
    v.extend_from_slice(text.as_bytes());
    v
}

fn un_bytestring(payload: &[u8]) -> String {
    let n = u64::from_be_bytes(payload[..8].try_into().expect("a length")) as usize;
    assert_eq!(payload.len(), 8 + n, "one ByteString");
    String::from_utf8(payload[8..].to_vec()).expect("UTF-8")
}

/// A Rust node on its own DpTcp (kept, for `whereis` on the plain node).
async fn rust_node(
    name: &str,
    cookie: &str,
    mode: Option<NodeConnectionMode>,
) -> (TestNode, DpTcp) {
    let dp = DpTcp::new(DpTcpConfig::new(echo_types())).expect("valid DpTcp config");
    let node = TestNode::start_on(&DpTcpKind, Arc::new(dp.clone()), name, cookie, mode).await;
    (node, dp)
}

/// A plain node on loopback, and its NT-TCP address.
async fn plain_node() -> (PlainNode, String) {
    let h = PlainNode::start("127.0.0.1").await.expect("plain node");
    let h_id = h.node_id().as_str().expect("an address").to_owned();
    (h, h_id)
}

/// A process on the plain node `h`, registered as `svc-{tag}`, and that
/// name.
fn plain_service(h: &PlainNode, tag: &str) -> (Process, String) {
    let p = h.spawn();
    let svc = format!("svc-{tag}");
    h.register(&svc, &p.pid());
    (p, svc)
}

/// A Rust echo actor called `echo-{which}-{tag}` reporting through
/// `report`, and its name.
async fn echo_actor(which: &str, tag: &str, report: &Report) -> (String, ActorRef<EchoMsg>) {
    let name = format!("echo-{which}-{tag}");
    let actor = spawn_echo(&name, report.clone())
        .await
        .unwrap_or_else(|e| panic!("echo {which}: {e}"));
    (name, actor)
}

fn node_of(dp: &DpTcp) -> NodeId {
    dp.node_id().expect("listening")
}

/// `node` connects to the plain node `h` and the session comes up.
async fn connect_plain(node: &mut TestNode, h: &str) {
    node.connect_to_address(h).await;
    let h = Some(h.to_owned());
    node.wait_event("the session with the plain node to be ready", |e| {
        *e == NodeEvent::Ready(h.clone())
    })
    .await;
}

/// `b` connects to `a` and both sessions authenticate and are ready.
async fn connect_rust(a: &mut TestNode, b: &mut TestNode) {
    b.connect_to(a).await;
    let (a_name, b_name) = (Some(a.full_name.clone()), Some(b.full_name.clone()));
    for (node, peer) in [(a, b_name), (b, a_name)] {
        node.wait_event("the session with the other Rust node to be ready", |e| {
            *e == NodeEvent::Ready(peer.clone())
        })
        .await;
    }
}

/// The Rust node on `dp` and the plain process `p` reach each other:
/// whereis, casts and calls, both directions. `svc` is `p`'s registered
/// name, `echo` a Rust echo actor's.
async fn plain_round_trips(
    dp: &DpTcp,
    h: &PlainNode,
    p: &Process,
    svc: &str,
    echo: &str,
    inbox: &mut Inbox,
) {
    let us = node_of(dp);
    let h_id = h.node_id().as_str().expect("an address").to_owned();
    // Rust → Haskell: whereis, cast, call.
    let remote: ActorRef<EchoMsg> = dp
        .whereis(&h_id, svc, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{us}: whereis {svc}: {e}"))
        .into();
    let text = format!("cast from {us}");
    remote.cast(EchoMsg::Note(text.clone())).expect("cast");
    let m = p
        .expect_fp(fp("Note"), WAIT)
        .await
        .expect("the cast arrives");
    assert_eq!(un_bytestring(&m.payload()), text);
    let question = format!("call from {us}");
    let call = {
        let remote = remote.clone();
        let question = question.clone();
        tokio::spawn(async move { ractor::call_t!(remote, EchoMsg::Ask, 10_000, question) })
    };
    let m = p
        .expect_fp(fp("Ask"), WAIT)
        .await
        .expect("the call arrives");
    let payload = m.payload();
    let limits = Limits::default();
    let mut r = dp_wire::binary::Reader::shared(&payload, &limits);
    let reply_to = <ProcessId as dp_wire::binary::Decode>::decode(&mut r).expect("a reply pid");
    assert_eq!(reply_to.node, us, "the call came from this Rust node");
    assert_eq!(un_bytestring(&r.take_rest()), question);
    p.send(
        &reply_to,
        Message::new(fp("AskReply"), bytestring("answered")),
    )
    .await
    .expect("reply sent");
    let reply = call.await.expect("call task").expect("the call returns");
    assert_eq!(reply, "answered");

    // Haskell → Rust: whereis, send, call.
    let q = h.spawn();
    let pid = q
        .whereis_remote(&us, echo, WAIT)
        .await
        .expect("a WhereIsReply")
        .unwrap_or_else(|| panic!("{echo} found on {us}"));
    let text = format!("note from the plain node to {us}");
    q.send(&pid, Message::new(fp("Note"), bytestring(&text)))
        .await
        .expect("send");
    inbox.expect_note(echo, &text).await;
    let mut ask = Vec::new();
    q.pid().encode(&mut ask);
    ask.extend_from_slice(&bytestring("q?"));
    q.send(&pid, Message::new(fp("Ask"), ask))
        .await
        .expect("send");
    let m = q.expect_fp(fp("AskReply"), WAIT).await.expect("the reply");
    assert_eq!(un_bytestring(&m.payload()), echo_reply(echo, "q?"));
}

/// Decodes every byte the plain node received: complete NT-TCP units,
/// every lightweight connection's Identifier and every frame decode as DP,
/// and no message is of kaisui's private type. Returns the number of DP
/// messages and NCMsgs seen, or `None` while a unit is still partial.
fn received_dp_traffic(h: &PlainNode) -> Option<usize> {
    let limits = Limits::default();
    let mut seen = 0;
    for stream in h.received() {
        // The bytes were sent by the other side of the connection.
        let sender = if stream.initiated_by_us {
            Role::Listener
        } else {
            Role::Initiator
        };
        let mut d = StreamDecoder::new(sender, limits.clone());
        d.push(&stream.bytes);
        let mut conns: HashMap<u32, InboundConnection> = HashMap::new();
        while let Some(unit) = d
            .next_unit()
            .unwrap_or_else(|e| panic!("not NT-TCP from {}: {e}", stream.peer))
        {
            match unit {
                Unit::Control(ControlHeader::CreatedNewConnection(lcid)) => {
                    conns.insert(lcid, InboundConnection::new());
                }
                Unit::Control(ControlHeader::CloseConnection(lcid)) => {
                    conns.remove(&lcid);
                }
                Unit::Data { lcid, payload } => {
                    let conn = conns
                        .get_mut(&lcid)
                        .unwrap_or_else(|| panic!("data on unopened lcid {lcid}"));
                    match conn
                        .decode(&payload, &limits)
                        .unwrap_or_else(|e| panic!("undecodable DP frame on lcid {lcid}: {e}"))
                    {
                        Frame::Open(id) => {
                            assert!(
                                !matches!(&id, Identifier::Process(p) if p.local.counter < 0),
                                "a connection to a reserved pid: {id:?}"
                            );
                        }
                        Frame::Message(m) => {
                            assert_ne!(
                                m.fingerprint,
                                kaisui_wire_fingerprint(),
                                "the plain node got a kaisui-private message"
                            );
                            seen += 1;
                        }
                        Frame::Control(_) => seen += 1,
                        Frame::Channel(_) => panic!("no typed channel was used"),
                    }
                }
                _ => {}
            }
        }
        if d.buffered() != 0 {
            return None;
        }
    }
    Some(seen)
}

async fn assert_only_valid_dp(h: &PlainNode) {
    let seen = eventually("complete units in the plain node's streams", || async {
        received_dp_traffic(h)
    })
    .await;
    assert!(seen > 0, "the plain node got DP traffic");
    assert!(h.violations().is_empty(), "{:?}", h.violations());
}

/// Two Rust nodes and a plain DP node: the Rust nodes work with each other
/// as with the native transport and with the plain node as a DP node; the
/// plain node sees only valid DP traffic and no Rust node takes it for a
/// ractor node.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn two_rust_nodes_and_a_plain_node() {
    let _serial = exclusive().await;
    let tag = unique_tag("mixed");
    let (h, h_id) = plain_node().await;
    let (p, svc) = plain_service(&h, &tag);
    let (mut inbox, report) = Inbox::new();
    let (echo_a, actor_a) = echo_actor("a", &tag, &report).await;
    let (echo_b, actor_b) = echo_actor("b", &tag, &report).await;

    let (mut a, dp_a) = rust_node(&format!("a-{tag}"), COOKIE, None).await;
    let (mut b, dp_b) = rust_node(&format!("b-{tag}"), COOKIE, None).await;
    connect_rust(&mut a, &mut b).await;
    connect_plain(&mut a, &h_id).await;
    connect_plain(&mut b, &h_id).await;

    // Each recognised the other Rust node as kaisui, the plain node as plain.
    for (dp, other) in [(&dp_a, &dp_b), (&dp_b, &dp_a)] {
        let other = node_of(other);
        let info = dp
            .peer_info(other.as_str().unwrap())
            .await
            .expect("peer info");
        assert!(matches!(info.kind, PeerKind::Kaisui { .. }), "{info:?}");
        let info = dp.peer_info(&h_id).await.expect("peer info");
        assert_eq!(info.kind, PeerKind::Plain, "{info:?}");
    }
    // The Rust nodes know each other by name (cookie handshake), the plain
    // node by its NT-TCP address only.
    for (node, other) in [(&a, &b), (&b, &a)] {
        let sessions = node.sessions().await;
        let names: Vec<_> = sessions
            .values()
            .filter_map(|s| s.peer_name.clone())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names
            .iter()
            .any(|n| n.name == other.full_name && !is_plain_dp_session(n)));
        assert!(names
            .iter()
            .any(|n| n.name == h_id && is_plain_dp_session(n)));
    }

    // Rust ↔ Rust: named actors, casts and calls, both ways.
    for (caller, target) in [(&b, &echo_a), (&a, &echo_b)] {
        let remote = caller.wait_remote_actor(target).await;
        let text = format!("cast from {}", caller.full_name);
        remote.cast(EchoMsg::Note(text.clone())).expect("cast");
        inbox.expect_note(target, &text).await;
        let reply = ractor::call_t!(remote, EchoMsg::Ask, 10_000, "hi".to_string())
            .expect("call over DpTcp");
        assert_eq!(reply, echo_reply(target, "hi"));
    }
    // Process groups.
    let group = format!("g-{tag}");
    ractor::pg::join(group.clone(), vec![actor_a.get_cell()]);
    eventually("a remote member of the group", || async {
        ractor::pg::get_members(&group)
            .into_iter()
            .find(|m| !m.get_id().is_local() && m.get_id().pid() == actor_a.get_id().pid())
    })
    .await;

    // Each Rust node ↔ the plain node, both directions.
    plain_round_trips(&dp_a, &h, &p, &svc, &echo_a, &mut inbox).await;
    plain_round_trips(&dp_b, &h, &p, &svc, &echo_b, &mut inbox).await;

    assert_only_valid_dp(&h).await;
    ractor::pg::leave(group, vec![actor_a.get_cell()]);
    actor_a.stop(None);
    actor_b.stop(None);
    shutdown_all(vec![a, b]).await;
}

/// Forwards the stop reason of every session a node opens.
struct SessionEnds(ActorRef<()>);

impl NodeEventSubscription for SessionEnds {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        self.0.get_cell().monitor(ses.actor.get_cell());
    }
    fn node_session_disconnected(&self, _: NodeServerSessionInformation) {}
    fn node_session_authenticated(&self, _: NodeServerSessionInformation) {}
    fn node_session_ready(&self, _: NodeServerSessionInformation) {}
}

struct Observer;

impl Actor for Observer {
    type Msg = ();
    type State = mpsc::UnboundedSender<Option<String>>;
    type Arguments = mpsc::UnboundedSender<Option<String>>;

    async fn pre_start(
        &self,
        _: ActorRef<()>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        evt: SupervisionEvent,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorTerminated(_, _, reason) = evt {
            let _ = tx.send(reason);
        }
        Ok(())
    }
}

/// A Rust node with the wrong cookie is refused by the other with
/// ractor_cluster's own reason, and both keep working with the plain node.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn a_wrong_cookie_between_rust_nodes_leaves_the_plain_node_working() {
    let _serial = exclusive().await;
    let tag = unique_tag("mixed-cookie");
    let (h, h_id) = plain_node().await;
    let (p, svc) = plain_service(&h, &tag);
    let (mut inbox, report) = Inbox::new();
    let (echo_a, actor_a) = echo_actor("a", &tag, &report).await;
    let (echo_c, actor_c) = echo_actor("c", &tag, &report).await;

    let (mut a, dp_a) = rust_node(&format!("a-{tag}"), COOKIE, None).await;
    let (mut c, dp_c) = rust_node(&format!("intruder-{tag}"), "not-the-cookie", None).await;
    connect_plain(&mut a, &h_id).await;
    connect_plain(&mut c, &h_id).await;
    let (tx, mut ends) = mpsc::unbounded_channel();
    let (observer, _) = Actor::spawn(None, Observer, tx).await.expect("observer");
    a.server
        .cast(NodeServerMessage::SubscribeToEvents {
            id: "session-ends".into(),
            subscription: Box::new(SessionEnds(observer.clone())),
        })
        .expect("subscribe");

    c.connect_to(&a).await;
    let reason = tokio::time::timeout(WAIT, ends.recv())
        .await
        .expect("a's session with the intruder ends")
        .expect("observer alive");
    assert_eq!(
        reason.as_deref(),
        Some("auth_fail"),
        "ractor_cluster's own reason"
    );
    for node in [&mut a, &mut c] {
        node.wait_event(
            "the session with the other Rust node to close",
            |e| matches!(e, NodeEvent::Disconnected(n) if n.as_deref() != Some(h_id.as_str())),
        )
        .await;
        let name = node.full_name.clone();
        let h_ready = NodeEvent::Ready(Some(h_id.clone()));
        let events = node.events_so_far();
        let authenticated = events
            .iter()
            .filter(|e| matches!(e, NodeEvent::Authenticated(_) | NodeEvent::Ready(_)))
            .filter(|e| **e != NodeEvent::Authenticated(Some(h_id.clone())) && **e != h_ready)
            .count();
        assert_eq!(
            authenticated, 0,
            "{name} authenticated the intruder: {events:?}"
        );
        let sessions = node.sessions().await;
        assert_eq!(
            sessions.len(),
            1,
            "{name}: only the plain node's session: {sessions:?}"
        );
    }
    // Both still work with the plain node.
    plain_round_trips(&dp_a, &h, &p, &svc, &echo_a, &mut inbox).await;
    plain_round_trips(&dp_c, &h, &p, &svc, &echo_c, &mut inbox).await;
    assert_only_valid_dp(&h).await;
    observer.stop(None);
    actor_a.stop(None);
    actor_c.stop(None);
    shutdown_all(vec![a, c]).await;
}

/// Transitive connections work over DpTcp (connection strings are NT-TCP
/// addresses), and the plain node is not advertised as a ractor node: a
/// Rust node that only knows another one connects to the third Rust node,
/// not to the plain node.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn transitive_connections_reach_rust_nodes_only() {
    let _serial = exclusive().await;
    let tag = unique_tag("mixed-transitive");
    let (h, h_id) = plain_node().await;
    let mode = Some(NodeConnectionMode::Transitive);
    let (mut a, _dp_a) = rust_node(&format!("a-{tag}"), COOKIE, mode).await;
    let (mut b, _dp_b) = rust_node(&format!("b-{tag}"), COOKIE, mode).await;
    let (mut c, dp_c) = rust_node(&format!("c-{tag}"), COOKIE, mode).await;
    connect_rust(&mut a, &mut b).await;
    connect_plain(&mut a, &h_id).await;
    // c only dials a; a tells it of b (and not of the plain node).
    connect_rust(&mut a, &mut c).await;
    let b_name = Some(b.full_name.clone());
    c.wait_event("a transitive session with b", |e| {
        *e == NodeEvent::Ready(b_name.clone())
    })
    .await;
    let c_name = Some(c.full_name.clone());
    b.wait_event("a transitive session with c", |e| {
        *e == NodeEvent::Ready(c_name.clone())
    })
    .await;
    let names: Vec<_> = c
        .sessions()
        .await
        .into_values()
        .filter_map(|s| s.peer_name.map(|n| n.name))
        .collect();
    assert!(
        !names.contains(&h_id),
        "c dialled the plain node: {names:?}"
    );
    assert!(
        dp_c.peer_info(&h_id).await.is_err(),
        "c has a connection to the plain node"
    );
    assert_eq!(h.received().len(), 1, "only a connected to the plain node");
    assert_only_valid_dp(&h).await;
    shutdown_all(vec![a, b, c]).await;
}
