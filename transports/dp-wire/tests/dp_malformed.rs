//! Hostile input: malformed, truncated and oversized encodings give the
//! right typed error, and arbitrary bytes never panic.

use bytes::Bytes;
use dp_wire::binary::{decode_exact, encode_len, BinaryError, Encode};
use dp_wire::dp::*;
use dp_wire::Limits;
use proptest::prelude::*;

fn l() -> Limits {
    Limits::default()
}

fn node_sender() -> Vec<u8> {
    Identifier::Node(NodeId::new("127.0.0.1:10502:0")).to_binary()
}

/// 13-spawn's Spawn NCMsg, captured (A->B, lcid 1024).
fn spawn_frame() -> Vec<u8> {
    let mut out = Vec::new();
    let me = ProcessId {
        node: NodeId::new("127.0.0.1:10501:0"),
        local: LocalProcessId {
            unique: -273515071,
            counter: 8,
        },
    };
    NCMsg {
        sender: Identifier::Process(me),
        signal: ProcessSignal::Spawn {
            closure: Closure {
                decoder: Static::label("$compose").apply(Static::label("x")),
                env: Bytes::from_static(&[1, 2, 3]),
            },
            spawn_ref: SpawnRef(0),
        },
    }
    .encode(&mut out);
    out
}

#[test_log::test]
fn bad_tags_are_named() {
    let cases: Vec<(Vec<u8>, BinaryError)> = vec![
        (
            vec![7],
            BinaryError::InvalidTag {
                ty: "Identifier",
                tag: 7,
            },
        ),
        ([node_sender(), vec![33]].concat(), {
            BinaryError::InvalidTag {
                ty: "ProcessSignal",
                tag: 33,
            }
        }),
        ([node_sender(), vec![4], node_sender(), vec![5]].concat(), {
            BinaryError::InvalidTag {
                ty: "DiedReason",
                tag: 5,
            }
        }),
        ([node_sender(), vec![7, 0, 0, 0, 0, 0, 0, 0, 0]].concat(), {
            // Register "" with a NodeId cut short.
            BinaryError::UnexpectedEof {
                what: "NodeId",
                needed: 8,
                available: 0,
            }
        }),
    ];
    for (input, want) in cases {
        assert_eq!(decode_exact::<NCMsg>(&input, &l()).unwrap_err(), want);
    }
}

#[test]
fn spawn_with_static_pointer_is_unsupported() {
    let mut b = node_sender();
    b.extend([5, 2]);
    assert!(matches!(
        decode_exact::<NCMsg>(&b, &l()),
        Err(BinaryError::Unsupported(_))
    ));
}

#[test]
fn every_truncation_of_a_spawn_is_eof() {
    let full = spawn_frame();
    assert!(decode_exact::<NCMsg>(&full, &l()).is_ok());
    for cut in 0..full.len() {
        match decode_exact::<NCMsg>(&full[..cut], &l()) {
            Err(BinaryError::UnexpectedEof { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn trailing_bytes_after_an_ncmsg() {
    let mut b = spawn_frame();
    b.push(0);
    assert!(matches!(
        NCMsg::decode_frame(&Bytes::from(b), &l()),
        Err(BinaryError::TrailingBytes { remaining: 1, .. })
    ));
}

#[test]
fn oversized_lengths_are_refused_before_allocating() {
    let limits = Limits {
        max_list_len: 1000,
        max_bytes_len: 1000,
        ..Limits::default()
    };
    // NamedSend whose label claims 2^40 characters.
    let mut b = node_sender();
    b.push(8);
    encode_len(1 << 40, &mut b);
    assert_eq!(
        decode_exact::<NCMsg>(&b, &limits).unwrap_err(),
        BinaryError::LengthTooLarge {
            what: "String",
            len: 1 << 40,
            max: 1000
        }
    );
    // A message with 2^40 chunks.
    let mut b = node_sender();
    b.push(8);
    "echo".encode(&mut b);
    encode_len(1 << 40, &mut b);
    assert!(matches!(
        decode_exact::<NCMsg>(&b, &limits),
        Err(BinaryError::LengthTooLarge {
            what: "message chunks",
            ..
        })
    ));
    // A chunk of 2000 bytes.
    let mut b = Vec::new();
    encode_len(1, &mut b);
    encode_len(2000, &mut b);
    assert!(matches!(
        decode_exact::<Message>(&b, &limits),
        Err(BinaryError::LengthTooLarge {
            what: "ByteString",
            len: 2000,
            ..
        })
    ));
    // Negative counts.
    let mut b = Vec::new();
    encode_len(usize::MAX, &mut b); // -1 as Int64
    assert!(matches!(
        decode_exact::<Vec<ProcessId>>(&b, &limits),
        Err(BinaryError::NegativeLength { len: -1, .. })
    ));
}

#[test]
fn a_lying_list_count_costs_only_the_input() {
    // 16M ProcessIds announced, none present: must fail fast at EOF.
    let mut b = Vec::new();
    encode_len(16 * 1024 * 1024, &mut b);
    assert!(matches!(
        decode_exact::<Vec<ProcessId>>(&b, &l()),
        Err(BinaryError::UnexpectedEof { .. })
    ));
    // Within the limit but longer than the input: caught at the prefix.
    let mut b = Vec::new();
    encode_len(1_000_000, &mut b);
    b.extend(b"abc");
    assert!(matches!(
        decode_exact::<String>(&b, &l()),
        Err(BinaryError::UnexpectedEof {
            what: "String",
            needed: 1_000_000,
            available: 3
        })
    ));
}

#[test]
fn short_process_frame_and_bad_fingerprint_chunk() {
    assert!(matches!(
        Message::decode_frame(&Bytes::from_static(&[0; 15])),
        Err(BinaryError::UnexpectedEof {
            what: "message fingerprint",
            ..
        })
    ));
    let mut b = Vec::new();
    encode_len(0, &mut b);
    assert!(matches!(
        decode_exact::<Message>(&b, &l()),
        Err(BinaryError::WrongSize { got: 0, .. })
    ));
}

#[test]
fn first_frame_must_be_an_identifier() {
    let mut c = InboundConnection::new();
    assert!(c.decode(&Bytes::from_static(&[9]), &l()).is_err());
    assert!(c.target().is_none());
    let open = Bytes::from(node_sender());
    assert!(matches!(c.decode(&open, &l()), Ok(Frame::Open(_))));
    // Now frames are NCMsgs; an Identifier alone is not one.
    assert!(matches!(
        c.decode(&open, &l()),
        Err(BinaryError::UnexpectedEof {
            what: "ProcessSignal",
            ..
        })
    ));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let limits = l();
        let _ = decode_exact::<NCMsg>(&input, &limits);
        let _ = decode_exact::<Identifier>(&input, &limits);
        let _ = decode_exact::<Message>(&input, &limits);
        let _ = decode_exact::<ProcessInfo>(&input, &limits);
        let _ = decode_exact::<Closure>(&input, &limits);
        let _ = decode_exact::<String>(&input, &limits);
        let _ = Message::decode_frame(&Bytes::from(input.clone()));
        // Whatever decodes must re-encode to the same bytes.
        if let Ok(m) = decode_exact::<NCMsg>(&input, &limits) {
            prop_assert_eq!(m.to_binary(), input);
        }
    }

    #[test]
    fn mutated_spawn_never_panics(pos in 0usize..60, byte in any::<u8>()) {
        let mut b = spawn_frame();
        let p = pos % b.len();
        b[p] = byte;
        if let Ok(m) = decode_exact::<NCMsg>(&b, &l()) {
            prop_assert_eq!(m.to_binary(), b);
        }
    }
}
