//! The ractor side of lifecycle: one `Watcher` actor per [`crate::DpTcp`]
//! learns when local actors that Haskell watches end (ractor's `monitors`
//! feature), and stops RemoteActors whose Haskell process ended, also when
//! the `Died` overtakes the session's creation of the RemoteActor.
//!
//! Stopping a RemoteActor: its supervisor is the `NodeSession`, whose
//! `ActorTerminated` handler calls `stop_and_wait` on the already stopped
//! child and fails with `ChannelClosed` (which would end the whole
//! session). So the RemoteActor is first unlinked from the session, then
//! stopped with the DiedReason text; its monitors and any other supervisor
//! a user linked it to see that reason in `ActorTerminated`. The session
//! keeps a stale entry for the pid until it ends (see `docs/lifecycle.md`,
//! "fork changes").

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use dp_wire::dp::DiedReason;
use ractor::pg::GroupChangeMessage;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, ActorStatus, SupervisionEvent,
};
use ractor_cluster::NodeSessionMessage;

use crate::driver::{Notice, Shared};
use crate::translate::{died_reason_of, REMOTE_SCOPE};

/// Largest number of remembered dead Haskell processes; the oldest is
/// forgotten first.
const MAX_DEAD: usize = 65_536;

/// Haskell processes known to be dead, by their group in
/// [`REMOTE_SCOPE`], with the ractor reason.
#[derive(Debug, Default)]
pub(crate) struct DeadRemotes {
    reasons: HashMap<String, String>,
    order: VecDeque<String>,
}

impl DeadRemotes {
    pub(crate) fn insert(&mut self, group: String, reason: String) {
        if self.reasons.insert(group.clone(), reason).is_none() {
            self.order.push_back(group);
        }
        while self.order.len() > MAX_DEAD {
            if let Some(g) = self.order.pop_front() {
                self.reasons.remove(&g);
            }
        }
    }

    pub(crate) fn get(&self, group: &str) -> Option<&String> {
        self.reasons.get(group)
    }

    /// Forget every process of `peer` (its connection ended; a later
    /// connection to the same incarnation may find them alive).
    pub(crate) fn forget_peer(&mut self, peer: &str) {
        let prefix = format!("{peer}/");
        self.reasons.retain(|g, _| !g.starts_with(&prefix));
        self.order.retain(|g| !g.starts_with(&prefix));
    }
}

/// Stops the RemoteActor `cell` with `reason` without failing its session
/// (see the module docs).
pub(crate) fn stop_remote(cell: &ActorCell, reason: &str) {
    if let Some(sup) = cell.try_get_supervisor() {
        if sup.is_message_type_of::<NodeSessionMessage>() == Some(true) {
            cell.unlink(sup);
        }
    }
    tracing::debug!(actor = %cell.get_id(), name = ?cell.get_name(), reason, "stopping RemoteActor of a Haskell process");
    cell.stop(Some(reason.to_owned()));
}

/// Finds the live RemoteActors of `group` and stops them.
pub(crate) fn stop_group(group: &str, reason: &str) {
    for c in ractor::pg::get_scoped_members(&REMOTE_SCOPE.to_owned(), &group.to_owned()) {
        if !matches!(c.get_id(), ActorId::Remote { .. }) {
            continue;
        }
        if c.get_status() < ActorStatus::Stopping {
            stop_remote(&c, reason);
        }
    }
}

/// Local actors whose end is reported to the connections.
pub(crate) type Watched = Mutex<HashMap<ActorId, ActorCell>>;

/// Makes the watcher monitor `cell` (unless it already does), at once, so
/// that a stop right after the Haskell `Monitor` arrived is not missed.
pub(crate) fn watch(shared: &Shared, cell: ActorCell) -> bool {
    let Some(w) = shared.watcher.get() else {
        return false;
    };
    let id = cell.get_id();
    {
        let mut watched = shared.watched.lock().unwrap_or_else(|e| e.into_inner());
        if watched.contains_key(&id) {
            return true;
        }
        watched.insert(id, cell.clone());
        w.get_cell().monitor(cell.clone());
    }
    // ractor notifies monitors before the status becomes Stopped: an
    // actor already ending may have been missed.
    if cell.get_status() >= ActorStatus::Stopping {
        return w.send_message(WatcherMsg::Recheck(cell)).is_ok();
    }
    true
}

