//! Soak benchmark: a plain distributed-process sender as fast as it can
//! against a slow Rust receiver actor on DpTcp, for a fixed time.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p kaisui-dp-tcp --bench soak
//! ```
//!
//! A harness (`harness = false`) that prints one table. Settings from the
//! environment: `SOAK_SECS` (run time, default 20), `SOAK_WORK_US` (busy
//! work per message in the receiver, default 20 µs, i.e. at most ~50 000
//! messages/s), `SOAK_PAYLOAD` (bytes per message, default 32). `RUST_LOG`
//! enables logs (default `warn`).
//!
//! Reported: peak and final heap (a counting global allocator, the whole
//! process: node, sender and receiver), heap samples over time, messages
//! sent and handled per second, messages still queued at the end
//! (delayed: sent but not yet handled), DpTcp's drop counters for the
//! sender's connection, and how often DpTcp paused reading because the
//! session was behind.
//!
//! The sender is a plain DP node (`dp_peer::PlainNode`, which looks the
//! receiver up) whose messages go out on a raw NT-TCP connection of its
//! own address, written with `write_all`: unlike `PlainNode::send`, which
//! queues without bound, it is slowed down by TCP flow control as soon as
//! DpTcp stops reading. What DpTcp hands to the session is bounded (channel and
//! inbound window), and so is the receiving actor's mailbox: since fork
//! patch 0012 a message's inbound credit is held until the actor takes it
//! out of its mailbox, so a slow receiver stops DpTcp reading and stalls
//! the sender instead of growing the heap (the hostile test
//! `flood_of_small_messages_to_a_slow_actor` asserts the bound).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dp_peer::PlainNode;
use dp_tcp::{haskell_type_fingerprint, DpTcp, DpTcpConfig, TypeRegistry};
use dp_wire::binary::Encode;
use dp_wire::dp::{Identifier, Message};
use dp_wire::ntt::{self, EndPointAddress};
use dp_wire::Limits;
use kaisui_alloc_count::{current_bytes, CountingAlloc, PeakWatch};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::{NodeServer, RactorClusterMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const MIB: f64 = 1024.0 * 1024.0;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(RactorClusterMessage)]
enum SlowMsg {
    Ping(Vec<u8>),
}

/// Handles each Ping with `work` of busy CPU time.
struct Slow {
    handled: Arc<AtomicU64>,
    work: Duration,
}

