//! Type representations of the types distributed-process sends, and the
//! fingerprints learned from the captured GHC 9.0.2 peers.

use std::borrow::Cow;

use super::{Fingerprint, TyCon, TypeRep};

/// Unit id of distributed-process in the captured build (Cabal hash
/// included; another build has another hash).
pub const CAPTURED_DP_UNIT_ID: &str = "distributed-process-0.7.8-1GhldZGvbyQHQJt5Uq6Atr";
/// Unit id of bytestring shipped with GHC 9.0.2.
pub const CAPTURED_BYTESTRING_UNIT_ID: &str = "bytestring-0.10.12.1";
/// Module that defines every distributed-process wire type.
pub const DP_TYPES_MODULE: &str = "Control.Distributed.Process.Internal.Types";

/// The build-dependent unit ids of a Haskell peer. Types from the wired-in
/// packages (`ghc-prim`, `base`) only depend on the GHC version and need
/// no parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Build {
    /// distributed-process's unit id, e.g. [`CAPTURED_DP_UNIT_ID`].
    pub dp_unit_id: Cow<'static, str>,
    /// bytestring's unit id, e.g. [`CAPTURED_BYTESTRING_UNIT_ID`].
    pub bytestring_unit_id: Cow<'static, str>,
}

impl Default for Build {
    /// The captured build.
    fn default() -> Self {
        Self {
            dp_unit_id: Cow::Borrowed(CAPTURED_DP_UNIT_ID),
            bytestring_unit_id: Cow::Borrowed(CAPTURED_BYTESTRING_UNIT_ID),
        }
    }
}

fn prim(module: &'static str, name: &'static str) -> TypeRep {
    TypeRep::con(TyCon::new("ghc-prim", module, name))
}

/// `Char`.
pub fn char() -> TypeRep {
    prim("GHC.Types", "Char")
}
/// `Int`.
pub fn int() -> TypeRep {
    prim("GHC.Types", "Int")
}
/// `Bool`.
pub fn bool() -> TypeRep {
    prim("GHC.Types", "Bool")
}
/// `()`.
pub fn unit() -> TypeRep {
    prim("GHC.Tuple", "()")
}
/// `[a]`.
pub fn list(a: TypeRep) -> TypeRep {
    prim("GHC.Types", "[]").app(a)
}
/// `String` = `[Char]`.
pub fn string() -> TypeRep {
    list(char())
}
/// `Maybe a`.
pub fn maybe(a: TypeRep) -> TypeRep {
    TypeRep::con(TyCon::new("base", "GHC.Maybe", "Maybe")).app(a)
}
/// `Either a b`.
pub fn either(a: TypeRep, b: TypeRep) -> TypeRep {
    TypeRep::con(TyCon::new("base", "Data.Either", "Either"))
        .app(a)
        .app(b)
}
/// `(a, b)`.
pub fn tuple2(a: TypeRep, b: TypeRep) -> TypeRep {
    prim("GHC.Tuple", "(,)").app(a).app(b)
}
/// `(a, b, c)`.
pub fn tuple3(a: TypeRep, b: TypeRep, c: TypeRep) -> TypeRep {
    prim("GHC.Tuple", "(,,)").app(a).app(b).app(c)
}
/// `(a, b, c, d)`.
pub fn tuple4(a: TypeRep, b: TypeRep, c: TypeRep, d: TypeRep) -> TypeRep {
    prim("GHC.Tuple", "(,,,)").app(a).app(b).app(c).app(d)
}

