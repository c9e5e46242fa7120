//! Part 2: a Rust node on DpTcp exchanging messages with a Cloud Haskell
//! node, and part 3: how a Haskell program connects to it.
//!
//! The Haskell node here is `dp_peer::PlainNode`, a plain
//! distributed-process node written in Rust for kaisui's tests, started in
//! this process because the demo must run without GHC. Its processes do
//! what `examples/haskell/app/Greet.hs` (`client`) and `Echo.hs` (`echo`)
//! do, with the same types and payloads.

use std::net::Ipv4Addr;
use std::time::Duration;

use dp_peer::{PlainNode, Process};
use dp_tcp::{DpError, DpTcp, DpTcpConfig};
use dp_wire::binary::{Decode, Encode, Reader};
use dp_wire::dp::{Message, NodeId, ProcessId};
use dp_wire::Limits;
use ractor::{Actor, ActorRef};
use ractor_cluster::NodeServer;

use crate::actors::{Counter, Greeter, T};
use crate::msgs::{
    self, show_greeting, Answer, Count, GreeterMsg, Greeting, HaskellTypes, Increment, Question,
    MAPPINGS,
};
use crate::{say, Lines, Out};

type Error = Box<dyn std::error::Error>;

/// What the user chose on the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Port of the DpTcp node; 0 for an ephemeral one.
    pub port: u16,
    /// Keep serving after the exchange, until Ctrl-C.
    pub serve: bool,
    /// Unit id of the Haskell message types.
    pub unit: String,
}

/// `port` if it can be bound on 127.0.0.1, else 0 (an ephemeral port).
fn pick_port(port: u16) -> u16 {
    if port == 0 {
        return 0;
    }
    match std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => port,
        Err(e) => {
            println!("port {port} is not available ({e}); falling back to an ephemeral port");
            0
        }
    }
}

/// ractor's packing of one field, which is Data.Binary's strict
/// ByteString: u64 BE length, then the length-delimited protobuf message.
fn packed(m: &impl prost::Message) -> Vec<u8> {
    let b = m.encode_length_delimited_to_vec();
    let mut v = (b.len() as u64).to_be_bytes().to_vec();
    v.extend_from_slice(&b);
    v
}

/// Inverse of [`packed`], for one field spanning the whole payload.
fn unpack<M: prost::Message + Default>(payload: &[u8]) -> Result<M, String> {
    let (len, rest) = payload
        .split_at_checked(8)
        .ok_or("payload shorter than a ByteString length")?;
    let len = u64::from_be_bytes(len.try_into().map_err(|_| "bad length")?);
    if len != rest.len() as u64 {
        return Err(format!("ByteString of {len} bytes in {} bytes", rest.len()));
    }
    M::decode_length_delimited(rest).map_err(|e| e.to_string())
}

/// `Ask replyTo bytes` (or `Get replyTo`): the reply pid, then the rest.
fn split_request(payload: &[u8]) -> Result<(ProcessId, Vec<u8>), String> {
    let limits = Limits::default();
    let bytes = bytes::Bytes::copy_from_slice(payload);
    let mut r = Reader::shared(&bytes, &limits);
    let pid = ProcessId::decode(&mut r).map_err(|e| e.to_string())?;
    Ok((pid, r.take_rest().to_vec()))
}

fn request(reply_to: &ProcessId, rest: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    reply_to.encode(&mut v);
    v.extend_from_slice(rest);
    v
}

fn encoded_pid(pid: &ProcessId) -> Vec<u8> {
    let mut v = Vec::new();
    pid.encode(&mut v);
    v
}

/// The stand-in for `Echo.hs`: prints every `Hello`, answers every `Ask`.
async fn echo_loop(p: Process, types: HaskellTypes, out: Out) {
    let (hello, ask) = (types.greeter("Hello"), types.greeter("Ask"));
    while let Ok(m) = p.expect(Duration::from_secs(24 * 3600)).await {
        let payload = m.payload();
        if m.fingerprint == hello {
            match unpack::<Greeting>(&payload) {
                Ok(g) => say(
                    &out,
                    format!("  haskell echo received Hello {}", show_greeting(&g)),
                ),
                Err(e) => say(&out, format!("FAILED: echo got a bad Hello: {e}")),
            }
        } else if m.fingerprint == ask {
            let parsed = split_request(&payload)
                .and_then(|(pid, rest)| Ok((pid, unpack::<Question>(&rest)?)));
            let (reply_to, q) = match parsed {
                Ok(x) => x,
                Err(e) => {
                    say(&out, format!("FAILED: echo got a bad Ask: {e}"));
                    continue;
                }
            };
            let answer = Answer {
                text: format!("echo: {}", q.text),
            };
            say(
                &out,
                format!(
                    "  haskell echo received Ask {:?} (reply to {reply_to}), replies AskReply {:?}",
                    q.text, answer.text
                ),
            );
            let reply = Message::new(types.greeter("AskReply"), packed(&answer));
            if let Err(e) = p.send(&reply_to, reply).await {
                say(&out, format!("FAILED: echo could not reply: {e}"));
            }
        } else {
            say(
                &out,
                format!(
                    "  haskell echo ignored a message of type {}",
                    types.name_of(&m.fingerprint)
                ),
            );
        }
    }
}

