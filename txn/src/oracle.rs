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
//! check, never prefetched. A request that finds no batch in flight is served by its own caller
//! (no hop to another task); requests that arrive while a batch is being served wait for the
//! next one, served by a task the caller leaves behind. A clock that jumps backwards never makes timestamps go backwards.
//!
//! Every node runs an oracle handle; only the one on range 1's leader allocates. A node that
//! does not lead range 1 passes each batch, as one call, to the leader ([`Forward`]); the leader
//! answers it like a local batch (after its own leadership check), and never forwards a
//! forwarded batch again.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use crate::{Error, Result, Timestamp};

/// Bits of the logical part of a timestamp.
pub const LOGICAL_BITS: u32 = 18;
/// How far ahead of the clock the persisted bound is pushed.
pub const BOUND_WINDOW_MS: u64 = 3_000;
/// How long a request keeps looking for range 1's leader on other nodes (an election).
const FORWARD_DEADLINE: Duration = Duration::from_secs(10);
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

/// A request for `count` consecutive timestamps (answered with the first). `forward`: whether
/// a node that does not lead range 1 may pass it on to the leader (a request that came from
/// another node is answered here or refused, so requests never travel in circles).
struct Request {
    count: u64,
    forward: bool,
    /// Until when a forwarded request keeps looking for range 1's leader (an election).
    deadline: Instant,
    reply: oneshot::Sender<Result<Timestamp>>,
}

/// How a node that does not lead range 1 reaches the services of the node that does — the
/// timestamp oracle and the deadlock detector (the cluster's network; absent on a node that is
/// its own cluster).
pub trait Forward: Send + Sync + 'static {
    /// `count` consecutive timestamps from the oracle of range 1's leader (`leader`: the node
    /// this node believes leads it, if any); answers the first. One attempt at each node it
    /// knows, at most: the oracle asks again (perhaps itself, if it became the leader meanwhile)
    /// when every node refused.
    fn timestamps(
        &self,
        leader: Option<kv::NodeId>,
        count: u64,
    ) -> futures::future::BoxFuture<'_, Result<Timestamp>>;

    /// Records at range 1's leader, home of the deadlock detector ([`crate::deadlock`]), that
    /// `waiter` waits for `holder` (None: it no longer waits); true when that wait closes a
    /// cycle of the cluster's lock waits.
    fn wait_for(
        &self,
        waiter: Timestamp,
        holder: Option<Timestamp>,
    ) -> futures::future::BoxFuture<'_, Result<bool>>;
}

/// A handle on the node's timestamp oracle.
#[derive(Clone)]
pub struct Oracle {
    core: Arc<Core>,
}

/// The oracle's state, shared by its handles. Requests wait in `pending`; at most one server
/// at a time (`Pending::running`) takes them as a batch and answers it with the allocator.
/// The server is the caller that found none running (it serves the batch it is part of
/// without a hop to another task), or, for requests that arrive while one is serving, a task
/// it leaves behind.
struct Core {
    alloc: tokio::sync::Mutex<Allocator>,
    pending: std::sync::Mutex<Pending>,
    forward: Option<Arc<dyn Forward>>,
}

#[derive(Default)]
struct Pending {
    /// A server is answering a batch (and will take `waiting` when it is done).
    running: bool,
    /// Requests for the next batch, oldest first.
    waiting: Vec<Request>,
}

impl Core {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a request; true when no server is running and the caller is to serve.
    fn push(&self, request: Request) -> bool {
        let mut pending = self.pending();
        pending.waiting.push(request);
        !std::mem::replace(&mut pending.running, true)
    }

    /// Queues requests that come back (a forwarded batch that found no leader), starting a
    /// server task if none is running.
    fn requeue(self: &Arc<Self>, requests: Vec<Request>) {
        let start = {
            let mut pending = self.pending();
            pending.waiting.extend(requests);
            !std::mem::replace(&mut pending.running, true)
        };
        if start {
            tokio::spawn(serve_loop(self.clone()));
        }
    }
}

/// Serves batches until none waits (the server that takes over from a caller's [`Turn`]).
async fn serve_loop(core: Arc<Core>) {
    loop {
        let mut turn = Turn {
            core: &core,
            batch: None,
        };
        if !turn.serve().await {
            return;
        }
    }
}

