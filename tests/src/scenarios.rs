//! Two-node scenarios, written once and run over every [TransportKind].
//!
//! Both nodes live in the test process. ractor's registries are process
//! wide, so each node's session advertises every remotable actor and group
//! of the process, including the ones the test thinks of as "the other
//! node's". What the scenarios check is therefore what only a working
//! session can provide: remote actor handles created from the peer's
//! announcements, and messages that reach their target through them.

use kaisui_interop_msgs::{echo_reply, spawn_echo, EchoMsg};
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RactorErr};
use tokio::sync::mpsc;

use crate::harness::{
    eventually, exclusive, shutdown_all, unique_tag, Inbox, NodeEvent, TestNode, TransportKind,
    COOKIE, WAIT,
};

/// Two nodes over one transport, `b` connected to `a` and both sessions
/// authenticated and ready.
pub struct Pair {
    /// The accepting node
    pub a: TestNode,
    /// The connecting node
    pub b: TestNode,
    /// Unique suffix for the names of this scenario's actors and groups
    pub tag: String,
}

impl Pair {
    /// Start `a` and `b` over `kind` and connect `b` to `a`.
    pub async fn connect(kind: &dyn TransportKind) -> Pair {
        Self::connect_with_inbound_window(kind, ractor_cluster::DEFAULT_INBOUND_WINDOW).await
    }

    /// Like [Pair::connect], with `a`'s sessions holding at most
    /// `a_window` bytes of received messages
    /// (`NodeServer::with_inbound_window`).
    pub async fn connect_with_inbound_window(kind: &dyn TransportKind, a_window: usize) -> Pair {
        let tag = unique_tag(kind.label());
        let a_name = format!("a-{tag}");
        let mut a = TestNode::start_with_inbound_window(kind, &a_name, COOKIE, a_window).await;
        let mut b = TestNode::start(kind, &format!("b-{tag}"), COOKIE).await;
        b.connect_to(&a).await;

        let (a_name, b_name) = (Some(a.full_name.clone()), Some(b.full_name.clone()));
        a.wait_event("the session with b to authenticate", |event| {
            *event == NodeEvent::Authenticated(b_name.clone())
        })
        .await;
        b.wait_event("the session with a to authenticate", |event| {
            *event == NodeEvent::Authenticated(a_name.clone())
        })
        .await;
        a.wait_event("the session with b to be ready", |event| {
            *event == NodeEvent::Ready(b_name.clone())
        })
        .await;
        b.wait_event("the session with a to be ready", |event| {
            *event == NodeEvent::Ready(a_name.clone())
        })
        .await;
        Pair { a, b, tag }
    }

    /// Stop both nodes.
    pub async fn shutdown(self) {
        shutdown_all(vec![self.a, self.b]).await;
    }
}

/// Both nodes report exactly one authenticated session, with each other.
pub async fn session_authenticates(kind: &dyn TransportKind) {
    let _serial = exclusive().await;
    let mut pair = Pair::connect(kind).await;

    for (node, peer, accepted) in [(&pair.a, &pair.b, true), (&pair.b, &pair.a, false)] {
        let sessions = node.sessions().await;
        assert_eq!(
            sessions.len(),
            1,
            "{} should have one authenticated session, has {sessions:?}",
            node.full_name
        );
        let session = sessions.values().next().expect("one session");
        assert_eq!(
            session.peer_name.as_ref().map(|name| name.name.as_str()),
            Some(peer.full_name.as_str()),
            "{}'s session peer",
            node.full_name
        );
        assert_eq!(
            session.is_server, accepted,
            "{}: is_server should say who accepted the connection",
            node.full_name
        );
    }
    // One connection only: no second session was opened and dropped.
    for node in [&mut pair.a, &mut pair.b] {
        let authenticated = node
            .events_so_far()
            .iter()
            .filter(|event| matches!(event, NodeEvent::Authenticated(_)))
            .count();
        assert_eq!(authenticated, 1, "{}: authenticated events", node.full_name);
    }
    pair.shutdown().await;
}