impl Actor for Slow {
    type Msg = SlowMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        _message: Self::Msg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let until = Instant::now() + self.work;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Res<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Res<()> {
    let secs = env_u64("SOAK_SECS", 20);
    let work = Duration::from_micros(env_u64("SOAK_WORK_US", 20));
    let payload = env_u64("SOAK_PAYLOAD", 32) as usize;

    let types = TypeRegistry::new()
        .module("main", "Kaisui.Soak")
        .cast("Ping", "Ping");
    let dp = DpTcp::new(DpTcpConfig::new(types))?;
    let server = NodeServer::new(
        0,
        "no-cookie".into(),
        "soak".into(),
        "localhost".into(),
        None,
        None,
    )
    .with_transport(dp.clone());
    let (server, _) = Actor::spawn(None, server, ()).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while dp.node_id().is_none() {
        if Instant::now() > deadline {
            return Err("DpTcp did not start listening".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let node = dp.node_id().expect("listening");
    let handled = Arc::new(AtomicU64::new(0));
    let (slow, _) = Actor::spawn(
        Some("soak-slow".into()),
        Slow {
            handled: handled.clone(),
            work,
        },
        (),
    )
    .await?;

    let peer = PlainNode::start("127.0.0.1").await?;
    let sender = peer.spawn();
    let to = tokio::time::timeout(
        Duration::from_secs(10),
        sender.whereis_remote(&node, "soak-slow", Duration::from_secs(10)),
    )
    .await??
    .ok_or("the receiver is not found")?;
    // The raw sender: its own NT-TCP endpoint address, one lightweight
    // connection to the receiver.
    let me: EndPointAddress = "127.0.0.1:1:0".parse()?;
    let peer_id = me.to_string();
    let target: EndPointAddress = node.as_str().unwrap_or_default().parse()?;
    let mut stream =
        tokio::net::TcpStream::connect(format!("{}:{}", target.host(), target.port())).await?;
    stream.set_nodelay(true)?;
    let mut conn = ntt::Connection::initiator(Some(&me), &target, Limits::default());
    if let Some(b) = conn.poll_transmit() {
        stream.write_all(&b).await?;
    }
    let mut buf = [0u8; 4096];
    loop {
        if let Some(ev) = conn.poll_event() {
            if ev != ntt::Event::Accepted {
                return Err(format!("handshake: {ev:?}").into());
            }
            break;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await??;
        if n == 0 {
            return Err("closed during the handshake".into());
        }
        conn.handle_input(&buf[..n]);
    }
    let lcid = conn.open()?;
    let mut first = Vec::new();
    Identifier::Process(to.clone()).encode(&mut first);
    conn.send(lcid, &first)?;
    drop(sender);
    if let Some(b) = conn.poll_transmit() {
        stream.write_all(&b).await?;
    }
    // The raw sender does not answer the probe that recognises kaisui
    // nodes: wait for the recognition timeout, before which messages for
    // the not-yet-started session are held (and shed beyond a bound).
    let deadline = Instant::now() + Duration::from_secs(30);
    while dp.peer_info(&peer_id).await.ok().map(|i| i.kind) != Some(dp_tcp::PeerKind::Plain) {
        if Instant::now() > deadline {
            return Err("the sender was not recognised".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // `data Ping = Ping !ByteString`: 8-byte length ++ bytes.
    let mut body = (payload as u64).to_be_bytes().to_vec();
    body.extend(std::iter::repeat_n(0x5a, payload));
    let msg = Message::new(
        haskell_type_fingerprint("main", "Kaisui.Soak", "Ping"),
        body,
    );

    let heap = PeakWatch::start();
    let base = current_bytes();
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let send_task = {
        let (sent, stop) = (sent.clone(), stop.clone());
        let mut frame = Vec::new();
        msg.encode_frame(&mut frame);
        let (mut rd, mut wr) = stream.into_split();
        // DpTcp's probes and answers must be read, or it would close us.
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = rd.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            // 64 messages per write: a fast sender, not a syscall benchmark.
            let mut batch = Vec::with_capacity(64 * (frame.len() + 8));
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    conn.send(lcid, &frame).map_err(|e| e.to_string())?;
                }
                if let Some(b) = conn.poll_transmit() {
                    batch.extend_from_slice(&b);
                }
                if let Err(e) = wr.write_all(&batch).await {
                    return Err(format!("the sender's connection ended: {e}"));
                }
                batch.clear();
                sent.fetch_add(64, Ordering::Relaxed);
            }
            reader.abort();
            Ok(())
        })
    };
    let mut samples = Vec::new();
    let step = Duration::from_secs((secs / 10).max(1));
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(step).await;
        samples.push((
            started.elapsed().as_secs_f64(),
            current_bytes().saturating_sub(base),
            sent.load(Ordering::Relaxed),
            handled.load(Ordering::Relaxed),
        ));
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let send_result = tokio::time::timeout(Duration::from_secs(10), send_task).await;
    let (n_sent, n_handled) = (
        sent.load(Ordering::Relaxed),
        handled.load(Ordering::Relaxed),
    );
    let info = dp.peer_info(&peer_id).await?;
    let peak = heap.growth();
    let end = current_bytes().saturating_sub(base);

    println!("| metric | value |");
    println!("|---|---|");
    println!("| run time | {elapsed:.1} s |");
    println!("| receiver work per message | {} µs |", work.as_micros());
    println!("| payload | {payload} bytes |");
    println!(
        "| sent | {n_sent} ({:.0} msgs/s) |",
        n_sent as f64 / elapsed
    );
    println!(
        "| handled by the receiver | {n_handled} ({:.0} msgs/s) |",
        n_handled as f64 / elapsed
    );
    println!(
        "| delayed (sent, not yet handled at the end) | {} |",
        n_sent.saturating_sub(n_handled)
    );
    let c = info.counters;
    let dropped = c.undecodable
        + c.unknown_type
        + c.stale_or_foreign
        + c.no_such_target
        + c.table_full
        + c.wrong_sender;
    println!("| dropped by DpTcp | {dropped} ({c:?}) |");
    println!(
        "| DpTcp read pauses (session behind) | {} |",
        info.session_waits
    );
    println!(
        "| DpTcp outbound buffer peak | {} bytes |",
        info.outbound_peak
    );
    println!("| heap growth peak | {:.1} MiB |", peak as f64 / MIB);
    println!("| heap growth at the end | {:.1} MiB |", end as f64 / MIB);
    for (t, heap, s, h) in &samples {
        println!(
            "| heap at {t:.0} s | {:.1} MiB (sent {s}, handled {h}, queued {}) |",
            *heap as f64 / MIB,
            s.saturating_sub(*h)
        );
    }
    match send_result {
        Ok(Ok(Ok(()))) => {}
        other => println!("| sender | ended abnormally: {other:?} |"),
    }
    slow.stop(None);
    server.stop(None);
    Ok(())
}
