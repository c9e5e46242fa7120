//! Lifecycle rules of the translator: monitors, links, deaths, kills,
//! exits and spawns across the language boundary (see `docs/lifecycle.md`).
//!
//! Haskell watching Rust: a `Monitor`/`Link` NCMsg naming a live actor of
//! ours is recorded per actor ([`Event::WatchLocal`] asks the driver to
//! learn when the actor ends); [`Translator::local_died`] then sends one
//! `Died (ProcessIdentifier ourpid) reason` per link and per monitor, links
//! first, as `ncEffectDied`/`notifyDied` do. A request naming no live actor
//! is answered at once with `Died … DiedUnknownId` (`ncEffectMonitor`, third
//! rule).
//!
//! Rust watching Haskell: [`Translator::announce`] monitors the announced
//! process from [`NODE_SENDER_COUNTER`]; the peer's `Died` for it becomes
//! [`Event::RemoteDied`] with the reason string of [`ractor_reason`].

use bytes::Bytes;
use dp_wire::binary::{Decode, LazyByteString, Reader};
use dp_wire::dp::{
    DidSpawn, DiedReason, Identifier, Message, MonitorRef, NCMsg, ProcessId, ProcessSignal,
    SpawnRef, Static,
};
use dp_wire::fingerprint::known;

use super::{hex_prefix, Event, Translator};
use crate::ids::{local_counter, remote_pid, NODE_SENDER_COUNTER};

/// Who watches one of our actors, in the order the requests arrived.
#[derive(Debug, Default)]
pub(super) struct Watchers {
    /// Linked Haskell processes (a DP link is one-way: they get an
    /// exception when our actor dies).
    links: Vec<ProcessId>,
    /// Monitoring Haskell processes and their refs.
    monitors: Vec<(ProcessId, MonitorRef)>,
}

impl Watchers {
    fn is_empty(&self) -> bool {
        self.links.is_empty() && self.monitors.is_empty()
    }

    fn forget(&mut self, watcher: &ProcessId) {
        self.links.retain(|p| p != watcher);
        self.monitors.retain(|(p, _)| p != watcher);
    }
}

/// The reason string a `RemoteActor` is stopped with when its Haskell
/// process ends with `reason`:
///
/// | DiedReason | ractor stop reason |
/// |---|---|
/// | `DiedNormal` | `DiedNormal` |
/// | `DiedException text` | `DiedException: text` |
/// | `DiedDisconnect` | `DiedDisconnect` |
/// | `DiedNodeDown` | `DiedNodeDown` |
/// | `DiedUnknownId` | `DiedUnknownId` |
pub fn ractor_reason(reason: &DiedReason) -> String {
    match reason {
        DiedReason::Normal => "DiedNormal".to_owned(),
        DiedReason::Exception(text) => format!("DiedException: {text}"),
        DiedReason::Disconnect => "DiedDisconnect".to_owned(),
        DiedReason::NodeDown => "DiedNodeDown".to_owned(),
        DiedReason::UnknownId => "DiedUnknownId".to_owned(),
    }
}

/// The DiedReason a Haskell watcher gets when our actor ends.
///
/// - `ActorTerminated` without a reason (`stop(None)`, end of a normal
///   shutdown) → `DiedNormal`;
/// - `ActorTerminated` with a reason `r` (`stop(Some(r))`, including the
///   `killed-by=…`/`exit-from=…` of a Haskell `kill`/`exit`, and ractor's
///   own `killed` for `ActorCell::kill`) → `DiedException r`;
/// - `ActorFailed(err)` (a panic or an `Err` from a handler) →
///   `DiedException (err.to_string())`.
pub fn died_reason_of(terminated: Result<Option<&str>, &str>) -> DiedReason {
    match terminated {
        Ok(None) => DiedReason::Normal,
        Ok(Some(r)) => DiedReason::Exception(r.to_owned()),
        Err(e) => DiedReason::Exception(e.to_owned()),
    }
}

/// The ractor stop reason of a Haskell `kill target reason` sent by `from`:
/// the text of the `ProcessKillException` a DP process would die with.
pub fn kill_reason(from: &ProcessId, reason: &str) -> String {
    format!("killed-by={from},reason={reason}")
}

/// The ractor stop reason of a Haskell `exit target reason` sent by `from`:
/// `exit-from=<from>,reason=<text>` when the reason is a `String`, else
/// `exit-from=<from>` (as `show ProcessExitException` prints it).
pub fn exit_reason(from: &ProcessId, reason: &Message, limits: &dp_wire::Limits) -> String {
    if reason.fingerprint == known::string().fingerprint() {
        let payload = reason.payload();
        if let Ok(text) = dp_wire::binary::decode_exact_shared::<String>(&payload, limits) {
            return format!("exit-from={from},reason={text}");
        }
    }
    format!("exit-from={from}")
}

