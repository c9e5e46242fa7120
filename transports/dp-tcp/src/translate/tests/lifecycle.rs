//! Lifecycle rules: monitors, links, Died, kill/exit, spawn, node loss.
//! Byte-exact against captures 04, 05, 13, 14 and 17 where they apply.

use dp_wire::dp::{Closure, DiedReason, MonitorRef, SendPortId, SpawnRef, Static};

use super::*;

/// Node B of the captures (`127.0.0.1:10502:0`); A is the peer.
const B: &str = "127.0.0.1:10502:0";
const A: &str = "127.0.0.1:10501:0";

#[derive(Debug, Default)]
struct Dir {
    remotable: HashSet<u64>,
    alive: HashSet<u64>,
}

impl LocalDirectory for Dir {
    fn lookup_name(&self, _: &str) -> Option<u64> {
        None
    }
    fn is_remotable(&self, pid: u64) -> bool {
        self.remotable.contains(&pid)
    }
    fn is_alive(&self, pid: u64) -> bool {
        self.remotable.contains(&pid) || self.alive.contains(&pid)
    }
}

/// We play B with `unique` and live remotable actors `live`.
fn b_translator(unique: i32, live: &[u64]) -> Translator {
    let dir = Dir {
        remotable: live.iter().copied().collect(),
        alive: HashSet::from([77]),
    };
    let ctx = context(B, unique, dir, "Main.someFun");
    let mut t = super::plain(Translator::new(ctx, NodeId::new(A)));
    t.handle_peer_opened(1024);
    t.handle_peer_frame(
        1024,
        hexb(&format!("01{}", hex(&enc(&NodeId::new(B))))),
        now(),
    );
    t
}

