//! The NT-TCP layer against the Haskell captures in dp-vectors.
//!
//! Per capture: every (connection, direction) stream decodes into units
//! with nothing left over and re-encodes byte-identically; then a replay
//! drives one `Connection` per socket side (plus an `Endpoint` per node),
//! turning each unit the Haskell node sent on purpose (open, send, close,
//! CloseEndPoint) into the matching command. Units a node sends on its own
//! (responses, CloseSocket, ProbeSocketAck) are left to our state machine,
//! and at the end everything our machines wrote must equal the capture
//! byte for byte.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{Node, Record, Streams};
use dp_wire::ntt::{
    Connection, ConnectionState, ControlHeader, EndPointAddress, Endpoint, Event, IncomingDecision,
    OutgoingDecision, RejectReason, Role, StreamDecoder, Unit,
};
use dp_wire::Limits;

impl Node {
    fn address(self) -> EndPointAddress {
        match self {
            Node::A => "127.0.0.1:10501:0".parse().unwrap(),
            Node::B => "127.0.0.1:10502:0".parse().unwrap(),
        }
    }
}

/// Delay between a segment leaving one node and the other node acting on
/// it. A node's own sends within this window were decided before it saw
/// the segment (captures 10 and 12 need > 31 µs, capture 11 < 76 µs).
const DELIVERY_DELAY: f64 = 50e-6;

/// Segments sent to one side: (send time, bytes).
type Inbox = Vec<(f64, Vec<u8>)>;

#[derive(Default)]
struct Side {
    conn: Option<Connection>,
    sent: Option<StreamDecoder>,
    produced: Vec<u8>,
    events: Vec<Event>,
    /// Segments sent to this side: (send time, bytes); `next_in` is the
    /// first one not yet handed to `conn`.
    inbox: Inbox,
    next_in: usize,
}

struct Replay {
    endpoints: HashMap<Node, Endpoint>,
    sides: HashMap<(u64, Node), Side>,
}

impl Replay {
    fn drain(&mut self, conn: u64, node: Node) {
        let side = self.sides.get_mut(&(conn, node)).unwrap();
        let c = side.conn.as_mut().unwrap();
        while let Some(b) = c.poll_transmit() {
            side.produced.extend_from_slice(&b);
        }
        let mut evs = vec![];
        while let Some(e) = c.poll_event() {
            evs.push(e);
        }
        let peer = node.other().address();
        for e in &evs {
            let ep = self.endpoints.get_mut(&node).unwrap();
            let c = self
                .sides
                .get_mut(&(conn, node))
                .unwrap()
                .conn
                .as_mut()
                .unwrap();
            match e {
                Event::ConnectionRequested { target, from } => {
                    match ep.incoming(from.as_ref(), *target, conn) {
                        IncomingDecision::Accept { .. } => c.accept().unwrap(),
                        IncomingDecision::Reject(r) => c.reject(r).unwrap(),
                        d => panic!("unexpected decision {d:?}"),
                    }
                }
                Event::Accepted => ep.established(&peer, conn),
                Event::Rejected(_) => {
                    ep.rejected(&peer, conn);
                }
                Event::CloseCancelled => ep.reopened(&peer, conn),
                Event::SocketClosed | Event::EndPointClosed { .. } | Event::ConnectionLost => {
                    ep.closed(&peer, conn)
                }
                _ => {}
            }
        }
        let side = self.sides.get_mut(&(conn, node)).unwrap();
        side.events.extend(evs);
        // accept/reject may have produced more.
        let c = side.conn.as_mut().unwrap();
        while let Some(b) = c.poll_transmit() {
            side.produced.extend_from_slice(&b);
        }
        while let Some(e) = c.poll_event() {
            side.events.push(e);
        }
    }

    /// Hands `node` its inbox up to (not including) index `upto`.
    fn deliver_upto(&mut self, conn: u64, node: Node, upto: usize) {
        loop {
            let side = self.sides.get_mut(&(conn, node)).unwrap();
            if side.next_in >= upto.min(side.inbox.len()) {
                return;
            }
            let bytes = std::mem::take(&mut side.inbox[side.next_in].1);
            side.next_in += 1;
            side.conn.as_mut().unwrap().handle_input(&bytes);
            self.drain(conn, node);
        }
    }