/// The label of the user function a Spawn closure runs, and the
/// environment bytes meant for it.
///
/// `spawn` wraps `$(mkClosure 'f) x` in `cpDelayed`, whose environment is
/// the pair `(encode spawnerPid, encode x)` (README 2.4); the user's part
/// is the second element. A closure without `$decodeEnvPair` is taken as
/// is. The label is the first one that is not built in (`$…`) nor a
/// `remotable` dictionary (`…__sdict`, `…__tdict`, `…__static`);
/// `registered` picks among several.
pub fn spawn_target(
    decoder: &Static,
    env: &Bytes,
    registered: impl Fn(&str) -> bool,
    limits: &dp_wire::Limits,
) -> (Option<String>, Bytes) {
    let mut labels = Vec::new();
    collect_labels(decoder, &mut labels);
    let candidates: Vec<&str> = labels
        .iter()
        .map(String::as_str)
        .filter(|l| {
            !l.starts_with('$')
                && !l.ends_with("__sdict")
                && !l.ends_with("__tdict")
                && !l.ends_with("__static")
        })
        .collect();
    let label = candidates
        .iter()
        .find(|l| registered(l))
        .or(candidates.first())
        .map(|l| (*l).to_owned());
    let user_env = if labels.iter().any(|l| l == "$decodeEnvPair") {
        let mut r = Reader::shared(env, limits);
        match (
            LazyByteString::decode(&mut r),
            LazyByteString::decode(&mut r),
        ) {
            (Ok(_spawner), Ok(user)) => user.0,
            _ => env.clone(),
        }
    } else {
        env.clone()
    };
    (label, user_env)
}

fn collect_labels(s: &Static, out: &mut Vec<String>) {
    // Depth is bounded by the decoder (MAX_STATIC_DEPTH).
    match s {
        Static::Label(l) => out.push(l.clone()),
        Static::Apply(f, x) => {
            collect_labels(f, out);
            collect_labels(x, out);
        }
    }
}

impl Translator {
    /// A `Link`/`Monitor` from Haskell process `from` on `them`
    /// (`mref: None` for a link).
    pub(super) fn watch_request(
        &mut self,
        sender: Identifier,
        them: Identifier,
        mref: Option<MonitorRef>,
    ) {
        let what = if mref.is_some() { "Monitor" } else { "Link" };
        let Some(from) = self.process_sender(sender, what) else {
            return;
        };
        match &them {
            Identifier::Process(pid) if pid.node == self.ctx.node => {
                let live = (pid.local.unique == self.ctx.incarnation && pid.local.counter >= 0)
                    .then_some(pid.local.counter as u64)
                    .filter(|p| self.ctx.directory.is_alive(*p));
                match live {
                    Some(actor) => {
                        let max = self.ctx.max_pending;
                        let w = self.watchers.entry(pid.local.counter).or_default();
                        if w.links.len() + w.monitors.len() >= max {
                            peer_warn!(self, watcher = %from, target = %pid, what, max, "too many Haskell watches of one actor; request dropped");
                            self.counters.table_full += 1;
                            return;
                        }
                        match mref {
                            Some(r) => {
                                if !w.monitors.iter().any(|(p, x)| *p == from && *x == r) {
                                    w.monitors.push((from.clone(), r));
                                }
                            }
                            None => {
                                if !w.links.contains(&from) {
                                    w.links.push(from.clone());
                                }
                            }
                        }
                        tracing::debug!(watcher = %from, target = %pid, what, "Haskell process watches a Rust actor");
                        self.events.push_back(Event::WatchLocal { pid: actor });
                    }
                    None => {
                        tracing::debug!(watcher = %from, target = %pid, what, "watch of no live actor; answering DiedUnknownId");
                        self.send_died(them, DiedReason::UnknownId);
                    }
                }
            }
            Identifier::Node(n) if *n == self.ctx.node => {
                // Our node never dies from our own point of view; the
                // watcher's NC reports the disconnect itself.
                tracing::debug!(watcher = %from, what, "Haskell process watches this node");
            }
            Identifier::SendPort(sp) if sp.process.node == self.ctx.node => {
                // We have no typed channels: nothing valid to watch.
                tracing::debug!(watcher = %from, port = ?sp, what, "watch of a send port; answering DiedUnknownId");
                self.send_died(them, DiedReason::UnknownId);
            }
            other => {
                peer_warn!(self, watcher = %from, target = ?other, what, "watch of something on another node dropped (its own node answers that)");
                self.counters.stale_or_foreign += 1;
            }
        }
    }

