//! The kv layer's error: a few semantic categories with classifiers.

use serde::{Deserialize, Serialize};

use crate::range::{NodeId, RangeDescriptor, RangeId};

/// Errors of the kv layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Error {
    /// This replica is not the range's leader; `leader` is the one it knows of.
    #[error("not the leader of the range (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// A key lies outside the replica's range; the replica's current descriptor is attached.
    #[error("key outside range {0}")]
    RangeKeyMismatch(Box<RangeDescriptor>),
    /// The node holds no replica of the range.
    #[error("range {0} not found on this node")]
    RangeNotFound(RangeId),
    /// The range cannot serve now (no quorum, shutting down, timed out); the request may be retried.
    #[error("range unavailable: {0}")]
    Unavailable(String),
    /// A proposal whose outcome is unknown (it timed out, or leadership changed under it): it
    /// may have applied, or may still apply. Never retried blindly: the caller decides from
    /// the state the command would have left.
    #[error("outcome unknown: {0}")]
    Ambiguous(String),
    /// A read at a timestamp below the range's GC threshold: the versions it needs are gone.
    #[error("read at {ts} is below the garbage collection threshold {threshold}")]
    BelowGcThreshold { ts: u64, threshold: u64 },
    /// A command larger than the limit; refused before it was proposed.
    #[error("command of {size} bytes exceeds the limit of {limit} bytes")]
    CommandTooLarge { size: usize, limit: usize },
    /// The data directory is in use by another process.
    #[error("data directory {0} is in use by another process")]
    DirectoryLocked(String),
    /// Storage I/O failed or stored data is malformed.
    #[error("storage error: {0}")]
    Storage(String),
}

impl Error {
    /// Whether retrying the same request (after refreshing routing) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::NotLeader { .. }
                | Error::RangeKeyMismatch(_)
                | Error::RangeNotFound(_)
                | Error::Unavailable(_)
        )
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<fjall::Error> for Error {
    fn from(e: fjall::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<raft::Error> for Error {
    fn from(e: raft::Error) -> Self {
        match e {
            raft::Error::NotLeader { leader } => Error::NotLeader { leader },
            raft::Error::Fatal(m) => Error::Storage(m),
            raft::Error::Ambiguous(m) => Error::Ambiguous(m),
            other => Error::Unavailable(other.to_string()),
        }
    }
}

/// Result type of the kv layer.
pub type Result<T> = std::result::Result<T, Error>;