/// Named actors are announced to the peer, both the ones alive when the
/// session starts and the ones spawned later, and arrive as remote actors
/// carrying their names.
pub async fn named_actors_are_announced(kind: &dyn TransportKind) {
    let _serial = exclusive().await;
    let (_inbox, report) = Inbox::new();
    let tag = unique_tag(kind.label());
    // Spawned before the nodes connect: part of the initial state exchange.
    let early_name = format!("early-{tag}");
    let early = spawn_echo(&early_name, report.clone())
        .await
        .expect("spawn early actor");

    let pair = Pair::connect(kind).await;
    // Spawned afterwards: announced through the pid lifecycle monitor.
    let late_name = format!("late-{tag}");
    let late = spawn_echo(&late_name, report)
        .await
        .expect("spawn late actor");

    for (actor, name) in [(&early, &early_name), (&late, &late_name)] {
        // Locally the name resolves to the local actor ...
        let local = ractor::registry::where_is(name.clone()).expect("registered locally");
        assert!(local.get_id().is_local());
        // ... and each node's session holds a remote actor for it.
        for node in [&pair.a, &pair.b] {
            let remote = node.wait_remote_actor(name).await;
            assert!(!remote.get_id().is_local());
            assert_eq!(
                remote.get_id().pid(),
                actor.get_id().pid(),
                "the remote actor should stand for {name:?}"
            );
        }
    }

    // Stopping an actor withdraws it from the peer.
    late.stop_and_wait(None, None)
        .await
        .expect("stop late actor");
    for node in [&pair.a, &pair.b] {
        let what = format!("{} to drop the remote actor {late_name:?}", node.full_name);
        eventually(&what, || async {
            node.remote_actor(&late_name).await.is_none().then_some(())
        })
        .await;
    }
    early.stop(None);
    pair.shutdown().await;
}

/// Joining and leaving a process group propagates to the peer as remote
/// group members.
pub async fn process_groups_propagate(kind: &dyn TransportKind) {
    let _serial = exclusive().await;
    let pair = Pair::connect(kind).await;
    let (_inbox, report) = Inbox::new();
    let group = format!("g-{}", pair.tag);

    for side in ["a", "b"] {
        let name = format!("member-{side}-{}", pair.tag);
        let actor = spawn_echo(&name, report.clone())
            .await
            .expect("spawn member");
        ractor::pg::join(group.clone(), vec![actor.get_cell()]);

        let remote_member = || {
            ractor::pg::get_members(&group).into_iter().find(|member| {
                !member.get_id().is_local()
                    && member.get_name().as_deref() == Some(name.as_str())
                    && member.get_id().pid() == actor.get_id().pid()
            })
        };
        let what = format!("a remote member {name:?} in group {group:?}");
        eventually(&what, || async { remote_member() }).await;

        ractor::pg::leave(group.clone(), vec![actor.get_cell()]);
        let what = format!("the remote member {name:?} to leave {group:?}");
        eventually(&what, || async { remote_member().is_none().then_some(()) }).await;
        actor.stop(None);
    }
    pair.shutdown().await;
}

/// Casts through remote actor handles reach the actor on the other side,
/// in both directions.
pub async fn casts_arrive_both_ways(kind: &dyn TransportKind) {
    let _serial = exclusive().await;
    let pair = Pair::connect(kind).await;
    let (mut inbox, report) = Inbox::new();
    let on_a = format!("echo-a-{}", pair.tag);
    let on_b = format!("echo-b-{}", pair.tag);
    let actor_a = spawn_echo(&on_a, report.clone()).await.expect("spawn on a");
    let actor_b = spawn_echo(&on_b, report).await.expect("spawn on b");

    for (sender, target) in [(&pair.b, &on_a), (&pair.a, &on_b)] {
        let remote = sender.wait_remote_actor(target).await;
        let carried_before = kind.messages_carried();
        let text = format!("cast from {}", sender.full_name);
        remote
            .cast(EchoMsg::Note(text.clone()))
            .unwrap_or_else(|err| panic!("cast to remote {target:?} failed: {err}"));
        inbox.expect_note(target, &text).await;
        if let (Some(before), Some(after)) = (carried_before, kind.messages_carried()) {
            assert!(after > before, "the cast did not travel over the transport");
        }
    }
    actor_a.stop(None);
    actor_b.stop(None);
    pair.shutdown().await;
}