    /// Causality: `node` cannot have sent at `t` something that needed a
    /// segment sent to it before `t` unless it had read that segment.
    fn deliver_sent_before(&mut self, conn: u64, node: Node, t: f64) {
        let side = &self.sides[&(conn, node)];
        let upto = side.inbox.iter().take_while(|(ts, _)| *ts < t).count();
        self.deliver_upto(conn, node, upto);
    }

    /// Turns one unit `node` sent into the command that made it.
    fn command(&mut self, conn: u64, node: Node, unit: &Unit, t: f64) {
        let established = self.sides[&(conn, node)].conn.as_ref().unwrap().state()
            != ConnectionState::AwaitingResponse;
        if !established && !matches!(unit, Unit::ConnectionRequest(_)) {
            self.deliver_sent_before(conn, node, t);
        }
        let c = self
            .sides
            .get_mut(&(conn, node))
            .unwrap()
            .conn
            .as_mut()
            .unwrap();
        match unit {
            // Written by the state machine itself.
            Unit::ConnectionRequest(_)
            | Unit::ConnectionResponse(_)
            | Unit::Control(ControlHeader::CloseSocket(_) | ControlHeader::ProbeSocketAck) => {}
            Unit::Control(ControlHeader::CreatedNewConnection(l)) => {
                assert_eq!(c.open().unwrap(), *l, "{node:?} lcid allocation")
            }
            Unit::Control(ControlHeader::CloseConnection(l)) => {
                c.close(*l).unwrap();
                if c.state() == ConnectionState::Closing {
                    let ep = self.endpoints.get_mut(&node).unwrap();
                    ep.closing(&node.other().address(), conn);
                    assert_eq!(
                        ep.peer(&node.other().address()),
                        Some(dp_wire::ntt::PeerState::Closing { socket: conn })
                    );
                }
            }
            Unit::Control(ControlHeader::CloseEndPoint) => c.close_endpoint().unwrap(),
            Unit::Control(ControlHeader::ProbeSocket) => {
                c.probe(std::time::Instant::now()).unwrap()
            }
            Unit::Data { lcid, payload } => c.send(*lcid, payload).unwrap(),
        }
    }
}

enum Action<'a> {
    Syn(Node, u64),
    Send(Node, u64, &'a [u8], f64),
    /// Hand the receiver its inbox up to this index.
    Deliver(Node, u64, usize),
    Eof(Node, u64),
}

/// Result of a replay: per (conn, node) the events that node's
/// `Connection` reported.
type Seen = HashMap<(u64, Node), (ConnectionState, Vec<Event>)>;

