//! Lifecycle across the language boundary, against `dp_peer::PlainNode`:
//! Haskell watching Rust, Rust watching Haskell, node loss (killed, cut
//! mid-frame, silent, closed), spawn, reconnect. See `docs/lifecycle.md`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use dp_peer::{ExitReason, PlainNode, PlainNodeConfig, Process};
use dp_tcp::{DpError, DpTcp, DpTcpConfig};
use dp_wire::binary::Encode;
use dp_wire::dp::{
    Closure, DidSpawn, DiedReason, Identifier, LocalProcessId, NodeId, ProcessId, ProcessSignal,
    SpawnRef, Static,
};
use dp_wire::ntt::{self, EndPointAddress};
use ractor::{cast, Actor, ActorCell, ActorProcessingErr, ActorRef};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

// ---------------------------------------------------------------------
// Rust-side helpers

enum VictimMsg {
    Stop,
    Panic(String),
    Fail(String),
}
impl ractor::Message for VictimMsg {}

/// A plain local actor that ends on request.
struct Victim;

impl Actor for Victim {
    type Msg = VictimMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<VictimMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<VictimMsg>,
        m: VictimMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match m {
            VictimMsg::Stop => myself.stop(None),
            VictimMsg::Panic(s) => panic!("{s}"),
            VictimMsg::Fail(s) => return Err(s.into()),
        }
        Ok(())
    }
}

async fn victim() -> ActorRef<VictimMsg> {
    Actor::spawn(None, Victim, ()).await.unwrap().0
}

async fn connect(rust: &RustNode, peer: &PlainNode) {
    ractor_cluster::client_connect_transport(&rust.server, peer.node_id().as_str().unwrap())
        .await
        .expect("connect to the plain node");
}

/// Makes sure our node has handled every signal `p`'s node sent so far:
/// the peer's NC forwards what is queued, then a WhereIs round trip on
/// the same TCP connection.
async fn sync(peer: &PlainNode, p: &Process, rust: &RustNode) {
    peer.nc_settled().await.unwrap();
    p.whereis_remote(&rust.node, "kaisui.sync", T)
        .await
        .unwrap();
}

/// Waits until the peer's NC holds a monitor by our node on `pid`.
async fn peer_monitored_by_us(peer: &PlainNode, rust: &RustNode, pid: &ProcessId) {
    let (node, pid) = (rust.node.clone(), pid.clone());
    wait_until("our Monitor reached the peer", || {
        peer.monitors()
            .iter()
            .any(|(w, by, _)| *w == Identifier::Process(pid.clone()) && by.node == node)
    })
    .await;
}

async fn remote(rust: &RustNode, peer: &PlainNode, name: &str) -> ActorCell {
    rust.dp
        .whereis(peer.node_id().as_str().unwrap(), name, T)
        .await
        .unwrap()
}

fn exception(r: &DiedReason) -> &str {
    match r {
        DiedReason::Exception(t) => t,
        other => panic!("expected DiedException, got {other:?}"),
    }
}

