//! A `ractor_cluster` node built from the unmodified crates.io release,
//! driven line by line over stdin/stdout by kaisui's interop tests.
//!
//! Usage: `kaisui-upstream-node NODE_NAME COOKIE [PORT]` (port 0 or none:
//! pick a free one).
//!
//! Output lines (stdout; logs go to stderr):
//! * `listening PORT` once the node server is up
//! * `event opened|authenticated|ready|disconnected PEER` for node events
//!   (`PEER` is `-` while unknown)
//! * `noted ACTOR TEXT` when a local echo actor receives a cast, `stalled
//!   ACTOR TEXT` when it receives a call it won't answer
//! * one answer line per command, see [run_command]

use std::sync::Arc;
use std::time::Duration;

use kaisui_interop_msgs::{spawn_echo, EchoEvent, EchoMsg, Report};
use ractor::{ActorCell, ActorRef, RactorErr};
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{NodeEventSubscription, NodeServer, NodeServerMessage};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Print one protocol line. `println!` flushes at the newline, because
/// Rust's stdout is line buffered.
macro_rules! say {
    ($($arg:tt)*) => { println!($($arg)*) };
}

struct PrintEvents;

fn peer(ses: &NodeServerSessionInformation) -> String {
    ses.peer_name
        .as_ref()
        .map(|name| name.name.clone())
        .unwrap_or_else(|| "-".to_string())
}

impl NodeEventSubscription for PrintEvents {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        say!("event opened {}", peer(&ses));
    }
    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        say!("event disconnected {}", peer(&ses));
    }
    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        say!("event authenticated {}", peer(&ses));
    }
    fn node_session_ready(&self, ses: NodeServerSessionInformation) {
        say!("event ready {}", peer(&ses));
    }
}

/// A port nobody listens on right now. Racy by nature, hence the retries
/// in [start_server].
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start_server(
    name: &str,
    cookie: &str,
    port: u16,
) -> Result<(ActorRef<NodeServerMessage>, u16), String> {
    let mut last_err = String::new();
    for _ in 0..5 {
        let port = if port == 0 {
            free_port().map_err(|err| err.to_string())?
        } else {
            port
        };
        let server = NodeServer::new(
            port,
            cookie.to_string(),
            name.to_string(),
            "localhost".to_string(),
            None,
            None,
        );
        match ractor::Actor::spawn(None, server, ()).await {
            Ok((server, _)) => return Ok((server, port)),
            Err(err) => last_err = format!("port {port}: {err}"),
        }
    }
    Err(last_err)
}

async fn sessions(
    server: &ActorRef<NodeServerMessage>,
) -> Result<Vec<NodeServerSessionInformation>, String> {
    ractor::call_t!(server, NodeServerMessage::GetSessions, 5_000)
        .map(|sessions| sessions.into_values().collect())
        .map_err(|err| err.to_string())
}

/// The remote actor named `name` held by one of the node's sessions.
async fn remote_actor(server: &ActorRef<NodeServerMessage>, name: &str) -> Option<ActorCell> {
    sessions(server)
        .await
        .ok()?
        .into_iter()
        .find_map(|session| {
            session
                .actor
                .get_cell()
                .get_children()
                .into_iter()
                .find(|child| {
                    !child.get_id().is_local() && child.get_name().as_deref() == Some(name)
                })
        })
}

/// Local echo actors spawned by `spawn`, kept alive until `stop`/exit.
type Locals = std::collections::HashMap<String, ActorRef<EchoMsg>>;

