//! A node built from the kaisui fork and a node of the unmodified crates.io
//! `ractor_cluster` 0.16.5 (a child process, see
//! `kaisui_integration_tests::upstream`) work together, whichever of them
//! opens the connection.

use kaisui_integration_tests::harness::{
    eventually, exclusive, unique_tag, Inbox, Native, NodeEvent, TestNode, COOKIE,
};
use kaisui_integration_tests::scenarios::is_unanswered_call;
use kaisui_integration_tests::upstream::UpstreamNode;
use kaisui_interop_msgs::{echo_reply, spawn_echo, EchoMsg};

/// Which node opens the connection.
#[derive(Clone, Copy, Debug)]
enum Dialer {
    Fork,
    Upstream,
}

/// The fork's node and the upstream node, connected and ready.
async fn connected_pair(dialer: Dialer, tag: &str) -> (TestNode, UpstreamNode) {
    // The fork side uses the native transport, selected explicitly.
    let mut fork = TestNode::start(&Native, &format!("fork-{tag}"), COOKIE).await;
    let mut upstream = UpstreamNode::spawn(&format!("upstream-{tag}"), COOKIE).await;
    match dialer {
        Dialer::Fork => {
            fork.connect_to_address(&format!("127.0.0.1:{}", upstream.port))
                .await
        }
        Dialer::Upstream => {
            let answer = upstream.request(&format!("connect {}", fork.address)).await;
            assert_eq!(
                answer, "connected",
                "upstream could not connect to the fork"
            );
        }
    }

    let upstream_name = Some(upstream.full_name.clone());
    fork.wait_event("the session with upstream to authenticate", |event| {
        *event == NodeEvent::Authenticated(upstream_name.clone())
    })
    .await;
    fork.wait_event("the session with upstream to be ready", |event| {
        *event == NodeEvent::Ready(upstream_name.clone())
    })
    .await;
    for stage in ["authenticated", "ready"] {
        let line = format!("event {stage} {}", fork.full_name);
        upstream
            .expect(&format!("upstream: session {stage}"), |got| got == line)
            .await;
    }
    (fork, upstream)
}

