//! What the capture-replaying tests share: where the dp-vectors live, one
//! reader for the `NN-name.jsonl` captures, and the reassembly of each
//! (connection, direction) byte stream with the role of whoever wrote it.
//!
//! Every failure names the capture file it came from.

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use dp_wire::ntt::{Role, StreamDecoder, Unit};
use dp_wire::Limits;

/// The captures: `DP_VECTORS_DIR`, or `shared/dp-vectors` beside the repo.
pub fn vectors_dir() -> PathBuf {
    std::env::var_os("DP_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/dp-vectors"
            ))
        })
}

/// The text of `file` in [`vectors_dir`], panicking with its path.
pub fn read_vector(file: &str) -> String {
    let path = vectors_dir().join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e} (set DP_VECTORS_DIR)", path.display()))
}

/// One of the two captured Haskell nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    A,
    B,
}

impl Node {
    pub fn other(self) -> Node {
        match self {
            Node::A => Node::B,
            Node::B => Node::A,
        }
    }

    /// The capture's `dir` for what this node sends.
    pub fn dir(self) -> &'static str {
        match self {
            Node::A => "A->B",
            Node::B => "B->A",
        }
    }
}

/// One record of a capture that the tests act on. Other events (SYN-ACK,
/// ACKs) are dropped; RST counts as FIN.
#[derive(Debug)]
pub enum Record {
    Segment {
        t: f64,
        from: Node,
        conn: u64,
        bytes: Vec<u8>,
    },
    Syn {
        t: f64,
        from: Node,
        conn: u64,
    },
    Fin {
        t: f64,
        from: Node,
        conn: u64,
    },
}

/// Reads capture `name` (`NN-name`, without `.jsonl`): one record per
/// `{"t", "dir", "conn", "hex"}` segment or `{"event": ...}` line.
pub fn load(name: &str) -> Vec<Record> {
    let file = format!("{name}.jsonl");
    let text = read_vector(&file);
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .filter_map(|(i, line)| {
            let at = || format!("{file}:{}", i + 1);
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: not a JSON record: {e}", at()));
            let t = v["t"].as_f64().unwrap_or_else(|| panic!("{}: no t", at()));
            let from = match v["dir"].as_str() {
                Some("A->B") => Node::A,
                Some("B->A") => Node::B,
                d => panic!("{}: bad dir {d:?}", at()),
            };
            let conn = v["conn"]
                .as_u64()
                .unwrap_or_else(|| panic!("{}: no conn", at()));
            if let Some(h) = v.get("hex") {
                let bytes = h
                    .as_str()
                    .and_then(|h| hex::decode(h).ok())
                    .unwrap_or_else(|| panic!("{}: bad hex", at()));
                return Some(Record::Segment {
                    t,
                    from,
                    conn,
                    bytes,
                });
            }
            match v["event"].as_str() {
                Some("SYN") => Some(Record::Syn { t, from, conn }),
                Some("FIN" | "RST") => Some(Record::Fin { t, from, conn }),
                Some(_) => None,
                None => panic!("{}: neither hex nor event", at()),
            }
        })
        .collect()
}

/// A capture's TCP streams: per (conn, sender) every byte sent, in order,
/// and per conn the node that sent the SYN.
pub struct Streams {
    /// The capture these came from, for failure messages.
    pub name: String,
    pub initiator: HashMap<u64, Node>,
    pub bytes: BTreeMap<(u64, Node), Vec<u8>>,
}

impl Streams {
    /// Reassembles the streams of capture `name` from its `records`.
    pub fn new(name: &str, records: &[Record]) -> Streams {
        let mut s = Streams {
            name: name.to_string(),
            initiator: HashMap::new(),
            bytes: BTreeMap::new(),
        };
        for r in records {
            match r {
                Record::Syn { from, conn, .. } => {
                    s.initiator.insert(*conn, *from);
                }
                Record::Segment {
                    from, conn, bytes, ..
                } => s
                    .bytes
                    .entry((*conn, *from))
                    .or_default()
                    .extend_from_slice(bytes),
                Record::Fin { .. } => {}
            }
        }
        s
    }

    /// The NT-TCP role of `node` on `conn`: whoever sent the SYN is the
    /// initiator.
    pub fn role(&self, conn: u64, node: Node) -> Role {
        let initiator = self
            .initiator
            .get(&conn)
            .unwrap_or_else(|| panic!("{}: conn {conn} has no SYN", self.name));
        if *initiator == node {
            Role::Initiator
        } else {
            Role::Listener
        }
    }

    /// Decodes every stream into NT-TCP units, checking that nothing is
    /// left over and that re-encoding the units gives the same bytes.
    pub fn units(&self) -> BTreeMap<(u64, Node), Vec<Unit>> {
        let name = &self.name;
        let mut out = BTreeMap::new();
        for (&(conn, node), bytes) in &self.bytes {
            let mut d = StreamDecoder::new(self.role(conn, node), Limits::default());
            d.push(bytes);
            let mut units = vec![];
            while let Some(u) = d
                .next_unit()
                .unwrap_or_else(|e| panic!("{name} conn {conn} from {node:?}: NT-TCP unit: {e}"))
            {
                units.push(u);
            }
            assert_eq!(
                d.buffered(),
                0,
                "{name} conn {conn} from {node:?}: bytes left over"
            );
            let mut re = vec![];
            for u in &units {
                u.encode(&mut re);
            }
            assert_eq!(
                &re, bytes,
                "{name} conn {conn} from {node:?}: NT-TCP re-encoding differs"
            );
            out.insert((conn, node), units);
        }
        out
    }
}
