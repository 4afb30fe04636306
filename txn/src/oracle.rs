//! The timestamp oracle (TSO): strictly increasing timestamps `physical_ms << 18 | logical`.
//!
//! It runs on the leader of range 1. Before serving, it reads the bound persisted in range 1 and
//! persists `max(bound, now) + window` through Raft; it never issues a timestamp at or above the
//! persisted bound, so after a restart or a change of leader every new timestamp is above every
//! timestamp issued before. The allocator belongs to one leadership (one term of range 1): every
//! batch's leadership check returns the term, and a different term (leadership lost and regained,
//! perhaps after another node served in between) re-runs the initialisation before anything is
//! issued. Requests that arrive together are answered as one batch, after one
//! leadership check (ReadIndex) issued after they arrived; timestamps are allocated after that
//! check, never prefetched. A clock that jumps backwards never makes timestamps go backwards.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result, Timestamp};

/// Bits of the logical part of a timestamp.
pub const LOGICAL_BITS: u32 = 18;
/// How far ahead of the clock the persisted bound is pushed.
pub const BOUND_WINDOW_MS: u64 = 3_000;
/// The bound is pushed forward once the clock is this close to it.
const BOUND_MARGIN_MS: u64 = 1_000;

/// Composes a timestamp from its physical (ms) and logical parts.
pub fn compose(physical_ms: u64, logical: u64) -> Timestamp {
    (physical_ms << LOGICAL_BITS) | logical
}

/// The physical part (ms) of a timestamp.
pub fn physical(ts: Timestamp) -> u64 {
    ts >> LOGICAL_BITS
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

type Request = oneshot::Sender<Result<Timestamp>>;

/// A handle on the node's timestamp oracle.
#[derive(Clone)]
pub struct Oracle {
    requests: mpsc::UnboundedSender<Request>,
}

/// The allocator state: the last timestamp issued and the persisted (exclusive) bound, valid for
/// the leadership of range 1 whose term is `term`.
struct Allocator {
    client: kv::Client,
    last: Timestamp,
    bound: Timestamp,
    term: u64,
}

impl Allocator {
    /// Reads the persisted bound and pushes it past the clock before anything is served.
    async fn init(client: kv::Client) -> Result<Allocator> {
        let term = client.range1_read_index().await.map_err(kv_err)?;
        let mut alloc = Allocator {
            client,
            last: 0,
            bound: 0,
            term,
        };
        alloc.reinit(term).await?;
        Ok(alloc)
    }

    /// Takes over for the leadership of range 1 in `term`: reads the bound persisted by every
    /// earlier leadership (the read's ReadIndex waits until this leadership's blank entry has
    /// applied, so the bound of every earlier term is visible), never issues below it, and
    /// persists a new bound past the clock before anything is served.
    async fn reinit(&mut self, term: u64) -> Result<()> {
        let persisted = self.client.tso_bound().await.map_err(kv_err)?.unwrap_or(0);
        self.last = self.last.max(persisted);
        self.bound = self.bound.max(persisted);
        self.extend(compose(wall_ms(), 0)).await?;
        self.term = term;
        tracing::info!(term, bound = self.bound, "timestamp oracle initialised");
        Ok(())
    }

    /// Persists a bound at least `BOUND_WINDOW_MS` past `ts`.
    async fn extend(&mut self, ts: Timestamp) -> Result<()> {
        let bound = compose(physical(ts) + BOUND_WINDOW_MS, 0).max(self.bound);
        self.client
            .send_range1(kv::Command::SetTsoBound { bound })
            .await
            .map_err(kv_err)?;
        self.bound = bound;
        Ok(())
    }

    /// Allocates `n` consecutive timestamps and returns the first.
    async fn allocate(&mut self, n: u64) -> Result<Timestamp> {
        let first = (self.last + 1).max(compose(wall_ms(), 0));
        let last = first + n - 1;
        if compose(physical(last) + BOUND_MARGIN_MS, 0) >= self.bound {
            self.extend(last).await?;
        }
        debug_assert!(last < self.bound);
        self.last = last;
        Ok(first)
    }

    /// Answers one batch: a leadership check issued after the requests arrived (re-initialising
    /// when the leadership is not the one the allocator was initialised for), then allocation.
    async fn serve(&mut self, batch: Vec<Request>) {
        let result = match self.client.range1_read_index().await {
            Ok(term) if term == self.term => self.allocate(batch.len() as u64).await,
            Ok(term) => match self.reinit(term).await {
                Ok(()) => self.allocate(batch.len() as u64).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(kv_err(e)),
        };
        for (i, reply) in batch.into_iter().enumerate() {
            let _ = reply.send(result.clone().map(|first| first + i as u64));
        }
    }
}

fn kv_err(e: kv::Error) -> Error {
    match e {
        kv::Error::DiskFull(m) => Error::DiskFull(m),
        kv::Error::Storage(_) => Error::Storage(format!("timestamp oracle: {e}")),
        e => Error::Internal(format!("timestamp oracle: {e}")),
    }
}

impl Oracle {
    /// Starts the oracle over the node's kv client (range 1 must be led by this node).
    pub async fn start(client: kv::Client) -> Result<Oracle> {
        let mut alloc = Allocator::init(client).await?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                alloc.serve(batch).await;
            }
        });
        Ok(Oracle { requests: tx })
    }

    /// A new timestamp, greater than every timestamp issued before this call.
    pub async fn now(&self) -> Result<Timestamp> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(tx)
            .map_err(|_| Error::Internal("timestamp oracle stopped".into()))?;
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Internal("timestamp oracle stopped".into())),
            Err(_) => Err(Error::Internal("timestamp oracle timed out".into())),
        }
    }
}

/// One-phase commits on this node's leaders take their commit timestamps from the oracle.
impl kv::TimestampSource for Oracle {
    fn now(&self) -> futures::future::BoxFuture<'_, kv::Result<Timestamp>> {
        Box::pin(async move {
            Oracle::now(self).await.map_err(|e| match e {
                Error::DiskFull(m) => kv::Error::DiskFull(m),
                Error::Storage(m) => kv::Error::Storage(m),
                e => kv::Error::Unavailable(e.to_string()),
            })
        })
    }
}