/// Messages of the [`Watcher`].
pub(crate) enum WatcherMsg {
    /// The actor was already ending when watched: report it once stopped.
    Recheck(ActorCell),
}

// Local only: never serialized.
impl ractor::Message for WatcherMsg {}

/// See the module docs.
pub(crate) struct Watcher;

pub(crate) struct WatcherState {
    shared: Weak<Shared>,
}

impl WatcherState {
    /// Whether `id` was watched; it no longer is.
    fn unwatch(&self, id: &ActorId) -> bool {
        self.shared.upgrade().is_some_and(|s| {
            s.watched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id)
                .is_some()
        })
    }

    fn report(&self, pid: u64, reason: DiedReason) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let st = shared.lock();
        for h in st.peers.values() {
            let _ = h.notices.send(Notice::LocalDied {
                pid,
                reason: reason.clone(),
            });
        }
    }
}

impl Actor for Watcher {
    type Msg = WatcherMsg;
    type State = WatcherState;
    type Arguments = Weak<Shared>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        shared: Weak<Shared>,
    ) -> Result<Self::State, ActorProcessingErr> {
        ractor::pg::monitor_scope(REMOTE_SCOPE.to_owned(), myself.get_cell());
        Ok(WatcherState { shared })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        ractor::pg::demonitor_scope(REMOTE_SCOPE.to_owned(), myself.get_id());
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            WatcherMsg::Recheck(cell) => {
                let id = cell.get_id();
                if cell.get_status() == ActorStatus::Stopped {
                    // Supervision events outrank messages, so an event for
                    // it would have been handled before this: it ended
                    // before the monitor was in place. DP's answer to a
                    // monitor of a dead process is DiedUnknownId.
                    if state.unwatch(&id) {
                        state.report(id.pid(), DiedReason::UnknownId);
                    }
                } else {
                    // The timer's handle is not needed: a Recheck of an
                    // actor no longer watched is a no-op.
                    drop(
                        myself.send_after(Duration::from_millis(10), move || {
                            WatcherMsg::Recheck(cell)
                        }),
                    );
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) if state.unwatch(&cell.get_id()) => {
                let r = died_reason_of(Ok(reason.as_deref()));
                state.report(cell.get_id().pid(), r);
            }
            SupervisionEvent::ActorFailed(cell, err) if state.unwatch(&cell.get_id()) => {
                let r = died_reason_of(Err(&err.to_string()));
                state.report(cell.get_id().pid(), r);
            }
            SupervisionEvent::ProcessGroupChanged(GroupChangeMessage::Join(scope, group, _))
                if scope == REMOTE_SCOPE =>
            {
                // A Died that overtook the session's creation of the
                // RemoteActor: stop it now.
                let reason = state
                    .shared
                    .upgrade()
                    .and_then(|s| s.dead.lock().ok()?.get(&group).cloned());
                if let Some(reason) = reason {
                    stop_group(&group, &reason);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Spawns the watcher of `shared`.
pub(crate) async fn start(shared: &Arc<Shared>) -> Result<ActorRef<WatcherMsg>, ractor::SpawnErr> {
    let (w, _) = Actor::spawn(None, Watcher, Arc::downgrade(shared)).await?;
    Ok(w)
}

/// A stand-in for a closure this node cannot run (DP forks a process that
/// fails at once): it stops in `post_start`, so its pid names a dead
/// process by the time the `DidSpawn` is sent.
pub(crate) struct Stillborn;

impl Actor for Stillborn {
    type Msg = ();
    type State = ();
    type Arguments = String;

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        _why: String,
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn post_start(
        &self,
        myself: ActorRef<()>,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        myself.stop(Some("could not resolve closure".to_owned()));
        Ok(())
    }
}

/// A fresh pid that names a process that already ended.
pub(crate) async fn stillborn_pid(why: String) -> Option<u64> {
    let (a, h) = Actor::spawn(None, Stillborn, why).await.ok()?;
    let pid = a.get_id().pid();
    let _ = h.await;
    Some(pid)
}

/// `Mutex` alias used by [`Shared::dead`].
pub(crate) type DeadMap = Mutex<DeadRemotes>;
