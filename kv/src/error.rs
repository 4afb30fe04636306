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
    /// The data directory's disk is full: writes failed, and the ranges that met the failure
    /// stopped until the node restarts.
    #[error("{0}")]
    DiskFull(String),
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

/// The message of a full disk: what happened and what to do.
const DISK_FULL: &str = "no space left on the data directory's disk: free space (deleting the \
     data directory's ballast file frees some at once) and restart the node";

/// The message of a storage engine that stopped accepting writes after a failed one (fjall
/// "poisons" itself when a flush or journal write fails; the cause is usually a full disk).
const STOPPED: &str = "the storage engine stopped accepting writes after a write failed, most \
     often because the disk is full: check the free space of the data directory's disk \
     (deleting its ballast file frees some at once), then restart the node";

/// The message of any other I/O failure.
const IO_FAILED: &str = "an I/O error on the data directory stopped this node's storage: see \
     the node's log for the failing file, fix the cause, then restart the node";

/// What a storage failure's text (from an I/O error, possibly wrapped by the Raft core, which
/// formats its source with type names) says: the message for the operator, and whether the disk
/// is known to be full. None when the text is not a storage failure.
fn storage_cause(text: &str) -> Option<(&'static str, bool)> {
    let full = [
        "No space left on device",
        "os error 28",
        "Disk quota exceeded",
        "os error 122",
    ];
    if full.iter().any(|m| text.contains(m)) {
        Some((DISK_FULL, true))
    } else if text.contains("Poisoned") {
        Some((STOPPED, false))
    } else if text.contains("io::error") || text.contains("os error") {
        Some((IO_FAILED, false))
    } else {
        None
    }
}

/// The error of a failed storage operation, classified for the operator: a full disk, or
/// another failure, each with what to do (the detail goes to the log, not the client).
pub fn storage_failure(detail: &str) -> Error {
    tracing::debug!("storage failure: {detail}");
    match storage_cause(detail) {
        Some((message, true)) => Error::DiskFull(message.to_string()),
        Some((message, false)) => Error::Storage(message.to_string()),
        None => Error::Storage(format!("{detail}; the node must restart")),
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                Error::DiskFull(DISK_FULL.to_string())
            }
            // Malformed stored data is reported as `InvalidData` by the decoders.
            std::io::ErrorKind::InvalidData => Error::Storage(e.to_string()),
            _ => Error::Storage(format!("I/O error on the data directory: {e}")),
        }
    }
}

impl From<fjall::Error> for Error {
    fn from(e: fjall::Error) -> Self {
        match e {
            fjall::Error::Io(e) => e.into(),
            fjall::Error::Poisoned => Error::Storage(STOPPED.to_string()),
            e => Error::Storage(format!("storage engine: {e:?}")),
        }
    }
}

impl From<raft::Error> for Error {
    fn from(e: raft::Error) -> Self {
        match e {
            raft::Error::NotLeader { leader } => Error::NotLeader { leader },
            raft::Error::Fatal(m) => storage_failure(&m),
            raft::Error::Ambiguous(m) => match storage_cause(&m) {
                Some((message, _)) => Error::Ambiguous(format!(
                    "the write may or may not have been made durable before storage failed: \
                     {message}"
                )),
                None => Error::Ambiguous(m),
            },
            other => Error::Unavailable(other.to_string()),
        }
    }
}

/// Result type of the kv layer.
pub type Result<T> = std::result::Result<T, Error>;
