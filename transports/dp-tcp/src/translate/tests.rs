//! Deterministic tests of every translation rule.

use std::collections::{HashMap, HashSet};

use dp_wire::binary::Encode;

use super::*;
use crate::registry::haskell_type_fingerprint;

mod lifecycle;

const US: &str = "127.0.0.1:9000:0";
const PEER: &str = "127.0.0.1:9001:0";
const INC: i32 = 0x1234_5678;
const PEER_UNIQUE: i32 = -77;

#[derive(Debug, Default)]
struct FakeDirectory {
    names: HashMap<String, u64>,
    remotable: HashSet<u64>,
}

impl LocalDirectory for FakeDirectory {
    fn lookup_name(&self, name: &str) -> Option<u64> {
        self.names
            .get(name)
            .copied()
            .filter(|p| self.remotable.contains(p))
    }
    fn is_remotable(&self, pid: u64) -> bool {
        self.remotable.contains(&pid)
    }
}

fn fp(name: &str) -> Fingerprint {
    haskell_type_fingerprint("main", "Kaisui.Greeter", name)
}

fn types() -> TypeRegistry {
    TypeRegistry::new()
        .module("main", "Kaisui.Greeter")
        .cast("Hello", "Hello")
        .call("Ask", "Ask", "AskReply")
}

/// The context of a node `node` with `incarnation`, local actors `dir` and
/// one `spawnable` closure label.
fn context(
    node: &str,
    incarnation: i32,
    dir: impl LocalDirectory + 'static,
    spawnable: &str,
) -> Arc<Context> {
    Arc::new(Context {
        node: NodeId::new(node),
        incarnation,
        types: types(),
        build: Build::default(),
        limits: Limits::default(),
        call_timeout: Duration::from_secs(30),
        max_pending: 4,
        directory: Arc::new(dir),
        spawnable: HashSet::from([spawnable.to_owned()]),
        recognize_timeout: Duration::from_secs(5),
    })
}

fn ctx_with(node: &str, incarnation: i32, dir: FakeDirectory) -> Arc<Context> {
    context(node, incarnation, dir, "Kaisui.Workers.counter")
}

fn default_dir() -> FakeDirectory {
    FakeDirectory {
        names: HashMap::from([("greeter".to_owned(), 5), ("hidden".to_owned(), 6)]),
        remotable: HashSet::from([5]),
    }
}

/// Our translator towards the peer, as `Translator::new` leaves it.
fn fresh() -> Translator {
    Translator::new(ctx_with(US, INC, default_dir()), NodeId::new(PEER))
}

fn translator() -> Translator {
    plain(fresh())
}

/// `translator()` with the peer's connection `lcid` open towards `id`, and
/// the time that was done at.
fn opened(lcid: u32, id: Identifier) -> (Translator, Instant) {
    let mut t = translator();
    let now = Instant::now();
    open(&mut t, lcid, id, now);
    (t, now)
}

/// `translator()`, the time, and `target`: the peer's process 8 as the
/// session addresses it in calls.
fn calling() -> (Translator, Instant, u64) {
    (translator(), Instant::now(), remote_pid(theirs(8).local))
}

/// `opened` with the peer's NC connected to ours on lcid 1024.
fn node_opened() -> (Translator, Instant) {
    opened(1024, our_node())
}

/// `t` as after its probe was answered `Nothing` (a plain DP peer), with
/// the session's synthetic start (Ready, marker) and the event taken out.
fn plain(mut t: Translator) -> Translator {
    t.recognized(PeerKind::Plain);
    t.session_ready = true;
    t.to_session.clear();
    t.events.clear();
    t
}

fn ours(counter: i32) -> ProcessId {
    ProcessId {
        node: NodeId::new(US),
        local: LocalProcessId {
            unique: INC,
            counter,
        },
    }
}

fn theirs(counter: i32) -> ProcessId {
    ProcessId {
        node: NodeId::new(PEER),
        local: LocalProcessId {
            unique: PEER_UNIQUE,
            counter,
        },
    }
}

/// Our node (its NC) as an Identifier.
fn our_node() -> Identifier {
    Identifier::Node(NodeId::new(US))
}

/// The peer's node (its NC) as an Identifier.
fn peer_node() -> Identifier {
    Identifier::Node(NodeId::new(PEER))
}

fn enc<T: Encode>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode(&mut out);
    out
}

fn msg_frame(fp: Fingerprint, payload: &[u8]) -> Bytes {
    let mut out = Vec::new();
    encode_frame(fp, payload, &mut out);
    Bytes::from(out)
}

fn actions(t: &mut Translator) -> Vec<DpAction> {
    std::iter::from_fn(|| t.poll_action()).collect()
}

fn session(t: &mut Translator) -> Vec<NetworkMessage> {
    std::iter::from_fn(|| t.poll_session()).collect()
}

fn events(t: &mut Translator) -> Vec<Event> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

/// The peer opens `lcid` towards `id`.
fn open(t: &mut Translator, lcid: u32, id: Identifier, now: Instant) {
    t.handle_peer_opened(lcid);
    t.handle_peer_frame(lcid, Bytes::from(enc(&id)), now);
}

