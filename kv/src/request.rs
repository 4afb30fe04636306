//! Requests to ranges: the one seam between the transaction layer and the ranges.
//!
//! Everything the transaction layer asks of a range is a [`Request`] value sent through a
//! [`RangeSender`] to the range's leader, which answers with a [`Reply`]. The sender of a node
//! is [`LocalSender`] today (the leader is a replica on this node); a network sender carries
//! the same values to another node's `LocalSender`. Leader duties run behind the seam, where
//! the leader is: one-phase commit takes the leader's latches and its commit timestamp there
//! (from the node's [`TimestampSource`]), reads wait for latches and confirm leadership there.
//!
//! Routing (which range holds a key, retries after routing errors) is the
//! [`Client`](crate::Client)'s job: a request names the range it was routed to, and the leader
//! checks its keys against its own descriptor (`RangeKeyMismatch` otherwise).

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::command::{Command, Response};
use crate::error::{Error, Result};
use crate::mvcc::{LockedKey, Mutation, ScanResult, Timestamp, TxnStatus, Validation};
use crate::range::{RangeDescriptor, RangeId};
use crate::store::Store;

/// A request to the leader of one range.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Request {
    /// Read `key` at `ts` (linearizable): its value, or the foreign lock that hides it.
    Get { key: Vec<u8>, ts: Timestamp },
    /// Read up to `limit` live rows of `[start, end)` at `ts`; the span lies in the range.
    Scan {
        start: Vec<u8>,
        end: Vec<u8>,
        ts: Timestamp,
        limit: usize,
    },
    /// Validate a read of `[start, end)` made at `from_ts` by the transaction `own_start_ts`
    /// committing (or moving its reads) to `to_ts` (see `Mvcc::validate`).
    Validate {
        start: Vec<u8>,
        end: Vec<u8>,
        own_start_ts: Timestamp,
        from_ts: Timestamp,
        to_ts: Timestamp,
    },
    /// The status of the transaction `start_ts` recorded on its primary (decides nothing).
    TxnStatus {
        primary: Vec<u8>,
        start_ts: Timestamp,
    },
    /// The locks of transactions that started before `before`, in the range's replicated spans.
    LocksBefore { before: Timestamp },
    /// A key near the middle of the range's data, to split at.
    SplitKey,
    /// The persisted timestamp-oracle bound (range 1), read after a leadership check.
    TsoBound,
    /// A leadership check (ReadIndex) issued after the request arrived; answers the term.
    ReadIndex,
    /// Replicate a command and answer its apply-time response.
    Propose(Command),
    /// Commit a transaction whose writes and reads all lie in this range in one step (see
    /// [`LocalSender`] for what the leader does).
    OnePhaseCommit {
        start_ts: Timestamp,
        read_ts: Timestamp,
        primary: Vec<u8>,
        mutations: Vec<Mutation>,
        reads: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// Read each of `keys` at `ts` under one leadership check: for each key, in order, its
    /// value or the foreign lock that hides it. Every key lies in the range.
    GetMany { keys: Vec<Vec<u8>>, ts: Timestamp },
}

impl Request {
    /// A short name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Get { .. } => "get",
            Request::Scan { .. } => "scan",
            Request::Validate { .. } => "validate",
            Request::TxnStatus { .. } => "txn_status",
            Request::LocksBefore { .. } => "locks_before",
            Request::SplitKey => "split_key",
            Request::TsoBound => "tso_bound",
            Request::ReadIndex => "read_index",
            Request::Propose(_) => "propose",
            Request::OnePhaseCommit { .. } => "one_phase_commit",
            Request::GetMany { .. } => "get_many",
        }
    }
}