fn now() -> Instant {
    // Lifecycle rules do not look at time.
    Instant::now()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Frames the peer gets on our node connection, without the connection's
/// Identifier frame.
fn nc_frames(t: &mut Translator) -> Vec<String> {
    let id = enc(&Identifier::Node(NodeId::new(A)));
    sent_frames(&actions(t))
        .into_iter()
        .filter(|f| *f != id)
        .map(|f| hex(&f))
        .collect()
}

fn frame(t: &mut Translator, h: &str) {
    t.handle_peer_frame(1024, hexb(h), now());
}

fn pid_on(node: &str, unique: i32, counter: i32) -> ProcessId {
    ProcessId {
        node: NodeId::new(node),
        local: LocalProcessId { unique, counter },
    }
}

fn nc(t: &mut Translator, sender: Identifier, signal: ProcessSignal) {
    nc_signal(t, 1024, sender, signal, now());
}

#[test]
fn monitors_get_died_byte_identical_to_capture_04() {
    let mut t = b_translator(0x4fb1_ab5d, &[8, 9, 10]);
    // A's process 8 (unique 0x8a545340) monitors B's 8, 9, 10 and 4242.
    let a_mon = "0000000000000000113132372e302e302e313a31303530313a308a54534000000008020000000000000000113132372e302e302e313a31303530323a304fb1ab5d";
    frame(&mut t, &format!("{a_mon}0000000800000000"));
    frame(&mut t, &format!("{a_mon}0000000900000001"));
    frame(&mut t, &format!("{a_mon}0000000a00000002"));
    assert_eq!(
        events(&mut t),
        vec![
            Event::WatchLocal { pid: 8 },
            Event::WatchLocal { pid: 9 },
            Event::WatchLocal { pid: 10 }
        ]
    );
    assert!(nc_frames(&mut t).is_empty(), "nothing until they end");

    let died = "0100000000000000113132372e302e302e313a31303530323a30040000000000000000113132372e302e302e313a31303530323a304fb1ab5d";
    t.local_died(8, &DiedReason::Normal);
    assert_eq!(nc_frames(&mut t), vec![format!("{died}0000000800")]);
    t.local_died(
        9,
        &DiedReason::Exception("exit-from=pid://127.0.0.1:10502:0:9,reason=boom".into()),
    );
    assert_eq!(
        nc_frames(&mut t),
        vec![format!("{died}0000000901000000000000002f657869742d66726f6d3d7069643a2f2f3132372e302e302e313a31303530323a303a392c726561736f6e3d626f6f6d")]
    );
    // A monitor of a pid that never existed is answered at once.
    frame(&mut t, &format!("{a_mon}0000109200000003"));
    assert_eq!(nc_frames(&mut t), vec![format!("{died}0000109204")]);
    assert!(events(&mut t).is_empty());
    // Each death is reported once; a second local_died sends nothing.
    t.local_died(8, &DiedReason::Normal);
    assert!(nc_frames(&mut t).is_empty());
    // 10 is still watched.
    t.local_died(10, &DiedReason::Normal);
    assert_eq!(nc_frames(&mut t).len(), 1);
}

#[test]
fn links_get_died_byte_identical_to_capture_05() {
    let mut t = b_translator(0x2efa_81ff, &[8]);
    frame(&mut t, "0000000000000000113132372e302e302e313a31303530313a300cf5f73900000008000000000000000000113132372e302e302e313a31303530323a302efa81ff00000008");
    assert_eq!(events(&mut t), vec![Event::WatchLocal { pid: 8 }]);
    t.local_died(
        8,
        &DiedReason::Exception("exit-from=pid://127.0.0.1:10502:0:8,reason=linked-boom".into()),
    );
    assert_eq!(
        nc_frames(&mut t),
        vec!["0100000000000000113132372e302e302e313a31303530323a30040000000000000000113132372e302e302e313a31303530323a302efa81ff00000008010000000000000036657869742d66726f6d3d7069643a2f2f3132372e302e302e313a31303530323a303a382c726561736f6e3d6c696e6b65642d626f6f6d".to_owned()]
    );
}

#[test]
fn one_died_per_watch_links_first_and_duplicates_collapse() {
    let mut t = b_translator(5, &[8]);
    let w1 = Identifier::Process(pid_on(A, 1, 8));
    let w2 = Identifier::Process(pid_on(A, 1, 9));
    let target = Identifier::Process(pid_on(B, 5, 8));
    let monitor = |c| {
        ProcessSignal::Monitor(MonitorRef {
            ident: target.clone(),
            counter: c,
        })
    };
    let link = || ProcessSignal::Link(target.clone());
    nc(&mut t, w1.clone(), monitor(0));
    nc(&mut t, w1.clone(), monitor(0));
    nc(&mut t, w1.clone(), monitor(1));
    nc(&mut t, w2.clone(), link());
    nc(&mut t, w2.clone(), link());
    events(&mut t);
    t.local_died(8, &DiedReason::Normal);
    let expected = hex(&enc(&NCMsg {
        sender: Identifier::Node(NodeId::new(B)),
        signal: ProcessSignal::Died {
            who: target.clone(),
            reason: DiedReason::Normal,
        },
    }));
    assert_eq!(nc_frames(&mut t), vec![expected; 3]);
}

#[test]
fn unmonitor_and_unlink_silence_the_watch_as_in_capture_17() {
    let mut t = b_translator(0x4d90_09c2, &[8]);
    let head = "0000000000000000113132372e302e302e313a31303530313a30ca0027a100000008";
    let them = "0000000000000000113132372e302e302e313a31303530323a304d9009c200000008";
    frame(&mut t, &format!("{head}02{them}00000000"));
    frame(&mut t, &format!("{head}03{them}00000000"));
    frame(&mut t, &format!("{head}00{them}"));
    frame(&mut t, &format!("{head}01{them}"));
    assert_eq!(
        events(&mut t),
        vec![Event::WatchLocal { pid: 8 }, Event::WatchLocal { pid: 8 }]
    );
    t.local_died(8, &DiedReason::Exception("target-exit".into()));
    assert!(nc_frames(&mut t).is_empty(), "B sends nothing (capture 17)");
}

#[test]
fn watches_of_dead_stale_foreign_or_odd_targets() {
    let mut t = b_translator(5, &[8]);
    let w = Identifier::Process(pid_on(A, 1, 8));
    let died = |who: Identifier| {
        hex(&enc(&NCMsg {
            sender: Identifier::Node(NodeId::new(B)),
            signal: ProcessSignal::Died {
                who,
                reason: DiedReason::UnknownId,
            },
        }))
    };
    // An older incarnation of our actor 8: DiedUnknownId.
    let stale = Identifier::Process(pid_on(B, 4, 8));
    nc(&mut t, w.clone(), ProcessSignal::Link(stale.clone()));
    // A synthetic pid of ours: DiedUnknownId.
    let synthetic = Identifier::Process(pid_on(B, 5, -1));
    nc(&mut t, w.clone(), ProcessSignal::Link(synthetic.clone()));
    // A send port (we have no typed channels): DiedUnknownId.
    let port = Identifier::SendPort(SendPortId {
        process: pid_on(B, 5, 8),
        local: 3,
    });
    nc(
        &mut t,
        w.clone(),
        ProcessSignal::Monitor(MonitorRef {
            ident: port.clone(),
            counter: 0,
        }),
    );
    assert_eq!(
        nc_frames(&mut t),
        vec![died(stale), died(synthetic), died(port)]
    );
    // A live but non-remotable actor may be watched.
    nc(
        &mut t,
        w.clone(),
        ProcessSignal::Link(Identifier::Process(pid_on(B, 5, 77))),
    );
    assert_eq!(events(&mut t), vec![Event::WatchLocal { pid: 77 }]);
    // Our node (monitorNode, as spawn does): accepted, nothing to answer.
    nc(
        &mut t,
        w.clone(),
        ProcessSignal::Monitor(MonitorRef {
            ident: Identifier::Node(NodeId::new(B)),
            counter: 0,
        }),
    );
    // A third node's process, a node sender, a third node's sender: dropped.
    nc(
        &mut t,
        w.clone(),
        ProcessSignal::Link(Identifier::Process(pid_on("10.0.0.1:1:0", 1, 1))),
    );
    nc(
        &mut t,
        Identifier::Node(NodeId::new(A)),
        ProcessSignal::Link(Identifier::Process(pid_on(B, 5, 8))),
    );
    nc(
        &mut t,
        Identifier::Process(pid_on("10.0.0.1:1:0", 1, 1)),
        ProcessSignal::Link(Identifier::Process(pid_on(B, 5, 8))),
    );
    assert!(nc_frames(&mut t).is_empty());
    assert!(events(&mut t).is_empty());
    // The watch of a third node's process is stale or foreign; the third
    // node's sender is refused before its signal is looked at.
    assert_eq!(t.counters().stale_or_foreign, 1);
    assert_eq!(t.counters().wrong_sender, 1);
    assert_eq!(t.counters().ignored, 1);
}

#[test]
fn a_dead_haskell_watcher_is_forgotten() {
    let mut t = b_translator(5, &[8]);
    let w = pid_on(A, 1, 8);
    nc(
        &mut t,
        Identifier::Process(w.clone()),
        ProcessSignal::Link(Identifier::Process(pid_on(B, 5, 8))),
    );
    events(&mut t);
    // forwardDeath from A's NC: the watcher ended.
    nc(
        &mut t,
        Identifier::Node(NodeId::new(A)),
        ProcessSignal::Died {
            who: Identifier::Process(w),
            reason: DiedReason::Normal,
        },
    );
    assert!(events(&mut t).is_empty(), "no RemoteActor for it");
    t.local_died(8, &DiedReason::Normal);
    assert!(nc_frames(&mut t).is_empty());
}

#[test]
fn kill_and_exit_stop_the_actor_with_dp_texts_as_in_capture_14() {
    let mut t = b_translator(0x8a42_6b0e_u32 as i32, &[8, 9]);
    let head = "0000000000000000113132372e302e302e313a31303530313a30823b6c8100000008";
    frame(&mut t, &format!("{head}0900000000000000113132372e302e302e313a31303530323a308a426b0e00000008000000000000000b6b696c6c2d726561736f6e"));
    frame(&mut t, &format!("{head}0a00000000000000113132372e302e302e313a31303530323a308a426b0e00000009000000000000000200000000000000105931901b2f5e42de5f1bd0e88b5e43c50000000000000013000000000000000b657869742d726561736f6e"));
    assert_eq!(
        events(&mut t),
        vec![
            Event::StopLocal {
                pid: 8,
                reason: "killed-by=pid://127.0.0.1:10501:0:8,reason=kill-reason".into()
            },
            Event::StopLocal {
                pid: 9,
                reason: "exit-from=pid://127.0.0.1:10501:0:8,reason=exit-reason".into()
            },
        ]
    );
    // The watchers then get exactly B's Died frames (capture 14).
    let a_mon = |c: &str, r: &str| {
        format!("{head}020000000000000000113132372e302e302e313a31303530323a308a426b0e{c}{r}")
    };
    frame(&mut t, &a_mon("00000008", "00000000"));
    frame(&mut t, &a_mon("00000009", "00000001"));
    events(&mut t);
    t.local_died(
        8,
        &died_reason_of(Ok(Some(
            "killed-by=pid://127.0.0.1:10501:0:8,reason=kill-reason",
        ))),
    );
    t.local_died(
        9,
        &died_reason_of(Ok(Some(
            "exit-from=pid://127.0.0.1:10501:0:8,reason=exit-reason",
        ))),
    );
    let died = "0100000000000000113132372e302e302e313a31303530323a30040000000000000000113132372e302e302e313a31303530323a308a426b0e";
    assert_eq!(
        nc_frames(&mut t),
        vec![
            format!("{died}000000080100000000000000366b696c6c65642d62793d7069643a2f2f3132372e302e302e313a31303530313a303a382c726561736f6e3d6b696c6c2d726561736f6e"),
            format!("{died}00000009010000000000000036657869742d66726f6d3d7069643a2f2f3132372e302e302e313a31303530313a303a382c726561736f6e3d657869742d726561736f6e"),
        ]
    );
}

#[test]
fn exit_with_a_non_string_reason_names_only_the_sender() {
    let from = pid_on(A, 1, 8);
    let m = Message::new(Fingerprint::new(1, 2), vec![1, 2, 3]);
    assert_eq!(
        exit_reason(&from, &m, &Limits::default()),
        "exit-from=pid://127.0.0.1:10501:0:8"
    );
}

#[test]
fn kills_of_the_node_itself_and_shutdowns_are_refused() {
    let mut t = b_translator(5, &[8]);
    let w = Identifier::Process(pid_on(A, 1, 8));
    let kill = |target| ProcessSignal::Kill {
        target,
        reason: "bye".into(),
    };
    // The node's own sender pid, a non-remotable (infrastructure) actor,
    // and SigShutdown.
    nc(&mut t, w.clone(), kill(pid_on(B, 5, -1)));
    nc(&mut t, w.clone(), kill(pid_on(B, 5, 77)));
    nc(
        &mut t,
        Identifier::Node(NodeId::new(A)),
        ProcessSignal::SigShutdown,
    );
    nc(&mut t, w.clone(), ProcessSignal::SigShutdown);
    assert_eq!(t.counters().refused, 4);
    // Dead, stale or foreign targets: nothing to do.
    nc(&mut t, w.clone(), kill(pid_on(B, 5, 12)));
    nc(&mut t, w.clone(), kill(pid_on(B, 4, 8)));
    nc(&mut t, w.clone(), kill(pid_on("10.0.0.1:1:0", 5, 8)));
    // A Kill from a node sender is not something a DP NC accepts.
    nc(
        &mut t,
        Identifier::Node(NodeId::new(A)),
        kill(pid_on(B, 5, 8)),
    );
    assert!(events(&mut t).is_empty());
    assert!(nc_frames(&mut t).is_empty());
    assert_eq!(t.counters().refused, 4);
}

fn spawn_closure(fun: &str, env: Vec<u8>) -> Closure {
    let l = Static::label;
    let user = l("$compose")
        .apply(l(fun))
        .apply(l("$decodeDict").apply(l("Main.someFun__sdict")));
    let delayed = l("$compose").apply(
        l("$compose").apply(l("$app")).apply(
            l("$split")
                .apply(
                    l("$compose")
                        .apply(l("$delay"))
                        .apply(l("$decodeProcessId")),
                )
                .apply(user),
        ),
    );
    Closure {
        decoder: delayed.apply(l("$decodeEnvPair")),
        env: Bytes::from(env),
    }
}

#[test]
fn spawn_finds_the_label_and_user_env_and_answers_did_spawn_as_in_capture_13() {
    let mut t = b_translator(0xb02a_87c2_u32 as i32, &[8]);
    let head = "0000000000000000113132372e302e302e313a31303530313a30efb27dc100000008";
    frame(&mut t, &format!("{head}05010100000000000000000824636f6d706f7365010100000000000000000824636f6d706f73650000000000000000042461707001010000000000000000062473706c6974010100000000000000000824636f6d706f73650000000000000000062464656c6179000000000000000010246465636f646550726f636573734964010100000000000000000824636f6d706f736500000000000000000c4d61696e2e736f6d6546756e0100000000000000000b246465636f6465446963740000000000000000134d61696e2e736f6d6546756e5f5f736469637400000000000000000e246465636f6465456e76506169720000000000000063000000000000002100000000000000113132372e302e302e313a31303530313a30efb27dc100000008000000000000003200000000000000113132372e302e302e313a31303530313a30efb27dc1000000080000000000000009737061776e2d61726700000000"));
    let spawner = pid_on(A, 0xefb2_7dc1_u32 as i32, 8);
    // encode (me, "spawn-arg") :: (ProcessId, String)
    let user_env = hexb("00000000000000113132372e302e302e313a31303530313a30efb27dc1000000080000000000000009737061776e2d617267");
    assert_eq!(
        events(&mut t),
        vec![Event::Spawn {
            spawner: spawner.clone(),
            spawn_ref: SpawnRef(0),
            label: Some("Main.someFun".into()),
            env: user_env,
        }]
    );
    t.spawned(&spawner, SpawnRef(0), 8);
    assert_eq!(
        nc_frames(&mut t),
        vec!["0100000000000000113132372e302e302e313a31303530323a300defb27dc10000000800000000000000020000000000000010a717db07296e81af875986b5ee461ae500000000000000250000000000000000000000113132372e302e302e313a31303530323a30b02a87c200000008".to_owned()]
    );
    // spawn's `usend newPid ()` is swallowed, once; later messages go on.
    frame(&mut t, &format!("{head}0db02a87c20000000800000000000000010000000000000010d395a248530d97d03b0b33304cfbe3ff"));
    assert!(session(&mut t).is_empty());
    assert_eq!(t.counters(), Counters::default());
    frame(&mut t, &format!("{head}0db02a87c20000000800000000000000010000000000000010d395a248530d97d03b0b33304cfbe3ff"));
    assert_eq!(t.counters().unknown_type, 1);

    // Unknown label: still asked for (the driver answers with a dead pid).
    frame(&mut t, &format!("{head}05010100000000000000000824636f6d706f7365010100000000000000000824636f6d706f73650000000000000000042461707001010000000000000000062473706c6974010100000000000000000824636f6d706f73650000000000000000062464656c6179000000000000000010246465636f646550726f636573734964010100000000000000000824636f6d706f736500000000000000000d4d61696e2e6f7468657246756e0100000000000000000b246465636f6465446963740000000000000000134d61696e2e736f6d6546756e5f5f736469637400000000000000000e246465636f6465456e76506169720000000000000065000000000000002100000000000000113132372e302e302e313a31303530313a30efb27dc100000008000000000000003400000000000000113132372e302e302e313a31303530313a30efb27dc100000008000000000000000b756e6b6e6f776e2d61726700000001"));
    assert!(matches!(
        events(&mut t).as_slice(),
        [Event::Spawn { label: Some(l), spawn_ref: SpawnRef(1), .. }] if l == "Main.otherFun"
    ));
    t.spawned(&spawner, SpawnRef(1), 9);
    assert_eq!(
        nc_frames(&mut t),
        vec!["0100000000000000113132372e302e302e313a31303530323a300defb27dc10000000800000000000000020000000000000010a717db07296e81af875986b5ee461ae500000000000000250000000100000000000000113132372e302e302e313a31303530323a30b02a87c200000009".to_owned()]
    );
    // The monitor one second later: DiedUnknownId (the last Died of 13).
    frame(
        &mut t,
        &format!(
            "{head}020000000000000000113132372e302e302e313a31303530323a30b02a87c20000000900000002"
        ),
    );
    assert_eq!(
        nc_frames(&mut t),
        vec!["0100000000000000113132372e302e302e313a31303530323a30040000000000000000113132372e302e302e313a31303530323a30b02a87c20000000904".to_owned()]
    );
}

#[test]
fn spawn_target_without_the_delay_wrapper_and_with_several_labels() {
    let l = Static::label;
    let plain = l("$compose")
        .apply(l("Kaisui.Workers.counter"))
        .apply(l("$decodeDict").apply(l("Kaisui.Workers.counter__sdict")));
    let env = Bytes::from_static(b"\x00\x00\x00\x00\x00\x00\x00\x01x");
    let (label, got) = spawn_target(&plain, &env, |_| false, &Limits::default());
    assert_eq!(label.as_deref(), Some("Kaisui.Workers.counter"));
    assert_eq!(got, env);
    // The registered one wins among several candidates.
    let two = l("Main.wrap").apply(plain);
    let (label, _) = spawn_target(
        &two,
        &env,
        |x| x == "Kaisui.Workers.counter",
        &Limits::default(),
    );
    assert_eq!(label.as_deref(), Some("Kaisui.Workers.counter"));
    // Only built-ins: no label.
    let (label, _) = spawn_target(&l("$sdictUnit"), &env, |_| true, &Limits::default());
    assert_eq!(label, None);
    // The spawner of a Spawn must be a process of the peer.
    let mut t = b_translator(5, &[]);
    nc(
        &mut t,
        Identifier::Node(NodeId::new(A)),
        ProcessSignal::Spawn {
            closure: spawn_closure("Main.someFun", vec![]),
            spawn_ref: SpawnRef(0),
        },
    );
    assert!(events(&mut t).is_empty());
}

#[test]
fn announce_monitors_the_haskell_process_once_and_its_death_stops_the_remote_actor() {
    let (mut t, now) = node_opened();
    let rpid = ractor_pid_of(&theirs(8));
    t.announce(rpid, Some("echo".into()));
    t.announce(rpid, None);
    let monitor = |counter| {
        enc(&NCMsg {
            sender: Identifier::Process(ours(NODE_SENDER_COUNTER)),
            signal: ProcessSignal::Monitor(MonitorRef {
                ident: Identifier::Process(theirs(8)),
                counter,
            }),
        })
    };
    let frames = sent_frames(&actions(&mut t));
    assert_eq!(frames.iter().filter(|f| **f == monitor(0)).count(), 1);
    assert_eq!(session(&mut t).len(), 2, "two PgJoins");
    let died = |counter, reason| ProcessSignal::Died {
        who: Identifier::Process(theirs(counter)),
        reason,
    };
    // A Died of a process we do not monitor changes nothing.
    nc_signal(&mut t, 1024, peer_node(), died(9, DiedReason::Normal), now);
    assert!(events(&mut t).is_empty());
    let boom = DiedReason::Exception("boom".into());
    nc_signal(&mut t, 1024, peer_node(), died(8, boom), now);
    assert_eq!(
        events(&mut t),
        vec![Event::RemoteDied {
            pid: rpid,
            reason: "DiedException: boom".into()
        }]
    );
    // A second monitor gets a new ref.
    t.announce(rpid, None);
    let frames = sent_frames(&actions(&mut t));
    assert!(frames.contains(&monitor(1)));
}

#[test]
fn connection_loss_ends_every_remote_actor_with_died_disconnect_and_forgets_watches() {
    let (mut t, now) = node_opened();
    t.announce(ractor_pid_of(&theirs(9)), None);
    t.announce(ractor_pid_of(&theirs(8)), None);
    let link = ProcessSignal::Link(Identifier::Process(ours(5)));
    nc_signal(&mut t, 1024, Identifier::Process(theirs(3)), link, now);
    events(&mut t);
    actions(&mut t);
    t.connection_lost();
    let by_pid = |e: &Event| match e {
        Event::RemoteDied { pid, .. } => *pid,
        _ => 0,
    };
    let mut got = events(&mut t);
    got.sort_by_key(by_pid);
    let mut want: Vec<_> = [8, 9]
        .into_iter()
        .map(|c| Event::RemoteDied {
            pid: ractor_pid_of(&theirs(c)),
            reason: "DiedDisconnect".into(),
        })
        .collect();
    want.sort_by_key(by_pid);
    assert_eq!(got, want);
    t.local_died(5, &DiedReason::Normal);
    assert!(actions(&mut t).is_empty(), "no Died on a lost connection");
}

#[test]
fn reason_mappings() {
    assert_eq!(ractor_reason(&DiedReason::Normal), "DiedNormal");
    assert_eq!(
        ractor_reason(&DiedReason::Exception("boom".into())),
        "DiedException: boom"
    );
    assert_eq!(ractor_reason(&DiedReason::Disconnect), "DiedDisconnect");
    assert_eq!(ractor_reason(&DiedReason::NodeDown), "DiedNodeDown");
    assert_eq!(ractor_reason(&DiedReason::UnknownId), "DiedUnknownId");
    assert_eq!(died_reason_of(Ok(None)), DiedReason::Normal);
    assert_eq!(
        died_reason_of(Ok(Some("killed"))),
        DiedReason::Exception("killed".into())
    );
    assert_eq!(
        died_reason_of(Err("panicked: oops")),
        DiedReason::Exception("panicked: oops".into())
    );
    assert_eq!(
        kill_reason(&pid_on(A, 1, 8), "r"),
        "killed-by=pid://127.0.0.1:10501:0:8,reason=r"
    );
}

#[test]
fn barrier_calls_are_answered_here_after_what_was_queued_before() {
    let (mut t, now) = opened(1024, Identifier::Process(ours(NODE_SENDER_COUNTER)));
    // A reply from Haskell is queued for the session, then the barrier.
    t.handle_session(call(ractor_pid_of(&theirs(8)), 3, b"q", "Ask", None), now);
    let reply_counter = FIRST_SYNTHETIC_COUNTER;
    open(&mut t, 1025, Identifier::Process(ours(reply_counter)), now);
    t.handle_peer_frame(
        1025,
        msg_frame(fp("AskReply"), &ractor_packed(b"answer")),
        now,
    );
    actions(&mut t);
    t.handle_session(
        call(ractor_pid_of(&theirs(8)), 4, b"", BARRIER_VARIANT, None),
        now,
    );
    assert!(actions(&mut t).is_empty(), "nothing goes to the peer");
    let got = session(&mut t);
    let reply = |tag, what: &[u8]| call_reply(ractor_pid_of(&theirs(8)), tag, what);
    assert_eq!(got, vec![reply(3, b"answer"), reply(4, b"")]);
}