fn ncmsg(sender: Identifier, signal: ProcessSignal) -> Bytes {
    Bytes::from(enc(&NCMsg { sender, signal }))
}

/// The peer's `sender` sends our NC `signal` on `lcid`.
fn nc_signal(
    t: &mut Translator,
    lcid: u32,
    sender: Identifier,
    signal: ProcessSignal,
    now: Instant,
) {
    t.handle_peer_frame(lcid, ncmsg(sender, signal), now);
}

/// The peer's `from` asks our NC, on `lcid`, where `label` is.
fn where_is(t: &mut Translator, lcid: u32, from: Identifier, label: &str, now: Instant) {
    nc_signal(t, lcid, from, ProcessSignal::WhereIs(label.into()), now);
}

/// The peer's NC sends `message` to our process `to`, on `lcid`.
fn usend_to_us(t: &mut Translator, lcid: u32, to: LocalProcessId, message: Message, now: Instant) {
    let signal = ProcessSignal::UnreliableSend { to, message };
    nc_signal(t, lcid, peer_node(), signal, now);
}

/// A `WhereIsReply` for `label` in build `fp`.
fn where_is_reply(fp: Fingerprint, label: &str, pid: Option<ProcessId>) -> Message {
    Message::new(
        fp,
        enc(&WhereIsReply {
            label: label.into(),
            pid,
        }),
    )
}

/// Our NC's frame answering `to`'s WhereIs `label`, in build `fp`.
fn where_is_answer(
    to: &ProcessId,
    fp: Fingerprint,
    label: &str,
    pid: Option<ProcessId>,
) -> Vec<u8> {
    enc(&NCMsg {
        sender: our_node(),
        signal: ProcessSignal::UnreliableSend {
            to: to.local,
            message: where_is_reply(fp, label, pid),
        },
    })
}

fn cast(to: u64, what: &[u8], variant: &str) -> NetworkMessage {
    node_msg(node_message::Msg::Cast(node::Cast {
        to,
        what: what.to_vec(),
        variant: variant.into(),
        metadata: None,
    }))
}

fn call(to: u64, tag: u64, what: &[u8], variant: &str, timeout_ms: Option<u64>) -> NetworkMessage {
    node_msg(node_message::Msg::Call(node::Call {
        to,
        what: what.to_vec(),
        tag,
        timeout_ms,
        variant: variant.into(),
        metadata: None,
    }))
}

fn call_reply(to: u64, tag: u64, what: &[u8]) -> NetworkMessage {
    node_msg(node_message::Msg::Reply(node::CallReply {
        to,
        tag,
        what: what.to_vec(),
    }))
}

fn ready() -> NetworkMessage {
    control_msg(control_message::Msg::Ready(control::Ready {}))
}

/// A PgJoin of one actor `pid` named `name` to `group` in the remote scope.
fn pg_join(group: String, pid: u64, name: &str) -> NetworkMessage {
    control_msg(control_message::Msg::PgJoin(control::PgJoin {
        group,
        actors: vec![control::Actor {
            pid,
            name: Some(name.into()),
        }],
        scope: REMOTE_SCOPE.into(),
    }))
}

fn ractor_packed(field: &[u8]) -> Vec<u8> {
    let mut v = (field.len() as u64).to_be_bytes().to_vec();
    v.extend_from_slice(field);
    v
}

/// A Haskell call's payload: the reply address, then `what`.
fn with_reply_to(reply_to: &ProcessId, what: &[u8]) -> Vec<u8> {
    let mut payload = enc(reply_to);
    payload.extend_from_slice(what);
    payload
}

/// `m` as a kaisui peer's agent carries it: a length-prefixed protobuf in
/// a message of the kaisui wire type.
fn kaisui_frame(m: &NetworkMessage) -> Bytes {
    let bytes = prost::Message::encode_to_vec(m);
    msg_frame(kaisui_wire_fingerprint(), &ractor_packed(&bytes))
}

/// Sends of process messages among `acts`, as (connection target, frame).
fn sent_frames(acts: &[DpAction]) -> Vec<Vec<u8>> {
    acts.iter()
        .filter_map(|a| match a {
            DpAction::Send { frame, .. } => Some(frame.clone()),
            _ => None,
        })
        .collect()
}

/// A translator fresh from `connected()`, its probe's actions taken.
fn probing() -> Translator {
    let mut t = fresh();
    t.connected(Instant::now());
    actions(&mut t);
    t
}

/// The peer's NC, on lcid 1024 which it opens, answers our WhereIs from
/// synthetic `counter` with `pid` for `label`, in build `fp`.
fn answer_where_is(
    t: &mut Translator,
    counter: i32,
    fp: Fingerprint,
    label: &str,
    pid: Option<ProcessId>,
    now: Instant,
) {
    open(t, 1024, our_node(), now);
    usend_to_us(
        t,
        1024,
        ours(counter).local,
        where_is_reply(fp, label, pid),
        now,
    );
}

