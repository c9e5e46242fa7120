//! Shared helpers of the dp-peer tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use dp_peer::{PlainNode, PlainNodeConfig};
use dp_wire::dp::NodeId;
use dp_wire::ntt::{Role, StreamDecoder, Unit};
use dp_wire::Limits;

pub const T: Duration = Duration::from_secs(5);

/// Polls `cond` every 5 ms for up to 5 s.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A node on 127.0.0.1 whose port has 5 digits, so that its address has
/// the captured length (17 bytes) and bytes can be compared after
/// replacing the address.
pub async fn node_5digit(unique: Option<i32>) -> PlainNode {
    loop {
        let mut c = PlainNodeConfig::new("127.0.0.1");
        c.unique = unique;
        let n = PlainNode::start_with(c).await.expect("start node");
        if n.node_id().as_bytes().len() == 17 {
            return n;
        }
        n.close().await;
    }
}

fn vectors_dir() -> PathBuf {
    std::env::var_os("DP_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/dp-vectors"
            ))
        })
}

/// One direction of TCP connection 0 of a capture, reassembled.
pub fn capture_stream(name: &str, dir: &str) -> Vec<u8> {
    let path = vectors_dir().join(format!("{name}.jsonl"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("capture json");
        if v["conn"] == 0 && v["dir"] == dir {
            if let Some(h) = v["hex"].as_str() {
                out.extend(hex::decode(h).expect("capture hex"));
            }
        }
    }
    out
}

/// Replaces every occurrence of `from` by `to` (same length).
pub fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "replacement must keep lengths");
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

/// Our node addresses replaced by the captured A (10501) and B (10502).
pub fn normalize(bytes: &[u8], a: &NodeId, b: &NodeId) -> Vec<u8> {
    let x = replace_all(bytes, a.as_bytes(), b"127.0.0.1:10501:0");
    replace_all(&x, b.as_bytes(), b"127.0.0.1:10502:0")
}

/// Decodes a whole received stream into NT-TCP units; panics on garbage
/// or a trailing partial unit.
pub fn units(bytes: &[u8], sender: Role) -> Vec<Unit> {
    let mut d = StreamDecoder::new(sender, Limits::default());
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(u) = d.next_unit().expect("valid NT-TCP stream") {
        out.push(u);
    }
    assert_eq!(d.buffered(), 0, "trailing partial unit");
    out
}

/// Side-by-side unit lists, for readable failures.
pub fn describe(bytes: &[u8], sender: Role) -> String {
    let mut d = StreamDecoder::new(sender, Limits::default());
    d.push(bytes);
    let mut s = String::new();
    while let Ok(Some(u)) = d.next_unit() {
        s.push_str(&format!("{u:?}\n"));
    }
    s
}
