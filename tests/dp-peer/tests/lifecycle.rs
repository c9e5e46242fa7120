//! Monitors, links, kill and exit between two plain nodes on loopback:
//! the matrix of distributed-process's own tests (normal exit, `die`,
//! dead process, disconnect, unreachable node, unmonitor, unlink), plus
//! `monitorNode`/`linkNode` and remote `kill`/`exit`.
//!
//! "Nothing happens" is shown without sleeping: after the event that must
//! not be reported, the watcher monitors the same (now dead) pid again.
//! The `DiedUnknownId` answer travels behind any notification the other
//! node would have sent for the first monitor (one NC, one connection),
//! so once it is in, an earlier one would be too.

mod common;

use common::{wait_until, T};
use dp_peer::{ExitReason, PlainNode, Process};
use dp_wire::dp::{
    DiedReason, Identifier, LocalProcessId, MonitorRef, NodeLinkException, ProcessId,
    ProcessLinkException, ProcessMonitorNotification,
};

async fn pair() -> (PlainNode, PlainNode) {
    let a = PlainNode::start("127.0.0.1").await.unwrap();
    let b = PlainNode::start("127.0.0.1").await.unwrap();
    (a, b)
}

/// `w` monitors `pid` and waits for the notification.
async fn expect_notified(w: &Process, r: &MonitorRef) -> ProcessMonitorNotification {
    w.expect_monitor_notification(r, T).await.unwrap()
}

/// Shows that `w` holds no notification for `pid` (see the module doc):
/// a fresh monitor of the dead `pid` must be the only thing that comes.
async fn assert_nothing_for(w: &Process, pid: &ProcessId) {
    let r = w.monitor(pid).unwrap();
    let n = expect_notified(w, &r).await;
    assert_eq!(n.reason, DiedReason::UnknownId);
    assert_eq!(w.queue_len(), 0, "no other notification arrived");
}

fn no_violations(nodes: &[&PlainNode]) {
    for n in nodes {
        assert!(n.violations().is_empty(), "{:?}", n.violations());
    }
}

#[test_log::test(tokio::test)]
async fn monitor_remote_normal_exit() {
    let (a, b) = pair().await;
    let (pa, pb) = (a.spawn(), b.spawn());
    let r = pa.monitor(&pb.pid()).unwrap();
    assert_eq!(r.counter, 0, "MonitorRef counters start at 0 per process");
    assert_eq!(r.ident, Identifier::Process(pb.pid()));
    // Both NCs record it (Node.hs keeps the watch on both ends).
    wait_until("both NCs record the monitor", || {
        a.monitors().len() == 1 && b.monitors().len() == 1
    })
    .await;
    let pid_b = pb.pid();
    pb.exit();
    let n = expect_notified(&pa, &r).await;
    assert_eq!(
        (n.monitor_ref, n.pid, n.reason),
        (r, pid_b, DiedReason::Normal)
    );
    assert!(pa.is_alive(), "a monitor never ends the watcher");
    wait_until("tables emptied", || {
        a.monitors().is_empty() && b.monitors().is_empty()
    })
    .await;
    no_violations(&[&a, &b]);
}

#[test_log::test(tokio::test)]
async fn monitor_remote_die_and_crash() {
    let (a, b) = pair().await;
    let pa = a.spawn();
    let (p1, p2) = (b.spawn(), b.spawn());
    let r1 = pa.monitor(&p1.pid()).unwrap();
    let r2 = pa.monitor(&p2.pid()).unwrap();
    assert_eq!((r1.counter, r2.counter), (0, 1));
    wait_until("B records both", || b.monitors().len() == 2).await;
    p1.die("boom");
    let kaboom =
        "kaboom\nCallStack (from HasCallStack):\n  error, called at DpPeer.hs:201:9 in main:Main";
    p2.crash(kaboom);
    assert_eq!(
        expect_notified(&pa, &r1).await.reason,
        DiedReason::Exception(format!("exit-from={},reason=boom", p1.pid()))
    );
    assert_eq!(
        expect_notified(&pa, &r2).await.reason,
        DiedReason::Exception(kaboom.into())
    );
    assert!(matches!(
        p1.exit_reason(),
        Some(ExitReason::Exit { from, .. }) if from == p1.pid()
    ));
    no_violations(&[&a, &b]);
}

