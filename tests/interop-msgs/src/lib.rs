//! Messages and a tiny actor shared by both ends of kaisui's cluster tests.
//!
//! The integration tests run one node built from the kaisui fork of
//! `ractor_cluster` and, for the interop tests, one node built from the
//! unmodified crates.io release. Serialized cluster messages are only decoded
//! correctly when both ends agree on the exact enum, so the enum lives here
//! and both builds compile the same source.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;

/// The message protocol of an [EchoActor].
///
/// Variant order is part of the wire format (the derive numbers variants),
/// so new variants go at the end.
#[derive(RactorClusterMessage)]
pub enum EchoMsg {
    /// A cast: the actor reports the text through its [Report] callback.
    Note(String),
    /// A call answered with `"<actor name>:<text>"`.
    #[rpc]
    Ask(String, RpcReplyPort<String>),
    /// A call the actor never answers, so callers can observe a timeout.
    #[rpc]
    Stall(String, RpcReplyPort<String>),
}

/// What an [EchoActor] tells its owner about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EchoEvent {
    /// A [EchoMsg::Note] arrived at the named actor.
    Noted {
        /// The receiving actor's registered name
        actor: String,
        /// The note's text
        text: String,
    },
    /// A [EchoMsg::Stall] call arrived at the named actor (and will never
    /// be answered).
    Stalled {
        /// The receiving actor's registered name
        actor: String,
        /// The call's text
        text: String,
    },
}

/// Callback through which an [EchoActor] reports [EchoEvent]s; kept as a
/// plain closure so this crate needs no async runtime of its own.
pub type Report = Arc<dyn Fn(EchoEvent) + Send + Sync>;

/// An actor that reports casts and echoes calls, see [EchoMsg].
#[derive(Debug, Default)]
pub struct EchoActor;

/// State of an [EchoActor].
pub struct EchoState {
    name: String,
    report: Report,
    /// Reply ports of [EchoMsg::Stall] calls, held so they are neither
    /// answered nor dropped (a dropped port would end the call early).
    stalled: Vec<RpcReplyPort<String>>,
}

impl std::fmt::Debug for EchoState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoState")
            .field("name", &self.name)
            .field("stalled", &self.stalled.len())
            .finish_non_exhaustive()
    }
}

/// The text an [EchoActor] named `actor` answers to [EchoMsg::Ask] with `text`.
pub fn echo_reply(actor: &str, text: &str) -> String {
    format!("{actor}:{text}")
}

impl Actor for EchoActor {
    type Msg = EchoMsg;
    type State = EchoState;
    type Arguments = Report;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        report: Report,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(EchoState {
            name: myself.get_name().unwrap_or_default(),
            report,
            stalled: Vec::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EchoMsg::Note(text) => (state.report)(EchoEvent::Noted {
                actor: state.name.clone(),
                text,
            }),
            EchoMsg::Ask(text, reply) => {
                // The caller may have timed out already; that is its business.
                let _ = reply.send(echo_reply(&state.name, &text));
            }
            EchoMsg::Stall(text, reply) => {
                state.stalled.push(reply);
                (state.report)(EchoEvent::Stalled {
                    actor: state.name.clone(),
                    text,
                });
            }
        }
        Ok(())
    }
}

/// Spawn a named [EchoActor] reporting through `report`.
pub async fn spawn_echo(name: &str, report: Report) -> Result<ActorRef<EchoMsg>, ractor::SpawnErr> {
    let (actor, _) = Actor::spawn(Some(name.to_string()), EchoActor, report).await?;
    Ok(actor)
}
