//! A node of the unmodified crates.io `ractor_cluster`, in a child process.
//!
//! The node is the binary of `tests/upstream-node`, a crate in its own
//! workspace so that kaisui's `[patch.crates-io]` does not reach it. It is
//! built on first use with `cargo build` into `<repo>/target/upstream-node`
//! and driven over stdin/stdout with the line protocol documented in
//! `tests/upstream-node/src/main.rs`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

use tokio::sync::mpsc;

use crate::harness::WAIT;

/// The kaisui repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives one level below the repository root")
}

/// Build the upstream node (once per process) and return its binary.
///
/// The first build compiles the upstream crates and takes minutes; later
/// ones are quick no-ops. Panics with cargo's output if the build fails.
pub async fn upstream_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    if let Some(binary) = BINARY.get() {
        return binary.clone();
    }
    let built = tokio::task::spawn_blocking(|| {
        BINARY
            .get_or_init(|| {
                let root = repo_root();
                let manifest = root.join("tests/upstream-node/Cargo.toml");
                let target_dir = root.join("target/upstream-node");
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                tracing::info!(manifest = %manifest.display(), "building the upstream node");
                // Output captured: shown only if the build fails.
                let output = Command::new(cargo)
                    .arg("build")
                    .arg("--locked")
                    .arg("--manifest-path")
                    .arg(&manifest)
                    .env("CARGO_TARGET_DIR", &target_dir)
                    .output()
                    .expect("run cargo build for the upstream node");
                assert!(
                    output.status.success(),
                    "building the upstream node failed ({}):\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                );
                target_dir.join("debug").join(format!(
                    "kaisui-upstream-node{}",
                    std::env::consts::EXE_SUFFIX
                ))
            })
            .clone()
    })
    .await
    .expect("build task");
    built
}

/// A running upstream node. Killed on drop, so a failing test leaves no
/// process behind.
#[derive(Debug)]
pub struct UpstreamNode {
    /// The name peers know it by (`NODE_NAME@localhost`)
    pub full_name: String,
    /// The port its node server listens on
    pub port: u16,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
    /// Lines received but not yet consumed by an [UpstreamNode::expect].
    unread: Vec<String>,
}

impl UpstreamNode {
    /// Start an upstream node called `node_name` and wait until it listens.
    pub async fn spawn(node_name: &str, cookie: &str) -> UpstreamNode {
        let binary = upstream_binary().await;
        let mut child = Command::new(&binary)
            .arg(node_name)
            .arg(cookie)
            .arg("0")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", binary.display()));

        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::unbounded_channel();
        let label = node_name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                tracing::debug!(node = %label, "upstream says: {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Its logs become part of the test's log, shown when a test fails.
        let label = node_name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                tracing::info!(node = %label, "upstream log: {line}");
            }
        });

        let mut node = UpstreamNode {
            full_name: format!("{node_name}@localhost"),
            port: 0,
            child,
            stdin,
            lines,
            unread: Vec::new(),
        };
        let line = node
            .expect("the upstream node to listen", |line| {
                line.starts_with("listening ") || line.starts_with("error ")
            })
            .await;
        node.port = line
            .strip_prefix("listening ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("upstream node failed to start: {line}"));
        node
    }

    /// Send one line to the node.
    pub fn send(&mut self, line: &str) {
        tracing::debug!(node = %self.full_name, "to upstream: {line}");
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|err| panic!("write to the upstream node: {err}"));
    }

    /// Wait for an output line matching `wanted` and return it. Lines that
    /// don't match are kept for later calls.
    pub async fn expect(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        if let Some(at) = self.unread.iter().position(|line| wanted(line)) {
            return self.unread.remove(at);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if wanted(&line) => return line,
                Ok(Some(line)) => self.unread.push(line),
                Ok(None) => panic!(
                    "the upstream node exited while waiting for {what}; unread output: {:?}",
                    self.unread
                ),
                Err(_) => panic!(
                    "gave up after {WAIT:?} waiting for the upstream node: {what}; \
                     unread output: {:?}",
                    self.unread
                ),
            }
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every output line not consumed yet, without waiting.
    pub fn unread_output(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.unread.push(line);
        }
        &self.unread
    }

    /// Run a command and return its answer line.
    ///
    /// The node answers every command with exactly one line, in order;
    /// `event`, `noted` and `stalled` lines are asynchronous and kept for
    /// [UpstreamNode::expect].
    pub async fn request(&mut self, command: &str) -> String {
        self.send(command);
        let what = format!("the answer to {command:?}");
        self.expect(&what, |line| {
            !["event ", "noted ", "stalled "]
                .iter()
                .any(|prefix| line.starts_with(prefix))
        })
        .await
    }

    /// Repeat `command` until its answer satisfies `done`, failing after
    /// [WAIT]; for state that propagates asynchronously.
    pub async fn request_until(&mut self, command: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let answer = self.request(command).await;
            if done(&answer) {
                return answer;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("gave up after {WAIT:?} waiting for {command:?} to change; last answer: {answer:?}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Ask the node to quit and wait for it to exit.
    pub async fn quit(mut self) {
        self.send("quit");
        self.expect("the upstream node to say bye", |line| line == "bye")
            .await;
    }
}

impl Drop for UpstreamNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