/// Calls through remote actor handles return the remote actor's reply, in
/// both directions.
pub async fn calls_return_both_ways(kind: &dyn TransportKind) {
    let _serial = exclusive().await;
    let pair = Pair::connect(kind).await;
    let (_inbox, report) = Inbox::new();
    let on_a = format!("echo-a-{}", pair.tag);
    let on_b = format!("echo-b-{}", pair.tag);
    let actor_a = spawn_echo(&on_a, report.clone()).await.expect("spawn on a");
    let actor_b = spawn_echo(&on_b, report).await.expect("spawn on b");

    for (caller, target) in [(&pair.b, &on_a), (&pair.a, &on_b)] {
        let remote = caller.wait_remote_actor(target).await;
        for n in 0..3 {
            let text = format!("call {n} from {}", caller.full_name);
            let reply = ractor::call_t!(remote, EchoMsg::Ask, 10_000, text.clone())
                .unwrap_or_else(|err| panic!("call to remote {target:?} failed: {err}"));
            assert_eq!(reply, echo_reply(target, &text));
        }
        // `call!` without a timeout too.
        let reply = ractor::call!(remote, EchoMsg::Ask, "untimed".to_string())
            .unwrap_or_else(|err| panic!("call! to remote {target:?} failed: {err}"));
        assert_eq!(reply, echo_reply(target, "untimed"));
    }
    actor_a.stop(None);
    actor_b.stop(None);
    pair.shutdown().await;
}

/// Whether `result` is how a timed call to a remote actor ends when the
/// actor never answers.
///
/// That should be `RactorErr::Timeout`, but the reply-port bridge generated
/// by `ractor_cluster_derive` 0.16.5 (upstream, not forked) arms its own
/// timer of the same length when the call is serialized, i.e. before the
/// caller starts waiting. It usually fires first and drops the caller's
/// port, and the caller sees `CallResult::SenderError`, which `call_t!`
/// reports as `Messaging(ChannelClosed)` (printed `RecvErr`). Both mean "no reply in time".
pub fn is_unanswered_call<T>(result: &Result<String, RactorErr<T>>) -> bool {
    matches!(
        result,
        Err(RactorErr::Timeout) | Err(RactorErr::Messaging(MessagingErr::ChannelClosed))
    )
}

/// A call with a timeout to a remote actor that receives the call but never
/// answers fails without a reply (see [is_unanswered_call]), and the
/// session keeps working afterwards.
pub async fn silent_remote_call_times_out(kind: &dyn TransportKind) {
    let _serial = exclusive().await;
    let pair = Pair::connect(kind).await;
    let (mut inbox, report) = Inbox::new();
    let on_a = format!("silent-{}", pair.tag);
    let actor_a = spawn_echo(&on_a, report).await.expect("spawn on a");

    let remote: ActorRef<EchoMsg> = pair.b.wait_remote_actor(&on_a).await;
    let result = ractor::call_t!(remote, EchoMsg::Stall, 300, "hello?".to_string());
    tracing::info!(?result, "unanswered remote call");
    assert!(
        is_unanswered_call(&result),
        "expected the call to time out, got {result:?}"
    );
    // It failed for lack of an answer, not because it never arrived.
    inbox.expect_stalled(&on_a, "hello?").await;
    // The timed-out call must not have broken the session.
    let reply = ractor::call_t!(remote, EchoMsg::Ask, 10_000, "still there?".to_string())
        .expect("call after the timeout");
    assert_eq!(reply, echo_reply(&on_a, "still there?"));
    actor_a.stop(None);
    pair.shutdown().await;
}

/// A node with a different cookie is refused: its session closes on both
/// sides without ever authenticating.
pub async fn wrong_cookie_is_refused(kind: &dyn TransportKind) {
    let _serial = exclusive().await;
    let tag = unique_tag(kind.label());
    let mut a = TestNode::start(kind, &format!("a-{tag}"), COOKIE).await;
    let mut c = TestNode::start(kind, &format!("intruder-{tag}"), "not-the-cookie").await;
    c.connect_to(&a).await;

    // Both sides open a session and then close it ...
    a.wait_event("the intruder's session to open", |event| {
        matches!(event, NodeEvent::Opened(_))
    })
    .await;
    c.wait_event("the intruder's session to close", |event| {
        matches!(event, NodeEvent::Disconnected(_))
    })
    .await;
    a.wait_event("the session with the intruder to close", |event| {
        matches!(event, NodeEvent::Disconnected(_))
    })
    .await;
    // ... without authenticating in between.
    for node in [&mut a, &mut c] {
        let name = node.full_name.clone();
        let events = node.events_so_far();
        assert!(
            !events
                .iter()
                .any(|event| matches!(event, NodeEvent::Authenticated(_) | NodeEvent::Ready(_))),
            "{name} authenticated a session with a wrong cookie: {events:?}"
        );
        assert!(node.sessions().await.is_empty(), "{name} kept a session");
    }
    shutdown_all(vec![a, c]).await;
}