fn replay(records: &[Record], s: &Streams) -> Seen {
    let mut actions: Vec<(f64, usize, Action<'_>)> = vec![];
    let mut inboxes: HashMap<(u64, Node), Inbox> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        match r {
            Record::Syn { t, from, conn } => actions.push((*t, i, Action::Syn(*from, *conn))),
            Record::Segment {
                t,
                from,
                conn,
                bytes,
            } => {
                actions.push((*t, i, Action::Send(*from, *conn, bytes, *t)));
                let inbox = inboxes.entry((*conn, from.other())).or_default();
                inbox.push((*t, bytes.clone()));
                actions.push((
                    t + DELIVERY_DELAY,
                    i,
                    Action::Deliver(from.other(), *conn, inbox.len()),
                ));
            }
            Record::Fin { t, from, conn } => {
                actions.push((t + DELIVERY_DELAY, i, Action::Eof(from.other(), *conn)))
            }
        }
    }
    actions.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));

    let mut r = Replay {
        endpoints: [Node::A, Node::B]
            .into_iter()
            .map(|n| (n, Endpoint::new(n.address())))
            .collect(),
        sides: HashMap::new(),
    };
    for (_, _, action) in actions {
        match action {
            Action::Syn(node, conn) => {
                let peer = node.other();
                let d = r
                    .endpoints
                    .get_mut(&node)
                    .unwrap()
                    .outgoing(&peer.address(), conn);
                assert_eq!(d, OutgoingDecision::Connect(conn));
                let me = r.sides.entry((conn, node)).or_default();
                me.conn = Some(Connection::initiator(
                    Some(&node.address()),
                    &peer.address(),
                    Limits::default(),
                ));
                me.sent = Some(StreamDecoder::new(Role::Initiator, Limits::default()));
                me.inbox = inboxes.remove(&(conn, node)).unwrap_or_default();
                let them = r.sides.entry((conn, peer)).or_default();
                them.inbox = inboxes.remove(&(conn, peer)).unwrap_or_default();
                them.conn = Some(Connection::listener(Limits::default()));
                them.sent = Some(StreamDecoder::new(Role::Listener, Limits::default()));
                r.drain(conn, node);
            }
            Action::Send(node, conn, bytes, t) => {
                let side = r.sides.get_mut(&(conn, node)).unwrap();
                let dec = side.sent.as_mut().unwrap();
                dec.push(bytes);
                let mut units = vec![];
                while let Some(u) = dec.next_unit().unwrap() {
                    units.push(u);
                }
                for u in &units {
                    r.command(conn, node, u, t);
                }
                r.drain(conn, node);
            }
            Action::Deliver(node, conn, upto) => r.deliver_upto(conn, node, upto),
            Action::Eof(node, conn) => {
                r.deliver_upto(conn, node, usize::MAX);
                let side = r.sides.get_mut(&(conn, node)).unwrap();
                side.conn.as_mut().unwrap().handle_eof();
                r.drain(conn, node);
            }
        }
    }

    let name = &s.name;
    let mut seen = Seen::new();
    for ((conn, node), side) in r.sides {
        let want = s.bytes.get(&(conn, node)).cloned().unwrap_or_default();
        assert_eq!(
            hex::encode(&side.produced),
            hex::encode(&want),
            "{name} conn {conn}: what our {node:?} wrote differs from the capture"
        );
        for e in &side.events {
            assert!(
                !matches!(e, Event::ProtocolError(_)),
                "{name} conn {conn} {node:?}: {e:?}"
            );
        }
        seen.insert(
            (conn, node),
            (side.conn.as_ref().unwrap().state(), side.events),
        );
    }
    seen
}