/// The peer's NC answers our probe with `pid`, in build `fp`.
fn answer_probe(t: &mut Translator, fp: Fingerprint, pid: Option<ProcessId>, now: Instant) {
    answer_where_is(t, FIRST_SYNTHETIC_COUNTER, fp, PROBE_LABEL, pid, now);
}

#[test]
fn connected_probes_the_peer_nc_and_a_plain_peer_then_yields_ready() {
    let mut t = fresh();
    let now = Instant::now();
    t.connected(now);
    assert_eq!(t.kind(), &PeerKind::Probing);
    assert!(
        session(&mut t).is_empty(),
        "nothing before the probe's answer"
    );
    let acts = actions(&mut t);
    assert_eq!(
        acts,
        vec![
            DpAction::Open {
                conn: 0,
                from: our_node(),
                to: peer_node(),
            },
            DpAction::Send {
                conn: 0,
                frame: enc(&peer_node()),
            },
            DpAction::Send {
                conn: 0,
                frame: enc(&NCMsg {
                    sender: Identifier::Process(ours(FIRST_SYNTHETIC_COUNTER)),
                    signal: ProcessSignal::WhereIs(KAISUI_NODE_LABEL.into()),
                }),
            },
        ]
    );
    let dp_build = Build::default().where_is_reply().fingerprint();
    answer_probe(&mut t, dp_build, None, now);
    assert_eq!(t.kind(), &PeerKind::Plain);
    assert_eq!(events(&mut t), vec![Event::Recognized(PeerKind::Plain)]);
    let marker = format!("{PEER}/session@{US}");
    assert_eq!(
        session(&mut t),
        vec![
            ready(),
            pg_join(marker, SESSION_MARKER_PID, "kaisui.dp-tcp.session"),
        ]
    );
}

#[test]
fn an_unanswered_probe_makes_a_plain_peer_at_its_deadline() {
    let (mut t, now) = (probing(), Instant::now());
    let deadline = t.poll_timeout().expect("the probe's deadline");
    assert!(deadline <= now + Duration::from_secs(5));
    t.handle_timeout(deadline);
    assert_eq!(t.kind(), &PeerKind::Plain);
    assert_eq!(events(&mut t), vec![Event::Recognized(PeerKind::Plain)]);
    assert_eq!(session(&mut t).len(), 2, "Ready and the marker");
}

#[test]
fn where_is_before_the_probe_reply_is_held_and_answered_in_the_learned_build() {
    let (mut t, now) = (probing(), Instant::now());
    open(&mut t, 1025, our_node(), now);
    where_is(&mut t, 1025, Identifier::Process(theirs(8)), "greeter", now);
    assert!(sent_frames(&actions(&mut t)).is_empty(), "held");
    let their_fp = Fingerprint::new(1, 2);
    answer_probe(&mut t, their_fp, None, now);
    // Until the session is up, which it tells by writing its Ready.
    assert!(sent_frames(&actions(&mut t)).is_empty(), "held");
    t.handle_session(ready(), now);
    let expected = where_is_answer(&theirs(8), their_fp, "greeter", Some(ours(5)));
    assert_eq!(sent_frames(&actions(&mut t)), vec![expected]);
}

#[test]
fn the_kaisui_label_is_answered_at_once_with_our_node_agent() {
    let (mut t, now) = (probing(), Instant::now());
    open(&mut t, 1025, our_node(), now);
    let asker = theirs(-3);
    let from = Identifier::Process(asker.clone());
    where_is(&mut t, 1025, from, KAISUI_NODE_LABEL, now);
    let expected = where_is_answer(
        &asker,
        Build::default().where_is_reply().fingerprint(),
        KAISUI_NODE_LABEL,
        Some(ours(NODE_AGENT_COUNTER)),
    );
    assert_eq!(sent_frames(&actions(&mut t)), vec![expected]);
}

fn name(name: &str, connection_string: &str) -> ractor_cluster::protocol::auth::NameMessage {
    ractor_cluster::protocol::auth::NameMessage {
        name: name.into(),
        flags: None,
        connection_string: connection_string.into(),
        connection_id: 0,
    }
}