/// Waits until the transport is listening and returns its NodeId.
async fn listening(dp: &DpTcp) -> Result<NodeId, Error> {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        if let Some(n) = dp.node_id() {
            return Ok(n);
        }
        if tokio::time::Instant::now() > deadline {
            return Err("the DpTcp node did not start listening".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Parts 2 and 3.
pub async fn run(opts: &Options, out: &Out, lines: &mut Lines) -> Result<(), Error> {
    println!();
    println!("== 2. A Rust node on DpTcp and a Cloud Haskell node ==");
    let types = HaskellTypes::new(&opts.unit);
    let dp = DpTcp::new(DpTcpConfig::new(msgs::registry(&opts.unit)))?;
    let server = NodeServer::new(
        pick_port(opts.port),
        String::new(), // DP has no cookie
        "kaisui-demo".into(),
        "127.0.0.1".into(),
        None,
        None,
    )
    .with_transport(dp.clone());
    let (server, server_handle) = Actor::spawn(None, server, ()).await?;
    let node = listening(&dp).await?;
    let addr = node.as_str().ok_or("non-UTF-8 NodeId")?.to_owned();
    println!("rust node on DpTcp: NodeId {addr}, actors \"greeter\" and \"counter\"");
    let greeter = Greeter {
        who: "rust",
        out: out.clone(),
        dp: Some(dp.clone()),
    };
    let (greeter, _) = Actor::spawn(Some("greeter".into()), greeter, ()).await?;
    let counter = Counter { out: out.clone() };
    let (counter, _) = Actor::spawn(Some("counter".into()), counter, ()).await?;

    let peer = PlainNode::start("127.0.0.1").await?;
    let peer_addr = peer
        .node_id()
        .as_str()
        .ok_or("non-UTF-8 NodeId")?
        .to_owned();
    let client = peer.spawn();
    let echo = peer.spawn();
    peer.register("echo", &echo.pid());
    println!(
        "haskell node (stand-in: dp_peer::PlainNode): NodeId {peer_addr}, process {} and \"echo\" {}",
        client.pid(),
        echo.pid()
    );

    // Haskell → Rust, as Greet.hs does it.
    let hello = |g: &Greeting| Message::new(types.greeter("Hello"), packed(g));
    let greeter_pid = client
        .whereis_remote(&node, "greeter", T)
        .await?
        .ok_or("whereis \"greeter\" answered Nothing")?;
    println!("[haskell → rust] whereisRemoteAsync \"greeter\" → WhereIsReply (Just {greeter_pid})");
    let g = Greeting {
        text: "hello by name".into(),
        reply_to: vec![],
    };
    println!(
        "[haskell → rust] nsendRemote \"greeter\" (Hello {})",
        show_greeting(&g)
    );
    client.nsend_remote(&node, "greeter", hello(&g)).await?;
    lines.wait_for("rust greeter received Hello").await?;
    let g = Greeting {
        text: "hello by pid".into(),
        reply_to: vec![],
    };
    println!(
        "[haskell → rust] send greeterPid (Hello {})",
        show_greeting(&g)
    );
    client.send(&greeter_pid, hello(&g)).await?;
    lines.wait_for("rust greeter received Hello").await?;
    let q = Question {
        text: "what's new?".into(),
    };
    println!("[haskell → rust] send greeterPid (Ask self {:?})", q.text);
    let ask = request(&client.pid(), &packed(&q));
    client
        .send(&greeter_pid, Message::new(types.greeter("Ask"), ask))
        .await?;
    let m = client.expect_fp(types.greeter("AskReply"), T).await?;
    lines.drain();
    let a: Answer = unpack(&m.payload())?;
    println!("[rust → haskell] AskReply {:?}", a.text);

    let counter_pid = client
        .whereis_remote(&node, "counter", T)
        .await?
        .ok_or("whereis \"counter\" answered Nothing")?;
    println!("[haskell → rust] whereisRemoteAsync \"counter\" → WhereIsReply (Just {counter_pid})");
    for by in [2, 40] {
        println!("[haskell → rust] nsendRemote \"counter\" (Add {{ by: {by} }})");
        let add = Message::new(types.counter("Add"), packed(&Increment { by }));
        client.nsend_remote(&node, "counter", add).await?;
        lines.wait_for("counter received Add").await?;
    }
    println!("[haskell → rust] send counterPid (Get self)");
    let get = Message::new(types.counter("Get"), request(&client.pid(), &[]));
    client.send(&counter_pid, get).await?;
    let m = client.expect_fp(types.counter("GetReply"), T).await?;
    lines.drain();
    let c: Count = unpack(&m.payload())?;
    println!("[rust → haskell] GetReply (Count {{ value: {} }})", c.value);
    if c.value != 42 {
        return Err(format!("the counter says {}, expected 42", c.value).into());
    }

    // Echo introduces itself with its pid inside the payload, as Echo.hs
    // does; the greeter casts and calls it back through DpTcp::process.
    let intro = Greeting {
        text: "echo".into(),
        reply_to: encoded_pid(&echo.pid()),
    };
    println!(
        "[haskell → rust] echo: nsendRemote \"greeter\" (Hello {})",
        show_greeting(&intro)
    );
    echo.nsend_remote(&node, "greeter", hello(&intro)).await?;
    tokio::spawn(echo_loop(echo, types.clone(), out.clone()));
    lines.wait_for("greeter's call to").await?;

    // Rust → Haskell by name.
    if let Err(DpError::NotConnected(_)) = dp.peer_info(&peer_addr).await {
        ractor_cluster::client_connect_transport(&server, peer_addr.clone()).await?;
    }
    let cell = dp.whereis(&peer_addr, "echo", T).await?;
    println!(
        "[rust → haskell] DpTcp::whereis({peer_addr:?}, \"echo\") → remote actor {}",
        cell.get_id()
    );
    let echo_ref: ActorRef<GreeterMsg> = cell.into();
    let g = Greeting {
        text: "hi echo, from rust".into(),
        reply_to: vec![],
    };
    println!("[rust → haskell] cast!(echo, Hello {})", show_greeting(&g));
    ractor::cast!(echo_ref, GreeterMsg::Hello(g))?;
    lines.wait_for("haskell echo received Hello").await?;
    let q = Question {
        text: "are you there?".into(),
    };
    println!("[rust → haskell] call_t!(echo, Ask {:?})", q.text);
    let a = ractor::call_t!(echo_ref, GreeterMsg::Ask, 5_000, q)?;
    lines.drain();
    println!("[haskell → rust] call returned AskReply {:?}", a.text);

    let info = dp.peer_info(&peer_addr).await?;
    let c = info.counters;
    if c.unknown_type + c.undecodable + c.no_such_target + c.stale_or_foreign > 0 {
        return Err(format!("DpTcp dropped messages: {c:?}").into());
    }
    if !peer.violations().is_empty() {
        return Err(format!("protocol violations: {:?}", peer.violations()).into());
    }
    println!("exchange complete: nothing dropped, no protocol violations");
    peer.close().await;

    print_how_to_connect(&addr, &types);
    if opts.serve {
        println!();
        println!("serving on {addr}; press Ctrl-C to stop");
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => { r?; break; }
                line = lines.next() => match line {
                    Some(l) => println!("{l}"),
                    None => break,
                },
            }
        }
    } else {
        println!();
        println!("(run with --serve to keep this node up for a Haskell program)");
    }
    greeter.stop(None);
    counter.stop(None);
    server.stop(None);
    server_handle.await?;
    Ok(())
}

fn print_how_to_connect(addr: &str, types: &HaskellTypes) {
    println!();
    println!("== 3. Connect from Haskell ==");
    println!("node:   NodeId (EndPointAddress {addr:?})   -- with OverloadedStrings");
    println!("names:  \"greeter\", \"counter\" (whereisRemoteAsync / nsendRemote)");
    println!(
        "types:  unit id {:?} (change with --haskell-unit), fingerprints:",
        types.unit()
    );
    for m in MAPPINGS {
        let rust = format!("{}::{}", m.rust_enum, m.variant);
        let req = format!("{}.{}", m.module, m.haskell);
        let fp = types.fp(m.module, m.haskell);
        match m.reply {
            None => println!("  {rust:<18} cast  {req:<25} {fp}"),
            Some(r) => {
                println!("  {rust:<18} call  {req:<25} {fp}");
                let rep = format!("{}.{r}", m.module);
                println!("  {:<18} reply {rep:<25} {}", "", types.fp(m.module, r));
            }
        }
    }
    println!("guide:  docs/haskell-guide.md");
    println!("try:    cd examples/haskell && cabal run greet -- {addr}");
    println!("        cd examples/haskell && cabal run echo -- {addr}");
}