impl Build {
    /// A build with the given unit ids.
    pub fn new(
        dp_unit_id: impl Into<Cow<'static, str>>,
        bytestring_unit_id: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            dp_unit_id: dp_unit_id.into(),
            bytestring_unit_id: bytestring_unit_id.into(),
        }
    }

    /// A distributed-process type constructor by name.
    pub fn dp_tycon(&self, name: impl Into<Cow<'static, str>>) -> TyCon {
        TyCon::new(self.dp_unit_id.clone(), DP_TYPES_MODULE, name)
    }

    /// A distributed-process type with no arguments.
    pub fn dp_type(&self, name: impl Into<Cow<'static, str>>) -> TypeRep {
        TypeRep::con(self.dp_tycon(name))
    }

    /// Strict `ByteString`.
    pub fn strict_bytestring(&self) -> TypeRep {
        TypeRep::con(TyCon::new(
            self.bytestring_unit_id.clone(),
            "Data.ByteString.Internal",
            "ByteString",
        ))
    }
    /// Lazy `ByteString`.
    pub fn lazy_bytestring(&self) -> TypeRep {
        TypeRep::con(TyCon::new(
            self.bytestring_unit_id.clone(),
            "Data.ByteString.Lazy.Internal",
            "ByteString",
        ))
    }
    /// `ProcessId`.
    pub fn process_id(&self) -> TypeRep {
        self.dp_type("ProcessId")
    }
    /// `NodeId`.
    pub fn node_id(&self) -> TypeRep {
        self.dp_type("NodeId")
    }
    /// `SendPort a`.
    pub fn send_port(&self, a: TypeRep) -> TypeRep {
        self.dp_type("SendPort").app(a)
    }
    /// `WhereIsReply`.
    pub fn where_is_reply(&self) -> TypeRep {
        self.dp_type("WhereIsReply")
    }
    /// `RegisterReply`.
    pub fn register_reply(&self) -> TypeRep {
        self.dp_type("RegisterReply")
    }
    /// `DidSpawn`.
    pub fn did_spawn(&self) -> TypeRep {
        self.dp_type("DidSpawn")
    }
    /// `ProcessInfo`.
    pub fn process_info(&self) -> TypeRep {
        self.dp_type("ProcessInfo")
    }
    /// `ProcessInfoNone`.
    pub fn process_info_none(&self) -> TypeRep {
        self.dp_type("ProcessInfoNone")
    }
    /// `NodeStats`.
    pub fn node_stats(&self) -> TypeRep {
        self.dp_type("NodeStats")
    }
    /// `ProcessMonitorNotification`.
    pub fn process_monitor_notification(&self) -> TypeRep {
        self.dp_type("ProcessMonitorNotification")
    }
    /// `NodeMonitorNotification`.
    pub fn node_monitor_notification(&self) -> TypeRep {
        self.dp_type("NodeMonitorNotification")
    }
    /// `PortMonitorNotification`.
    pub fn port_monitor_notification(&self) -> TypeRep {
        self.dp_type("PortMonitorNotification")
    }
    /// `DidUnmonitor`.
    pub fn did_unmonitor(&self) -> TypeRep {
        self.dp_type("DidUnmonitor")
    }
    /// `DidUnlinkProcess`.
    pub fn did_unlink_process(&self) -> TypeRep {
        self.dp_type("DidUnlinkProcess")
    }
    /// `DidUnlinkNode`.
    pub fn did_unlink_node(&self) -> TypeRep {
        self.dp_type("DidUnlinkNode")
    }
    /// `DidUnlinkPort`.
    pub fn did_unlink_port(&self) -> TypeRep {
        self.dp_type("DidUnlinkPort")
    }
}

/// Fingerprints of the captured build (GHC 9.0.2, bytestring 0.10.12.1,
/// [`CAPTURED_DP_UNIT_ID`]), as seen on the wire or recomputed from it.
pub mod captured {
    use super::Fingerprint;

    const fn fp(s: &str) -> Fingerprint {
        match Fingerprint::from_hex(s) {
            Some(f) => f,
            None => panic!("bad fingerprint literal"),
        }
    }

