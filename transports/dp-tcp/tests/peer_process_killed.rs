//! Node loss with a real OS process: a plain DP node (`dp-peer-node`, the
//! binary of `tests/dp-peer`) killed with SIGKILL while 1 MiB messages flow
//! both ways, so the kill most likely lands in the middle of a frame. See
//! "Node loss" and "Reconnect" in `docs/lifecycle.md`.
//!
//! The binary belongs to another package, so `CARGO_BIN_EXE_*` does not
//! reach it: the test builds it with the cargo that runs the test, in a
//! target directory of its own next to ours (`<target>/dp-peer-node`;
//! ours is locked while tests run).
#![cfg(unix)]

mod common;

use std::io::BufRead;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ractor::{call_t, cast, ActorCell, ActorRef, ActorStatus};
use ractor_cluster::NodeServerMessage;

/// Bound of the one-off build of the binary (a cold build on a slow
/// machine; not a timing assertion).
const BUILD_BOUND: Duration = Duration::from_secs(900);

/// SIGKILL's number (9 on every Unix; no libc dependency for one constant).
const SIGKILL: i32 = 9;

/// Size of the text of every Ask (and of its echo).
const BIG: usize = 1024 * 1024;

// ---------------------------------------------------------------------
// The peer process

/// Builds `dp-peer-node` and returns its path.
async fn peer_binary() -> PathBuf {
    tokio::task::spawn_blocking(|| {
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        // <target>/debug/deps/<this test>: <target> is three levels up.
        let exe = std::env::current_exe().expect("the test's path");
        let target = exe
            .ancestors()
            .nth(3)
            .expect("a test binary under <target>/<profile>/deps")
            .join("dp-peer-node");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut build = Command::new(cargo)
            .current_dir(&workspace)
            .args(["build", "-p", "kaisui-dp-peer", "--bin", "dp-peer-node"])
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .stdin(Stdio::null())
            .spawn()
            .expect("cargo runs");
        let deadline = std::time::Instant::now() + BUILD_BOUND;
        let status = loop {
            if let Some(s) = build.try_wait().expect("cargo's status") {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = build.kill();
                let _ = build.wait();
                panic!("building dp-peer-node took more than {BUILD_BOUND:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "building dp-peer-node: {status}");
        let bin = target.join("debug").join("dp-peer-node");
        assert!(bin.is_file(), "no binary at {}", bin.display());
        bin
    })
    .await
    .expect("the build task")
}

/// A running `dp-peer-node`, SIGKILLed and reaped when dropped.
struct PeerProcess {
    child: Child,
    /// Its NodeId, `127.0.0.1:PORT:0`.
    node: String,
    /// Kept open so that the child never writes to a closed pipe.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl PeerProcess {
    /// Starts the binary on `port` (0: any) and reads its NodeId. A port
    /// still held by a dying predecessor is retried for up to [`T`].
    async fn start(bin: &std::path::Path, port: u16) -> Self {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let mut child = Command::new(bin)
                .arg(port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("dp-peer-node starts");
            let stdout = child.stdout.take().unwrap();
            let read = tokio::task::spawn_blocking(move || {
                let mut r = std::io::BufReader::new(stdout);
                let mut line = String::new();
                let n = r.read_line(&mut line).expect("the child's stdout");
                (n, line, r)
            });
            let (n, line, r) = match tokio::time::timeout(T, read).await {
                Ok(read) => read.unwrap(),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("dp-peer-node printed no NodeId in time");
                }
            };
            if n > 0 {
                return PeerProcess {
                    child,
                    node: line.trim().to_owned(),
                    _stdout: r,
                };
            }
            // It exited without a NodeId: the bind failed.
            let status = child.wait().unwrap();
            assert!(
                tokio::time::Instant::now() < deadline,
                "dp-peer-node on port {port} keeps failing: {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn port(&self) -> u16 {
        self.node.split(':').nth(1).unwrap().parse().unwrap()
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap.
    fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL the peer");
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(SIGKILL), "{status}");
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------
// Rust-side helpers

/// Whether the node server lists a session with `peer`.
async fn has_session(rust: &RustNode, peer: &str) -> bool {
    let sessions = call_t!(rust.server, NodeServerMessage::GetSessions, 5000).unwrap();
    sessions.values().any(|s| {
        s.peer_name
            .as_ref()
            .is_some_and(|n| n.connection_string == peer)
    })
}

async fn echo_of(rust: &RustNode, peer: &PeerProcess) -> ActorCell {
    ractor_cluster::client_connect_transport(&rust.server, &peer.node)
        .await
        .expect("connect to the peer process");
    rust.dp
        .whereis(&peer.node, "echo", T)
        .await
        .expect("the peer's echo")
}

/// A 1 MiB text, different for every (caller, round).
fn big(tag: &str) -> Greeting {
    let mut text = format!("{tag}:");
    text.extend(std::iter::repeat_n('x', BIG));
    Greeting::new(&text)
}

/// Calls `echo` with 1 MiB Asks until a call fails; every answer must be
/// the caller's own request. Returns how many came back.
async fn caller(echo: ActorRef<GreeterMsg>, id: usize, done: Arc<AtomicUsize>) -> usize {
    for round in 0.. {
        let g = big(&format!("c{id}r{round}"));
        match call_t!(echo, GreeterMsg::Ask, 10_000, g.clone()) {
            Ok(r) => {
                assert!(
                    r.text == g.text,
                    "caller {id} round {round} got someone else's echo ({} bytes, starts {:?})",
                    r.text.len(),
                    &r.text[..r.text.len().min(16)]
                );
                done.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => return round,
        }
    }
    unreachable!()
}

// ---------------------------------------------------------------------

#[test_log::test(tokio::test(flavor = "multi_thread", worker_threads = 2))]
async fn a_peer_process_killed_mid_message_ends_its_remote_actors_and_can_come_back() {
    let bin = peer_binary().await;
    let rust = rust_node("os-killed").await;
    let (greeter, mut rx) = spawn_greeter("greeter-os-killed").await;

    let mut old = PeerProcess::start(&bin, 0).await;
    let port = old.port();
    let old_cell = echo_of(&rust, &old).await;
    // Supervised (ractor link) and monitored.
    let (sup, mut sup_ends) = observer().await;
    let (mon, mut mon_ends) = observer().await;
    old_cell.link(sup.get_cell());
    mon.get_cell().monitor(old_cell.clone());

    // 1 MiB Asks and 1 MiB echoes in flight both ways, four at a time.
    let done = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..4)
        .map(|i| tokio::spawn(caller(old_cell.clone().into(), i, done.clone())))
        .collect();
    eventually("echoes flowing", || {
        let n = done.load(Ordering::Relaxed);
        async move { n >= 8 }
    })
    .await;
    old.kill_9();

    // The RemoteActor stops with DiedDisconnect, for its supervisor and
    // its monitor alike.
    let want = Ended::Terminated(old_cell.get_id(), Some("DiedDisconnect".to_owned()));
    assert_eq!(next_end(&mut sup_ends).await, want);
    assert_eq!(next_end(&mut mon_ends).await, want);
    for c in callers {
        tokio::time::timeout(2 * T, c)
            .await
            .expect("every caller ends")
            .expect("no caller saw a wrong echo");
    }
    // The session ends.
    eventually("no session with the killed peer", || async {
        !has_session(&rust, &old.node).await && rust.dp.peer_info(&old.node).await.is_err()
    })
    .await;

    // Local actors are unaffected.
    cast!(greeter, GreeterMsg::Hello(Greeting::new("still here"))).unwrap();
    assert_eq!(seen(&mut rx).await.text, "still here");
    let r = call_t!(greeter, GreeterMsg::Ask, 5000, Greeting::new("local")).unwrap();
    assert_eq!(r.text, "re: local");

    // A new incarnation on the same port is reached and used.
    let new = PeerProcess::start(&bin, port).await;
    assert_eq!(new.node, old.node);
    let cell = echo_of(&rust, &new).await;
    assert_ne!(cell.get_id(), old_cell.get_id());
    cell.link(sup.get_cell());
    let echo: ActorRef<GreeterMsg> = cell.clone().into();
    let r = call_t!(echo, GreeterMsg::Ask, 10_000, Greeting::new("hello again")).unwrap();
    assert_eq!(r.text, "hello again");
    let g = big("new");
    let r = call_t!(echo, GreeterMsg::Ask, 10_000, g.clone()).unwrap();
    assert!(
        r.text == g.text,
        "the new echo answers with our own request"
    );
    assert!(has_session(&rust, &new.node).await);

    // Nothing of the old incarnation arrived: no further ends, nothing for
    // the greeter, and the old RemoteActor stays dead.
    assert!(sup_ends.rx.try_recv().is_err());
    assert!(mon_ends.rx.try_recv().is_err());
    assert!(rx.try_recv().is_err());
    assert_eq!(old_cell.get_status(), ActorStatus::Stopped);
    assert_eq!(cell.get_status(), ActorStatus::Running);
}
