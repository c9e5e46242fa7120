//! Loopback benchmark of DpTcp against a plain distributed-process peer,
//! with ractor's native transport as the baseline.
//!
//! Run it with
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p kaisui-dp-tcp --bench loopback
//! ```
//!
//! It is a harness (`harness = false`), not a test: one run prints one
//! table. Everything runs in this one process, on one tokio runtime with as
//! many workers as the machine has cores (the Haskell figures in
//! `shared/dp-vectors/README.md` section 5 come from two processes):
//!
//! - **DpTcp**: a ractor node on DpTcp and a `dp_peer::PlainNode` (a plain
//!   distributed-process node built on our wire library), connected over
//!   127.0.0.1. Measured: `call_t!` round trips from Rust to a peer process
//!   that answers each `Echo` with an `EchoReply`; casts per second from
//!   Rust to a peer process that counts them; casts per second from a peer
//!   process to a Rust actor; and round trips of a peer process calling a
//!   Rust actor (`send` an `Echo`, wait for the `EchoReply`).
//! - **DpTcp Rust ↔ Rust**: two ractor `NodeServer`s on DpTcp, which
//!   recognise each other as kaisui nodes and carry ractor_cluster's own
//!   messages inside DP messages; the same call and cast measurements as
//!   the native baseline.
//! - **Native**: two ractor `NodeServer`s over `NativeTransport` on
//!   127.0.0.1, with the same call and cast measurements.
//!
//! The payload is 32 bytes, as in section 5. On the DP wire a message is
//! its 16-byte fingerprint, the 8-byte ByteString length and the 32 bytes
//! (a call request also carries the reply ProcessId), i.e. what
//! `send pid (bs :: ByteString)` puts there.
//!
//! Counts default to section 5's (10 000 timed round trips after 1 000
//! warm-up, 200 000 casts after 20 000 warm-up) and can be changed with
//! `BENCH_CALLS`, `BENCH_CALL_WARMUP`, `BENCH_CASTS`, `BENCH_CAST_WARMUP`.
//! Every wait is bounded, so a broken transport ends the run with an
//! error rather than a hang. `RUST_LOG` enables logs (default: `warn`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dp_peer::{PlainNode, Process};
use dp_tcp::{haskell_type_fingerprint, DpTcp, DpTcpConfig, TypeRegistry};
use dp_wire::binary::{Decode, Reader};
use dp_wire::dp::{Message, ProcessId};
use dp_wire::fingerprint::Fingerprint;
use dp_wire::Limits;
use ractor::{call_t, cast, Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::transport::{
    BoxFuture, NativeTransport, Transport, TransportConnection, TransportListener,
};
use ractor_cluster::{NodeServer, NodeServerMessage, RactorClusterMessage};
use tokio::sync::Notify;

/// Bound of every single wait (connects, lookups, one batch of casts).
const WAIT: Duration = Duration::from_secs(60);
/// Payload size, as in the Haskell benchmark.
const PAYLOAD: usize = 32;
/// Haskell module of the benchmark's types; on the peer:
/// `data Ping = Ping !ByteString`, `data Echo = Echo !ProcessId !ByteString`,
/// `newtype EchoReply = EchoReply ByteString`.
const MODULE: &str = "Kaisui.Bench";

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

/// The benchmark actor's protocol, identical for both transports.
#[derive(RactorClusterMessage)]
enum BenchMsg {
    Ping(Vec<u8>),
    #[rpc]
    Echo(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

fn fp(name: &str) -> Fingerprint {
    haskell_type_fingerprint("main", MODULE, name)
}

fn types() -> TypeRegistry {
    TypeRegistry::new()
        .module("main", MODULE)
        .cast("Ping", "Ping")
        .call("Echo", "Echo", "EchoReply")
}

/// ractor's packing of one `Vec<u8>` field, which is also Data.Binary's
/// strict ByteString: u64 BE length ++ bytes.
fn packed(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u64).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

fn payload() -> Vec<u8> {
    (0..PAYLOAD as u8).collect()
}

/// Counts the `Ping`s it gets and wakes the harness at the target; answers
/// every `Echo` with its bytes.
struct Sink;

/// Shared between the sink actor and the harness.
#[derive(Default)]
struct Counter {
    count: AtomicU64,
    target: AtomicU64,
    reached: Notify,
}

impl Counter {
    fn arm(&self, target: u64) {
        self.count.store(0, Ordering::SeqCst);
        self.target.store(target, Ordering::SeqCst);
    }

    async fn wait(&self, what: &str) -> Res<()> {
        tokio::time::timeout(WAIT, self.reached.notified())
            .await
            .map_err(|_| {
                format!(
                    "{what}: only {} of {} arrived in {WAIT:?}",
                    self.count.load(Ordering::SeqCst),
                    self.target.load(Ordering::SeqCst)
                )
                .into()
            })
    }
}

impl Actor for Sink {
    type Msg = BenchMsg;
    type State = Arc<Counter>;
    type Arguments = Arc<Counter>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        c: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(c)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        c: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            BenchMsg::Ping(_) => {
                let n = c.count.fetch_add(1, Ordering::SeqCst) + 1;
                if n == c.target.load(Ordering::SeqCst) {
                    c.reached.notify_one();
                }
            }
            BenchMsg::Echo(b, reply) => {
                let _ = reply.send(b);
            }
        }
        Ok(())
    }
}

// ----------------------------------------------------------------------
// Statistics and output

struct Latency {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    mean: Duration,
    max: Duration,
}

fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort_unstable();
    let n = samples.len();
    let at = |q: usize| samples[(n * q / 100).min(n - 1)];
    Latency {
        p50: at(50),
        p90: at(90),
        p99: at(99),
        mean: samples.iter().sum::<Duration>() / n as u32,
        max: samples[n - 1],
    }
}

