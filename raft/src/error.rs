//! The crate's error type: a few semantic categories with stable, short messages.

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// Errors of Raft group operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Error {
    /// This replica is not the leader; `leader` is the leader it knows of, if any.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this replica knows of.
        leader: Option<NodeId>,
    },
    /// The group cannot serve the request now: no quorum, a timeout before the proposal was
    /// accepted, an unreachable peer, or the group is shutting down.
    #[error("raft group unavailable: {0}")]
    Unavailable(String),
    /// The proposal may or may not have been committed (its entry was discarded on a leader
    /// change, or it timed out after being accepted). Retrying needs deduplication.
    #[error("raft proposal outcome unknown: {0}")]
    Ambiguous(String),
    /// A conditional membership change was refused, and nothing written, because the
    /// membership in force is not the `expected` one: another change came first. Re-read the
    /// membership ([`Group::membership`](crate::Group::membership)), decide again, and retry.
    #[error("raft membership changed: {0}")]
    MembershipChanged(String),
    /// Invalid use: bad options, initializing an initialized group, an unknown group, a
    /// duplicate group.
    #[error("invalid raft request: {0}")]
    Invalid(String),
    /// Storage I/O failed or the Raft core stopped on an error; the group is unusable.
    #[error("raft group failed: {0}")]
    Fatal(String),
}

impl Error {
    /// True when the same request may simply be retried (possibly at another replica).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::NotLeader { .. } | Error::Unavailable(_))
    }

    /// True when the group is broken and must be restarted.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::Fatal(_))
    }

    /// The error's explicit, versioned binary form, for a transport that answers a message
    /// with the receiving side's error.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::wire::Body::encode(self)
    }

    /// Decodes bytes written by [`to_bytes`](Self::to_bytes); malformed bytes are themselves
    /// an [`Error::Invalid`].
    pub fn from_bytes(b: &[u8]) -> Error {
        <Error as crate::wire::Body>::decode(b)
            .unwrap_or_else(|e| Error::Invalid(format!("decode raft error: {e}")))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Fatal(e.to_string())
    }
}
