//! The node controller: one task reading NCMsgs in order, like Node.hs's
//! `nodeController` thread. Each `ProcessSignal` has its own `effect_*`
//! function.
//!
//! Links and monitors are kept as in Node.hs: one table each of
//! `(watched, watcher[, ref])`, on *both* nodes of a remote watch (the
//! watcher's NC inserts when it forwards the signal, the watched one's when
//! it receives it). When something dies, `effect_died` notifies the
//! watchers (a message for monitors, an exception for links; a `Died` to
//! their node if they are remote), and a dying watcher's remaining entries
//! are reported to the other nodes so that they can drop them.

use std::cmp::Ordering;
use std::sync::Arc;

use dp_wire::dp::{
    DidSpawn, DidUnlinkNode, DidUnlinkPort, DidUnlinkProcess, DidUnmonitor, DiedReason, Identifier,
    Message, MonitorRef, NCMsg, NodeId, NodeLinkException, NodeMonitorNotification, NodeStats,
    PortLinkException, PortMonitorNotification, ProcessId, ProcessInfo, ProcessInfoNone,
    ProcessLinkException, ProcessMonitorNotification, ProcessSignal, RegisterReply, WhereIsReply,
};
use tokio::sync::{mpsc, oneshot};

use crate::exit::ExitReason;
use crate::node::Shared;

/// Haskell's derived `Ord Identifier`: constructors in declaration order
/// (Node < Process < SendPort, unlike the wire tags), then the fields.
/// Notifications go out in this order, so it is visible on the wire.
pub(crate) fn hs_cmp(a: &Identifier, b: &Identifier) -> Ordering {
    fn rank(i: &Identifier) -> u8 {
        match i {
            Identifier::Node(_) => 0,
            Identifier::Process(_) => 1,
            Identifier::SendPort(_) => 2,
        }
    }
    // Same constructor: the derived Rust order compares the fields as
    // Haskell does (NodeId bytes, then unique, then counter).
    rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
}

fn ref_cmp(a: &MonitorRef, b: &MonitorRef) -> Ordering {
    hs_cmp(&a.ident, &b.ident).then(a.counter.cmp(&b.counter))
}

/// The NC's `_links` and `_monitors` (`BiMultiMap`s: sets of triples),
/// kept sorted in Haskell's order.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    /// `(them, us)`: `us` is linked to `them`.
    links: Vec<(Identifier, ProcessId)>,
    /// `(them, us, ref)`: `us` monitors `them` with `ref`.
    monitors: Vec<(Identifier, ProcessId, MonitorRef)>,
}

fn link_cmp(a: &(Identifier, ProcessId), b: &(Identifier, ProcessId)) -> Ordering {
    hs_cmp(&a.0, &b.0).then_with(|| a.1.cmp(&b.1))
}

fn mon_cmp(
    a: &(Identifier, ProcessId, MonitorRef),
    b: &(Identifier, ProcessId, MonitorRef),
) -> Ordering {
    hs_cmp(&a.0, &b.0)
        .then_with(|| a.1.cmp(&b.1))
        .then_with(|| ref_cmp(&a.2, &b.2))
}

impl Watches {
    pub(crate) fn link_list(&self) -> Vec<(Identifier, ProcessId)> {
        self.links.clone()
    }

    pub(crate) fn monitor_list(&self) -> Vec<(Identifier, ProcessId, MonitorRef)> {
        self.monitors.clone()
    }

    /// A second identical link or monitor is no new entry (a set).
    fn insert_link(&mut self, e: (Identifier, ProcessId)) {
        if let Err(i) = self.links.binary_search_by(|x| link_cmp(x, &e)) {
            self.links.insert(i, e);
        }
    }

    fn remove_link(&mut self, e: &(Identifier, ProcessId)) {
        if let Ok(i) = self.links.binary_search_by(|x| link_cmp(x, e)) {
            self.links.remove(i);
        }
    }

    fn insert_monitor(&mut self, e: (Identifier, ProcessId, MonitorRef)) {
        if let Err(i) = self.monitors.binary_search_by(|x| mon_cmp(x, &e)) {
            self.monitors.insert(i, e);
        }
    }

    fn remove_monitor(&mut self, e: &(Identifier, ProcessId, MonitorRef)) {
        if let Ok(i) = self.monitors.binary_search_by(|x| mon_cmp(x, e)) {
            self.monitors.remove(i);
        }
    }
}