#[test_log::test(tokio::test)]
async fn monitor_dead_or_unknown_process_gives_unknown_id() {
    let (a, b) = pair().await;
    let (pa, pa2) = (a.spawn(), a.spawn());
    let gone = b.spawn();
    let gone_pid = gone.pid();
    gone.exit();
    b.nc_settled().await.unwrap();
    let never = ProcessId {
        node: b.node_id(),
        local: LocalProcessId {
            unique: gone_pid.local.unique,
            counter: 4242,
        },
    };
    // Remote: B's NC answers `Died pid DiedUnknownId` (capture 04).
    for pid in [&gone_pid, &never] {
        let r = pa.monitor(pid).unwrap();
        let n = expect_notified(&pa, &r).await;
        assert_eq!((&n.pid, n.reason), (pid, DiedReason::UnknownId));
    }
    // Local: A's NC answers itself.
    let local_pid = pa2.pid();
    pa2.exit();
    let r = pa.monitor(&local_pid).unwrap();
    assert_eq!(expect_notified(&pa, &r).await.reason, DiedReason::UnknownId);
    assert!(a.monitors().is_empty() && b.monitors().is_empty());
    no_violations(&[&a, &b]);
}

#[test_log::test(tokio::test)]
async fn monitor_and_link_on_the_same_node() {
    let (a, _b) = pair().await;
    let (watcher, linker, target) = (a.spawn(), a.spawn(), a.spawn());
    let r = watcher.monitor(&target.pid()).unwrap();
    linker.link(&target.pid()).unwrap();
    wait_until("A records both", || {
        a.monitors().len() == 1 && a.links().len() == 1
    })
    .await;
    target.die("local-boom");
    let why = DiedReason::Exception(format!("exit-from={},reason=local-boom", target.pid()));
    assert_eq!(expect_notified(&watcher, &r).await.reason, why);
    assert_eq!(
        linker.wait_exit(T).await.unwrap(),
        ExitReason::ProcessLink(ProcessLinkException {
            pid: target.pid(),
            reason: why
        })
    );
}

#[test_log::test(tokio::test)]
async fn link_ends_the_linker_even_on_normal_exit() {
    // Node.hs: every Died of a linked process is a ProcessLinkException,
    // DiedNormal included (`link` makes no distinction).
    let (a, b) = pair().await;
    let (pa, observer) = (a.spawn(), b.spawn());
    let pb = b.spawn();
    pa.link(&pb.pid()).unwrap();
    // Someone on B watches the linker, to see how it ended.
    let r = observer.monitor(&pa.pid()).unwrap();
    wait_until("links and monitors recorded", || {
        b.links().len() == 1 && a.monitors().len() == 1
    })
    .await;
    let pid_b = pb.pid();
    pb.exit();
    let exit = pa.wait_exit(T).await.unwrap();
    assert_eq!(
        exit,
        ExitReason::ProcessLink(ProcessLinkException {
            pid: pid_b.clone(),
            reason: DiedReason::Normal
        })
    );
    assert!(!pa.is_alive());
    // What the linker's watchers are told: `show` of the exception.
    assert_eq!(
        expect_notified(&observer, &r).await.reason,
        DiedReason::Exception(format!("ProcessLinkException {pid_b} DiedNormal"))
    );
    assert_eq!(pa.died(), Some(exit.died_reason(a.build())));
    no_violations(&[&a, &b]);
}

#[test_log::test(tokio::test)]
async fn link_abnormal_exit_and_dead_process() {
    let (a, b) = pair().await;
    let (pa, pa2) = (a.spawn(), a.spawn());
    let pb = b.spawn();
    pa.link(&pb.pid()).unwrap();
    wait_until("B records the link", || b.links().len() == 1).await;
    pb.die("linked-boom");
    let reason = DiedReason::Exception(format!("exit-from={},reason=linked-boom", pb.pid()));
    assert_eq!(
        pa.wait_exit(T).await.unwrap(),
        ExitReason::ProcessLink(ProcessLinkException {
            pid: pb.pid(),
            reason: reason.clone()
        })
    );
    assert_eq!(
        pa.died(),
        Some(DiedReason::Exception(format!(
            "ProcessLinkException {} (DiedException {:?})",
            pb.pid(),
            format!("exit-from={},reason=linked-boom", pb.pid())
        )))
    );
    // Linking to a dead process ends the linker with DiedUnknownId.
    pa2.link(&pb.pid()).unwrap();
    assert_eq!(
        pa2.wait_exit(T).await.unwrap(),
        ExitReason::ProcessLink(ProcessLinkException {
            pid: pb.pid(),
            reason: DiedReason::UnknownId
        })
    );
    wait_until("tables emptied", || {
        a.links().is_empty() && b.links().is_empty()
    })
    .await;
    no_violations(&[&a, &b]);
}