    /// strict `ByteString` (on the wire in 01–12).
    pub const STRICT_BYTESTRING: Fingerprint = fp("0d85666aab1d56eb83253d32af7a7445");
    /// lazy `ByteString` (01, 02).
    pub const LAZY_BYTESTRING: Fingerprint = fp("4bd397876ae9f57cb2185cda656abb69");
    /// `String` (01, 02, 13, 14).
    pub const STRING: Fingerprint = fp("5931901b2f5e42de5f1bd0e88b5e43c5");
    /// `(String, strict ByteString)` (01).
    pub const STRING_BYTESTRING: Fingerprint = fp("347ad3681ca9ffec220da202b4dee380");
    /// `(ProcessId, strict ByteString)` (01, 02).
    pub const PROCESS_ID_BYTESTRING: Fingerprint = fp("a0637a07b37225b9d02fa2d8be868f97");
    /// `ProcessId` (10).
    pub const PROCESS_ID: Fingerprint = fp("6a26489a4a52ab9841b04990187835ef");
    /// `()` (05, 13, 17).
    pub const UNIT: Fingerprint = fp("d395a248530d97d03b0b33304cfbe3ff");
    /// `Int`.
    pub const INT: Fingerprint = fp("b1460030427ac0fa458cbf347f168b53");
    /// `Char`.
    pub const CHAR: Fingerprint = fp("913d973ca4cebc0b4829aec8318f79e1");
    /// `Bool`.
    pub const BOOL: Fingerprint = fp("ebf3a8541b05453b8bcac4a38e8b80a4");
    /// `Maybe Int`.
    pub const MAYBE_INT: Fingerprint = fp("d4a690b1255cd0bc4be344c8f725a714");
    /// `(String, String)` (the logger's message type).
    pub const STRING_STRING: Fingerprint = fp("452b86ad3055e4e400f0e2275d0d12c0");
    /// `NodeId`.
    pub const NODE_ID: Fingerprint = fp("a7d26553cdb77fc3c29cca54a9fca193");
    /// `SendPort ByteString` (strict; 09).
    pub const SEND_PORT_BYTESTRING: Fingerprint = fp("f7549fa7f5fd64f4aeaddf57c57aaa2f");
    /// `WhereIsReply` (03, 15).
    pub const WHERE_IS_REPLY: Fingerprint = fp("1de27da8e7d9f0672ff25e3e547b0acd");
    /// `RegisterReply` (15).
    pub const REGISTER_REPLY: Fingerprint = fp("b7f5fb36f3dda459535b2cdbe674e83c");
    /// `DidSpawn` (13).
    pub const DID_SPAWN: Fingerprint = fp("a717db07296e81af875986b5ee461ae5");
    /// `ProcessInfo` (16).
    pub const PROCESS_INFO: Fingerprint = fp("8319b75fedd3421cedb9a214729bdfec");
    /// `ProcessInfoNone` (16).
    pub const PROCESS_INFO_NONE: Fingerprint = fp("4c939db2316deae3ef1b5408e04f1f8d");
    /// `NodeStats` (never on the wire).
    pub const NODE_STATS: Fingerprint = fp("b21993f1c39266e5fab863d87fbe72ff");
    /// `ProcessMonitorNotification` (never on the wire).
    pub const PROCESS_MONITOR_NOTIFICATION: Fingerprint = fp("3b4572d2f59ffccf774be90682bd894c");
    /// `NodeMonitorNotification` (never on the wire).
    pub const NODE_MONITOR_NOTIFICATION: Fingerprint = fp("9085b3cbae89bc95a4846e1bcb98c4a7");
    /// `PortMonitorNotification` (never on the wire).
    pub const PORT_MONITOR_NOTIFICATION: Fingerprint = fp("a1d4dad365c2bd68dffa37f147f18d71");
    /// `DidUnmonitor` (never on the wire).
    pub const DID_UNMONITOR: Fingerprint = fp("fc8b778ef841b33b6310e438732ab665");
    /// `DidUnlinkProcess` (never on the wire).
    pub const DID_UNLINK_PROCESS: Fingerprint = fp("ba0f6669b896fcb2e1e8ccbc3e455088");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_constants_follow_from_the_rule() {
        let b = Build::default();
        let bs = b.strict_bytestring();
        let cases = [
            (bs.clone(), captured::STRICT_BYTESTRING),
            (b.lazy_bytestring(), captured::LAZY_BYTESTRING),
            (string(), captured::STRING),
            (tuple2(string(), bs.clone()), captured::STRING_BYTESTRING),
            (
                tuple2(b.process_id(), bs.clone()),
                captured::PROCESS_ID_BYTESTRING,
            ),
            (b.process_id(), captured::PROCESS_ID),
            (unit(), captured::UNIT),
            (int(), captured::INT),
            (char(), captured::CHAR),
            (bool(), captured::BOOL),
            (maybe(int()), captured::MAYBE_INT),
            (tuple2(string(), string()), captured::STRING_STRING),
            (b.node_id(), captured::NODE_ID),
            (b.send_port(bs), captured::SEND_PORT_BYTESTRING),
            (b.where_is_reply(), captured::WHERE_IS_REPLY),
            (b.register_reply(), captured::REGISTER_REPLY),
            (b.did_spawn(), captured::DID_SPAWN),
            (b.process_info(), captured::PROCESS_INFO),
            (b.process_info_none(), captured::PROCESS_INFO_NONE),
            (b.node_stats(), captured::NODE_STATS),
            (
                b.process_monitor_notification(),
                captured::PROCESS_MONITOR_NOTIFICATION,
            ),
            (
                b.node_monitor_notification(),
                captured::NODE_MONITOR_NOTIFICATION,
            ),
            (
                b.port_monitor_notification(),
                captured::PORT_MONITOR_NOTIFICATION,
            ),
            (b.did_unmonitor(), captured::DID_UNMONITOR),
            (b.did_unlink_process(), captured::DID_UNLINK_PROCESS),
        ];
        for (rep, want) in cases {
            assert_eq!(rep.fingerprint(), want, "{rep}");
        }
    }

    #[test]
    fn another_build_changes_only_dependent_types() {
        let other = Build::new("distributed-process-0.7.8-inplace", "bytestring-0.11.5.3");
        assert_ne!(other.process_id().fingerprint(), captured::PROCESS_ID);
        assert_ne!(
            other.strict_bytestring().fingerprint(),
            captured::STRICT_BYTESTRING
        );
        assert_eq!(string().fingerprint(), captured::STRING);
    }
}