#[test]
fn a_kaisui_peer_gets_every_session_message_encapsulated_and_unchanged() {
    let (mut t, now) = (probing(), Instant::now());
    let agent = theirs(NODE_AGENT_COUNTER);
    // The peer's session may speak before our probe is answered.
    let auth = NetworkMessage {
        message: Some(network_message::Message::Auth(
            ractor_cluster::protocol::auth::AuthenticationMessage {
                msg: Some(
                    ractor_cluster::protocol::auth::authentication_message::Msg::Name(name(
                        "b@localhost",
                        "127.0.0.1:9001:0",
                    )),
                ),
            },
        )),
    };
    let agent_conn = Identifier::Process(ours(NODE_AGENT_COUNTER));
    open(&mut t, 1030, agent_conn, now);
    t.handle_peer_frame(1030, kaisui_frame(&auth), now);
    assert!(session(&mut t).is_empty());
    answer_probe(&mut t, Fingerprint::new(1, 2), Some(agent.clone()), now);
    assert_eq!(
        events(&mut t),
        vec![Event::Recognized(PeerKind::Kaisui {
            agent: agent.clone()
        })]
    );
    // No synthetic Ready: the peer's session sends its own.
    assert_eq!(session(&mut t), vec![auth.clone()]);

    // Everything the session writes goes to the peer's agent, Ping and
    // Auth included, NodeSessions without plain DP peers.
    let ping = control_msg(control_message::Msg::Ping(control::Ping {
        timestamp: None,
    }));
    let sessions = |names: Vec<_>| {
        control_msg(control_message::Msg::NodeSessions(control::NodeSessions {
            sessions: names,
        }))
    };
    for m in [auth.clone(), ping.clone(), ready()] {
        t.handle_session(m, now);
    }
    t.handle_session(
        sessions(vec![
            name("c@localhost", "127.0.0.1:9003:0"),
            name("127.0.0.1:9004:0", "127.0.0.1:9004:0"),
        ]),
        now,
    );
    let acts = actions(&mut t);
    assert_eq!(
        acts[0],
        DpAction::Open {
            conn: 1,
            from: Identifier::Process(ours(NODE_AGENT_COUNTER)),
            to: Identifier::Process(agent.clone()),
        }
    );
    let frames: Vec<_> = sent_frames(&acts)[1..].to_vec();
    let expect = |m: &NetworkMessage| kaisui_frame(m).to_vec();
    assert_eq!(
        frames,
        vec![
            expect(&auth),
            expect(&ping),
            expect(&ready()),
            expect(&sessions(vec![name("c@localhost", "127.0.0.1:9003:0")])),
        ]
    );
    // After our Ready, the session gets its marker; nothing answered here.
    let s = session(&mut t);
    assert_eq!(s.len(), 1);
    assert!(matches!(
        &s[0].message,
        Some(network_message::Message::Control(control::ControlMessage {
            msg: Some(control_message::Msg::PgJoin(j))
        })) if j.actors[0].pid == SESSION_MARKER_PID
    ));
    assert_eq!(t.counters(), Counters::default());
}

#[test]
fn kaisui_messages_from_a_plain_peer_or_of_other_types_are_dropped() {
    let (mut t, now) = opened(1030, Identifier::Process(ours(NODE_AGENT_COUNTER)));
    let empty = 0u64.to_be_bytes();
    t.handle_peer_frame(1030, msg_frame(kaisui_wire_fingerprint(), &empty), now);
    t.handle_peer_frame(1030, msg_frame(fp("Hello"), &empty), now);
    assert!(session(&mut t).is_empty());
    assert_eq!(t.counters().ignored, 1);
    assert_eq!(t.counters().unknown_type, 1);
}

#[test]
fn plain_dp_sessions_are_recognised_by_name() {
    assert!(is_plain_dp_session(&name(
        "127.0.0.1:9004:0",
        "127.0.0.1:9004:0"
    )));
    assert!(!is_plain_dp_session(&name(
        "a@localhost",
        "127.0.0.1:9004:0"
    )));
    assert!(!is_plain_dp_session(&name("localhost:80", "localhost:80")));
}

#[test]
fn probe_reply_teaches_the_peer_where_is_reply_fingerprint() {
    let (mut t, now) = (probing(), Instant::now());
    // A peer built with another distributed-process hash.
    let their_fp = Fingerprint::new(1, 2);
    answer_probe(&mut t, their_fp, None, now);
    assert_eq!(t.learned().where_is_reply, Some(their_fp));
    // The probe is ours: no WhereIs event, only what it told.
    assert_eq!(events(&mut t), vec![Event::Recognized(PeerKind::Plain)]);
    t.handle_session(ready(), now);

    // Later answers to the peer use the learned fingerprint.
    where_is(&mut t, 1024, Identifier::Process(theirs(8)), "greeter", now);
    let frames = sent_frames(&actions(&mut t));
    let expected = where_is_answer(&theirs(8), their_fp, "greeter", Some(ours(5)));
    assert_eq!(frames, vec![expected]);
}

fn hexb(s: &str) -> Bytes {
    let s: String = s.split_whitespace().collect();
    Bytes::from(
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<_>>(),
    )
}