async fn interop(dialer: Dialer) {
    let _serial = exclusive().await;
    let tag = unique_tag(&format!("{dialer:?}").to_lowercase());
    let (mut inbox, report) = Inbox::new();

    // Alive before the connection: announced in the initial exchange.
    let fork_echo = format!("fork-echo-{tag}");
    let fork_actor = spawn_echo(&fork_echo, report.clone())
        .await
        .expect("spawn fork actor");
    let (fork, mut upstream) = connected_pair(dialer, &tag).await;

    // Sessions: exactly one, with each other.
    let sessions = fork.sessions().await;
    assert_eq!(sessions.len(), 1, "fork sessions: {sessions:?}");
    let peer = sessions.values().next().and_then(|s| s.peer_name.clone());
    assert_eq!(peer.map(|p| p.name), Some(upstream.full_name.clone()));
    assert_eq!(
        upstream.request("sessions").await,
        format!("sessions 1 {}", fork.full_name)
    );

    // Named actors, announced after the connection, in both directions.
    let upstream_echo = format!("upstream-echo-{tag}");
    assert_eq!(
        upstream.request(&format!("spawn {upstream_echo}")).await,
        format!("spawned {upstream_echo}")
    );
    let remote_upstream = fork.wait_remote_actor(&upstream_echo).await;
    assert!(!remote_upstream.get_id().is_local());
    // ractor keeps remote actors out of its name registry; if this starts
    // failing, ractor changed and `where_is` became a way to find them.
    assert!(
        ractor::registry::where_is(upstream_echo.clone()).is_none(),
        "ractor now registers remote actors by name"
    );
    upstream
        .request_until(&format!("remote {fork_echo}"), |answer| {
            answer.ends_with(" yes")
        })
        .await;

    // Process groups, both directions, join and leave.
    let group = format!("g-{tag}");
    upstream
        .request(&format!("join {group} {upstream_echo}"))
        .await;
    let remote_member = || {
        ractor::pg::get_members(&group).into_iter().find(|member| {
            !member.get_id().is_local()
                && member.get_name().as_deref() == Some(upstream_echo.as_str())
        })
    };
    eventually(
        "the upstream actor to join the group on the fork",
        || async { remote_member() },
    )
    .await;
    ractor::pg::join(group.clone(), vec![fork_actor.get_cell()]);
    let members = format!("members {group}");
    upstream
        .request_until(&members, |answer| {
            answer == format!("{members} {fork_echo}")
        })
        .await;

    upstream
        .request(&format!("leave {group} {upstream_echo}"))
        .await;
    eventually(
        "the upstream actor to leave the group on the fork",
        || async { remote_member().is_none().then_some(()) },
    )
    .await;
    ractor::pg::leave(group.clone(), vec![fork_actor.get_cell()]);
    upstream
        .request_until(&members, |answer| answer == members)
        .await;

    // Casts, both directions.
    remote_upstream
        .cast(EchoMsg::Note("hello upstream".to_string()))
        .expect("cast to the upstream actor");
    let noted = format!("noted {upstream_echo} hello upstream");
    upstream
        .expect("the upstream actor to get the cast", |line| line == noted)
        .await;
    assert_eq!(
        upstream
            .request(&format!("cast {fork_echo} hello fork"))
            .await,
        format!("cast-sent {fork_echo}")
    );
    inbox.expect_note(&fork_echo, "hello fork").await;

    // Calls, both directions.
    let reply = ractor::call_t!(remote_upstream, EchoMsg::Ask, 10_000, "ping".to_string())
        .expect("call the upstream actor");
    assert_eq!(reply, echo_reply(&upstream_echo, "ping"));
    assert_eq!(
        upstream.request(&format!("call {fork_echo} pong")).await,
        format!("reply {fork_echo} {}", echo_reply(&fork_echo, "pong"))
    );

    // Unanswered calls, both directions.
    let result = ractor::call_t!(remote_upstream, EchoMsg::Stall, 300, "hello?".to_string());
    assert!(
        is_unanswered_call(&result),
        "expected a timeout, got {result:?}"
    );
    let stalled = format!("stalled {upstream_echo} hello?");
    upstream
        .expect("the upstream actor to get the stalled call", |line| {
            line == stalled
        })
        .await;
    let answer = upstream.request(&format!("stall {fork_echo} 300")).await;
    assert!(
        answer == format!("timeout {fork_echo}")
            || answer.starts_with(&format!("call-failed {fork_echo} ")),
        "expected the upstream's call to time out, got {answer:?}"
    );
    inbox.expect_stalled(&fork_echo, "stall").await;

    // An actor that stops is withdrawn from the peer.
    upstream.request(&format!("stop {upstream_echo}")).await;
    eventually("the fork to drop the stopped upstream actor", || async {
        fork.remote_actor(&upstream_echo)
            .await
            .is_none()
            .then_some(())
    })
    .await;

    upstream.quit().await;
    fork_actor.stop(None);
    fork.shutdown().await;
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn fork_connects_to_upstream() {
    interop(Dialer::Fork).await;
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn upstream_connects_to_fork() {
    interop(Dialer::Upstream).await;
}

/// Nodes of either build refuse each other when the cookies differ.
async fn wrong_cookie(dialer: Dialer) {
    let _serial = exclusive().await;
    let tag = unique_tag(&format!("cookie-{dialer:?}").to_lowercase());
    let mut fork = TestNode::start(&Native, &format!("fork-{tag}"), COOKIE).await;
    let mut upstream = UpstreamNode::spawn(&format!("upstream-{tag}"), "another-cookie").await;
    match dialer {
        Dialer::Fork => {
            fork.connect_to_address(&format!("127.0.0.1:{}", upstream.port))
                .await
        }
        Dialer::Upstream => {
            let answer = upstream.request(&format!("connect {}", fork.address)).await;
            assert_eq!(answer, "connected");
        }
    }
    fork.wait_event("the session with upstream to close", |event| {
        matches!(event, NodeEvent::Disconnected(_))
    })
    .await;
    upstream
        .expect("upstream: session closed", |line| {
            line.starts_with("event disconnected ")
        })
        .await;
    let events = fork.events_so_far().to_vec();
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, NodeEvent::Authenticated(_))),
        "fork authenticated a wrong cookie: {events:?}"
    );
    assert!(fork.sessions().await.is_empty());
    let output = upstream.unread_output().to_vec();
    assert!(
        !output
            .iter()
            .any(|line| line.starts_with("event authenticated ")),
        "upstream authenticated a wrong cookie: {output:?}"
    );
    assert_eq!(upstream.request("sessions").await, "sessions 0");
    upstream.quit().await;
    fork.shutdown().await;
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn fork_is_refused_by_upstream_with_another_cookie() {
    wrong_cookie(Dialer::Fork).await;
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn upstream_with_another_cookie_is_refused_by_fork() {
    wrong_cookie(Dialer::Upstream).await;
}

/// Dropping the handle (as a failing test does while unwinding) ends the
/// child process, even when it was never told to quit.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn dropped_upstream_node_leaves_no_process() {
    let _serial = exclusive().await;
    let upstream = UpstreamNode::spawn(&format!("upstream-{}", unique_tag("drop")), COOKIE).await;
    let proc_dir = std::path::PathBuf::from(format!("/proc/{}", upstream.pid()));
    if !proc_dir.exists() {
        // No procfs to check with (not Linux); nothing to assert.
        return;
    }
    drop(upstream);
    // Drop kills and reaps the child, so its pid is gone right away.
    assert!(!proc_dir.exists(), "{} still exists", proc_dir.display());
}

/// Known bug, kept as a reproduction: when a peer's actor that shares a
/// name with a local actor stops, the local actor loses its name.
///
/// The session's `RemoteActor` for the peer's actor carries the name but
/// is not in the name registry; when it stops, ractor 0.16.5
/// (`ActorCell::set_status`) unregisters the name regardless of which
/// actor holds it, so `where_is` no longer finds the live local actor.
#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
#[ignore = "ractor 0.16.5 unregisters names by name when a RemoteActor stops"]
async fn peer_actor_stopping_keeps_the_local_namesake_registered() {
    let _serial = exclusive().await;
    let tag = unique_tag("namesake");
    let (_inbox, report) = Inbox::new();
    let shared = format!("shared-{tag}");
    let local = spawn_echo(&shared, report).await.expect("spawn local");
    let (fork, mut upstream) = connected_pair(Dialer::Fork, &tag).await;

    upstream.request(&format!("spawn {shared}")).await;
    fork.wait_remote_actor(&shared).await;
    upstream.request(&format!("stop {shared}")).await;
    eventually("the fork to drop the stopped upstream actor", || async {
        fork.remote_actor(&shared).await.is_none().then_some(())
    })
    .await;

    let found = ractor::registry::where_is(shared.clone());
    assert_eq!(
        found.map(|cell| cell.get_id()),
        Some(local.get_id()),
        "the local {shared:?} lost its registration"
    );
    upstream.quit().await;
    local.stop(None);
    fork.shutdown().await;
}