/// How many casts the peer sends in [an_actor_can_call_back_the_peer_whose_burst_it_is_handling].
const BURST: usize = 200;

/// `a`'s inbound window in that scenario: the default (16 MiB), far above
/// what [BURST] small casts take.
const BURST_WINDOW: usize = ractor_cluster::DEFAULT_INBOUND_WINDOW;

/// How long [CallsBack] waits for each answer.
const CALL_BACK_TIMEOUT_MS: u64 = 3_000;

/// What a [CallsBack] actor got for one note: the note's text and the
/// answer to its call, or why there was none.
type CallBackOutcome = (String, Result<String, String>);

/// An actor that answers every [EchoMsg::Note] by calling
/// [EchoMsg::Ask] with the note's text on `target` and reports the outcome.
/// Calls to itself go unanswered (the ports are dropped).
struct CallsBack;

impl Actor for CallsBack {
    type Msg = EchoMsg;
    type State = (ActorRef<EchoMsg>, mpsc::UnboundedSender<CallBackOutcome>);
    type Arguments = Self::State;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        (target, outcomes): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let EchoMsg::Note(text) = message {
            let answer = ractor::call_t!(target, EchoMsg::Ask, CALL_BACK_TIMEOUT_MS, text.clone())
                .map_err(|err| format!("{err:?}"));
            let _ = outcomes.send((text, answer));
        }
        Ok(())
    }
}

/// An actor on `a` that calls `b` back for each of `b`'s casts gets every
/// answer, while `b` sends a burst of casts that fits in `a`'s inbound
/// window.
///
/// The casts keep their inbound credit until the actor has taken them out
/// of its mailbox (patch 0012), and `b`'s answers travel behind the part of
/// its burst it has already sent, so they are read only if the window holds
/// that much; with a window below the burst the calls wait for their timeout
/// (see "What it costs you" in `docs/hardening.md`).
pub async fn an_actor_can_call_back_the_peer_whose_burst_it_is_handling(kind: &dyn TransportKind) {
    let _serial = exclusive().await;
    let pair = Pair::connect_with_inbound_window(kind, BURST_WINDOW).await;
    let (_inbox, report) = Inbox::new();
    let on_a = format!("calls-back-a-{}", pair.tag);
    let on_b = format!("echo-b-{}", pair.tag);
    let actor_b = spawn_echo(&on_b, report).await.expect("spawn on b");
    let echo_b = pair.a.wait_remote_actor(&on_b).await;
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel();
    let (actor_a, _) = Actor::spawn(Some(on_a.clone()), CallsBack, (echo_b, outcomes_tx))
        .await
        .expect("spawn on a");

    let remote = pair.b.wait_remote_actor(&on_a).await;
    let texts: Vec<String> = (0..BURST)
        .map(|n| format!("burst {n} from {}", pair.b.full_name))
        .collect();
    for text in &texts {
        remote
            .cast(EchoMsg::Note(text.clone()))
            .unwrap_or_else(|err| panic!("cast to remote {on_a:?} failed: {err}"));
    }

    // In order, stopping at the first call without an answer: below the
    // window, nearly every call of the burst would wait out its timeout.
    for (answered, text) in texts.iter().enumerate() {
        let (noted, answer) = tokio::time::timeout(WAIT, outcomes.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "gave up after {WAIT:?} waiting for {on_a:?} to handle {text:?} \
                     ({answered} of {BURST} calls answered)"
                )
            })
            .expect("the calling actor reports every cast it handles");
        assert_eq!(&noted, text, "{on_a:?} handled the burst out of order");
        match answer {
            Ok(reply) => assert_eq!(reply, echo_reply(&on_b, text)),
            Err(err) => panic!(
                "{on_a:?}'s call back to {on_b:?} for {text:?} got no answer within \
                 {CALL_BACK_TIMEOUT_MS} ms ({err}); {answered} of {BURST} calls answered \
                 before it, inbound window {BURST_WINDOW}"
            ),
        }
    }
    actor_a.stop(None);
    actor_b.stop(None);
    pair.shutdown().await;
}