#[test_log::test(tokio::test)]
async fn unmonitor_then_death_is_not_reported() {
    let (a, b) = pair().await;
    let (pa, pb) = (a.spawn(), b.spawn());
    let r = pa.monitor(&pb.pid()).unwrap();
    wait_until("B records the monitor", || b.monitors().len() == 1).await;
    pa.unmonitor(&r).await.unwrap();
    assert!(a.monitors().is_empty(), "A dropped it before acknowledging");
    wait_until("B drops it", || b.monitors().is_empty()).await;
    let pid_b = pb.pid();
    pb.die("target-exit");
    assert_nothing_for(&pa, &pid_b).await;
    no_violations(&[&a, &b]);
}

#[test_log::test(tokio::test)]
async fn unmonitor_drops_a_queued_notification() {
    let (a, b) = pair().await;
    let (pa, pb) = (a.spawn(), b.spawn());
    let r = pa.monitor(&pb.pid()).unwrap();
    wait_until("B records the monitor", || b.monitors().len() == 1).await;
    pb.exit();
    wait_until("notification queued", || pa.queue_len() == 1).await;
    pa.unmonitor(&r).await.unwrap();
    assert_eq!(pa.queue_len(), 0, "unmonitor removes it from the mailbox");
}

#[test_log::test(tokio::test)]
async fn unlink_then_death_leaves_the_linker_alive() {
    let (a, b) = pair().await;
    let (pa, pb) = (a.spawn(), b.spawn());
    pa.link(&pb.pid()).unwrap();
    wait_until("B records the link", || b.links().len() == 1).await;
    pa.unlink(&pb.pid()).await.unwrap();
    wait_until("B drops it", || b.links().is_empty()).await;
    let pid_b = pb.pid();
    pb.die("target-exit");
    assert_nothing_for(&pa, &pid_b).await;
    assert!(pa.is_alive(), "no link exception after unlink");
    no_violations(&[&a, &b]);
}

#[test_log::test(tokio::test)]
async fn killed_node_fires_every_watch_with_disconnect() {
    // Capture 06: the connection is lost; A's NC notifies locally.
    let (a, b) = pair().await;
    let (watcher, linker, node_linker) = (a.spawn(), a.spawn(), a.spawn());
    let victim = b.spawn();
    let rp = watcher.monitor(&victim.pid()).unwrap();
    let rn = watcher.monitor_node(&b.node_id()).unwrap();
    assert_eq!(rn.ident, Identifier::Node(b.node_id()));
    linker.link(&victim.pid()).unwrap();
    node_linker.link_node(&b.node_id()).unwrap();
    wait_until("B records everything", || {
        b.monitors().len() == 2 && b.links().len() == 2
    })
    .await;
    b.clone().kill();
    let n = watcher.expect_node_notification(&rn, T).await.unwrap();
    assert_eq!((n.node, n.reason), (b.node_id(), DiedReason::Disconnect));
    assert_eq!(
        expect_notified(&watcher, &rp).await.reason,
        DiedReason::Disconnect
    );
    assert_eq!(
        linker.wait_exit(T).await.unwrap(),
        ExitReason::ProcessLink(ProcessLinkException {
            pid: victim.pid(),
            reason: DiedReason::Disconnect
        })
    );
    assert_eq!(
        node_linker.wait_exit(T).await.unwrap(),
        ExitReason::NodeLink(NodeLinkException {
            node: b.node_id(),
            reason: DiedReason::Disconnect
        })
    );
    assert!(watcher.is_alive());
    assert!(a.monitors().is_empty() && a.links().is_empty());
    no_violations(&[&a]);
}

#[test_log::test(tokio::test)]
async fn closed_node_looks_like_a_crash() {
    // Capture 18: closeLocalNode sends CloseEndPoint and no Died; A's
    // watches fire with DiedDisconnect all the same.
    let (a, b) = pair().await;
    let watcher = a.spawn();
    let victim = b.spawn();
    let rn = watcher.monitor_node(&b.node_id()).unwrap();
    let rp = watcher.monitor(&victim.pid()).unwrap();
    assert_eq!((rn.counter, rp.counter), (0, 1));
    wait_until("B records both", || b.monitors().len() == 2).await;
    b.clone().close().await;
    let n = watcher.expect_node_notification(&rn, T).await.unwrap();
    assert_eq!(n.reason, DiedReason::Disconnect);
    assert_eq!(
        expect_notified(&watcher, &rp).await.reason,
        DiedReason::Disconnect
    );
    assert_eq!(
        victim.exit_reason(),
        Some(ExitReason::Exception("thread killed".into()))
    );
    no_violations(&[&a]);
}