#[test]
fn where_is_answers_are_byte_identical_to_capture_03() {
    // We play node B (127.0.0.1:10502:0, lpidUnique 0x44f586af) with
    // "echo" at counter 8; A asks for "echo" and "nosuch".
    let dir = FakeDirectory {
        names: HashMap::from([("echo".to_owned(), 8)]),
        remotable: HashSet::from([8]),
    };
    let ctx = ctx_with("127.0.0.1:10502:0", 0x44f5_86af, dir);
    let mut t = plain(Translator::new(ctx, NodeId::new("127.0.0.1:10501:0")));
    let now = Instant::now();
    t.handle_peer_opened(1024);
    t.handle_peer_frame(
        1024,
        hexb("0100000000000000113132372e302e302e313a31303530323a30"),
        now,
    );
    t.handle_peer_frame(
        1024,
        hexb("0000000000000000113132372e302e302e313a31303530313a309983e389000000080600000000000000046563686f"),
        now,
    );
    t.handle_peer_frame(
        1024,
        hexb("0000000000000000113132372e302e302e313a31303530313a309983e389000000080600000000000000066e6f73756368"),
        now,
    );
    let acts = actions(&mut t);
    assert!(
        matches!(&acts[0], DpAction::Open { from: Identifier::Node(_), to: Identifier::Node(n), .. } if n.as_str() == Some("127.0.0.1:10501:0"))
    );
    let frames = sent_frames(&acts);
    assert_eq!(frames.len(), 3);
    // Capture lines 0.000442, 0.000469 and 0.000622 without the 8-byte
    // lcid/length header.
    assert_eq!(
        frames[0],
        hexb("0100000000000000113132372e302e302e313a31303530313a30")
    );
    assert_eq!(
        frames[1],
        hexb(
            "0100000000000000113132372e302e302e313a31303530323a300d9983e38900000008\
             000000000000000200000000000000101de27da8e7d9f0672ff25e3e547b0acd\
             000000000000002e00000000000000046563686f0100000000000000113132372e302e302e313a31303530323a3044f586af00000008"
        )
    );
    assert_eq!(
        frames[2],
        hexb(
            "0100000000000000113132372e302e302e313a31303530323a300d9983e38900000008\
             000000000000000200000000000000101de27da8e7d9f0672ff25e3e547b0acd\
             000000000000000f00000000000000066e6f7375636800"
        )
    );
}

#[test]
fn where_is_for_a_non_remotable_actor_answers_nothing() {
    let (mut t, now) = node_opened();
    where_is(&mut t, 1024, Identifier::Process(theirs(8)), "hidden", now);
    let frames = sent_frames(&actions(&mut t));
    let reply = enc(&WhereIsReply {
        label: "hidden".into(),
        pid: None,
    });
    assert!(frames.last().unwrap().ends_with(&reply));
}

#[test]
fn where_is_from_a_node_sender_or_third_node_is_not_answered() {
    let (mut t, now) = node_opened();
    where_is(&mut t, 1024, peer_node(), "greeter", now);
    let mut third = theirs(8);
    third.node = NodeId::new("10.0.0.1:1:0");
    where_is(&mut t, 1024, Identifier::Process(third), "greeter", now);
    assert!(actions(&mut t).is_empty());
}

#[test]
fn rust_cast_becomes_a_fingerprinted_message_from_the_node_sender() {
    let mut t = translator();
    let target = remote_pid(theirs(8).local);
    let what = ractor_packed(b"proto-bytes");
    t.handle_session(cast(target, &what, "Hello"), Instant::now());
    t.handle_session(cast(target, &what, "Hello"), Instant::now());
    let acts = actions(&mut t);
    assert_eq!(
        acts[0],
        DpAction::Open {
            conn: 0,
            from: Identifier::Process(ours(NODE_SENDER_COUNTER)),
            to: Identifier::Process(theirs(8)),
        }
    );
    let frames = sent_frames(&acts);
    // One connection, reused: Identifier, then two messages.
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0], enc(&Identifier::Process(theirs(8))));
    assert_eq!(frames[1], msg_frame(fp("Hello"), &what).to_vec());
    assert_eq!(frames[1], frames[2]);
    assert!(
        acts.iter()
            .filter(|a| matches!(a, DpAction::Open { .. }))
            .count()
            == 1
    );
}

#[test]
fn rust_cast_of_an_unregistered_variant_is_not_sent() {
    let mut t = translator();
    t.handle_session(
        cast(remote_pid(theirs(8).local), b"x", "Nope"),
        Instant::now(),
    );
    assert!(actions(&mut t).is_empty());
    assert_eq!(t.counters().unknown_type, 1);
}

#[test]
fn rust_call_carries_a_synthetic_reply_pid_and_the_reply_comes_back() {
    let (mut t, now, target) = calling();
    let what = ractor_packed(b"question");
    t.handle_session(call(target, 42, &what, "Ask", Some(1000)), now);
    let frames = sent_frames(&actions(&mut t));
    let reply_pid = ours(FIRST_SYNTHETIC_COUNTER);
    let payload = with_reply_to(&reply_pid, &what);
    assert_eq!(frames[1], msg_frame(fp("Ask"), &payload).to_vec());
    assert_eq!(t.poll_timeout(), Some(now + Duration::from_millis(1000)));

    // Haskell: send replyTo (AskReply "answer").
    open(&mut t, 1030, Identifier::Process(reply_pid), now);
    let answer = msg_frame(fp("AskReply"), &ractor_packed(b"answer"));
    t.handle_peer_frame(1030, answer, now);
    assert_eq!(session(&mut t), vec![call_reply(target, 42, b"answer")]);
    assert_eq!(t.poll_timeout(), None);
}