// ---------------------------------------------------------------------
// 1. Haskell watching Rust

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn haskell_monitors_and_links_see_how_rust_actors_end() {
    let rust = rust_node("h-watches-r").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let p = peer.spawn();
    let pid = |c: ActorCell| rust.dp.pid_of(&c).unwrap();

    let normal = victim().await;
    let panics = victim().await;
    let errs = victim().await;
    let quiet = victim().await;
    let gone = victim().await;
    gone.stop_and_wait(None, None).await.unwrap();
    let mut never = pid(normal.get_cell());
    never.local.counter = i32::MAX - 3;

    let m_normal = p.monitor(&pid(normal.get_cell())).unwrap();
    let m_panics = p.monitor(&pid(panics.get_cell())).unwrap();
    let m_errs = p.monitor(&pid(errs.get_cell())).unwrap();
    let m_gone = p.monitor(&pid(gone.get_cell())).unwrap();
    let m_never = p.monitor(&never).unwrap();
    let l_normal = peer.spawn();
    l_normal.link(&pid(normal.get_cell())).unwrap();
    let l_panics = peer.spawn();
    l_panics.link(&pid(panics.get_cell())).unwrap();
    let l_gone = peer.spawn();
    l_gone.link(&pid(gone.get_cell())).unwrap();
    // Unmonitor and unlink: nothing afterwards.
    let m_quiet = p.monitor(&pid(quiet.get_cell())).unwrap();
    let l_quiet = peer.spawn();
    l_quiet.link(&pid(quiet.get_cell())).unwrap();
    sync(&peer, &p, &rust).await;
    p.unmonitor(&m_quiet).await.unwrap();
    l_quiet.unlink(&pid(quiet.get_cell())).await.unwrap();
    sync(&peer, &p, &rust).await;

    // A dead or never-existing pid: DiedUnknownId at once.
    for r in [&m_gone, &m_never] {
        let n = p.expect_monitor_notification(r, T).await.unwrap();
        assert_eq!(n.reason, DiedReason::UnknownId, "{r:?}");
    }
    assert!(matches!(
        l_gone.wait_exit(T).await.unwrap(),
        ExitReason::ProcessLink(e) if e.reason == DiedReason::UnknownId
    ));

    quiet.stop_and_wait(None, None).await.unwrap();
    normal.cast(VictimMsg::Stop).unwrap();
    panics.cast(VictimMsg::Panic("boom".into())).unwrap();
    errs.cast(VictimMsg::Fail("bad request".into())).unwrap();

    let n = p.expect_monitor_notification(&m_normal, T).await.unwrap();
    assert_eq!(n.reason, DiedReason::Normal);
    assert_eq!(n.pid, pid(normal.get_cell()));
    let n = p.expect_monitor_notification(&m_panics, T).await.unwrap();
    assert!(exception(&n.reason).contains("boom"), "{:?}", n.reason);
    let n = p.expect_monitor_notification(&m_errs, T).await.unwrap();
    assert!(
        exception(&n.reason).contains("bad request"),
        "{:?}",
        n.reason
    );
    // DP links fire on a normal end too.
    match l_normal.wait_exit(T).await.unwrap() {
        ExitReason::ProcessLink(e) => {
            assert_eq!(e.reason, DiedReason::Normal);
            assert_eq!(e.pid, pid(normal.get_cell()));
        }
        other => panic!("{other:?}"),
    }
    match l_panics.wait_exit(T).await.unwrap() {
        ExitReason::ProcessLink(e) => assert!(exception(&e.reason).contains("boom")),
        other => panic!("{other:?}"),
    }
    // The unwatched ones saw nothing; the Died for `quiet` would have come
    // before the others.
    peer.nc_settled().await.unwrap();
    assert!(l_quiet.is_alive());
    assert!(p
        .expect_monitor_notification(&m_quiet, Duration::from_millis(50))
        .await
        .is_err());
    assert!(peer.violations().is_empty(), "{:?}", peer.violations());
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn haskell_kill_and_exit_stop_rust_actors_with_visible_reasons() {
    let rust = rust_node("h-kills-r").await;
    let (sup, mut seen) = observer().await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let (k, _) = Actor::spawn_linked(None, Greeter, tx.clone().into(), sup.get_cell())
        .await
        .unwrap();
    let (e, _) = Actor::spawn_linked(None, Greeter, tx.clone().into(), sup.get_cell())
        .await
        .unwrap();
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let p = peer.spawn();
    let (kp, ep) = (
        rust.dp.pid_of(&k.get_cell()).unwrap(),
        rust.dp.pid_of(&e.get_cell()).unwrap(),
    );
    let mk = p.monitor(&kp).unwrap();
    let me = p.monitor(&ep).unwrap();
    sync(&peer, &p, &rust).await;

    p.kill(&kp, "bye").unwrap();
    let want = format!("killed-by={},reason=bye", p.pid());
    assert_eq!(terminated_reason(ended(&mut seen, k.get_id()).await), want);
    let n = p.expect_monitor_notification(&mk, T).await.unwrap();
    assert_eq!(n.reason, DiedReason::Exception(want));

    p.exit_process(&ep, peer.messages().string("enough"))
        .unwrap();
    let want = format!("exit-from={},reason=enough", p.pid());
    assert_eq!(terminated_reason(ended(&mut seen, e.get_id()).await), want);
    let n = p.expect_monitor_notification(&me, T).await.unwrap();
    assert_eq!(n.reason, DiedReason::Exception(want));
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn kills_of_the_node_itself_and_remote_shutdown_are_refused() {
    let rust = rust_node("refuse-kills").await;
    let (greeter, mut rx) = spawn_greeter("greeter-refuse-kills").await;
    let infra = victim().await; // not remotable: stands for node infrastructure
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let p = peer.spawn();
    let to = rust.dp.pid_of(&greeter.get_cell()).unwrap();
    let mut node_sender = to.clone();
    node_sender.local.counter = -1;
    p.send_ctrl(&rust.node, ProcessSignal::SigShutdown)
        .await
        .unwrap();
    p.send_ctrl(
        &rust.node,
        ProcessSignal::Kill {
            target: node_sender,
            reason: "die, node".into(),
        },
    )
    .await
    .unwrap();
    p.send_ctrl(
        &rust.node,
        ProcessSignal::Kill {
            target: rust.dp.pid_of(&infra.get_cell()).unwrap(),
            reason: "die, infra".into(),
        },
    )
    .await
    .unwrap();
    sync(&peer, &p, &rust).await;
    let info = rust
        .dp
        .peer_info(peer.node_id().as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(info.counters.refused, 3, "{info:?}");
    // Everything still works.
    p.send(&to, hello(&Greeting::new("still here")))
        .await
        .unwrap();
    assert_eq!(seen(&mut rx).await.text, "still here");
    assert_eq!(infra.get_status(), ractor::ActorStatus::Running);
}

// ---------------------------------------------------------------------
// 2. Rust watching Haskell

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn remote_actors_end_with_the_haskell_died_reason() {
    let rust = rust_node("r-watches-h").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    connect(&rust, &peer).await;
    let (mon, mut seen) = observer().await;
    let (sup, mut sup_seen) = observer().await;

    let names = ["h-normal", "h-die", "h-crash", "h-linked"];
    let procs: Vec<Process> = names.iter().map(|_| peer.spawn()).collect();
    let mut cells = Vec::new();
    for (n, p) in names.iter().zip(&procs) {
        peer.register(n, &p.pid());
        let c = remote(&rust, &peer, n).await;
        peer_monitored_by_us(&peer, &rust, &p.pid()).await;
        cells.push(c);
    }
    // A Rust actor monitors three; the fourth is linked (supervised) by one.
    for c in &cells[..3] {
        mon.get_cell().monitor(c.clone());
    }
    cells[3].link(sup.get_cell());

    let mut procs = procs.into_iter();
    procs.next().unwrap().exit();
    let p_die = procs.next().unwrap();
    p_die.die("boom");
    let p_crash = procs.next().unwrap();
    p_crash.crash(
        "kaboom\nCallStack (from HasCallStack):\n  error, called at DpPeer.hs:201:9 in main:Main",
    );
    let p_linked = procs.next().unwrap();
    p_linked.die("linked-boom");

    assert_eq!(
        terminated_reason(ended(&mut seen, cells[0].get_id()).await),
        "DiedNormal"
    );
    assert_eq!(
        terminated_reason(ended(&mut seen, cells[1].get_id()).await),
        format!("DiedException: exit-from={},reason=boom", p_die.pid())
    );
    assert!(terminated_reason(ended(&mut seen, cells[2].get_id()).await)
        .starts_with("DiedException: kaboom\nCallStack"));
    assert_eq!(
        terminated_reason(ended(&mut sup_seen, cells[3].get_id()).await),
        format!(
            "DiedException: exit-from={},reason=linked-boom",
            p_linked.pid()
        )
    );

    // A pid that is already dead: its RemoteActor ends with DiedUnknownId
    // (or the handle is refused once that is known).
    let dead = peer.spawn();
    let dead_pid = dead.pid();
    dead.exit();
    match rust.dp.process(&dead_pid).await {
        Ok(c) => {
            mon.get_cell().monitor(c.clone());
            if c.get_status() < ractor::ActorStatus::Stopping {
                assert_eq!(
                    terminated_reason(ended(&mut seen, c.get_id()).await),
                    "DiedUnknownId"
                );
            }
        }
        Err(DpError::Dead { reason, .. }) => assert_eq!(reason, "DiedUnknownId"),
        Err(e) => panic!("{e}"),
    }
    eventually("the dead pid is known dead", || async {
        matches!(rust.dp.process(&dead_pid).await, Err(DpError::Dead { .. }))
    })
    .await;

    // The session survived all of this: lookups and casts still work.
    let echo = peer.spawn();
    peer.register("h-echo", &echo.pid());
    let e: ActorRef<GreeterMsg> = remote(&rust, &peer, "h-echo").await.into();
    cast!(e, GreeterMsg::Hello(Greeting::new("after deaths"))).unwrap();
    let m = echo.expect_fp(fp("Hello"), T).await.unwrap();
    assert_eq!(unpack(&m.payload()).text, "after deaths");
    assert!(peer.violations().is_empty(), "{:?}", peer.violations());
}

/// Whether DpTcp has no session with `peer` any more.
async fn gone(dp: &DpTcp, peer: &str) -> bool {
    dp.peer_info(peer).await.is_err()
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn unreachable_and_unwatched_both_ways() {
    // Haskell monitors and links a Rust pid whose node is gone: its own NC
    // reports DiedDisconnect (the connection cannot be made).
    let rust = rust_node("unreachable").await;
    let (greeter, _rx) = spawn_greeter("greeter-unreachable").await;
    let gp = rust.dp.pid_of(&greeter.get_cell()).unwrap();
    rust.server.stop_and_wait(None, None).await.unwrap();
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let p = peer.spawn();
    let linked = peer.spawn();
    let m = p.monitor(&gp).unwrap();
    linked.link(&gp).unwrap();
    let n = p.expect_monitor_notification(&m, T).await.unwrap();
    assert_eq!(n.reason, DiedReason::Disconnect);
    assert!(matches!(
        linked.wait_exit(T).await.unwrap(),
        ExitReason::ProcessLink(e) if e.reason == DiedReason::Disconnect
    ));

    // Rust asks for a handle to a process of a node it has no session
    // with: refused, with the way to fix it.
    let rust2 = rust_node("unreachable-2").await;
    let err = rust2.dp.process(&p.pid()).await.unwrap_err();
    assert!(matches!(err, DpError::NotConnected(_)), "{err}");

    // ractor's unmonitor/unlink of a RemoteActor: no event afterwards.
    connect(&rust2, &peer).await;
    let (a, b) = (peer.spawn(), peer.spawn());
    peer.register("unwatched-a", &a.pid());
    peer.register("unwatched-b", &b.pid());
    let ca = remote(&rust2, &peer, "unwatched-a").await;
    let cb = remote(&rust2, &peer, "unwatched-b").await;
    peer_monitored_by_us(&peer, &rust2, &a.pid()).await;
    peer_monitored_by_us(&peer, &rust2, &b.pid()).await;
    let (mon, mut ends) = observer().await;
    let (sup, mut sup_ends) = observer().await;
    mon.get_cell().monitor(ca.clone());
    mon.get_cell().unmonitor(ca.clone());
    ca.link(sup.get_cell());
    ca.unlink(sup.get_cell());
    mon.get_cell().monitor(cb.clone());
    a.die("unseen");
    b.die("seen");
    assert!(terminated_reason(ended(&mut ends, cb.get_id()).await).ends_with("reason=seen"));
    // a's Died came first on the connection.
    wait_until("a's RemoteActor stopped", || {
        ca.get_status() == ractor::ActorStatus::Stopped
    })
    .await;
    assert!(ends.early.is_empty(), "{:?}", ends.early);
    assert!(sup_ends.rx.try_recv().is_err());
}

// ---------------------------------------------------------------------
// 3. Node loss

/// Connects, gets a RemoteActor of a peer process monitored by an observer.
async fn watched_remote(
    rust: &RustNode,
    peer: &PlainNode,
    name: &str,
) -> (Process, ActorCell, Ends, ActorRef<()>) {
    let p = peer.spawn();
    peer.register(name, &p.pid());
    let c = remote(rust, peer, name).await;
    peer_monitored_by_us(peer, rust, &p.pid()).await;
    let (mon, seen) = observer().await;
    mon.get_cell().monitor(c.clone());
    (p, c, seen, mon)
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn a_killed_peer_ends_remote_actors_and_haskell_sees_the_disconnect() {
    let rust = rust_node("peer-killed").await;
    let (greeter, _rx) = spawn_greeter("greeter-peer-killed").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    connect(&rust, &peer).await;
    let (p, cell, mut seen, _mon) = watched_remote(&rust, &peer, "victim-peer-killed").await;

    // Traffic in both directions while the peer dies.
    let target: ActorRef<GreeterMsg> = cell.clone().into();
    let flood = tokio::spawn(async move {
        for i in 0.. {
            if cast!(target, GreeterMsg::Hello(Greeting::new(&format!("m{i}")))).is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let gp = rust.dp.pid_of(&greeter.get_cell()).unwrap();
    for i in 0..20 {
        p.send(&gp, hello(&Greeting::new(&format!("h{i}"))))
            .await
            .unwrap();
    }
    peer.kill();
    assert_eq!(
        terminated_reason(ended(&mut seen, cell.get_id()).await),
        "DiedDisconnect"
    );
    tokio::time::timeout(T, flood).await.unwrap().unwrap();
    // The Rust node lives on and serves a new peer.
    let other = PlainNode::start("127.0.0.1").await.unwrap();
    let q = other.spawn();
    assert!(q
        .whereis_remote(&rust.node, "greeter-peer-killed", T)
        .await
        .unwrap()
        .is_some());
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn haskell_watchers_see_died_disconnect_when_the_rust_node_goes() {
    let rust = rust_node("rust-goes").await;
    let (greeter, _rx) = spawn_greeter("greeter-rust-goes").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let p = peer.spawn();
    let linked = peer.spawn();
    let gp = rust.dp.pid_of(&greeter.get_cell()).unwrap();
    let m = p.monitor(&gp).unwrap();
    let mn = p.monitor_node(&rust.node).unwrap();
    linked.link(&gp).unwrap();
    sync(&peer, &p, &rust).await;
    // The Rust node shuts down: its sessions close their connections.
    rust.server.stop(None);
    let n = p.expect_monitor_notification(&m, T).await.unwrap();
    assert_eq!(n.reason, DiedReason::Disconnect);
    let n = p.expect_node_notification(&mn, T).await.unwrap();
    assert_eq!(n.reason, DiedReason::Disconnect);
    assert!(matches!(
        linked.wait_exit(T).await.unwrap(),
        ExitReason::ProcessLink(e) if e.reason == DiedReason::Disconnect
    ));
}

/// A bare NT-TCP initiator, to misbehave at the socket level.
struct RawPeer {
    conn: ntt::Connection,
    stream: TcpStream,
    me: EndPointAddress,
}

impl RawPeer {
    async fn connect(to: &str, me: &str) -> Self {
        let to: EndPointAddress = to.parse().unwrap();
        let me: EndPointAddress = me.parse().unwrap();
        let (conn, stream) = raw_handshake(&to, &me).await;
        Self { conn, stream, me }
    }

    async fn flush(&mut self) {
        flush_raw(&mut self.conn, &mut self.stream).await;
    }

    fn pid(&self, counter: i32) -> ProcessId {
        ProcessId {
            node: NodeId::new(self.me.as_str()),
            local: LocalProcessId {
                unique: 4242,
                counter,
            },
        }
    }
}

/// A RemoteActor for a process of the raw peer, observed.
async fn raw_remote(rust: &RustNode, raw: &RawPeer) -> (ActorCell, Ends, ActorRef<()>) {
    let c = rust.dp.process(&raw.pid(8)).await.unwrap();
    let (mon, seen) = observer().await;
    mon.get_cell().monitor(c.clone());
    (c, seen, mon)
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn a_peer_cut_in_the_middle_of_a_frame_ends_its_remote_actors() {
    let rust = rust_node("cut-mid-frame").await;
    let mut raw = RawPeer::connect(rust.node.as_str().unwrap(), "127.0.0.1:2:0").await;
    let (cell, mut seen, _mon) = raw_remote(&rust, &raw).await;
    // Half a data frame on a fresh lightweight connection, then gone.
    let lcid = raw.conn.open().unwrap();
    let mut first = Vec::new();
    Identifier::Node(rust.node.clone()).encode(&mut first);
    raw.conn.send(lcid, &first).unwrap();
    raw.flush().await;
    let mut partial = lcid.to_be_bytes().to_vec();
    partial.extend_from_slice(&100u32.to_be_bytes());
    partial.extend_from_slice(&[0, 0, 0]);
    raw.stream.write_all(&partial).await.unwrap();
    drop(raw);
    assert_eq!(
        terminated_reason(ended(&mut seen, cell.get_id()).await),
        "DiedDisconnect"
    );
    eventually("the session is gone", || gone(&rust.dp, "127.0.0.1:2:0")).await;
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn a_silent_peer_is_declared_gone_by_probing() {
    // The raw peer has no node controller to answer the kaisui probe: its
    // session starts (as a plain DP peer's) when the probe expires, which
    // must come before probing declares it gone.
    let config = DpTcpConfig::new(types())
        .with_probe(Some(Duration::from_millis(200)), Duration::from_millis(300))
        .with_recognize_timeout(Duration::from_millis(100));
    let rust = rust_node_with("silent-peer", config).await;
    // Completes the handshake, then never reads or answers again (the
    // socket stays open: a half-open or hung peer).
    let raw = RawPeer::connect(rust.node.as_str().unwrap(), "127.0.0.1:3:0").await;
    let (cell, mut seen, _mon) = raw_remote(&rust, &raw).await;
    assert_eq!(
        terminated_reason(ended(&mut seen, cell.get_id()).await),
        "DiedDisconnect"
    );
    eventually("the session is gone", || gone(&rust.dp, "127.0.0.1:3:0")).await;
    drop(raw);
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn a_responsive_idle_peer_survives_probing() {
    let config = DpTcpConfig::new(types())
        .with_probe(Some(Duration::from_millis(50)), Duration::from_millis(500));
    let rust = rust_node_with("idle-peer", config).await;
    let (greeter, mut rx) = spawn_greeter("greeter-idle-peer").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let p = peer.spawn();
    let gp = rust.dp.pid_of(&greeter.get_cell()).unwrap();
    p.send(&gp, hello(&Greeting::new("one"))).await.unwrap();
    assert_eq!(seen(&mut rx).await.text, "one");
    // Many probe intervals of silence; the plain node answers each probe.
    tokio::time::sleep(Duration::from_millis(600)).await;
    p.send(&gp, hello(&Greeting::new("two"))).await.unwrap();
    assert_eq!(seen(&mut rx).await.text, "two");
    assert!(rust
        .dp
        .peer_info(peer.node_id().as_str().unwrap())
        .await
        .is_ok());
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn a_clean_close_local_node_ends_remote_actors_with_died_disconnect() {
    let rust = rust_node("peer-closes").await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    connect(&rust, &peer).await;
    let (_p, cell, mut seen, _mon) = watched_remote(&rust, &peer, "victim-peer-closes").await;
    peer.close().await;
    assert_eq!(
        terminated_reason(ended(&mut seen, cell.get_id()).await),
        "DiedDisconnect"
    );
}

// ---------------------------------------------------------------------
// 4. Spawn

/// `spawn`'s closure for `$(mkClosure 'fun) env` (capture 13's shape).
fn spawn_closure(spawner: &ProcessId, fun: &str, user_env: &[u8]) -> Closure {
    let l = Static::label;
    let user = l("$compose")
        .apply(l(fun))
        .apply(l("$decodeDict").apply(Static::label(format!("{fun}__sdict"))));
    let decoder = l("$compose")
        .apply(
            l("$compose").apply(l("$app")).apply(
                l("$split")
                    .apply(
                        l("$compose")
                            .apply(l("$delay"))
                            .apply(l("$decodeProcessId")),
                    )
                    .apply(user),
            ),
        )
        .apply(l("$decodeEnvPair"));
    let mut spawner_bytes = Vec::new();
    spawner.encode(&mut spawner_bytes);
    let mut env = Vec::new();
    Bytes::from(spawner_bytes).encode(&mut env);
    Bytes::copy_from_slice(user_env).encode(&mut env);
    Closure {
        decoder,
        env: Bytes::from(env),
    }
}

/// Haskell's `spawn`: Spawn, wait for DidSpawn, `usend pid ()`.
async fn haskell_spawn(
    p: &Process,
    peer: &PlainNode,
    node: &NodeId,
    fun: &str,
    env: &[u8],
    r: i32,
) -> ProcessId {
    p.send_ctrl(
        node,
        ProcessSignal::Spawn {
            closure: spawn_closure(&p.pid(), fun, env),
            spawn_ref: SpawnRef(r),
        },
    )
    .await
    .unwrap();
    let d = p
        .expect_decoded(|d: &DidSpawn| d.spawn_ref == SpawnRef(r), T)
        .await
        .expect("a DidSpawn, never a hang");
    p.usend(&d.pid, peer.messages().unit()).await.unwrap();
    d.pid
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn haskell_spawn_runs_registered_factories_and_gets_a_dead_pid_otherwise() {
    let (tx, mut rx) = mpsc::unbounded_channel::<Greeting>();
    let config = DpTcpConfig::new(types())
        .with_spawn("Kaisui.Workers.greeter", move |env: Bytes| {
            let tx = tx.clone();
            async move {
                // The environment is `encode (name :: String)`... any bytes
                // the factory understands; here a ByteString greeting.
                let _ = tx.send(Greeting::new(&format!("spawned with {} bytes", env.len())));
                let (a, _) = Actor::spawn(None, Greeter, tx.into()).await?;
                Ok(a.get_cell())
            }
        })
        .with_spawn("Kaisui.Workers.broken", |_env: Bytes| async {
            Err(ractor::SpawnErr::StartupFailed("refuses to start".into()))
        });
    let rust = rust_node_with("spawns", config).await;
    let peer = PlainNode::start("127.0.0.1").await.unwrap();
    let p = peer.spawn();

    let pid = haskell_spawn(&p, &peer, &rust.node, "Kaisui.Workers.greeter", b"12345", 0).await;
    assert_eq!(seen(&mut rx).await.text, "spawned with 5 bytes");
    assert_eq!(pid.node, rust.node);
    p.send(&pid, hello(&Greeting::new("to the spawned one")))
        .await
        .unwrap();
    assert_eq!(seen(&mut rx).await.text, "to the spawned one");
    let m = p.monitor(&pid).unwrap();
    sync(&peer, &p, &rust).await;
    assert!(p
        .expect_monitor_notification(&m, Duration::from_millis(50))
        .await
        .is_err());

    // Unknown label and a failing factory: a pid that is already dead.
    for (i, fun) in ["Main.otherFun", "Kaisui.Workers.broken"]
        .iter()
        .enumerate()
    {
        let dead = haskell_spawn(&p, &peer, &rust.node, fun, b"", 1 + i as i32).await;
        let m = p.monitor(&dead).unwrap();
        let n = p.expect_monitor_notification(&m, T).await.unwrap();
        assert_eq!(n.reason, DiedReason::UnknownId, "{fun}");
    }
    // spawn's `usend pid ()` was swallowed, not counted as unknown.
    let info = rust
        .dp
        .peer_info(peer.node_id().as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(info.counters.unknown_type, 0, "{info:?}");
}

// ---------------------------------------------------------------------
// 5. Reconnect

async fn start_on(port: u16) -> PlainNode {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let mut c = PlainNodeConfig::new("127.0.0.1");
        c.port = port;
        match PlainNode::start_with(c).await {
            Ok(n) => return n,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "rebind: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn a_restarted_peer_works_as_before_and_gets_nothing_of_the_old_one() {
    let rust = rust_node("reconnect").await;
    let (greeter, mut rx) = spawn_greeter("greeter-reconnect").await;
    let gp = rust.dp.pid_of(&greeter.get_cell()).unwrap();
    let old = PlainNode::start("127.0.0.1").await.unwrap();
    let port = endpoint_of(&old.node_id()).port().parse::<u16>().unwrap();
    connect(&rust, &old).await;
    let (old_p, old_cell, mut ends, _mon) = watched_remote(&rust, &old, "svc-reconnect").await;
    // The old incarnation also watches our greeter.
    let watcher = old.spawn();
    let _m = watcher.monitor(&gp).unwrap();
    sync(&old, &watcher, &rust).await;
    let old_pid = old_p.pid();
    old.kill();
    assert_eq!(
        terminated_reason(ended(&mut ends, old_cell.get_id()).await),
        "DiedDisconnect"
    );

    let new = start_on(port).await;
    assert_eq!(new.node_id(), NodeId::new(format!("127.0.0.1:{port}:0")));
    // Rust connects again and works with the new incarnation.
    let new_id = new.node_id().as_str().unwrap().to_owned();
    eventually("the old session is gone", || gone(&rust.dp, &new_id)).await;
    connect(&rust, &new).await;
    let p = new.spawn();
    new.register("svc-reconnect", &p.pid());
    assert_ne!(p.pid(), old_pid);
    let cell = remote(&rust, &new, "svc-reconnect").await;
    assert_ne!(cell.get_id(), old_cell.get_id());
    let to: ActorRef<GreeterMsg> = cell.into();
    cast!(to, GreeterMsg::Hello(Greeting::new("hello again"))).unwrap();
    let m = p.expect_fp(fp("Hello"), T).await.unwrap();
    assert_eq!(unpack(&m.payload()).text, "hello again");
    // The old RemoteActor stays dead: a handle for the old pid is not the
    // new process.
    assert!(old_cell.get_status() >= ractor::ActorStatus::Stopping);
    // Haskell → Rust works too.
    p.send(&gp, hello(&Greeting::new("from the new one")))
        .await
        .unwrap();
    assert_eq!(seen(&mut rx).await.text, "from the new one");
    // The old incarnation's watch of the greeter is gone: its end sends
    // nothing to the new one. (The new one's own monitor of a second
    // actor that ends afterwards shows when a Died would have arrived.)
    let later = victim().await;
    let m = p
        .monitor(&rust.dp.pid_of(&later.get_cell()).unwrap())
        .unwrap();
    sync(&new, &p, &rust).await;
    greeter.stop_and_wait(None, None).await.unwrap();
    later.stop_and_wait(None, None).await.unwrap();
    let n = p.expect_monitor_notification(&m, T).await.unwrap();
    assert_eq!(n.reason, DiedReason::Normal);
    let mut stale_died = Vec::new();
    dp_wire::dp::NCMsg {
        sender: Identifier::Node(rust.node.clone()),
        signal: ProcessSignal::Died {
            who: Identifier::Process(gp.clone()),
            reason: DiedReason::Normal,
        },
    }
    .encode(&mut stale_died);
    assert!(!new
        .received()
        .iter()
        .any(|s| s.bytes.windows(stale_died.len()).any(|w| w == stale_died)));
    assert!(new.violations().is_empty(), "{:?}", new.violations());
}

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn a_restarted_peer_can_be_the_one_that_reconnects() {
    let rust = rust_node("reconnect-from-haskell").await;
    let (greeter, mut rx) = spawn_greeter("greeter-reconnect-from-haskell").await;
    let old = PlainNode::start("127.0.0.1").await.unwrap();
    let port = endpoint_of(&old.node_id()).port().parse::<u16>().unwrap();
    connect(&rust, &old).await;
    let (_old_p, old_cell, mut ends, _mon) =
        watched_remote(&rust, &old, "svc-reconnect-from-haskell").await;
    old.kill();
    // The new incarnation connects to us at once, possibly while the old
    // session is still ending.
    let new = start_on(port).await;
    let q = new.spawn();
    let gp = q
        .whereis_remote(&rust.node, "greeter-reconnect-from-haskell", T)
        .await
        .unwrap()
        .expect("found after the restart");
    assert_eq!(gp, rust.dp.pid_of(&greeter.get_cell()).unwrap());
    q.send(&gp, hello(&Greeting::new("new incarnation")))
        .await
        .unwrap();
    assert_eq!(seen(&mut rx).await.text, "new incarnation");
    assert_eq!(
        terminated_reason(ended(&mut ends, old_cell.get_id()).await),
        "DiedDisconnect"
    );
    // And Rust reaches the new incarnation's processes on that connection.
    new.register("svc-reconnect-from-haskell", &q.pid());
    let to: ActorRef<GreeterMsg> = remote(&rust, &new, "svc-reconnect-from-haskell")
        .await
        .into();
    cast!(to, GreeterMsg::Hello(Greeting::new("back to you"))).unwrap();
    let m = q.expect_fp(fp("Hello"), T).await.unwrap();
    assert_eq!(unpack(&m.payload()).text, "back to you");
}