/// What the NC task reads: NCMsgs, and test barriers.
pub(crate) enum NcInput {
    Msg(NCMsg),
    /// Answered with whether nothing else was queued behind it.
    Barrier(oneshot::Sender<bool>),
}

/// The NC's queue (`localCtrlChan`).
pub(crate) struct NcTx(mpsc::UnboundedSender<NcInput>);

impl NcTx {
    pub(crate) fn channel() -> (Self, mpsc::UnboundedReceiver<NcInput>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    /// `writeChan localCtrlChan`.
    pub(crate) fn send(&self, msg: NCMsg) -> Result<(), crate::PeerError> {
        self.0
            .send(NcInput::Msg(msg))
            .map_err(|_| crate::PeerError::Closed)
    }

    /// Resolves once everything queued before it was handled, with
    /// `true` if the queue was empty then.
    pub(crate) fn barrier(&self) -> Option<oneshot::Receiver<bool>> {
        let (tx, rx) = oneshot::channel();
        self.0.send(NcInput::Barrier(tx)).ok().map(|_| rx)
    }
}

pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<NcInput>) {
    let nc = Nc { shared };
    while let Some(input) = rx.recv().await {
        if nc.shared.lock().closed {
            break;
        }
        match input {
            NcInput::Msg(msg) => nc.handle(msg).await,
            NcInput::Barrier(done) => {
                let _ = done.send(rx.is_empty());
            }
        }
    }
}

struct Nc {
    shared: Arc<Shared>,
}

/// `destNid`: where a signal must be forwarded (rule nc_forward).
fn dest_nid(signal: &ProcessSignal) -> Option<&NodeId> {
    match signal {
        ProcessSignal::Link(i) | ProcessSignal::Unlink(i) => Some(i.node()),
        ProcessSignal::Monitor(r) | ProcessSignal::Unmonitor(r) => Some(r.ident.node()),
        ProcessSignal::Kill { target, .. } | ProcessSignal::Exit { target, .. } => {
            Some(&target.node)
        }
        ProcessSignal::GetInfo(pid) => Some(&pid.node),
        ProcessSignal::GetNodeStats(nid) => Some(nid),
        ProcessSignal::LocalSend { to, .. } => Some(&to.node),
        ProcessSignal::LocalPortSend { to, .. } => Some(&to.process.node),
        _ => None,
    }
}

/// `impliesDeathOf`: the death of `a` implies that of `b` (a node's
/// processes and ports, a process's ports).
fn implies_death(a: &Identifier, b: &Identifier) -> bool {
    use Identifier as I;
    match (a, b) {
        (I::Node(n), I::Node(m)) => n == m,
        (I::Node(n), I::Process(p)) => p.node == *n,
        (I::Node(n), I::SendPort(c)) => c.process.node == *n,
        (I::Process(p), I::Process(q)) => p == q,
        (I::Process(p), I::SendPort(c)) => c.process == *p,
        (I::SendPort(c), I::SendPort(d)) => c == d,
        _ => false,
    }
}

/// `impliesDeathOf` for a process.
fn implies_death_of(ident: &Identifier, pid: &ProcessId) -> bool {
    match ident {
        Identifier::Node(n) => pid.node == *n,
        Identifier::Process(p) => p == pid,
        Identifier::SendPort(_) => false,
    }
}

impl Nc {
    fn node_id(&self) -> &NodeId {
        &self.shared.node_id
    }

