//! Why a process ended, as the process itself saw it, and the
//! `DiedReason` its node reports for that.
//!
//! In distributed-process a process ends when its code returns
//! (`DiedNormal`) or when an exception escapes it; `forkProcess` turns the
//! exception into `DiedException (show e)`, except for
//! `ProcessExitException` with a `String` reason, which becomes
//! `exit-from=<pid>,reason=<r>`. Link failures, `kill` and `exit` are such
//! exceptions, thrown into the process by its node controller.

use dp_wire::dp::{
    DiedReason, Message, NodeLinkException, PortLinkException, ProcessId, ProcessLinkException,
    SendPortId,
};
use dp_wire::fingerprint::Build;
use dp_wire::Limits;

/// How a [`Process`](crate::Process) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// Its code returned (the handle was dropped or `exit()`ed).
    Normal,
    /// `ProcessExitException from reason`: `die reason` (then `from` is the
    /// process itself) or `exit pid reason` from another process.
    Exit {
        /// Who raised it.
        from: ProcessId,
        /// The reason, a message of any type.
        reason: Message,
    },
    /// `ProcessKillException by reason`, from `kill pid reason`.
    Kill {
        /// Who killed it.
        by: ProcessId,
        /// The reason text.
        reason: String,
    },
    /// A linked process ended (for any reason, normal included).
    ProcessLink(ProcessLinkException),
    /// A linked node was lost.
    NodeLink(NodeLinkException),
    /// A linked typed channel died.
    PortLink(PortLinkException),
    /// Any other uncaught exception, by its `show` text (`error "…"`'s
    /// message and call stack, `thread killed` at `closeLocalNode`).
    Exception(String),
    /// Ended with exactly this `DiedReason` (for tests that need a reason
    /// no exception produces, such as `DiedNodeDown`).
    Reported(DiedReason),
}

impl ExitReason {
    /// The `DiedReason` watchers are told (`forkProcess`'s handlers).
    pub fn died_reason(&self, build: &Build) -> DiedReason {
        match self {
            ExitReason::Normal => DiedReason::Normal,
            ExitReason::Exit { from, reason } => {
                match reason.decode_as::<String>(build, &Limits::default()) {
                    Ok(Some(r)) => DiedReason::Exception(format!("exit-from={from},reason={r}")),
                    // `show (ProcessExitException ..)` for other reason types.
                    _ => DiedReason::Exception(format!("exit-from={from}")),
                }
            }
            ExitReason::Kill { by, reason } => {
                DiedReason::Exception(format!("killed-by={by},reason={reason}"))
            }
            ExitReason::ProcessLink(e) => DiedReason::Exception(format!(
                "ProcessLinkException {} {}",
                e.pid,
                show_died_reason(&e.reason, 11)
            )),
            ExitReason::NodeLink(e) => DiedReason::Exception(format!(
                "NodeLinkException {} {}",
                e.node,
                show_died_reason(&e.reason, 11)
            )),
            ExitReason::PortLink(e) => DiedReason::Exception(format!(
                "PortLinkException {} {}",
                show_send_port_id(&e.port),
                show_died_reason(&e.reason, 11)
            )),
            ExitReason::Exception(s) => DiedReason::Exception(s.clone()),
            ExitReason::Reported(r) => r.clone(),
        }
    }
}

impl From<DiedReason> for ExitReason {
    fn from(r: DiedReason) -> Self {
        match r {
            DiedReason::Normal => ExitReason::Normal,
            DiedReason::Exception(s) => ExitReason::Exception(s),
            other => ExitReason::Reported(other),
        }
    }
}

/// `showsPrec d` of a `DiedReason` (derived `Show`): constructor
/// arguments are parenthesized at precedence 11.
pub fn show_died_reason(r: &DiedReason, d: u8) -> String {
    match r {
        DiedReason::Normal => "DiedNormal".into(),
        DiedReason::Exception(s) => {
            let inner = format!("DiedException {}", show_string(s));
            if d >= 11 {
                format!("({inner})")
            } else {
                inner
            }
        }
        DiedReason::Disconnect => "DiedDisconnect".into(),
        DiedReason::NodeDown => "DiedNodeDown".into(),
        DiedReason::UnknownId => "DiedUnknownId".into(),
    }
}

/// `show :: SendPortId` (`cid://host:port:ep:counter:channel`).
fn show_send_port_id(p: &SendPortId) -> String {
    format!(
        "cid://{}:{}:{}",
        String::from_utf8_lossy(p.process.node.as_bytes()),
        p.process.local.counter,
        p.local
    )
}

/// ASCII control character names used by Haskell's `showLitChar`.
const ASCII_NAMES: [&str; 32] = [
    "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "a", "b", "t", "n", "v", "f", "r", "SO", "SI",
    "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS",
    "RS", "US",
];

/// Haskell's `show :: String`: quoted, with `showLitChar` escapes and the
/// `\&` separators that keep escapes unambiguous.
pub fn show_string(s: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x7f' => out.push_str("\\DEL"),
            c if (c as u32) < 32 => {
                out.push('\\');
                out.push_str(ASCII_NAMES[c as usize]);
                // "\SO" followed by 'H' would read as "\SOH".
                if c == '\x0e' && next == Some('H') {
                    out.push_str("\\&");
                }
            }
            c if (c as u32) > 127 => {
                out.push_str(&format!("\\{}", c as u32));
                // A numeric escape must not run into a following digit.
                if next.is_some_and(|n| n.is_ascii_digit()) {
                    out.push_str("\\&");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dp_wire::dp::{LocalProcessId, NodeId};

    #[test]
    fn link_exception_text_matches_capture_05_log() {
        let pid = ProcessId {
            node: NodeId::new("127.0.0.1:10502:0"),
            local: LocalProcessId {
                unique: 1,
                counter: 8,
            },
        };
        let e = ExitReason::ProcessLink(ProcessLinkException {
            pid: pid.clone(),
            reason: DiedReason::Exception(format!("exit-from={pid},reason=linked-boom")),
        });
        assert_eq!(
            e.died_reason(&Build::default()),
            DiedReason::Exception(
                "ProcessLinkException pid://127.0.0.1:10502:0:8 (DiedException \
                 \"exit-from=pid://127.0.0.1:10502:0:8,reason=linked-boom\")"
                    .into()
            )
        );
    }

    #[test]
    fn show_string_escapes_like_ghc() {
        assert_eq!(show_string("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(show_string("\u{e9}1"), r#""\233\&1""#);
        assert_eq!(show_string("\x0eH"), r#""\SO\&H""#);
        assert_eq!(show_string("\x01"), r#""\SOH""#);
    }
}