/// Run one command line and return the answer line.
///
/// * `connect HOST:PORT` -> `connected` | `error ...`
/// * `sessions` -> `sessions N [PEER...]`
/// * `spawn NAME` -> `spawned NAME`
/// * `stop NAME` -> `stopped NAME`
/// * `join GROUP NAME` / `leave GROUP NAME` -> `joined|left GROUP NAME`
/// * `members GROUP` -> `members GROUP [NAME...]` (remote members, sorted)
/// * `remote NAME` -> `remote NAME yes|no` (`where NAME` is `yes` only if
///   the name registry has it)
/// * `cast NAME TEXT` -> `cast-sent NAME`
/// * `call NAME TEXT` -> `reply NAME ANSWER` | `call-failed NAME ERR`
/// * `stall NAME MILLIS` -> `timeout NAME` | `call-failed NAME ERR` (the
///   latter is what a timed-out remote call usually reports, see the
///   tests' `silent_remote_call_times_out`)
async fn run_command(
    server: &ActorRef<NodeServerMessage>,
    locals: &mut Locals,
    report: &Report,
    line: &str,
) -> String {
    let mut words = line.splitn(3, ' ');
    let command = words.next().unwrap_or_default();
    let first = words.next().unwrap_or_default().to_string();
    let rest = words.next().unwrap_or_default().to_string();
    match command {
        "connect" => match ractor_cluster::client_connect(server, first.as_str()).await {
            Ok(()) => "connected".to_string(),
            Err(err) => format!("error connect {err}"),
        },
        "sessions" => match sessions(server).await {
            Ok(list) => {
                let mut peers: Vec<String> = list.iter().map(peer).collect();
                peers.sort();
                format!("sessions {} {}", list.len(), peers.join(" "))
                    .trim_end()
                    .to_string()
            }
            Err(err) => format!("error sessions {err}"),
        },
        "spawn" => match spawn_echo(&first, report.clone()).await {
            Ok(actor) => {
                locals.insert(first.clone(), actor);
                format!("spawned {first}")
            }
            Err(err) => format!("error spawn {err}"),
        },
        "stop" => match locals.remove(&first) {
            Some(actor) => {
                let _ = actor.stop_and_wait(None, None).await;
                format!("stopped {first}")
            }
            None => format!("error stop no local actor {first}"),
        },
        "join" | "leave" => match locals.get(&rest) {
            Some(actor) => {
                if command == "join" {
                    ractor::pg::join(first.clone(), vec![actor.get_cell()]);
                    format!("joined {first} {rest}")
                } else {
                    ractor::pg::leave(first.clone(), vec![actor.get_cell()]);
                    format!("left {first} {rest}")
                }
            }
            None => format!("error {command} no local actor {rest}"),
        },
        "members" => {
            let mut names: Vec<String> = ractor::pg::get_members(&first)
                .into_iter()
                .filter(|member| !member.get_id().is_local())
                .map(|member| member.get_name().unwrap_or_else(|| "-".to_string()))
                .collect();
            names.sort();
            format!("members {first} {}", names.join(" "))
                .trim_end()
                .to_string()
        }
        "remote" => {
            let found = remote_actor(server, &first).await.is_some();
            format!("remote {first} {}", if found { "yes" } else { "no" })
        }
        "where" => {
            let found = ractor::registry::where_is(first.clone()).is_some();
            format!("where {first} {}", if found { "yes" } else { "no" })
        }
        "cast" => match remote_actor(server, &first).await {
            Some(cell) => {
                let actor: ActorRef<EchoMsg> = cell.into();
                match actor.cast(EchoMsg::Note(rest)) {
                    Ok(()) => format!("cast-sent {first}"),
                    Err(err) => format!("error cast {err}"),
                }
            }
            None => format!("error cast no remote actor {first}"),
        },
        "call" | "stall" => match remote_actor(server, &first).await {
            Some(cell) => {
                let actor: ActorRef<EchoMsg> = cell.into();
                let result = if command == "call" {
                    ractor::call_t!(actor, EchoMsg::Ask, 10_000, rest)
                } else {
                    let millis = rest.parse().unwrap_or(300);
                    ractor::call_t!(actor, EchoMsg::Stall, millis, "stall".to_string())
                };
                match result {
                    Ok(answer) => format!("reply {first} {answer}"),
                    Err(RactorErr::Timeout) => format!("timeout {first}"),
                    Err(err) => format!("call-failed {first} {err}"),
                }
            }
            None => format!("error {command} no remote actor {first}"),
        },
        _ => format!("error unknown command {line:?}"),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(cookie)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: kaisui-upstream-node NODE_NAME COOKIE [PORT]");
        std::process::exit(2);
    };
    let port = args.get(3).and_then(|p| p.parse().ok()).unwrap_or(0);

    let (server, port) = match start_server(name, cookie, port).await {
        Ok(started) => started,
        Err(err) => {
            say!("error start {err}");
            std::process::exit(1);
        }
    };
    if let Err(err) = server.cast(NodeServerMessage::SubscribeToEvents {
        id: "stdout".to_string(),
        subscription: Box::new(PrintEvents),
    }) {
        say!("error subscribe {err}");
        std::process::exit(1);
    }
    say!("listening {port}");

    let report: Report = Arc::new(|event| match event {
        EchoEvent::Noted { actor, text } => say!("noted {actor} {text}"),
        EchoEvent::Stalled { actor, text } => say!("stalled {actor} {text}"),
    });
    let mut locals = Locals::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    // EOF on stdin (the test dropped us) ends the node like `quit`.
    while let Ok(Some(line)) = lines.next_line().await {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "quit" {
            break;
        }
        let answer = run_command(&server, &mut locals, &report, line).await;
        say!("{answer}");
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server.stop_and_wait(None, None)).await;
    say!("bye");
}