    async fn handle(&self, msg: NCMsg) {
        tracing::debug!(
            node = %self.node_id(),
            sender = ?msg.sender,
            signal = msg.signal.name(),
            "NC"
        );
        if let Some(nid) = dest_nid(&msg.signal) {
            if nid != self.node_id() {
                let nid = nid.clone();
                self.send_to_node(&nid, msg.clone()).await;
            }
        }
        use ProcessSignal as S;
        match (msg.sender, msg.signal) {
            (Identifier::Process(from), S::Link(them)) => {
                self.effect_monitor(from, them, None).await
            }
            (Identifier::Process(from), S::Monitor(r)) => {
                self.effect_monitor(from, r.ident.clone(), Some(r)).await
            }
            (Identifier::Process(from), S::Unlink(them)) => self.effect_unlink(from, them),
            (Identifier::Process(from), S::Unmonitor(r)) => self.effect_unmonitor(from, r),
            (_, S::Died { who, reason }) => self.effect_died(who, reason).await,
            (Identifier::Process(from), S::Spawn { closure, spawn_ref }) => {
                // We have no RemoteTable: every closure is one whose label
                // is unknown (capture 13): the process dies at once, and
                // the requester still gets an ordinary DidSpawn.
                let pid = self.fork_dead_process();
                tracing::debug!(%from, decoder = %closure.decoder, %pid, "spawn of an unresolvable closure");
                let reply = self.shared.messages.of(&DidSpawn { spawn_ref, pid });
                self.send_to_process(&from, reply).await;
            }
            (
                Identifier::Process(from),
                S::Register {
                    label,
                    node,
                    pid,
                    force,
                },
            ) => self.effect_register(from, label, node, pid, force).await,
            (Identifier::Process(from), S::WhereIs(label)) => {
                let pid = self.shared.lock().registry.get(&label).cloned();
                let reply = self.shared.messages.of(&WhereIsReply { label, pid });
                self.send_to_process(&from, reply).await;
            }
            (_, S::NamedSend { label, message }) => {
                let to = self.shared.lock().registry.get(&label).cloned();
                match to {
                    Some(to) => self.send_to_process(&to, message).await,
                    // Table 14: an unregistered name is dropped (capture 02).
                    None => tracing::debug!(label, "NamedSend to an unregistered name dropped"),
                }
            }
            (_, S::UnreliableSend { to, message }) => {
                let to = ProcessId {
                    node: self.node_id().clone(),
                    local: to,
                };
                self.shared.deliver_local(&to, message);
            }
            (_, S::LocalSend { to, message }) => {
                if to.node == *self.node_id() {
                    self.shared.deliver_local(&to, message);
                }
            }
            (_, S::LocalPortSend { to, .. }) => {
                tracing::debug!(?to, "LocalPortSend: this node has no typed channels");
            }
            (Identifier::Process(from), S::Kill { target, reason }) => {
                // `ProcessKillException`: the target ends with
                // `killed-by=<from>,reason=<reason>`.
                if target.node == *self.node_id() {
                    let exit = ExitReason::Kill { by: from, reason };
                    self.shared.terminate_with(&target, exit);
                }
            }
            (Identifier::Process(from), S::Exit { target, reason }) => {
                // `ProcessExitException`: `exit-from=<from>[,reason=<r>]`.
                if target.node == *self.node_id() {
                    let exit = ExitReason::Exit { from, reason };
                    self.shared.terminate_with(&target, exit);
                }
            }
            (Identifier::Process(from), S::GetInfo(pid)) => self.effect_get_info(from, pid).await,
            (_, S::SigShutdown) => {
                // A received SigShutdown closes the node's endpoint.
                tracing::warn!(node = %self.node_id(), "SigShutdown received: closing the node");
                let node = crate::node::PlainNode::from_shared(self.shared.clone());
                tokio::spawn(node.close());
            }
            (Identifier::Process(from), S::GetNodeStats(_)) => {
                // `postAsMessage` only reaches local processes, so a
                // remote caller gets nothing (capture 16).
                if from.node == *self.node_id() {
                    let stats = {
                        let st = self.shared.lock();
                        NodeStats {
                            node: self.node_id().clone(),
                            registered_names: st.registry.len() as i64,
                            monitors: st.watches.monitors.len() as i64,
                            links: st.watches.links.len() as i64,
                            processes: st.processes.len() as i64,
                        }
                    };
                    let m = self.shared.messages.of(&stats);
                    self.shared.deliver_local(&from, m);
                }
            }
            (sender, signal) => {
                let mut st = self.shared.lock();
                self.shared.violation(
                    &mut st,
                    format!(
                        "nodeController: unexpected message {} from {sender:?}; a Haskell NC would crash",
                        signal.name()
                    ),
                );
            }
        }
    }

    /// A process that is created and dies at once (its counter is used).
    fn fork_dead_process(&self) -> ProcessId {
        // Spawning through the public path keeps counters in one place.
        let node = crate::node::PlainNode::from_shared(self.shared.clone());
        let p = node.spawn();
        let pid = p.pid();
        self.shared.terminate(
            &pid,
            DiedReason::Exception("Error: Could not resolve closure".into()),
        );
        pid
    }

    /// `ncSendToNode`.
    async fn send_to_node(&self, nid: &NodeId, msg: NCMsg) {
        if nid == self.node_id() {
            let _ = self.shared.nc_tx.send(msg);
        } else if let Err(e) = self.shared.send_ctrl_to_node(nid, &msg).await {
            tracing::debug!(%nid, error = %e, "NC could not send to node");
        }
    }

