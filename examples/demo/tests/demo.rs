//! Runs the demo binary end to end, as `cargo xtask demo` does.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bound of a whole demo run (never a timing assertion).
const LIMIT: Duration = Duration::from_secs(120);

fn demo(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kaisui-demo"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the demo starts")
}

/// Each line of the child's stdout as it comes, plus its whole stderr.
fn output(child: &mut Child) -> (mpsc::Receiver<String>, std::thread::JoinHandle<String>) {
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    (rx, err)
}

fn wait(child: &mut Child, deadline: Instant) -> ExitStatus {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn demo_shows_every_exchange_and_exits_0() {
    // Hold the requested port, so that the fallback is exercised too.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut child = demo(&["--port", &port]);
    let (lines, err) = output(&mut child);
    let status = wait(&mut child, Instant::now() + LIMIT);
    let out: Vec<String> = lines.iter().collect();
    let out = out.join("\n");
    let err = err.join().unwrap();
    assert!(status.success(), "{status}\nstdout:\n{out}\nstderr:\n{err}");
    for needle in [
        &format!("port {port} is not available"),
        "falling back to an ephemeral port",
        // native
        "[beta → alpha] cast Hello",
        "alpha greeter received Ask",
        "[beta → alpha] reply",
        // Haskell → Rust
        "whereisRemoteAsync \"greeter\" → WhereIsReply (Just pid://",
        "rust greeter received Hello Greeting { text: \"hello by name\" }",
        "rust greeter received Hello Greeting { text: \"hello by pid\" }",
        "[rust → haskell] AskReply \"rust greeter heard \\\"what's new?\\\"\"",
        "counter received Add { by: 40 }, total 42",
        "[rust → haskell] GetReply (Count { value: 42 })",
        // Rust → Haskell, by a pid from a payload and by name
        "haskell echo received Hello Greeting { text: \"welcome, echo\" }",
        "returned AskReply \"echo: how are you, echo?\"",
        "DpTcp::whereis(",
        "haskell echo received Hello Greeting { text: \"hi echo, from rust\" }",
        "[haskell → rust] call returned AskReply \"echo: are you there?\"",
        "exchange complete: nothing dropped, no protocol violations",
        // how to connect
        "== 3. Connect from Haskell ==",
        "Kaisui.Greeter.AskReply",
        "docs/haskell-guide.md",
        "cabal run greet -- 127.0.0.1:",
        "demo finished",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    drop(taken);
}

#[cfg(unix)]
#[test]
fn serve_keeps_the_node_up_until_ctrl_c() {
    let mut child = demo(&["--port", "0", "--serve"]);
    let (lines, err) = output(&mut child);
    let deadline = Instant::now() + LIMIT;
    let mut out = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("{e}; stdout so far:\n{out}"));
        out.push_str(&line);
        out.push('\n');
        if line.contains("press Ctrl-C to stop") {
            break;
        }
    }
    // Still up: the node keeps serving until the signal.
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "{out}");
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = wait(&mut child, deadline);
    out.extend(lines.iter().map(|l| l + "\n"));
    let err = err.join().unwrap();
    assert!(status.success(), "{status}\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("demo finished"), "{out}");
}