/// One batch answered by the running server. Should the server go away before the batch is
/// answered (a caller's future dropped), the batch goes back to the front of the queue and a
/// task takes over, so no request waits forever.
struct Turn<'a> {
    core: &'a Arc<Core>,
    batch: Option<Vec<Request>>,
}

impl Turn<'_> {
    /// Takes the waiting requests and answers them; false (and the server stops) when none
    /// waited.
    async fn serve(&mut self) -> bool {
        {
            let mut pending = self.core.pending();
            if pending.waiting.is_empty() {
                pending.running = false;
                return false;
            }
            self.batch = Some(std::mem::take(&mut pending.waiting));
        }
        let mut alloc = self.core.alloc.lock().await;
        let n = self.batch.iter().flatten().map(|r| r.count).sum();
        let served = alloc.serve_here(n).await;
        let batch = self.batch.take().unwrap_or_default();
        alloc.answer_batch(batch, served, self.core);
        true
    }

    /// Ends a caller's turn: the requests still waiting get a server task.
    fn hand_over(&mut self) {
        let mut pending = self.core.pending();
        if let Some(batch) = self.batch.take() {
            pending.waiting.splice(0..0, batch);
        }
        if pending.waiting.is_empty() {
            pending.running = false;
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                drop(pending);
                runtime.spawn(serve_loop(self.core.clone()));
            }
            Err(_) => {
                // No runtime left to serve them: their callers see the oracle stopped.
                pending.waiting.clear();
                pending.running = false;
            }
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        if self.batch.is_some() {
            self.hand_over();
        }
    }
}

/// The allocator state: the last timestamp issued and the persisted (exclusive) bound, valid for
/// the leadership of range 1 whose term is `term` (None: not serving yet).
struct Allocator {
    client: kv::Client,
    last: Timestamp,
    bound: Timestamp,
    term: Option<u64>,
}

/// Why this node could not serve a batch itself.
enum Refused {
    /// It does not lead range 1; the leader it knows of.
    NotLeader(Option<kv::NodeId>),
    Failed(Error),
}

impl Allocator {
    /// Takes over for the leadership of range 1 in `term`: reads the bound persisted by every
    /// earlier leadership (the read's ReadIndex waits until this leadership's blank entry has
    /// applied, so the bound of every earlier term is visible), never issues below it, and
    /// persists a new bound past the clock before anything is served.
    async fn reinit(&mut self, term: u64) -> Result<()> {
        let persisted = self.client.tso_bound().await.map_err(kv_err)?.unwrap_or(0);
        self.last = self.last.max(persisted);
        self.bound = self.bound.max(persisted);
        self.extend(compose(wall_ms(), 0)).await?;
        self.term = Some(term);
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

    /// Serves `n` timestamps on this node: a leadership check of range 1 issued after the
    /// requests arrived (re-initialising when the leadership is not the one the allocator was
    /// initialised for), then allocation.
    async fn serve_here(&mut self, n: u64) -> std::result::Result<Timestamp, Refused> {
        let term = match self.client.range1_read_index().await {
            Ok(term) => term,
            Err(kv::Error::NotLeader { leader }) => return Err(Refused::NotLeader(leader)),
            Err(kv::Error::RangeNotFound(_)) => return Err(Refused::NotLeader(None)),
            Err(e) => return Err(Refused::Failed(kv_err(e))),
        };
        if self.term != Some(term) {
            self.reinit(term).await.map_err(Refused::Failed)?;
        }
        self.allocate(n).await.map_err(Refused::Failed)
    }

    /// Answers one batch with the outcome of [`Allocator::serve_here`]: the timestamps when
    /// this node served it, else the requests that may be forwarded go to the leader in one
    /// call (in a task of their own: the oracle keeps serving meanwhile), the others are
    /// refused. A forwarded batch that found no leader comes back to the queue until its
    /// deadline.
    fn answer_batch(
        &self,
        batch: Vec<Request>,
        served: std::result::Result<Timestamp, Refused>,
        core: &Arc<Core>,
    ) {
        match served {
            Ok(first) => answer(batch, Ok(first)),
            Err(Refused::Failed(e)) => answer(batch, Err(e)),
            Err(Refused::NotLeader(leader)) => {
                let (forwarded, refused): (Vec<_>, Vec<_>) =
                    batch.into_iter().partition(|r| r.forward);
                answer(refused, Err(not_leader(leader)));
                if forwarded.is_empty() {
                    return;
                }
                let Some(forward) = core.forward.clone() else {
                    return answer(forwarded, Err(not_leader(leader)));
                };
                let queue = Arc::downgrade(core);
                tokio::spawn(async move {
                    let n = forwarded.iter().map(|r| r.count).sum();
                    let result = forward.timestamps(leader, n).await;
                    let now = Instant::now();
                    match (result, queue.upgrade()) {
                        (Err(_), Some(core)) if forwarded.iter().all(|r| r.deadline > now) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            core.requeue(forwarded);
                        }
                        // Without handles left the requests are dropped: their callers see
                        // the oracle stopped.
                        (result, _) => answer(forwarded, result),
                    }
                });
            }
        }
    }
}

