//! A plain DP node as an OS process, for tests that kill a peer for real
//! (SIGKILL, mid-message).
//!
//! Usage: `dp-peer-node [PORT]` (0 or absent: a free port). Starts a
//! [`PlainNode`] on 127.0.0.1, registers a process as `echo`, prints the
//! NodeId (`127.0.0.1:PORT:0`) as one line on stdout and runs until
//! killed. A failed bind exits with status 1 (the caller may retry).
//!
//! `echo` speaks the greeter protocol of the DpTcp tests (module
//! `Kaisui.Greeter` of unit `main`): `Ask !ProcessId !ByteString` is
//! answered with `AskReply` carrying the same ByteString, so a Rust
//! `call` of any size gets its own request back; `Hello` is ignored, as is
//! anything else.

use std::io::Write;
use std::time::Duration;

use dp_peer::{PlainNode, PlainNodeConfig};
use dp_wire::binary::{Decode, Reader};
use dp_wire::dp::{Message, ProcessId};
use dp_wire::fingerprint::{Fingerprint, TyCon, TypeRep};
use dp_wire::Limits;

fn greeter_fp(name: &'static str) -> Fingerprint {
    TypeRep::con(TyCon::new("main", "Kaisui.Greeter", name)).fingerprint()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let port = match std::env::args().nth(1) {
        Some(p) => p.parse::<u16>().expect("usage: dp-peer-node [PORT]"),
        None => 0,
    };
    let mut config = PlainNodeConfig::new("127.0.0.1");
    config.port = port;
    let node = match PlainNode::start_with(config).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("dp-peer-node: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    let echo = node.spawn();
    node.register("echo", &echo.pid());
    {
        let mut out = std::io::stdout().lock();
        let id = node.node_id();
        writeln!(out, "{}", id.as_str().expect("an ASCII address")).expect("stdout");
        out.flush().expect("stdout");
    }

    let (ask, reply) = (greeter_fp("Ask"), greeter_fp("AskReply"));
    let limits = Limits::default();
    loop {
        let m = match echo.expect(Duration::from_secs(3600)).await {
            Ok(m) => m,
            Err(dp_peer::PeerError::Timeout) => continue,
            Err(e) => {
                eprintln!("dp-peer-node: echo ended: {e}");
                std::process::exit(2);
            }
        };
        if m.fingerprint != ask {
            continue;
        }
        let payload = m.payload();
        let mut r = Reader::shared(&payload, &limits);
        let Ok(to) = ProcessId::decode(&mut r) else {
            eprintln!("dp-peer-node: an Ask without a reply pid");
            continue;
        };
        // A send to a peer whose connection is gone fails; like Haskell's
        // `send`, the echo carries on.
        let _ = echo.send(&to, Message::new(reply, r.take_rest())).await;
    }
}