    /// An `Unlink`/`Unmonitor`: no notification for that watch afterwards.
    pub(super) fn unwatch_request(
        &mut self,
        sender: Identifier,
        them: Identifier,
        mref: Option<MonitorRef>,
    ) {
        let what = if mref.is_some() {
            "Unmonitor"
        } else {
            "Unlink"
        };
        let Some(from) = self.process_sender(sender, what) else {
            return;
        };
        let Identifier::Process(pid) = &them else {
            return;
        };
        if pid.node != self.ctx.node || pid.local.unique != self.ctx.incarnation {
            return;
        }
        if let Some(w) = self.watchers.get_mut(&pid.local.counter) {
            match &mref {
                Some(r) => w.monitors.retain(|(p, x)| !(*p == from && x == r)),
                None => w.links.retain(|p| *p != from),
            }
            if w.is_empty() {
                self.watchers.remove(&pid.local.counter);
            }
        }
        tracing::debug!(watcher = %from, target = %pid, what, "watch removed");
    }

    /// The Haskell sender of a request that DP accepts only from a process
    /// (any other sender makes a Haskell NC fail; we log and drop).
    fn process_sender(&mut self, sender: Identifier, what: &str) -> Option<ProcessId> {
        match sender {
            Identifier::Process(p) if p.node == self.peer => Some(p),
            Identifier::Process(p) => {
                peer_warn!(self, sender = %p, what, "request from a process of a third node cannot be answered on this connection; dropped");
                self.counters.stale_or_foreign += 1;
                None
            }
            other => {
                peer_warn!(self, sender = ?other, what, "request from a non-process sender dropped (a DP node controller would fail)");
                self.counters.ignored += 1;
                None
            }
        }
    }

    fn send_died(&mut self, who: Identifier, reason: DiedReason) {
        self.send_nc(NCMsg {
            sender: Identifier::Node(self.ctx.node.clone()),
            signal: ProcessSignal::Died { who, reason },
        });
    }

    /// Our actor `pid` ended with `reason`: every Haskell link and monitor
    /// on it gets its `Died`, and is forgotten.
    pub fn local_died(&mut self, pid: u64, reason: &DiedReason) {
        let Some(counter) = local_counter(pid) else {
            return;
        };
        self.spawned_unit.remove(&counter);
        let Some(w) = self.watchers.remove(&counter) else {
            return;
        };
        let who = Identifier::Process(self.ctx.our_pid(counter));
        tracing::debug!(
            pid,
            ?reason,
            links = w.links.len(),
            monitors = w.monitors.len(),
            "Rust actor watched by Haskell ended; sending Died"
        );
        // One Died per watch, as notifyDied sends them: links first.
        for _ in 0..w.links.len() + w.monitors.len() {
            self.send_died(who.clone(), reason.clone());
        }
    }

    /// A `Died` from the peer's node controller.
    pub(super) fn peer_died(&mut self, who: Identifier, reason: DiedReason) {
        let Identifier::Process(hpid) = who else {
            tracing::debug!(who = ?who, ?reason, "Died of a node or port ignored");
            return;
        };
        if hpid.node != self.peer {
            tracing::debug!(who = %hpid, "Died of a process of another node ignored");
            return;
        }
        // forwardDeath: a watcher of ours died; drop its watches.
        self.watchers.retain(|_, w| {
            w.forget(&hpid);
            !w.is_empty()
        });
        let rpid = remote_pid(hpid.local);
        if self.monitored.remove(&rpid).is_some() {
            tracing::debug!(who = %hpid, ?reason, "Haskell process with a RemoteActor died");
            self.events.push_back(Event::RemoteDied {
                pid: rpid,
                reason: ractor_reason(&reason),
            });
        }
    }

    /// Start monitoring Haskell process `pid` (a ractor remote pid) unless
    /// we already do.
    pub(super) fn monitor_remote(&mut self, pid: u64) {
        if self.monitored.contains_key(&pid) {
            return;
        }
        let mref = MonitorRef {
            ident: Identifier::Process(self.haskell_pid(pid)),
            counter: self.next_monitor_ref,
        };
        self.next_monitor_ref = self.next_monitor_ref.wrapping_add(1);
        self.monitored.insert(pid, mref.clone());
        self.send_nc(NCMsg {
            sender: Identifier::Process(self.ctx.our_pid(NODE_SENDER_COUNTER)),
            signal: ProcessSignal::Monitor(mref),
        });
    }