    /// `ncSendToProcess`: local delivery, or UnreliableSend from our
    /// NodeIdentifier to the remote node's NC (capture 03).
    async fn send_to_process(&self, pid: &ProcessId, message: Message) {
        if pid.node == *self.node_id() {
            self.shared.deliver_local(pid, message);
            return;
        }
        let msg = NCMsg {
            sender: Identifier::Node(self.node_id().clone()),
            signal: ProcessSignal::UnreliableSend {
                to: pid.local,
                message,
            },
        };
        self.send_to_node(&pid.node, msg).await;
    }

    fn is_local(&self, ident: &Identifier) -> bool {
        ident.node() == self.node_id()
    }

    /// `isValidLocalIdentifier`: this node, or a live local process. We
    /// have no typed channels, so no port is valid.
    fn is_valid_local(&self, ident: &Identifier) -> bool {
        match ident {
            Identifier::Node(n) => n == self.node_id(),
            Identifier::Process(p) => self.shared.lock().processes.contains_key(&p.local),
            Identifier::SendPort(_) => false,
        }
    }

    /// `postAsMessage`: a value into a local process's mailbox.
    fn post<T: dp_wire::dp::Serializable>(&self, to: &ProcessId, value: &T) {
        let m = self.shared.messages.of(value);
        self.shared.deliver_local(to, m);
    }

    /// `ncEffectMonitor` (`mref` is `None` for a link). A remote target is
    /// recorded without checking (its node checks); a local one only if it
    /// lives, else the watcher learns `DiedUnknownId` at once: locally, or
    /// as a `Died` from this NC to the watcher's node (capture 04).
    async fn effect_monitor(&self, from: ProcessId, them: Identifier, mref: Option<MonitorRef>) {
        let record = !self.is_local(&them) || self.is_valid_local(&them);
        if record {
            let mut st = self.shared.lock();
            match mref {
                Some(r) => st.watches.insert_monitor((them, from, r)),
                None => st.watches.insert_link((them, from)),
            }
        } else if from.node == *self.node_id() {
            self.notify_died(&from, &them, DiedReason::UnknownId, mref)
                .await;
        } else {
            tracing::debug!(%from, ?them, "watch of an unknown local id");
            let msg = NCMsg {
                sender: Identifier::Node(self.node_id().clone()),
                signal: ProcessSignal::Died {
                    who: them,
                    reason: DiedReason::UnknownId,
                },
            };
            self.send_to_node(&from.node, msg).await;
        }
    }

    /// `ncEffectUnlink`: a local unlinker gets its `DidUnlink*` at once
    /// (nothing is acknowledged across nodes, capture 17).
    fn effect_unlink(&self, from: ProcessId, them: Identifier) {
        if from.node == *self.node_id() {
            match &them {
                Identifier::Process(p) => self.post(&from, &DidUnlinkProcess(p.clone())),
                Identifier::Node(n) => self.post(&from, &DidUnlinkNode(n.clone())),
                Identifier::SendPort(c) => self.post(&from, &DidUnlinkPort(c.clone())),
            }
        }
        self.shared.lock().watches.remove_link(&(them, from));
    }

    /// `ncEffectUnmonitor`.
    fn effect_unmonitor(&self, from: ProcessId, r: MonitorRef) {
        if from.node == *self.node_id() {
            self.post(&from, &DidUnmonitor(r.clone()));
        }
        let e = (r.ident.clone(), from, r);
        self.shared.lock().watches.remove_monitor(&e);
    }