#[test]
fn rust_call_reply_of_the_wrong_type_or_length_is_dropped_and_the_call_still_waits() {
    let (mut t, now, target) = calling();
    t.handle_session(call(target, 1, &ractor_packed(b"q"), "Ask", None), now);
    actions(&mut t);
    let reply_pid = ours(FIRST_SYNTHETIC_COUNTER);
    open(&mut t, 1024, Identifier::Process(reply_pid), now);
    t.handle_peer_frame(1024, msg_frame(fp("Hello"), &ractor_packed(b"a")), now);
    let mut bad_len = ractor_packed(b"abc");
    bad_len.pop();
    t.handle_peer_frame(1024, msg_frame(fp("AskReply"), &bad_len), now);
    t.handle_peer_frame(1024, msg_frame(fp("AskReply"), &[1, 2]), now);
    assert!(session(&mut t).is_empty());
    assert_eq!(t.counters().unmatched_reply, 1);
    assert_eq!(t.counters().undecodable, 2);
    t.handle_peer_frame(1024, msg_frame(fp("AskReply"), &ractor_packed(b"")), now);
    assert_eq!(session(&mut t).len(), 1);
}

#[test]
fn rust_call_without_timeout_uses_the_default_and_expires() {
    let (mut t, now, target) = calling();
    t.handle_session(call(target, 9, &ractor_packed(b"q"), "Ask", None), now);
    actions(&mut t);
    let deadline = now + Duration::from_secs(30);
    assert_eq!(t.poll_timeout(), Some(deadline));
    t.handle_timeout(deadline);
    assert_eq!(t.counters().expired, 1);
    assert_eq!(t.poll_timeout(), None);
    // The late reply is dropped.
    let reply_pid = Identifier::Process(ours(FIRST_SYNTHETIC_COUNTER));
    open(&mut t, 1024, reply_pid, now);
    let late = msg_frame(fp("AskReply"), &ractor_packed(b"late"));
    t.handle_peer_frame(1024, late, deadline);
    assert!(session(&mut t).is_empty());
    assert_eq!(t.counters().unmatched_reply, 1);
}

#[test]
fn rust_call_of_an_unregistered_variant_or_over_the_table_bound_is_not_sent() {
    let (mut t, now, target) = calling();
    t.handle_session(call(target, 1, b"", "Nope", None), now);
    assert!(actions(&mut t).is_empty());
    assert_eq!(t.counters().unknown_type, 1);
    for tag in 0..4 {
        t.handle_session(call(target, tag, b"", "Ask", None), now);
    }
    actions(&mut t);
    t.handle_session(call(target, 99, b"", "Ask", None), now);
    assert!(actions(&mut t).is_empty());
    assert_eq!(t.counters().table_full, 1);
}

#[test]
fn synthetic_counters_are_unique_while_pending() {
    let (mut t, now, target) = calling();
    t.handle_session(call(target, 1, b"", "Ask", None), now);
    t.handle_session(call(target, 2, b"", "Ask", None), now);
    let frames = sent_frames(&actions(&mut t));
    let a = &frames[1][16..16 + enc(&ours(0)).len()];
    let b = &frames[2][16..16 + enc(&ours(0)).len()];
    assert_eq!(a, enc(&ours(FIRST_SYNTHETIC_COUNTER)).as_slice());
    assert_eq!(b, enc(&ours(FIRST_SYNTHETIC_COUNTER - 1)).as_slice());
}

#[test]
fn haskell_send_to_a_rust_actor_becomes_a_cast() {
    let (mut t, now) = opened(1024, Identifier::Process(ours(5)));
    let what = ractor_packed(b"hi");
    t.handle_peer_frame(1024, msg_frame(fp("Hello"), &what), now);
    assert_eq!(session(&mut t), vec![cast(5, &what, "Hello")]);
}

#[test]
fn unknown_fingerprint_wrong_incarnation_and_dead_target_are_dropped() {
    let (mut t, now) = opened(1024, Identifier::Process(ours(5)));
    t.handle_peer_frame(1024, msg_frame(Fingerprint::new(7, 7), b"zz"), now);
    assert_eq!(t.counters().unknown_type, 1);

    let mut stale = ours(5);
    stale.local.unique = INC ^ 1;
    open(&mut t, 1025, Identifier::Process(stale), now);
    t.handle_peer_frame(1025, msg_frame(fp("Hello"), &ractor_packed(b"x")), now);
    assert_eq!(t.counters().stale_or_foreign, 1);

    open(&mut t, 1026, Identifier::Process(ours(99)), now);
    t.handle_peer_frame(1026, msg_frame(fp("Hello"), &ractor_packed(b"x")), now);
    assert_eq!(t.counters().no_such_target, 1);

    let mut foreign = ours(5);
    foreign.node = NodeId::new("127.0.0.1:1:0");
    open(&mut t, 1027, Identifier::Process(foreign), now);
    assert_eq!(t.counters().stale_or_foreign, 2);

    assert!(session(&mut t).is_empty());
    assert!(actions(&mut t).is_empty());

    // The good connection still works.
    t.handle_peer_frame(1024, msg_frame(fp("Hello"), &ractor_packed(b"ok")), now);
    assert_eq!(session(&mut t).len(), 1);
}