/// The answer to a [`Request`], one variant per request kind.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Reply {
    /// To `Get`.
    Value(std::result::Result<Option<Vec<u8>>, LockedKey>),
    /// To `Scan`.
    Scan(ScanResult),
    /// To `Validate`.
    Validation(Validation),
    /// To `TxnStatus`.
    TxnStatus(TxnStatus),
    /// To `LocksBefore`.
    Locks(Vec<LockedKey>),
    /// To `SplitKey`.
    SplitKey(Option<Vec<u8>>),
    /// To `TsoBound`.
    TsoBound(Option<Timestamp>),
    /// To `ReadIndex`: the term of the leadership that confirmed it.
    Term(u64),
    /// To `Propose`.
    Response(Response),
    /// To `OnePhaseCommit`: the commit timestamp it used, the response of the attempt that
    /// answered (None when none did), and why an earlier or the last attempt's outcome is
    /// unknown (None when every attempt answered). With an unknown outcome the command may have
    /// applied, or may still apply: the caller decides from the transaction's own record.
    OnePhase {
        commit_ts: Timestamp,
        response: Option<Response>,
        ambiguous: Option<String>,
    },
    /// To `GetMany`: one answer per key, in the request's order.
    Values(Vec<std::result::Result<Option<Vec<u8>>, LockedKey>>),
}

/// Where the node's commit timestamps come from (the timestamp oracle, assembled by `txn`).
pub trait TimestampSource: Send + Sync + 'static {
    /// A new timestamp, greater than every timestamp issued before the call.
    fn now(&self) -> BoxFuture<'_, Result<Timestamp>>;
}

/// Sends requests to ranges' leaders.
pub trait RangeSender: Send + Sync + 'static {
    /// Sends `req` to the leader of `range` (the descriptor the client routed by).
    fn send(&self, range: &RangeDescriptor, req: Request) -> BoxFuture<'_, Result<Reply>>;
}

/// How often a one-phase commit's proposal is attempted while each attempt fails without a
/// routing error (the command is idempotent: a retry after an unknown outcome finds its records).
const ONE_PHASE_ATTEMPTS: u64 = 4;

/// The sender to leaders on this node: each request runs on the local replica of its range.
pub struct LocalSender {
    store: Arc<Store>,
    /// Weak: the source (the oracle) holds a client, and so this sender; its owner keeps it.
    timestamps: OnceLock<Weak<dyn TimestampSource>>,
}

impl LocalSender {
    /// A sender over the node's store.
    pub fn new(store: Arc<Store>) -> LocalSender {
        LocalSender {
            store,
            timestamps: OnceLock::new(),
        }
    }

    /// Sets the node's timestamp source (once; later calls are ignored). The sender keeps a
    /// weak reference: the caller keeps the source alive as long as the node runs.
    pub fn set_timestamp_source(&self, source: &Arc<dyn TimestampSource>) {
        let _ = self.timestamps.set(Arc::downgrade(source));
    }

    /// What this node knows of the leader of `range_id`: None without a local replica, else
    /// the leader its replica knows of (this node when it leads).
    pub fn leader(&self, range_id: RangeId) -> Option<Option<crate::range::NodeId>> {
        let replica = self.store.replica(range_id).ok()?;
        Some(replica.group().leader())
    }

    /// This node's id.
    pub fn node_id(&self) -> crate::range::NodeId {
        self.store.node_id()
    }

    async fn run(&self, range_id: RangeId, req: Request) -> Result<Reply> {
        let replica = self.store.replica(range_id)?;
        Ok(match req {
            Request::Get { key, ts } => Reply::Value(replica.get(&key, ts).await?),
            Request::GetMany { keys, ts } => Reply::Values(replica.get_many(&keys, ts).await?),
            Request::Scan {
                start,
                end,
                ts,
                limit,
            } => Reply::Scan(replica.scan(&start, &end, ts, limit).await?),
            Request::Validate {
                start,
                end,
                own_start_ts,
                from_ts,
                to_ts,
            } => Reply::Validation(
                replica
                    .validate(&start, &end, own_start_ts, from_ts, to_ts)
                    .await?,
            ),
            Request::TxnStatus { primary, start_ts } => {
                Reply::TxnStatus(replica.txn_status(&primary, start_ts).await?)
            }
            Request::LocksBefore { before } => Reply::Locks(replica.locks_before(before).await?),
            Request::SplitKey => Reply::SplitKey(replica.split_key().await?),
            Request::TsoBound => Reply::TsoBound(replica.tso_bound().await?),
            Request::ReadIndex => Reply::Term(replica.group().read_index().await?),
            Request::Propose(cmd) => Reply::Response(replica.propose(cmd).await?),
            Request::OnePhaseCommit {
                start_ts,
                read_ts,
                primary,
                mutations,
                reads,
            } => {
                let timestamps =
                    self.timestamps
                        .get()
                        .and_then(Weak::upgrade)
                        .ok_or_else(|| {
                            Error::Unavailable("the node's timestamp source is not running".into())
                        })?;
                one_phase_commit(
                    &replica,
                    timestamps.as_ref(),
                    start_ts,
                    read_ts,
                    primary,
                    mutations,
                    reads,
                )
                .await?
            }
        })
    }
}