    /// `notifyDied`: a local watcher gets a notification message
    /// (monitor) or an exception that ends it (link); a remote watcher's
    /// node gets `Died src reason` from this NC.
    async fn notify_died(
        &self,
        dest: &ProcessId,
        src: &Identifier,
        reason: DiedReason,
        mref: Option<MonitorRef>,
    ) {
        if dest.node != *self.node_id() {
            let msg = NCMsg {
                sender: Identifier::Node(self.node_id().clone()),
                signal: ProcessSignal::Died {
                    who: src.clone(),
                    reason,
                },
            };
            self.send_to_node(&dest.node, msg).await;
            return;
        }
        tracing::debug!(watcher = %dest, who = ?src, ?reason, link = mref.is_none(), "notify");
        match (mref, src.clone()) {
            (Some(monitor_ref), Identifier::Process(pid)) => self.post(
                dest,
                &ProcessMonitorNotification {
                    monitor_ref,
                    pid,
                    reason,
                },
            ),
            (Some(monitor_ref), Identifier::Node(node)) => self.post(
                dest,
                &NodeMonitorNotification {
                    monitor_ref,
                    node,
                    reason,
                },
            ),
            (Some(monitor_ref), Identifier::SendPort(port)) => self.post(
                dest,
                &PortMonitorNotification {
                    monitor_ref,
                    port,
                    reason,
                },
            ),
            // `throwException`: the linked process ends (our processes
            // cannot catch).
            (None, Identifier::Process(pid)) => self.shared.terminate_with(
                dest,
                ExitReason::ProcessLink(ProcessLinkException { pid, reason }),
            ),
            (None, Identifier::Node(node)) => self.shared.terminate_with(
                dest,
                ExitReason::NodeLink(NodeLinkException { node, reason }),
            ),
            (None, Identifier::SendPort(port)) => self.shared.terminate_with(
                dest,
                ExitReason::PortLink(PortLinkException { port, reason }),
            ),
        }
    }

    /// `ncEffectDied`: watchers of `who` (and of what its death implies)
    /// are notified, only local ones if a node died; a dead local process
    /// that still watched things elsewhere is reported to those nodes
    /// (`forwardDeath`), and its own entries are dropped. Then names of
    /// the dead are dropped, and nodes that registered them are told.
    async fn effect_died(&self, who: Identifier, reason: DiedReason) {
        let (links, monitors, watched_elsewhere) = {
            let mut st = self.shared.lock();
            let w = &mut st.watches;
            let (hit_links, kept_links): (Vec<_>, Vec<_>) = std::mem::take(&mut w.links)
                .into_iter()
                .partition(|(them, _)| implies_death(&who, them));
            let (hit_mons, kept_mons): (Vec<_>, Vec<_>) = std::mem::take(&mut w.monitors)
                .into_iter()
                .partition(|(them, _, _)| implies_death(&who, them));
            // One `Died` per distinct watched identifier on another node.
            let mut elsewhere = Vec::new();
            if let Identifier::Process(pid) = &who {
                let mut idents: Vec<&Identifier> = kept_links
                    .iter()
                    .filter(|(_, us)| us == pid)
                    .map(|(them, _)| them)
                    .chain(
                        kept_mons
                            .iter()
                            .filter(|(_, us, _)| us == pid)
                            .map(|(them, _, _)| them),
                    )
                    .collect();
                idents.sort_by(|a, b| hs_cmp(a, b));
                idents.dedup();
                elsewhere = idents
                    .into_iter()
                    .map(|i| i.node().clone())
                    .filter(|n| n != self.node_id())
                    .collect();
            }
            // Entries whose watcher died go too.
            w.links = kept_links
                .into_iter()
                .filter(|(_, us)| !implies_death_of(&who, us))
                .collect();
            w.monitors = kept_mons
                .into_iter()
                .filter(|(_, us, _)| !implies_death_of(&who, us))
                .collect();
            (hit_links, hit_mons, elsewhere)
        };
        let local_only = matches!(who, Identifier::Node(_));
        for (them, us) in links {
            if !local_only || us.node == *self.node_id() {
                self.notify_died(&us, &them, reason.clone(), None).await;
            }
        }
        for (them, us, r) in monitors {
            if !local_only || us.node == *self.node_id() {
                self.notify_died(&us, &them, reason.clone(), Some(r)).await;
            }
        }
        for nid in watched_elsewhere {
            let msg = NCMsg {
                sender: Identifier::Node(self.node_id().clone()),
                signal: ProcessSignal::Died {
                    who: who.clone(),
                    reason: reason.clone(),
                },
            };
            self.send_to_node(&nid, msg).await;
        }
        let forward = {
            let mut st = self.shared.lock();
            st.registry.retain(|_, p| !implies_death_of(&who, p));
            let dead: Vec<ProcessId> = st
                .registered_on_nodes
                .keys()
                .filter(|p| implies_death_of(&who, p))
                .cloned()
                .collect();
            let mut nodes = Vec::new();
            for p in dead {
                for (nid, _) in st.registered_on_nodes.remove(&p).unwrap_or_default() {
                    if nid != *self.node_id() {
                        nodes.push(nid);
                    }
                }
            }
            nodes
        };
        for nid in forward {
            let msg = NCMsg {
                sender: Identifier::Node(self.node_id().clone()),
                signal: ProcessSignal::Died {
                    who: who.clone(),
                    reason: reason.clone(),
                },
            };
            self.send_to_node(&nid, msg).await;
        }
    }

