//! Recomputes every row of the captured `fingerprints.tsv` from its
//! TypeRep tree, checking each tycon and sub-type on the way.

mod common;

use dp_wire::dp::{Message, ProcessId, SendPort, Serializable};
use dp_wire::fingerprint::{known, Build, Fingerprint, TyCon, TypeRep};

/// `[unit, module, name, tycon fp, [args…], type fp]` → TypeRep, checking
/// the recorded fingerprints of every node.
fn tree(v: &serde_json::Value) -> TypeRep {
    let a = v.as_array().expect("tree node");
    let s = |i: usize| a[i].as_str().expect("string field").to_string();
    let con = TyCon::new(s(0), s(1), s(2));
    assert_eq!(con.fingerprint().to_string(), s(3), "tycon {}", s(2));
    let rep = a[4]
        .as_array()
        .expect("args")
        .iter()
        .fold(TypeRep::con(con), |r, x| r.app(tree(x)));
    assert_eq!(rep.fingerprint().to_string(), s(5), "type {rep}");
    rep
}

#[test]
fn all_rows_recomputed() {
    let text = common::read_vector("fingerprints.tsv");
    let mut rows = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let cols: Vec<_> = line.split('\t').collect();
        assert_eq!(cols.len(), 4, "{line}");
        let (label, fp, wire) = (cols[0], cols[1], cols[2]);
        let rep = tree(&serde_json::from_str(cols[3]).unwrap());
        let got = rep.fingerprint();
        assert_eq!(got.to_string(), fp, "{label}");
        assert_eq!(hex::encode(got.to_bytes()), wire, "{label} wire bytes");
        assert_eq!(Fingerprint::from_hex(wire), Some(got));
        rows += 1;
    }
    assert_eq!(rows, 25);
}

#[test]
fn serializable_impls_agree_with_the_table() {
    let b = Build::default();
    assert_eq!(
        <(ProcessId, bytes::Bytes)>::fingerprint(&b),
        known::captured::PROCESS_ID_BYTESTRING
    );
    assert_eq!(
        SendPort::<bytes::Bytes>::fingerprint(&b),
        known::captured::SEND_PORT_BYTESTRING
    );
    assert_eq!(Option::<i64>::fingerprint(&b), known::captured::MAYBE_INT);
    assert_eq!(
        <(String, String)>::fingerprint(&b),
        known::captured::STRING_STRING
    );
    let m = Message::of(&"x".to_string(), &b);
    assert_eq!(m.fingerprint, known::captured::STRING);
}