impl RangeSender for LocalSender {
    fn send(&self, range: &RangeDescriptor, req: Request) -> BoxFuture<'_, Result<Reply>> {
        let range_id = range.range_id;
        Box::pin(self.run(range_id, req))
    }
}

/// One-phase commit on the leader: the write keys are latched, the commit timestamp is taken,
/// the latches of commits that may land at or below it on the read spans are waited for, and one
/// command checks, validates and writes at apply (DESIGN.md; [`crate::latch`] says why). The
/// latches are shared with every attempt's proposal, so an attempt whose outcome is unknown
/// keeps them until its entry applies or is discarded (`Replica::propose_holding`), whatever the
/// caller is told.
///
/// Errors only when no attempt's outcome is unknown (nothing was written): a routing error
/// (`NotLeader`, `RangeKeyMismatch`), a command too large, or another failure.
async fn one_phase_commit(
    replica: &crate::replica::Replica,
    timestamps: &dyn TimestampSource,
    start_ts: Timestamp,
    read_ts: Timestamp,
    primary: Vec<u8>,
    mutations: Vec<Mutation>,
    reads: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Reply> {
    let desc = replica.descriptor();
    let inside = |k: &[u8]| desc.contains(&crate::keys::routing_key(k));
    if !mutations.iter().all(|m| inside(&m.key))
        || !reads.iter().all(|(s, e)| desc.contains_span(s, e))
    {
        return Err(Error::RangeKeyMismatch(Box::new(desc)));
    }
    let latches = replica.latches();
    let guard = Arc::new(
        latches
            .acquire(mutations.iter().map(|m| m.key.clone()).collect())
            .await,
    );
    let commit_ts = timestamps.now().await?;
    guard.set_commit_ts(commit_ts);
    for (start, end) in &reads {
        latches.wait(start, end, commit_ts, Some(&*guard)).await;
    }
    let cmd = Command::OnePhaseCommit {
        start_ts,
        read_ts,
        commit_ts,
        primary,
        mutations,
        reads,
    };
    let mut ambiguous: Option<String> = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match replica.propose_holding(cmd.clone(), guard.clone()).await {
            Ok(response) => {
                return Ok(Reply::OnePhase {
                    commit_ts,
                    response: Some(response),
                    ambiguous,
                });
            }
            Err(e) => e,
        };
        match error {
            e @ (Error::RangeKeyMismatch(_)
            | Error::NotLeader { .. }
            | Error::CommandTooLarge { .. })
                if ambiguous.is_none() =>
            {
                return Err(e);
            }
            e if attempt < ONE_PHASE_ATTEMPTS => {
                tracing::debug!(start_ts, "one-phase commit: {e}; retrying");
                if let Error::Ambiguous(m) = &e {
                    ambiguous = Some(m.clone());
                }
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
            Error::Ambiguous(m) => {
                return Ok(Reply::OnePhase {
                    commit_ts,
                    response: None,
                    ambiguous: Some(m),
                });
            }
            e => {
                return match ambiguous {
                    Some(m) => Ok(Reply::OnePhase {
                        commit_ts,
                        response: None,
                        ambiguous: Some(format!("{m}; then {e}")),
                    }),
                    // Never applied: nothing was written.
                    None => Err(e),
                };
            }
        }
    }
}