    /// `ncEffectRegister`.
    async fn effect_register(
        &self,
        from: ProcessId,
        label: String,
        atnode: NodeId,
        pid: Option<ProcessId>,
        force: bool,
    ) {
        let here = atnode == *self.node_id();
        let (ok, current, new_val) = {
            let mut st = self.shared.lock();
            let current = st.registry.get(&label).cloned();
            let ok = match &pid {
                None => current.is_some(),
                Some(p) => {
                    (current.is_none() != force)
                        && (p.node != *self.node_id() || st.processes.contains_key(&p.local))
                }
            };
            if !here {
                // Bookkeeping for a local pid registered at another node.
                if let Some(p) = &pid {
                    let list = st.registered_on_nodes.entry(p.clone()).or_default();
                    match list.iter().position(|(n, _)| *n == atnode) {
                        Some(i) if force => {
                            list[i].1 -= 1;
                            if list[i].1 == 0 {
                                list.remove(i);
                            }
                        }
                        Some(i) => list[i].1 += 1,
                        None if !force => list.push((atnode.clone(), 1)),
                        None => {}
                    }
                    if list.is_empty() {
                        st.registered_on_nodes.remove(p);
                    }
                }
                return;
            }
            if ok {
                match &pid {
                    Some(p) => {
                        st.registry.insert(label.clone(), p.clone());
                    }
                    None => {
                        st.registry.remove(&label);
                    }
                }
            }
            (ok, current, st.registry.get(&label).cloned())
        };
        if ok {
            // `updateRemote`: nodes of remote pids keep track of where they
            // are registered.
            let mut forwards = Vec::new();
            match (&current, &pid) {
                (Some(old), Some(new)) if old.node != new.node => {
                    forwards.push((old.clone(), true));
                    forwards.push((new.clone(), false));
                }
                (None, Some(new)) => forwards.push((new.clone(), false)),
                (Some(old), None) => forwards.push((old.clone(), true)),
                _ => {}
            }
            for (p, reregister) in forwards {
                if p.node != *self.node_id() {
                    let msg = NCMsg {
                        sender: Identifier::Process(from.clone()),
                        signal: ProcessSignal::Register {
                            label: label.clone(),
                            node: atnode.clone(),
                            pid: Some(p.clone()),
                            force: reregister,
                        },
                    };
                    let to = p.node.clone();
                    self.send_to_node(&to, msg).await;
                }
            }
        }
        let reply = self.shared.messages.of(&RegisterReply {
            label,
            ok,
            owner: new_val,
        });
        self.send_to_process(&from, reply).await;
    }

    /// `ncEffectGetInfo`: the process is looked up by local id only.
    async fn effect_get_info(&self, from: ProcessId, pid: ProcessId) {
        let reply = {
            let st = self.shared.lock();
            match st.processes.get(&pid.local) {
                None => self
                    .shared
                    .messages
                    .of(&ProcessInfoNone(DiedReason::UnknownId)),
                Some(mb) => {
                    let them = Identifier::Process(pid.clone());
                    let mut monitors: Vec<(ProcessId, MonitorRef)> = st
                        .watches
                        .monitors
                        .iter()
                        .filter(|(t, _, _)| *t == them)
                        .map(|(_, us, r)| (us.clone(), r.clone()))
                        .collect();
                    monitors.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| ref_cmp(&a.1, &b.1)));
                    let mut links: Vec<ProcessId> = st
                        .watches
                        .links
                        .iter()
                        .filter(|(t, _)| *t == them)
                        .map(|(_, us)| us.clone())
                        .collect();
                    links.sort();
                    links.dedup();
                    // `foldlWithKey` prepends: names in descending order.
                    let mut names: Vec<String> = st
                        .registry
                        .iter()
                        .filter(|(_, p)| **p == pid)
                        .map(|(k, _)| k.clone())
                        .collect();
                    names.reverse();
                    let len = mb.lock().queue.len() as i64;
                    self.shared.messages.of(&ProcessInfo {
                        node: pid.node.clone(),
                        registered_names: names,
                        message_queue_length: len,
                        monitors,
                        links,
                    })
                }
            }
        };
        self.send_to_process(&from, reply).await;
    }
}