#[test_log::test(tokio::test)]
async fn unreachable_node_fires_with_disconnect() {
    // The NC's forward of the Monitor/Link fails to connect; sendPayload
    // reports `Died (NodeIdentifier ..) DiedDisconnect` to its own NC.
    let a = PlainNode::start("127.0.0.1").await.unwrap();
    let c = PlainNode::start("127.0.0.1").await.unwrap();
    let ghost = c.spawn();
    let (ghost_pid, c_id) = (ghost.pid(), c.node_id());
    c.close().await;
    let (watcher, linker) = (a.spawn(), a.spawn());
    let rp = watcher.monitor(&ghost_pid).unwrap();
    assert_eq!(
        expect_notified(&watcher, &rp).await.reason,
        DiedReason::Disconnect
    );
    let rn = watcher.monitor_node(&c_id).unwrap();
    assert_eq!(
        watcher
            .expect_node_notification(&rn, T)
            .await
            .unwrap()
            .reason,
        DiedReason::Disconnect
    );
    linker.link(&ghost_pid).unwrap();
    assert_eq!(
        linker.wait_exit(T).await.unwrap(),
        ExitReason::ProcessLink(ProcessLinkException {
            pid: ghost_pid,
            reason: DiedReason::Disconnect
        })
    );
    assert!(a.monitors().is_empty() && a.links().is_empty());
}

#[test_log::test(tokio::test)]
async fn remote_kill_and_exit() {
    // Capture 14: via the killer's own NC; the targets end with the texts
    // Haskell's exceptions show, and monitors report them.
    let (a, b) = pair().await;
    let pa = a.spawn();
    let (killme, exitme, exitunit) = (b.spawn(), b.spawn(), b.spawn());
    let refs: Vec<_> = [&killme, &exitme, &exitunit]
        .iter()
        .map(|p| pa.monitor(&p.pid()).unwrap())
        .collect();
    wait_until("B records the monitors", || b.monitors().len() == 3).await;
    pa.kill(&killme.pid(), "kill-reason").unwrap();
    pa.exit_process(&exitme.pid(), a.messages().string("exit-reason"))
        .unwrap();
    pa.exit_process(&exitunit.pid(), a.messages().unit())
        .unwrap();
    let me = pa.pid();
    let want = [
        format!("killed-by={me},reason=kill-reason"),
        format!("exit-from={me},reason=exit-reason"),
        format!("exit-from={me}"),
    ];
    for (r, text) in refs.iter().zip(want) {
        assert_eq!(
            expect_notified(&pa, r).await.reason,
            DiedReason::Exception(text)
        );
    }
    assert_eq!(
        killme.exit_reason(),
        Some(ExitReason::Kill {
            by: me.clone(),
            reason: "kill-reason".into()
        })
    );
    assert!(matches!(
        exitme.exit_reason(),
        Some(ExitReason::Exit { from, .. }) if from == me
    ));
    no_violations(&[&a, &b]);
}

#[test_log::test(tokio::test)]
async fn dying_watcher_is_forgotten_by_the_other_node() {
    // forwardDeath: A's NC tells B that its watcher died, so B drops the
    // entries and sends nothing when the target ends later.
    let (a, b) = pair().await;
    let (pa, pb) = (a.spawn(), b.spawn());
    pa.monitor(&pb.pid()).unwrap();
    pa.link(&pb.pid()).unwrap();
    wait_until("B records both", || {
        b.monitors().len() == 1 && b.links().len() == 1
    })
    .await;
    pa.exit();
    wait_until("B forgot the dead watcher", || {
        b.monitors().is_empty() && b.links().is_empty()
    })
    .await;
    assert!(a.monitors().is_empty() && a.links().is_empty());
    no_violations(&[&a, &b]);
}

#[test_log::test(tokio::test)]
async fn process_info_and_stats_count_watches() {
    use dp_wire::dp::{NodeStats, ProcessInfo, ProcessSignal, Serializable};
    let (a, b) = pair().await;
    let (pa, pb) = (a.spawn(), b.spawn());
    let r = pa.monitor(&pb.pid()).unwrap();
    pa.link(&pb.pid()).unwrap();
    wait_until("B records both", || {
        b.monitors().len() == 1 && b.links().len() == 1
    })
    .await;
    pa.send_ctrl(&b.node_id(), ProcessSignal::GetInfo(pb.pid()))
        .await
        .unwrap();
    let info: ProcessInfo = pa.expect_decoded(|_| true, T).await.unwrap();
    assert_eq!(info.monitors, vec![(pa.pid(), r)]);
    assert_eq!(info.links, vec![pa.pid()]);
    // Local stats of A (a remote caller would get nothing, capture 16).
    pa.send_ctrl(&a.node_id(), ProcessSignal::GetNodeStats(a.node_id()))
        .await
        .unwrap();
    let fp = <NodeStats as Serializable>::fingerprint(a.build());
    let stats: NodeStats = a
        .messages()
        .decode(&pa.expect_fp(fp, T).await.unwrap())
        .unwrap();
    assert_eq!((stats.monitors, stats.links), (1, 1));
}
