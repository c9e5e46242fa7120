//! The node controller: one task reading NCMsgs in order, like Node.hs's
//! `nodeController` thread. Each `ProcessSignal` has its own `effect_*`
//! function; monitor, link and unlink are logged and ignored for now.

use std::sync::Arc;

use dp_wire::dp::{
    DidSpawn, DiedReason, Identifier, Message, NCMsg, NodeId, NodeStats, ProcessId, ProcessInfo,
    ProcessInfoNone, ProcessSignal, RegisterReply, WhereIsReply,
};
use tokio::sync::mpsc;

use crate::node::Shared;

pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<NCMsg>) {
    let nc = Nc { shared };
    while let Some(msg) = rx.recv().await {
        if nc.shared.lock().closed {
            break;
        }
        nc.handle(msg).await;
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
            (
                Identifier::Process(from),
                sig @ (S::Link(_) | S::Unlink(_) | S::Monitor(_) | S::Unmonitor(_)),
            ) => {
                // Links and monitors come with a later task.
                tracing::warn!(%from, signal = sig.name(), "not implemented yet; ignored");
            }
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
                if target.node == *self.node_id() {
                    let why = format!("killed-by={from},reason={reason}");
                    self.shared.terminate(&target, DiedReason::Exception(why));
                }
            }
            (Identifier::Process(from), S::Exit { target, reason }) => {
                if target.node == *self.node_id() {
                    let why = match self.shared.messages.decode::<String>(&reason) {
                        Some(r) => format!("exit-from={from},reason={r}"),
                        None => format!("exit-from={from}"),
                    };
                    self.shared.terminate(&target, DiedReason::Exception(why));
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
                            monitors: 0,
                            links: 0,
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

    /// `ncEffectDied`, without links and monitors: names of the dead are
    /// dropped, and nodes that registered them are told (`forwardDeath`).
    async fn effect_died(&self, who: Identifier, reason: DiedReason) {
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
                        monitors: Vec::new(),
                        links: Vec::new(),
                    })
                }
            }
        };
        self.send_to_process(&from, reply).await;
    }
}