#[test]
fn haskell_call_to_a_rust_actor_round_trips() {
    let (mut t, now) = opened(1024, Identifier::Process(ours(5)));
    let what = ractor_packed(b"req");
    let payload = with_reply_to(&theirs(8), &what);
    t.handle_peer_frame(1024, msg_frame(fp("Ask"), &payload), now);
    assert_eq!(session(&mut t), vec![call(5, 1, &what, "Ask", None)]);

    t.handle_session(call_reply(5, 1, b"resp"), now);
    let acts = actions(&mut t);
    assert_eq!(
        acts[0],
        DpAction::Open {
            conn: 0,
            from: Identifier::Process(ours(5)),
            to: Identifier::Process(theirs(8)),
        }
    );
    assert_eq!(
        sent_frames(&acts)[1],
        msg_frame(fp("AskReply"), &ractor_packed(b"resp")).to_vec()
    );
    // A second reply with the same tag has nothing to answer.
    t.handle_session(call_reply(5, 1, b"again"), now);
    assert!(actions(&mut t).is_empty());
    assert_eq!(t.counters().unmatched_reply, 1);
}

#[test]
fn haskell_call_expires_and_bad_reply_addresses_are_dropped() {
    let (mut t, now) = opened(1024, Identifier::Process(ours(5)));
    // No ProcessId in front.
    t.handle_peer_frame(1024, msg_frame(fp("Ask"), &[0xff; 4]), now);
    assert_eq!(t.counters().undecodable, 1);
    // Reply address on a third node.
    let mut third = theirs(8);
    third.node = NodeId::new("10.1.1.1:1:0");
    let payload = with_reply_to(&third, &ractor_packed(b"q"));
    t.handle_peer_frame(1024, msg_frame(fp("Ask"), &payload), now);
    assert_eq!(t.counters().stale_or_foreign, 1);
    assert!(session(&mut t).is_empty());

    let payload = with_reply_to(&theirs(8), &ractor_packed(b"q"));
    t.handle_peer_frame(1024, msg_frame(fp("Ask"), &payload), now);
    assert_eq!(session(&mut t).len(), 1);
    let deadline = t.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(30));
    t.handle_timeout(deadline);
    t.handle_session(call_reply(5, 1, b""), now);
    assert!(actions(&mut t).is_empty());
    assert_eq!(t.counters().expired, 1);
}

#[test]
fn named_send_and_usend_reach_rust_actors() {
    let (mut t, now) = node_opened();
    let what = ractor_packed(b"n");
    let m = Message::new(fp("Hello"), what.clone());
    let named_send = |label: &str| ProcessSignal::NamedSend {
        label: label.into(),
        message: m.clone(),
    };
    let from = Identifier::Process(theirs(8));
    nc_signal(&mut t, 1024, from.clone(), named_send("greeter"), now);
    nc_signal(&mut t, 1024, from, named_send("nobody"), now);
    usend_to_us(&mut t, 1024, ours(5).local, m.clone(), now);
    let mut stale = ours(5).local;
    stale.unique += 1;
    usend_to_us(&mut t, 1024, stale, m, now);
    assert_eq!(
        session(&mut t),
        vec![cast(5, &what, "Hello"), cast(5, &what, "Hello")]
    );
    assert_eq!(t.counters().no_such_target, 1);
    assert_eq!(t.counters().stale_or_foreign, 1);
}

#[test]
fn other_nc_signals_are_ignored() {
    let (mut t, now) = node_opened();
    let from = Identifier::Process(theirs(8));
    let info = ProcessSignal::GetInfo(ours(5));
    nc_signal(&mut t, 1024, from.clone(), info, now);
    let stats = ProcessSignal::GetNodeStats(NodeId::new(US));
    nc_signal(&mut t, 1024, from, stats, now);
    assert!(session(&mut t).is_empty());
    assert!(actions(&mut t).is_empty());
    assert_eq!(t.counters().ignored, 2);
}

#[test]
fn malformed_frames_are_dropped_and_the_connection_keeps_working() {
    let (mut t, now) = node_opened();
    // A WhereIs with a truncated label, then a bad signal tag.
    let mut bad = enc(&NCMsg {
        sender: Identifier::Process(theirs(8)),
        signal: ProcessSignal::WhereIs("greeter".into()),
    });
    bad.truncate(bad.len() - 3);
    t.handle_peer_frame(1024, Bytes::from(bad), now);
    let mut bad_tag = enc(&Identifier::Process(theirs(8)));
    bad_tag.push(200);
    t.handle_peer_frame(1024, Bytes::from(bad_tag), now);
    // A message frame shorter than a fingerprint on a process connection.
    open(&mut t, 1025, Identifier::Process(ours(5)), now);
    t.handle_peer_frame(1025, Bytes::from_static(&[1, 2, 3]), now);
    assert_eq!(t.counters().undecodable, 3);
    // An undecodable Identifier: the whole connection is ignored.
    t.handle_peer_opened(1026);
    t.handle_peer_frame(1026, Bytes::from_static(&[9, 9]), now);
    t.handle_peer_frame(1026, msg_frame(fp("Hello"), &ractor_packed(b"x")), now);
    assert_eq!(t.counters().undecodable, 4);
    // A frame on an lcid never opened.
    t.handle_peer_frame(4000, Bytes::from_static(&[0]), now);
    // Typed channels are not supported.
    let port = dp_wire::dp::SendPortId {
        process: ours(5),
        local: 1,
    };
    open(&mut t, 1027, Identifier::SendPort(port), now);
    t.handle_peer_frame(1027, Bytes::from_static(&[0]), now);
    assert!(session(&mut t).is_empty());

    // Valid traffic on the same connections still goes through.
    where_is(&mut t, 1024, Identifier::Process(theirs(8)), "greeter", now);
    assert_eq!(sent_frames(&actions(&mut t)).len(), 2);
    t.handle_peer_frame(1025, msg_frame(fp("Hello"), &ractor_packed(b"x")), now);
    assert_eq!(session(&mut t).len(), 1);
}

