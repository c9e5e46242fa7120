//! The demo's actors. Each reports what it received on the demo's output.

use std::time::Duration;

use dp_tcp::DpTcp;
use dp_wire::dp::ProcessId;
use dp_wire::Limits;
use ractor::{call_t, cast, Actor, ActorProcessingErr, ActorRef};

use crate::msgs::{show_greeting, Answer, Count, CounterMsg, GreeterMsg, Greeting, Question};
use crate::{say, Out};

/// Answers `Ask`, reports `Hello`; on DpTcp it also greets back (cast and
/// call) a Haskell process whose pid a `Hello` carries in `reply_to`.
pub struct Greeter {
    /// Which node it runs on, for the output.
    pub who: &'static str,
    /// Where it reports.
    pub out: Out,
    /// Set on the DpTcp node: how to reach Haskell pids from payloads.
    pub dp: Option<DpTcp>,
}

impl Actor for Greeter {
    type Msg = GreeterMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Self::Msg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        message: Self::Msg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match message {
            GreeterMsg::Hello(g) => {
                say(
                    &self.out,
                    format!(
                        "  {} greeter received Hello {}",
                        self.who,
                        show_greeting(&g)
                    ),
                );
                if let (Some(dp), false) = (&self.dp, g.reply_to.is_empty()) {
                    match dp_wire::binary::decode_exact::<ProcessId>(
                        &g.reply_to,
                        &Limits::default(),
                    ) {
                        // A task, so that the greeter keeps serving meanwhile.
                        Ok(pid) => {
                            tokio::spawn(greet_back(dp.clone(), pid, g.text, self.out.clone()));
                        }
                        Err(e) => {
                            tracing::warn!("Greeting.reply_to is not a Binary ProcessId: {e}")
                        }
                    }
                }
            }
            GreeterMsg::Ask(q, reply) => {
                let answer = Answer {
                    text: format!("{} greeter heard {:?}", self.who, q.text),
                };
                say(
                    &self.out,
                    format!(
                        "  {} greeter received Ask {:?}, replies {:?}",
                        self.who, q.text, answer.text
                    ),
                );
                reply.send(answer)?;
            }
        }
        Ok(())
    }
}

/// Cast a `Hello` to the Haskell process `pid`, then call it with `Ask`.
async fn greet_back(dp: DpTcp, pid: ProcessId, text: String, out: Out) {
    let result: Result<(), String> = async {
        let to: ActorRef<GreeterMsg> = dp.process(&pid).await.map_err(|e| e.to_string())?.into();
        let hello = Greeting {
            text: format!("welcome, {text}"),
            reply_to: vec![],
        };
        say(
            &out,
            format!(
                "[rust → haskell] greeter casts Hello {} to {pid} (found via DpTcp::process)",
                show_greeting(&hello)
            ),
        );
        cast!(to, GreeterMsg::Hello(hello)).map_err(|e| e.to_string())?;
        let q = Question {
            text: format!("how are you, {text}?"),
        };
        say(
            &out,
            format!("[rust → haskell] greeter calls {pid} with Ask {:?}", q.text),
        );
        let answer = call_t!(to, GreeterMsg::Ask, 5_000, q).map_err(|e| e.to_string())?;
        say(
            &out,
            format!(
                "[haskell → rust] greeter's call to {pid} returned AskReply {:?}",
                answer.text
            ),
        );
        Ok(())
    }
    .await;
    if let Err(e) = result {
        say(&out, format!("greeter could not greet {pid} back: {e}"));
    }
}

/// Adds up `Add`s; answers `Get` with the total.
pub struct Counter {
    /// Where it reports.
    pub out: Out,
}

impl Actor for Counter {
    type Msg = CounterMsg;
    type State = i64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Self::Msg>, _: ()) -> Result<i64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _: ActorRef<Self::Msg>,
        message: Self::Msg,
        total: &mut i64,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            CounterMsg::Add(inc) => {
                *total += inc.by;
                say(
                    &self.out,
                    format!("  counter received Add {{ by: {} }}, total {total}", inc.by),
                );
            }
            CounterMsg::Get(reply) => {
                say(
                    &self.out,
                    format!("  counter received Get, replies Count {{ value: {total} }}"),
                );
                reply.send(Count { value: *total })?;
            }
        }
        Ok(())
    }
}

/// Bound of every wait of the demo.
pub const T: Duration = Duration::from_secs(10);
