//! kaisui demo.
//!
//! 1. Two ractor nodes in this process exchange casts and calls over
//!    `NativeTransport`.
//! 2. A ractor node on `DpTcp` (address `127.0.0.1:<port>:0`) with a
//!    `greeter` and a `counter` exchanges casts and calls, both ways, with
//!    a Cloud Haskell node. The payloads are the protobuf messages of
//!    `proto/`. So that the demo runs without GHC, the Haskell node is
//!    `dp_peer::PlainNode`, kaisui's test-support implementation of a plain
//!    distributed-process node, started in this process; the real Haskell
//!    programs doing the same are in `examples/haskell/`.
//! 3. It prints how a Haskell program connects; with `--serve` it keeps
//!    the node up for one until Ctrl-C.
//!
//! Run it with `cargo xtask demo [-- --port N --serve]`. `RUST_LOG=debug`
//! shows the sessions' own logs. Any failed step exits non-zero.

mod actors;
mod haskell;
mod msgs;
mod native;

use std::process::ExitCode;

use tokio::sync::mpsc;

/// Where actors report what they received; the demo prints it in order.
pub type Out = mpsc::UnboundedSender<String>;

/// Report a line. A line starting with `FAILED:` fails the demo.
pub fn say(out: &Out, line: String) {
    let _ = out.send(line);
}

/// The receiving side of [`Out`].
pub struct Lines {
    rx: mpsc::UnboundedReceiver<String>,
}

impl Lines {
    /// Prints reported lines until one contains `needle`.
    pub async fn wait_for(&mut self, needle: &str) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + actors::T;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(line)) => {
                    println!("{line}");
                    if line.starts_with("FAILED:") || line.contains("could not") {
                        return Err(line);
                    }
                    if line.contains(needle) {
                        return Ok(line);
                    }
                }
                Ok(None) => return Err("all reporters are gone".into()),
                Err(_) => return Err(format!("timed out waiting for {needle:?}")),
            }
        }
    }

    /// Prints what was reported so far.
    pub fn drain(&mut self) {
        while let Ok(line) = self.rx.try_recv() {
            println!("{line}");
        }
    }

    /// The next reported line.
    pub async fn next(&mut self) -> Option<String> {
        self.rx.recv().await
    }
}

const USAGE: &str = "usage: kaisui-demo [--port N] [--serve] [--haskell-unit UNIT_ID]
  --port N              port of the DpTcp node (default 4000; 0 = ephemeral;
                        an ephemeral port is used if N is taken)
  --serve               keep the DpTcp node up after the exchange, until Ctrl-C
  --haskell-unit ID     unit id of the Haskell message types
                        (default kaisui-examples-0.1.0.0-inplace; see docs/haskell-guide.md)";

fn parse_args() -> Result<haskell::Options, String> {
    let mut opts = haskell::Options {
        port: 4000,
        serve: false,
        unit: msgs::DEFAULT_HASKELL_UNIT.into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => {
                let v = args.next().ok_or("--port needs a value")?;
                opts.port = v.parse().map_err(|e| format!("--port {v}: {e}"))?;
            }
            "--serve" => opts.serve = true,
            "--haskell-unit" => opts.unit = args.next().ok_or("--haskell-unit needs a value")?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // A session ending when the stand-in node closes is expected
            // here, not worth ractor_cluster's warning.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,ractor_cluster::node=error".into()),
        )
        .init();
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (out, rx) = mpsc::unbounded_channel();
    let mut lines = Lines { rx };
    let result = async {
        native::run(&out, &mut lines).await?;
        haskell::run(&opts, &out, &mut lines).await
    }
    .await;
    lines.drain();
    match result {
        Ok(()) => {
            println!("demo finished");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}