/// Answers each request of a batch with its share of `first..`.
fn answer(batch: Vec<Request>, result: Result<Timestamp>) {
    let mut next = result.clone();
    for r in batch {
        let _ = r.reply.send(next.clone());
        if let Ok(ts) = &mut next {
            *ts += r.count;
        }
    }
}

/// The error of a node that cannot serve timestamps because another node leads range 1.
fn not_leader(leader: Option<kv::NodeId>) -> Error {
    Error::Unavailable(match leader {
        Some(l) => format!("timestamp oracle: range 1 is led by node {l}"),
        None => "timestamp oracle: range 1 has no known leader".to_string(),
    })
}

/// The leader named by [`not_leader`]'s message, for a peer that relays it.
pub fn leader_of(e: &Error) -> Option<kv::NodeId> {
    match e {
        Error::Unavailable(m) => m
            .strip_prefix("timestamp oracle: range 1 is led by node ")
            .and_then(|n| n.parse().ok()),
        _ => None,
    }
}

fn kv_err(e: kv::Error) -> Error {
    match e {
        kv::Error::DiskFull(m) => Error::DiskFull(m),
        kv::Error::Storage(_) => Error::Storage(format!("timestamp oracle: {e}")),
        kv::Error::Unavailable(_)
        | kv::Error::Ambiguous(_)
        | kv::Error::NotLeader { .. }
        | kv::Error::RangeNotFound(_) => Error::Unavailable(format!("timestamp oracle: {e}")),
        e => Error::Internal(format!("timestamp oracle: {e}")),
    }
}

impl Oracle {
    /// Starts the oracle over the node's kv client. It serves where range 1's leader is: on
    /// another node it passes requests to that leader through `forward`.
    pub fn start(client: kv::Client, forward: Option<Arc<dyn Forward>>) -> Oracle {
        let alloc = Allocator {
            client,
            last: 0,
            bound: 0,
            term: None,
        };
        Oracle {
            core: Arc::new(Core {
                alloc: tokio::sync::Mutex::new(alloc),
                pending: std::sync::Mutex::new(Pending::default()),
                forward,
            }),
        }
    }

    /// A new timestamp, greater than every timestamp issued before this call.
    pub async fn now(&self) -> Result<Timestamp> {
        self.request(1, true).await
    }

    /// `count` consecutive timestamps issued by this node, which must lead range 1 (a peer's
    /// forwarded batch); answers the first. Refused with the leader's id in the message
    /// ([`leader_of`]) when another node leads it.
    pub async fn local_batch(&self, count: u64) -> Result<Timestamp> {
        if count == 0 {
            return Err(Error::Internal("a batch of zero timestamps".into()));
        }
        self.request(count, false).await
    }

    async fn request(&self, count: u64, forward: bool) -> Result<Timestamp> {
        let (tx, rx) = oneshot::channel();
        let req = Request {
            count,
            forward,
            deadline: Instant::now() + FORWARD_DEADLINE,
            reply: tx,
        };
        if self.core.push(req) {
            let mut turn = Turn {
                core: &self.core,
                batch: None,
            };
            if turn.serve().await {
                turn.hand_over();
            }
        }
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Internal("timestamp oracle stopped".into())),
            Err(_) => Err(Error::Unavailable("timestamp oracle timed out".into())),
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
                Error::Unavailable(m) => kv::Error::Unavailable(m),
                e => kv::Error::Unavailable(e.to_string()),
            })
        })
    }
}