#[derive(Default)]
struct Table {
    rows: Vec<(String, String, String)>,
}

impl Table {
    fn latency(&mut self, transport: &str, what: &str, l: &Latency) {
        for (q, v) in [
            ("p50", l.p50),
            ("p90", l.p90),
            ("p99", l.p99),
            ("mean", l.mean),
            ("max", l.max),
        ] {
            self.row(transport, &format!("{what} {q}"), micros(v));
        }
    }

    fn rate(&mut self, transport: &str, what: &str, n: u64, took: Duration) {
        let per_s = n as f64 / took.as_secs_f64();
        self.row(
            transport,
            what,
            format!("{per_s:.0} msgs/s ({n} in {:.3} s)", took.as_secs_f64()),
        );
    }

    fn row(&mut self, transport: &str, metric: &str, value: String) {
        eprintln!("  {transport:<28} {metric:<34} {value}");
        self.rows
            .push((transport.to_owned(), metric.to_owned(), value));
    }

    fn print(&self) {
        let w0 = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let w1 = self.rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        println!("| {:<w0$} | {:<w1$} | value |", "transport", "metric");
        println!("|{}|{}|-------|", "-".repeat(w0 + 2), "-".repeat(w1 + 2));
        for (t, m, v) in &self.rows {
            println!("| {t:<w0$} | {m:<w1$} | {v} |");
        }
    }
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Counts {
    calls: u64,
    call_warmup: u64,
    casts: u64,
    cast_warmup: u64,
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "{cores} cores available ({model}); loadavg at start {load}; {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

// ----------------------------------------------------------------------
// Shared measurement loops

/// `warmup` then `n` timed `call_t!` round trips to `to`.
async fn rust_calls(to: &ActorRef<BenchMsg>, warmup: u64, n: u64) -> Res<Latency> {
    let body = payload();
    let timeout_ms = WAIT.as_millis() as u64;
    let mut samples = Vec::with_capacity(n as usize);
    for i in 0..warmup + n {
        let t = Instant::now();
        let back = call_t!(to, BenchMsg::Echo, timeout_ms, body.clone())?;
        let took = t.elapsed();
        if back != body {
            return Err("the echo changed the payload".into());
        }
        if i >= warmup {
            samples.push(took);
        }
    }
    Ok(latency(samples))
}

/// Casts `n` Pings to `to`; the receiving side reports completion through
/// `done`. Returns the time from the first cast to the last arrival.
async fn rust_casts<F>(to: &ActorRef<BenchMsg>, n: u64, done: F) -> Res<Duration>
where
    F: std::future::Future<Output = Res<()>>,
{
    let body = payload();
    let t = Instant::now();
    for _ in 0..n {
        cast!(to, BenchMsg::Ping(body.clone()))?;
    }
    done.await?;
    Ok(t.elapsed())
}

// ----------------------------------------------------------------------
// DpTcp against a plain distributed-process peer

/// A peer process that counts `n` Pings (`expect` in a loop).
async fn peer_count(p: &Process, n: u64) -> Res<()> {
    for _ in 0..n {
        p.expect_fp(fp("Ping"), WAIT).await?;
    }
    Ok(())
}

/// A peer process that answers `n` Echos:
/// `receiveWait [match $ \(Echo from b) -> send from (EchoReply b)]`.
async fn peer_echo(p: Process, n: u64) -> Res<Process> {
    let limits = Limits::default();
    for _ in 0..n {
        let m = p.expect_fp(fp("Echo"), WAIT).await?;
        let payload = m.payload();
        let mut r = Reader::shared(&payload, &limits);
        let from = ProcessId::decode(&mut r)?;
        // The rest is the ByteString field, which EchoReply wraps as is.
        let rest = r.take_rest();
        p.send(&from, Message::new(fp("EchoReply"), rest.to_vec()))
            .await?;
    }
    Ok(p)
}

async fn bench_dp(counts: &Counts, table: &mut Table) -> Res<()> {
    const T: &str = "DpTcp ↔ plain DP peer";
    let dp = DpTcp::new(DpTcpConfig::new(types()))?;
    let server = NodeServer::new(
        0,
        String::new(),
        "bench-dp".into(),
        "localhost".into(),
        None,
        None,
    )
    .with_transport(dp.clone());
    let (server, server_handle) = Actor::spawn(None, server, ()).await?;
    let deadline = Instant::now() + WAIT;
    while dp.node_id().is_none() {
        if Instant::now() > deadline {
            return Err("DpTcp never started listening".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let peer = PlainNode::start("127.0.0.1").await?;
    let peer_id = peer.node_id().as_str().expect("utf-8 address").to_owned();
    let echo = peer.spawn();
    let count = peer.spawn();
    peer.register("bench-echo", &echo.pid());
    peer.register("bench-count", &count.pid());
    ractor_cluster::client_connect_transport(&server, peer_id.clone()).await?;
    let echo_ref: ActorRef<BenchMsg> = dp.whereis(&peer_id, "bench-echo", WAIT).await?.into();
    let count_ref: ActorRef<BenchMsg> = dp.whereis(&peer_id, "bench-count", WAIT).await?.into();

    // Rust → peer calls.
    let echo_task = tokio::spawn(peer_echo(echo, counts.call_warmup + counts.calls));
    let l = rust_calls(&echo_ref, counts.call_warmup, counts.calls).await?;
    table.latency(T, "Rust→peer call_t! RTT", &l);
    let _echo = echo_task.await??;

    // Rust → peer casts; the peer process counts them.
    let count = Arc::new(count);
    for (n, timed) in [(counts.cast_warmup, false), (counts.casts, true)] {
        let p = count.clone();
        let counted = tokio::spawn(async move { peer_count(&p, n).await });
        let took = rust_casts(&count_ref, n, async { counted.await? }).await?;
        if timed {
            table.rate(T, "Rust→peer casts", n, took);
        }
    }

    // Peer → Rust casts, to a Rust actor by pid (`send`).
    let counter = Arc::new(Counter::default());
    let (sink, sink_handle) =
        Actor::spawn(Some("bench-dp-sink".into()), Sink, counter.clone()).await?;
    let sink_pid = dp.pid_of(&sink.get_cell())?;
    let sender = peer.spawn();
    let ping = Message::new(fp("Ping"), packed(&payload()));
    for (n, timed) in [(counts.cast_warmup, false), (counts.casts, true)] {
        counter.arm(n);
        let t = Instant::now();
        for _ in 0..n {
            sender.send(&sink_pid, ping.clone()).await?;
        }
        counter.wait("peer→Rust casts").await?;
        if timed {
            table.rate(T, "peer→Rust casts", n, t.elapsed());
        }
    }

    // Peer → Rust calls: `send` an Echo with our pid, wait for the
    // EchoReply, as a Haskell process calling a Rust actor does.
    let mut samples = Vec::with_capacity(counts.calls as usize);
    let echo_msg = {
        let mut b = Vec::new();
        dp_wire::binary::Encode::encode(&sender.pid(), &mut b);
        b.extend_from_slice(&packed(&payload()));
        Message::new(fp("Echo"), b)
    };
    for i in 0..counts.call_warmup + counts.calls {
        let t = Instant::now();
        sender.send(&sink_pid, echo_msg.clone()).await?;
        sender.expect_fp(fp("EchoReply"), WAIT).await?;
        if i >= counts.call_warmup {
            samples.push(t.elapsed());
        }
    }
    table.latency(T, "peer→Rust call RTT", &latency(samples));

    // `ignored` counts the session's control messages (process-group
    // sync), which a DP peer has no use for; anything else is a drop.
    let info = dp.peer_info(&peer_id).await?;
    let only_ignored = dp_tcp::Counters {
        ignored: info.counters.ignored,
        ..Default::default()
    };
    if info.counters != only_ignored {
        return Err(format!("DpTcp dropped benchmark traffic: {:?}", info.counters).into());
    }
    let violations = peer.violations();
    if !violations.is_empty() {
        return Err(format!("the plain peer saw protocol violations: {violations:?}").into());
    }
    sink.stop(None);
    let _ = sink_handle.await;
    peer.close().await;
    server.stop(None);
    let _ = server_handle.await;
    Ok(())
}

// ----------------------------------------------------------------------
// DpTcp between two Rust nodes (kaisui peers)

async fn dp_node(
    name: &str,
) -> Res<(
    ActorRef<NodeServerMessage>,
    tokio::task::JoinHandle<()>,
    DpTcp,
)> {
    let dp = DpTcp::new(DpTcpConfig::new(TypeRegistry::new()))?;
    let server = NodeServer::new(
        0,
        "bench-cookie".into(),
        name.into(),
        "localhost".into(),
        None,
        None,
    )
    .with_transport(dp.clone());
    let (server, handle) = Actor::spawn(None, server, ()).await?;
    let deadline = Instant::now() + WAIT;
    while dp.node_id().is_none() {
        if Instant::now() > deadline {
            return Err(format!("DpTcp node {name} never started listening").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok((server, handle, dp))
}

/// The sink joined to `group`, and the RemoteActor a session made for it.
async fn remote_sink(
    group: &str,
    counter: Arc<Counter>,
) -> Res<(
    ActorRef<BenchMsg>,
    tokio::task::JoinHandle<()>,
    ActorRef<BenchMsg>,
)> {
    let (sink, sink_handle) = Actor::spawn(Some(format!("{group}-sink")), Sink, counter).await?;
    ractor::pg::join(group.to_owned(), vec![sink.get_cell()]);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(c) = ractor::pg::get_members(&group.to_owned())
            .into_iter()
            .find(|c| !c.get_id().is_local())
        {
            return Ok((sink, sink_handle, c.into()));
        }
        if Instant::now() > deadline {
            return Err(format!("no session advertised the sink of {group}").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn bench_dp_rust(counts: &Counts, table: &mut Table) -> Res<()> {
    const T: &str = "DpTcp Rust ↔ Rust";
    let (a, a_handle, dp_a) = dp_node("bench-dp-a").await?;
    let (b, b_handle, _dp_b) = dp_node("bench-dp-b").await?;
    let a_id = dp_a.node_id().ok_or("a listens")?;
    let a_addr = a_id.as_str().ok_or("a UTF-8 address")?.to_owned();
    ractor_cluster::client_connect_transport(&b, a_addr).await?;

    // As for the native baseline: the sink is local to both nodes, its
    // RemoteActor goes through loopback TCP and back.
    let counter = Arc::new(Counter::default());
    let group = "bench-dp-rust";
    let (sink, sink_handle, remote) = remote_sink(group, counter.clone()).await?;

    let l = rust_calls(&remote, counts.call_warmup, counts.calls).await?;
    table.latency(T, "call_t! RTT", &l);
    for (n, timed) in [(counts.cast_warmup, false), (counts.casts, true)] {
        counter.arm(n);
        let took = rust_casts(&remote, n, counter.wait("DpTcp Rust casts")).await?;
        if timed {
            table.rate(T, "casts", n, took);
        }
    }

    ractor::pg::leave(group.to_owned(), vec![sink.get_cell()]);
    sink.stop(None);
    let _ = sink_handle.await;
    a.stop(None);
    b.stop(None);
    let _ = a_handle.await;
    let _ = b_handle.await;
    Ok(())
}

// ----------------------------------------------------------------------
// Native baseline: two NodeServers in this process

/// NativeTransport that reports the port its listener bound.
#[derive(Debug, Clone, Default)]
struct Observed {
    inner: NativeTransport,
    bound: Arc<OnceLock<u16>>,
}

impl Transport for Observed {
    fn listen(
        &self,
        listen_addr: Option<std::net::IpAddr>,
        port: u16,
    ) -> BoxFuture<'_, std::io::Result<Box<dyn TransportListener>>> {
        Box::pin(async move {
            let l = self.inner.listen(listen_addr, port).await?;
            let _ = self.bound.set(l.local_addr()?.port());
            Ok(l)
        })
    }

    fn connect(
        &self,
        address: String,
    ) -> BoxFuture<'_, std::io::Result<Box<dyn TransportConnection>>> {
        self.inner.connect(address)
    }
}

async fn native_node(
    name: &str,
) -> Res<(
    ActorRef<NodeServerMessage>,
    tokio::task::JoinHandle<()>,
    u16,
)> {
    let t = Observed::default();
    let bound = t.bound.clone();
    let server = NodeServer::new(
        0,
        "bench-cookie".into(),
        name.into(),
        "localhost".into(),
        None,
        None,
    )
    .with_listen_addr(std::net::Ipv4Addr::LOCALHOST.into())
    .with_transport(t);
    let (server, handle) = Actor::spawn(None, server, ()).await?;
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(p) = bound.get() {
            return Ok((server, handle, *p));
        }
        if Instant::now() > deadline {
            return Err(format!("native node {name} never started listening").into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn bench_native(counts: &Counts, table: &mut Table) -> Res<()> {
    const T: &str = "Native ↔ native (ractor)";
    let (a, a_handle, _) = native_node("bench-native-a").await?;
    let (b, b_handle, b_port) = native_node("bench-native-b").await?;
    ractor_cluster::client_connect_transport(&a, format!("127.0.0.1:{b_port}")).await?;

    // Both nodes live in this process, so the sink is local to both; its
    // RemoteActor (created by a session when the other side advertises the
    // group) sends every message through loopback TCP and back.
    let counter = Arc::new(Counter::default());
    let (sink, sink_handle) =
        Actor::spawn(Some("bench-native-sink".into()), Sink, counter.clone()).await?;
    let group = "bench-native".to_owned();
    ractor::pg::join(group.clone(), vec![sink.get_cell()]);
    let deadline = Instant::now() + WAIT;
    let remote: ActorRef<BenchMsg> = loop {
        if let Some(c) = ractor::pg::get_members(&group)
            .into_iter()
            .find(|c| !c.get_id().is_local())
        {
            break c.into();
        }
        if Instant::now() > deadline {
            return Err("the native session never advertised the sink".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };

    let l = rust_calls(&remote, counts.call_warmup, counts.calls).await?;
    table.latency(T, "call_t! RTT", &l);

    for (n, timed) in [(counts.cast_warmup, false), (counts.casts, true)] {
        counter.arm(n);
        let took = rust_casts(&remote, n, counter.wait("native casts")).await?;
        if timed {
            table.rate(T, "casts", n, took);
        }
    }

    ractor::pg::leave(group, vec![sink.get_cell()]);
    sink.stop(None);
    let _ = sink_handle.await;
    a.stop(None);
    b.stop(None);
    let _ = a_handle.await;
    let _ = b_handle.await;
    Ok(())
}

fn main() -> Res<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    // `cargo bench` passes `--bench`; this harness has no options.
    let counts = Counts {
        calls: env_count("BENCH_CALLS", 10_000).max(1),
        call_warmup: env_count("BENCH_CALL_WARMUP", 1_000),
        casts: env_count("BENCH_CASTS", 200_000).max(1),
        cast_warmup: env_count("BENCH_CAST_WARMUP", 20_000).max(1),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()?;
    let start = Instant::now();
    let machine = machine();
    eprintln!("loopback benchmark: {machine}");
    eprintln!(
        "payload {PAYLOAD} B; {} timed calls after {} warm-up; {} casts after {} warm-up",
        counts.calls, counts.call_warmup, counts.casts, counts.cast_warmup
    );
    let mut table = Table::default();
    rt.block_on(async {
        bench_dp(&counts, &mut table).await?;
        bench_dp_rust(&counts, &mut table).await?;
        bench_native(&counts, &mut table).await
    })?;
    println!();
    println!("machine: {machine}");
    println!(
        "tokio workers: {cores}; payload {PAYLOAD} B; calls: {} timed after {} warm-up; casts: {} after {} warm-up",
        counts.calls, counts.call_warmup, counts.casts, counts.cast_warmup
    );
    println!();
    table.print();
    println!();
    println!("total run time {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