#[test]
fn closed_lightweight_connections_are_forgotten() {
    let (mut t, now) = opened(1024, Identifier::Process(ours(5)));
    t.handle_peer_closed(1024);
    t.handle_peer_frame(1024, msg_frame(fp("Hello"), &ractor_packed(b"x")), now);
    assert!(session(&mut t).is_empty());
}

#[test]
fn session_control_messages_are_not_sent_to_a_dp_peer() {
    let (mut t, now) = (translator(), Instant::now());
    for m in [
        control_message::Msg::Ping(control::Ping { timestamp: None }),
        control_message::Msg::Spawn(control::Spawn {
            actors: vec![control::Actor {
                pid: 5,
                name: Some("greeter".into()),
            }],
        }),
        control_message::Msg::PgJoin(control::PgJoin {
            group: "g".into(),
            actors: vec![],
            scope: "s".into(),
        }),
        control_message::Msg::Ready(control::Ready {}),
    ] {
        t.handle_session(control_msg(m), now);
    }
    assert!(actions(&mut t).is_empty());
    // The session's Ping is answered here; the rest is dropped.
    assert_eq!(
        session(&mut t),
        vec![control_msg(control_message::Msg::Pong(control::Pong {
            timestamp: None
        }))]
    );
    assert_eq!(t.counters().ignored, 3);
}

#[test]
fn terminate_closes_the_connections_an_actor_opened() {
    let (mut t, now) = opened(1024, Identifier::Process(ours(5)));
    let payload = with_reply_to(&theirs(8), &ractor_packed(b"q"));
    t.handle_peer_frame(1024, msg_frame(fp("Ask"), &payload), now);
    t.handle_session(call_reply(5, 1, b""), now);
    actions(&mut t);
    t.handle_session(
        control_msg(control_message::Msg::Terminate(control::Terminate {
            ids: vec![5],
        })),
        now,
    );
    assert_eq!(actions(&mut t), vec![DpAction::Close { conn: 0 }]);
}

#[test]
fn whereis_request_answers_with_an_event_and_announce_creates_the_remote_actor_in_its_group() {
    let (mut t, now) = (translator(), Instant::now());
    t.whereis("echo", 7, now + Duration::from_secs(1)).unwrap();
    let frames = sent_frames(&actions(&mut t));
    assert_eq!(
        frames[1],
        enc(&NCMsg {
            sender: Identifier::Process(ours(FIRST_SYNTHETIC_COUNTER)),
            signal: ProcessSignal::WhereIs("echo".into()),
        })
    );
    let captured = dp_wire::fingerprint::known::captured::WHERE_IS_REPLY;
    let echo = Some(theirs(8));
    answer_where_is(&mut t, FIRST_SYNTHETIC_COUNTER, captured, "echo", echo, now);
    assert_eq!(
        events(&mut t),
        vec![Event::WhereIs {
            request: 7,
            result: Ok(Some(theirs(8)))
        }]
    );
    t.announce(ractor_pid_of(&theirs(8)), Some("echo".into()));
    let group = format!("{PEER}/{PEER_UNIQUE}.8@{US}");
    assert_eq!(
        session(&mut t),
        vec![pg_join(group, remote_pid(theirs(8).local), "echo")]
    );
}

#[test]
fn whereis_request_times_out_and_bad_replies_fail_it() {
    let (mut t, now) = (translator(), Instant::now());
    t.whereis("slow", 1, now + Duration::from_secs(1)).unwrap();
    t.whereis("bad", 2, now + Duration::from_secs(5)).unwrap();
    t.handle_timeout(now + Duration::from_secs(1));
    assert!(matches!(
        events(&mut t).as_slice(),
        [Event::WhereIs {
            request: 1,
            result: Err(_)
        }]
    ));
    open(&mut t, 1024, our_node(), now);
    let junk = Message::new(Fingerprint::new(3, 3), vec![0xff]);
    usend_to_us(
        &mut t,
        1024,
        ours(FIRST_SYNTHETIC_COUNTER - 1).local,
        junk,
        now,
    );
    assert!(matches!(
        events(&mut t).as_slice(),
        [Event::WhereIs {
            request: 2,
            result: Err(_)
        }]
    ));
    assert_eq!(t.learned().where_is_reply, None);
}