/// Received payloads per (conn, receiver) must equal the data frames the
/// other side sent.
fn check_received(name: &str, units: &BTreeMap<(u64, Node), Vec<Unit>>, seen: &Seen) {
    for ((conn, sender), us) in units {
        let sent: Vec<_> = us
            .iter()
            .filter_map(|u| match u {
                Unit::Data { lcid, payload } => Some((*lcid, payload.clone())),
                _ => None,
            })
            .collect();
        let got: Vec<_> = seen[&(*conn, sender.other())]
            .1
            .iter()
            .filter_map(|e| match e {
                Event::Received { lcid, payload } => Some((*lcid, payload.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            sent, got,
            "{name} conn {conn}: {sender:?}'s data as received"
        );
    }
}

fn run(name: &str) -> Seen {
    let records = common::load(name);
    let s = Streams::new(name, &records);
    let units = s.units();
    let seen = replay(&records, &s);
    check_received(name, &units, &seen);
    seen
}

fn last(seen: &Seen, conn: u64, node: Node) -> (&ConnectionState, Option<&Event>) {
    let (state, events) = &seen[&(conn, node)];
    (state, events.last())
}

fn closed_by_handshake(seen: &Seen) {
    for node in [Node::A, Node::B] {
        let (state, _) = last(seen, 0, node);
        assert_eq!(*state, ConnectionState::Closed, "{node:?}");
        assert!(
            seen[&(0, node)].1.contains(&Event::SocketClosed),
            "{node:?}"
        );
    }
}

fn closed_by_endpoint(seen: &Seen, closer: Node) {
    let other = closer.other();
    assert!(
        seen[&(0, other)]
            .1
            .iter()
            .any(|e| matches!(e, Event::EndPointClosed { .. })),
        "{other:?} should see EndPointClosed: {:?}",
        seen[&(0, other)].1
    );
    assert_eq!(*last(seen, 0, closer).0, ConnectionState::Closed);
}

macro_rules! capture_test {
    ($fn:ident, $name:literal, |$seen:ident| $check:expr) => {
        #[test_log::test]
        fn $fn() {
            let $seen = run($name);
            $check;
        }
    };
}

capture_test!(c01_send_bytestring, "01-send-bytestring", |seen| {
    closed_by_handshake(&seen)
});
capture_test!(c02_nsend_remote, "02-nsend-remote", |seen| {
    closed_by_endpoint(&seen, Node::A)
});
capture_test!(c03_whereis_remote, "03-whereis-remote", |seen| {
    closed_by_endpoint(&seen, Node::A)
});
capture_test!(c04_monitor, "04-monitor", |seen| {
    closed_by_endpoint(&seen, Node::A)
});
capture_test!(c05_link, "05-link", |seen| closed_by_endpoint(
    &seen,
    Node::A
));
capture_test!(c06_node_killed, "06-node-killed", |seen| {
    // B was killed: A only sees the socket go away.
    assert_eq!(last(&seen, 0, Node::A).1, Some(&Event::ConnectionLost));
    assert_eq!(*last(&seen, 0, Node::A).0, ConnectionState::Failed);
});
capture_test!(c07_close_normal, "07-close-normal", |seen| {
    closed_by_handshake(&seen);
    assert_eq!(last(&seen, 0, Node::A).1, Some(&Event::SocketClosed));
    assert_eq!(last(&seen, 0, Node::B).1, Some(&Event::SocketClosed));
});
capture_test!(c08_close_endpoint, "08-close-endpoint", |seen| {
    closed_by_endpoint(&seen, Node::A);
    assert_eq!(
        last(&seen, 0, Node::B).1,
        Some(&Event::EndPointClosed {
            outgoing_lost: vec![]
        })
    );
    assert!(seen[&(0, Node::B)]
        .1
        .contains(&Event::IncomingConnectionClosed(1024)));
});
capture_test!(c09_typed_channel, "09-typed-channel", |seen| {
    closed_by_handshake(&seen)
});
capture_test!(c10_pingpong_1000, "10-pingpong-1000", |seen| {
    // Simultaneous close: no CloseSocket, the socket idles until
    // CloseEndPoint.
    closed_by_endpoint(&seen, Node::A);
    assert!(!seen[&(0, Node::B)].1.contains(&Event::SocketClosed));
});
capture_test!(c11_crossed, "11-crossed", |seen| {
    assert_eq!(
        seen[&(1, Node::B)].1,
        vec![Event::Rejected(RejectReason::Crossed)]
    );
    assert_eq!(*last(&seen, 1, Node::A).0, ConnectionState::Closed);
    assert_eq!(seen[&(0, Node::A)].1.first(), Some(&Event::Accepted));
    closed_by_handshake(&seen);
});
capture_test!(
    c12_crossed_closesocket_deferred,
    "12-crossed-closesocket-deferred",
    |seen| {
        assert_eq!(
            seen[&(1, Node::B)].1,
            vec![Event::Rejected(RejectReason::Crossed)]
        );
        closed_by_handshake(&seen);
    }
);
capture_test!(c13_spawn, "13-spawn", |seen| closed_by_endpoint(
    &seen,
    Node::A
));
capture_test!(c14_kill_exit_usend, "14-kill-exit-usend", |seen| {
    closed_by_endpoint(&seen, Node::A)
});
capture_test!(c15_register_remote, "15-register-remote", |seen| {
    closed_by_endpoint(&seen, Node::A)
});
capture_test!(c16_node_stats_info, "16-node-stats-info", |seen| {
    closed_by_endpoint(&seen, Node::A)
});
capture_test!(c17_unmonitor_unlink, "17-unmonitor-unlink", |seen| {
    closed_by_endpoint(&seen, Node::A)
});
capture_test!(c18_monitor_node, "18-monitor-node", |seen| {
    closed_by_endpoint(&seen, Node::B)
});
