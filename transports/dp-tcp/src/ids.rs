//! How ractor pids and distributed-process `ProcessId`s map onto each other.
//!
//! - A **local ractor actor** with pid `n` is, to Haskell,
//!   `ProcessId { node: <our NodeId>, local: { unique: <incarnation>, counter: n } }`.
//!   The incarnation is a random `i32` drawn once per `DpTcp`
//!   instance, like distributed-process's `lpidUnique`, so that a pid from an
//!   earlier run of the node is recognisably stale. Actors whose pid does not
//!   fit in a non-negative `i32` have no DP pid.
//! - A **Haskell process** `{ unique: u, counter: c }` on a peer is, to ractor,
//!   the remote pid `((u as u32 as u64) << 32) | (c as u32 as u64)` inside
//!   that peer's `NodeSession`. The mapping is bijective, so no table is kept.
//! - **Synthetic pids** of ours use negative counters, which ractor never
//!   hands out: [`NODE_SENDER_COUNTER`] is the sender of every cast and call
//!   request the Rust node makes (ractor casts carry no sender), and the
//!   counters below it are short-lived reply addresses for calls and
//!   `WhereIs` requests, except [`NODE_AGENT_COUNTER`], the reserved pid
//!   that carries the traffic between two kaisui nodes (see
//!   [`crate::translate`], "Kaisui peers").

use dp_wire::dp::LocalProcessId;

/// Counter of the one synthetic process that sends all Rust casts and call
/// requests. distributed-process keeps one lightweight connection per
/// (sender, receiver) pair, so one stable sender keeps it to one connection
/// per Haskell target.
pub const NODE_SENDER_COUNTER: i32 = -1;

/// Counter of our node agent: the process a kaisui peer finds with
/// `WhereIs` [`crate::translate::KAISUI_NODE_LABEL`], and the only sender
/// and receiver of the encapsulated `ractor_cluster` traffic between two
/// kaisui nodes.
pub const NODE_AGENT_COUNTER: i32 = -2;

/// First counter handed out for reply addresses; they count down from here.
pub const FIRST_SYNTHETIC_COUNTER: i32 = -3;

/// The ractor remote pid standing for Haskell process `local` of a peer.
pub fn remote_pid(local: LocalProcessId) -> u64 {
    (u64::from(local.unique as u32) << 32) | u64::from(local.counter as u32)
}

/// The Haskell local process id behind a ractor remote pid (inverse of
/// [`remote_pid`]).
pub fn remote_local_id(pid: u64) -> LocalProcessId {
    LocalProcessId {
        unique: (pid >> 32) as u32 as i32,
        counter: pid as u32 as i32,
    }
}

/// The DP counter of a local ractor pid, if it fits.
pub fn local_counter(pid: u64) -> Option<i32> {
    i32::try_from(pid).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_pid_is_bijective_on_edges() {
        for (u, c) in [
            (0, 0),
            (-1, -1),
            (i32::MIN, i32::MAX),
            (1_156_941_487, 8),
            (-1_719_409_783, 8),
        ] {
            let l = LocalProcessId {
                unique: u,
                counter: c,
            };
            assert_eq!(remote_local_id(remote_pid(l)), l);
        }
        assert_eq!(
            remote_pid(LocalProcessId {
                unique: -1,
                counter: 8
            }),
            0xffff_ffff_0000_0008
        );
    }

    #[test]
    fn local_counter_refuses_overflow() {
        assert_eq!(local_counter(7), Some(7));
        assert_eq!(local_counter(u64::from(i32::MAX as u32) + 1), None);
    }
}
