//! Encode/decode cost of the distributed-process layer: a `send` message
//! frame (strict ByteString payload) bare and inside an NT-TCP data frame,
//! and an NCMsg (NamedSend).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dp_wire::binary::{decode_exact_shared, Encode};
use dp_wire::dp::{Identifier, LocalProcessId, Message, NCMsg, NodeId, ProcessId, ProcessSignal};
use dp_wire::fingerprint::known::captured;
use dp_wire::ntt::{encode_data, Role, StreamDecoder, Unit};
use dp_wire::Limits;

fn payload(n: usize) -> Bytes {
    Bytes::from((0..n).map(|i| i as u8).collect::<Vec<_>>())
}

fn message_frame(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("message_frame");
    for size in [32usize, 64 * 1024] {
        let value = payload(size);
        let mut frame = Vec::new();
        Message::new(captured::STRICT_BYTESTRING, value.to_binary()).encode_frame(&mut frame);
        let frame = Bytes::from(frame);
        g.throughput(Throughput::Bytes(frame.len() as u64));

        // Value → Data.Binary → fingerprint ++ payload.
        g.bench_with_input(BenchmarkId::new("encode", size), &value, |b, v| {
            let mut out = Vec::with_capacity(frame.len());
            b.iter(|| {
                out.clear();
                captured::STRICT_BYTESTRING.encode(&mut out);
                black_box(v).encode(&mut out);
                black_box(&out);
            })
        });
        // Frame → fingerprint check → zero-copy ByteString.
        g.bench_with_input(BenchmarkId::new("decode", size), &frame, |b, f| {
            b.iter(|| {
                let m = Message::decode_frame(black_box(f)).unwrap();
                assert_eq!(m.fingerprint, captured::STRICT_BYTESTRING);
                let v: Bytes = decode_exact_shared(&m.payload(), &limits).unwrap();
                black_box(v)
            })
        });

        // The same inside an NT-TCP data frame on lcid 1024.
        let mut wire = Vec::new();
        encode_data(1024, &frame, &mut wire);
        g.bench_with_input(BenchmarkId::new("encode_ntt", size), &value, |b, v| {
            let mut inner = Vec::with_capacity(frame.len());
            let mut out = Vec::with_capacity(wire.len());
            b.iter(|| {
                inner.clear();
                out.clear();
                captured::STRICT_BYTESTRING.encode(&mut inner);
                black_box(v).encode(&mut inner);
                encode_data(1024, &inner, &mut out);
                black_box(&out);
            })
        });
        g.bench_with_input(BenchmarkId::new("decode_ntt", size), &wire, |b, w| {
            b.iter(|| {
                let mut d = StreamDecoder::new_framed(Role::Initiator, limits.clone());
                d.push(black_box(w));
                let Some(Unit::Data { payload, .. }) = d.next_unit().unwrap() else {
                    unreachable!()
                };
                let m = Message::decode_frame(&payload).unwrap();
                let v: Bytes = decode_exact_shared(&m.payload(), &limits).unwrap();
                black_box(v)
            })
        });
    }
    g.finish();
}

fn ncmsg(c: &mut Criterion) {
    let limits = Limits::default();
    let me = ProcessId {
        node: NodeId::new("127.0.0.1:10501:0"),
        local: LocalProcessId {
            unique: 0x11cac9cb,
            counter: 8,
        },
    };
    let msg = NCMsg {
        sender: Identifier::Process(me),
        signal: ProcessSignal::NamedSend {
            label: "echo".into(),
            message: Message::new(captured::STRICT_BYTESTRING, payload(32).to_binary()),
        },
    };
    let bytes = Bytes::from(msg.to_binary());
    let mut g = c.benchmark_group("ncmsg_named_send_32");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode", |b| {
        let mut out = Vec::with_capacity(bytes.len());
        b.iter(|| {
            out.clear();
            black_box(&msg).encode(&mut out);
            black_box(&out);
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| black_box(NCMsg::decode_frame(black_box(&bytes), &limits).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, message_frame, ncmsg);
criterion_main!(benches);
