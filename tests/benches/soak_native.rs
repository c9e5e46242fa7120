//! Soak: a fast sender node against a slow receiver actor over the native
//! transport, on loopback, in one process.
//!
//! The receiver actor takes `SOAK_DELAY_US` (default 1000 µs) per message;
//! the sender casts to it through its remote actor at `SOAK_RATE` messages
//! per second (default 5000, five times what the receiver handles; 0 means
//! as fast as the cast call returns) for `SOAK_SECS` seconds (default 20).
//! Sending stops early if the heap passes `SOAK_MAX_MIB` (default 1024), so
//! a run that does not hold memory back cannot take the machine down.
//!
//! Printed: sent, received (handled by the slow actor) and throughput,
//! casts that failed at the sender (dropped), casts sent but not handled
//! when the time was up (delayed: still queued somewhere), sessions of the
//! sender that ended and how many of them with `outbound_buffer_full`, and
//! the heap (counting allocator): at the start, peak, and at the end.
//!
//! `cargo bench -p kaisui-integration-tests --bench soak_native`
//! (`RUST_LOG=info` for the nodes' logs).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kaisui_integration_tests::harness::{eventually, unique_tag};
use kaisui_integration_tests::hostile::{
    current_bytes, mib, CountingAlloc, HardenedNode, Limits, PeakWatch, SlowActor,
};
use ractor::{Actor, ActorRef};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(soak());
}

async fn soak() {
    let secs = env_u64("SOAK_SECS", 20);
    let rate = env_u64("SOAK_RATE", 5000);
    let delay = Duration::from_micros(env_u64("SOAK_DELAY_US", 1000));
    let max_heap = env_u64("SOAK_MAX_MIB", 1024) as usize * 1024 * 1024;
    let limits = Limits::default();
    println!(
        "soak_native: {secs} s, sender rate {}, receiver {delay:?} per message, \
         inbound window {:.0} MiB, outbound limit {:.0} MiB",
        if rate == 0 {
            "unlimited".to_string()
        } else {
            format!("{rate}/s")
        },
        mib(limits.inbound_window),
        mib(limits.max_outbound_buffer)
    );

    let tag = unique_tag("soak");
    let receiver = HardenedNode::start(&format!("receiver-{tag}"), &limits).await;
    let sender = HardenedNode::start(&format!("sender-{tag}"), &limits).await;
    let handled = Arc::new(AtomicUsize::new(0));
    let slow_name = format!("slow-{tag}");
    let (slow, slow_handle) = Actor::spawn(
        Some(slow_name.clone()),
        SlowActor {
            delay,
            handled: handled.clone(),
        },
        (),
    )
    .await
    .expect("spawn slow actor");

    ractor_cluster::client_connect_transport(&sender.server, receiver.addr.to_string())
        .await
        .expect("connect sender to receiver");
    // The sender's remote actor for the slow actor, and its session's
    // transport actor (whose stop reason says `outbound_buffer_full`).
    let (remote, transport) = eventually("the sender to see the slow actor", || async {
        sender
            .session_actors()
            .await
            .into_iter()
            .find_map(|session| {
                let children = session.get_children();
                let remote = children
                    .iter()
                    .find(|child| child.get_name().as_deref() == Some(slow_name.as_str()))?
                    .clone();
                let transport = children
                    .into_iter()
                    .find(|child| child.get_id().is_local() && child.get_name().is_none())?;
                Some((remote, transport))
            })
    })
    .await;
    sender.watch(&transport);
    let remote: ActorRef<u64> = remote.into();

    let start_heap = current_bytes();
    let memory = PeakWatch::start();
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let (mut sent, mut failed, mut capped) = (0u64, 0u64, false);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut owed = 0f64;
    let mut last = Instant::now();
    while Instant::now() < end {
        if current_bytes() > max_heap {
            capped = true;
            break;
        }
        let burst = if rate == 0 {
            tokio::task::yield_now().await;
            1000
        } else {
            tick.tick().await;
            // Messages due since the last tick, at the configured rate.
            let now = Instant::now();
            owed += rate as f64 * (now - last).as_secs_f64();
            last = now;
            let due = owed.floor();
            owed -= due;
            due as u64
        };
        for _ in 0..burst {
            if remote.cast(sent).is_err() {
                failed += 1;
            }
            sent += 1;
        }
    }
    let elapsed = started.elapsed();
    let received = handled.load(Ordering::Relaxed) as u64;
    let growth = memory.growth();
    let end_heap = current_bytes();
    let reasons = sender.log.reasons();
    let outbound_full = reasons
        .iter()
        .filter(|reason| *reason == "outbound_buffer_full")
        .count();

    println!(
        "elapsed          {:.1} s{}",
        elapsed.as_secs_f64(),
        if capped {
            " (stopped at the heap cap)"
        } else {
            ""
        }
    );
    println!(
        "sent             {sent} ({:.0}/s)",
        sent as f64 / elapsed.as_secs_f64()
    );
    println!(
        "received         {received} ({:.0}/s)",
        received as f64 / elapsed.as_secs_f64()
    );
    println!("dropped (failed) {failed}");
    println!(
        "delayed          {} (sent, not yet handled when the time was up)",
        sent.saturating_sub(received + failed)
    );
    println!(
        "sender sessions  {} ended, {outbound_full} with outbound_buffer_full",
        sender.log.disconnected()
    );
    println!(
        "heap             start {:.1} MiB, peak {:.1} MiB (+{:.1} MiB), end {:.1} MiB",
        mib(start_heap),
        mib(start_heap + growth),
        mib(growth),
        mib(end_heap)
    );

    // The backlog would take minutes to handle; drop it.
    slow.kill();
    let _ = slow_handle.await;
    sender.shutdown().await;
    receiver.shutdown().await;
}