    /// The connection is gone: every RemoteActor of the peer ends with
    /// `DiedDisconnect` ([`Event::RemoteDied`]); Haskell's watches of our
    /// actors are forgotten (its node controller reports the disconnect to
    /// them itself).
    pub fn connection_lost(&mut self) {
        let reason = ractor_reason(&DiedReason::Disconnect);
        let mut pids: Vec<u64> = self.monitored.drain().map(|(p, _)| p).collect();
        pids.sort_unstable();
        for pid in pids {
            self.events.push_back(Event::RemoteDied {
                pid,
                reason: reason.clone(),
            });
        }
        self.watchers.clear();
        self.spawned_unit.clear();
    }

    /// `Kill`/`Exit` from Haskell: stop our actor with DP's exception text.
    pub(super) fn kill_request(
        &mut self,
        sender: Identifier,
        target: ProcessId,
        reason: String,
        what: &'static str,
    ) {
        if target.node != self.ctx.node {
            peer_warn!(self, target = %target, what, "kill/exit of a process of another node dropped");
            self.counters.stale_or_foreign += 1;
            return;
        }
        if target.local.unique != self.ctx.incarnation {
            tracing::debug!(target = %target, what, "kill/exit of a process of an older incarnation: nothing to do");
            self.counters.stale_or_foreign += 1;
            return;
        }
        if target.local.counter < 0 {
            peer_warn!(self, sender = ?sender, target = %target, what, reason = %reason, "kill/exit of this node's own process refused");
            self.counters.refused += 1;
            return;
        }
        let pid = target.local.counter as u64;
        if !self.ctx.directory.is_alive(pid) {
            tracing::debug!(target = %target, what, "kill/exit of no live actor: nothing to do");
            self.counters.no_such_target += 1;
            return;
        }
        if !self.ctx.directory.is_remotable(pid) {
            // Node infrastructure (NodeServer, sessions, DpTcp's own
            // actors) is never remotable.
            peer_warn!(self, sender = ?sender, target = %target, what, reason = %reason, "kill/exit of a non-remotable actor (node infrastructure) refused");
            self.counters.refused += 1;
            return;
        }
        tracing::info!(sender = ?sender, target = %target, what, reason = %reason, "Haskell stops a Rust actor");
        self.events.push_back(Event::StopLocal { pid, reason });
    }

    /// `Spawn` from Haskell: ask the driver to start the closure.
    pub(super) fn spawn_request(
        &mut self,
        sender: Identifier,
        closure: dp_wire::dp::Closure,
        spawn_ref: SpawnRef,
    ) {
        let Some(spawner) = self.process_sender(sender, "Spawn") else {
            return;
        };
        let spawnable = &self.ctx.spawnable;
        let (label, env) = spawn_target(
            &closure.decoder,
            &closure.env,
            |l| spawnable.contains(l),
            &self.ctx.limits,
        );
        tracing::debug!(spawner = %spawner, ?spawn_ref, label = ?label, closure = %closure.decoder, env = %hex_prefix(&env), "Haskell spawns a closure on this node");
        self.events.push_back(Event::Spawn {
            spawner,
            spawn_ref,
            label,
            env,
        });
    }

    /// The driver started (or failed to start) what [`Event::Spawn`]
    /// asked for: `pid` is the new actor, or one that has already ended.
    /// Answers `DidSpawn ref <pid>` as `ncEffectSpawn` does.
    pub fn spawned(&mut self, spawner: &ProcessId, spawn_ref: SpawnRef, pid: u64) {
        let counter = local_counter(pid).unwrap_or_else(|| {
            tracing::error!(
                pid,
                "spawned actor's pid does not fit a DP pid; answering a pid that names nothing"
            );
            i32::MIN
        });
        // `spawn` sends `usend newPid ()` after DidSpawn; it is swallowed.
        self.spawned_unit.insert(counter);
        let fp = self.ctx.build.did_spawn().fingerprint();
        let mut payload = Vec::new();
        dp_wire::binary::Encode::encode(
            &DidSpawn {
                spawn_ref,
                pid: self.ctx.our_pid(counter),
            },
            &mut payload,
        );
        self.send_nc(NCMsg {
            sender: Identifier::Node(self.ctx.node.clone()),
            signal: ProcessSignal::UnreliableSend {
                to: spawner.local,
                message: Message::new(fp, payload),
            },
        });
    }

    /// Whether `m` for our actor `counter` is the `()` that `spawn` sends a
    /// freshly spawned process; if so it is consumed.
    pub(super) fn swallow_spawn_unit(&mut self, counter: i32, m: &Message) -> bool {
        if m.payload_len() == 0
            && m.fingerprint == known::unit().fingerprint()
            && self.spawned_unit.remove(&counter)
        {
            tracing::trace!(counter, "spawn's () to the new actor swallowed");
            return true;
        }
        false
    }
}
