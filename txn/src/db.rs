//! The transaction layer's handle on a node: [`Db`] assembles the kv client, the timestamp
//! oracle (also the client's timestamp source for one-phase commits) and the background tasks
//! (GC, size-based splits); [`kv_err`] maps kv errors to this layer's.

use std::sync::Arc;
use std::time::Duration;

use crate::oracle::Oracle;
use crate::{Error, Result, Timestamp};

/// Tunables of the transaction layer.
#[derive(Clone, Debug)]
pub struct Config {
    /// Lifetime of a transaction's locks without a heartbeat, in TSO-physical milliseconds.
    pub lock_ttl_ms: u64,
    /// How long a transaction waiting in a key's queue sleeps before checking the lock's owner
    /// again (a release applied on this node wakes the first waiter at once).
    pub lock_recheck: Duration,
    /// How long a locking statement waits behind another transaction's lock (then 55P03).
    pub lock_wait_timeout: Duration,
    /// How often a transaction holding locks pushes its primary lock's expiry forward.
    pub heartbeat_interval: Duration,
    /// How long old versions are kept for AS OF SYSTEM TIME reads before GC removes them.
    pub gc_ttl: Duration,
    /// How often GC runs over the ranges this node leads.
    pub gc_interval: Duration,
    /// A range whose versions pass this many bytes is split in two.
    pub range_max_bytes: u64,
    /// How often range sizes are checked.
    pub split_check_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lock_ttl_ms: 3_000,
            lock_recheck: Duration::from_millis(250),
            lock_wait_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(1),
            gc_ttl: Duration::from_secs(4 * 3600),
            gc_interval: Duration::from_secs(300),
            range_max_bytes: 64 << 20,
            split_check_interval: Duration::from_secs(10),
        }
    }
}

pub(crate) struct Inner {
    pub client: kv::Client,
    pub oracle: Oracle,
    /// The oracle as the kv client's timestamp source, kept alive here (the client holds it
    /// weakly); never read.
    pub _timestamps: Arc<dyn kv::TimestampSource>,
    pub config: Config,
    pub deadlocks: crate::deadlock::Detector,
    pub active: crate::gc::Active,
    /// Range 1's leader's services, when this node does not lead it.
    pub forward: Option<Arc<dyn crate::oracle::Forward>>,
}

/// A handle on a node's transactional store; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pub(crate) inner: Arc<Inner>,
}

impl Db {
    /// Opens the transactional layer over a client of the node's store (starts the timestamp
    /// oracle, GC and size-based splits).
    pub async fn open(client: kv::Client, config: Config) -> Result<Db> {
        Db::open_with(client, config, None).await
    }

    /// [`Db::open`] on a node of a cluster: timestamps come from range 1's leader through
    /// `forward` when this node does not lead range 1.
    pub async fn open_with(
        client: kv::Client,
        config: Config,
        forward: Option<Arc<dyn crate::oracle::Forward>>,
    ) -> Result<Db> {
        let oracle = Oracle::start(client.clone(), forward.clone());
        let timestamps: Arc<dyn kv::TimestampSource> = Arc::new(oracle.clone());
        client.set_timestamp_source(&timestamps);
        let db = Db {
            inner: Arc::new(Inner {
                client,
                oracle,
                _timestamps: timestamps,
                config,
                deadlocks: Default::default(),
                active: Default::default(),
                forward,
            }),
        };
        let config = &db.inner.config;
        let weak = Arc::downgrade(&db.inner);
        tokio::spawn(every(
            weak.clone(),
            config.gc_interval,
            "gc",
            |db| async move { db.run_gc().await.map(|_| ()) },
        ));
        if db.inner.forward.is_some() {
            tokio::spawn(every(
                weak.clone(),
                crate::gc::PUBLISH_EVERY,
                "publishing the oldest live transaction",
                |db| async move { db.publish_oldest_active().await },
            ));
        }
        tokio::spawn(every(
            weak,
            config.split_check_interval,
            "size-based split",
            |db| async move { db.split_large_ranges().await.map(|_| ()) },
        ));
        Ok(db)
    }

    /// Opens a single-node store in `dir` (bootstrapping it when empty) and the transaction
    /// layer over it; for tests and tools that need a store without the rest of a node.
    pub async fn open_local(dir: &std::path::Path) -> Result<Db> {
        let client = kv::Client::open(kv::StoreOptions::new(dir))
            .await
            .map_err(kv_err)?;
        Db::open(client, Config::default()).await
    }

    /// Stops the store's Raft groups and makes its state durable.
    pub async fn shutdown(&self) -> Result<()> {
        self.inner.client.shutdown().await.map_err(kv_err)
    }

    /// The kv client (for debug tools and statistics).
    pub fn client(&self) -> &kv::Client {
        &self.inner.client
    }

    /// A timestamp from the oracle.
    pub async fn now(&self) -> Result<Timestamp> {
        self.inner.oracle.now().await
    }

    /// Every committed row of `[start, end)`, read in a read-only transaction of its own
    /// (the small `sys` listings: node directory, published oldest transactions).
    pub async fn read_span(&self, start: &[u8], end: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut txn = self
            .begin(crate::TxnOptions {
                read_only: true,
                ..crate::TxnOptions::default()
            })
            .await?;
        let rows = txn.scan(start, end, usize::MAX).await?;
        txn.commit().await?;
        Ok(rows)
    }

    /// `count` timestamps issued by this node's oracle, which must lead range 1 (a batch a
    /// peer forwarded); answers the first.
    pub async fn oracle_local_batch(&self, count: u64) -> Result<Timestamp> {
        self.inner.oracle.local_batch(count).await
    }
}

/// The deadlock detector ([`crate::deadlock`]): this node's graph, and range 1's leader's.
impl Db {
    /// Records that `waiter` waits for `holder`; false when the wait closes a cycle (here, or
    /// in the cluster's graph at range 1's leader): the waiter is the victim. When range 1's
    /// leader cannot be asked, the wait goes ahead (the lock wait timeout bounds it).
    pub(crate) async fn deadlock_wait(&self, waiter: Timestamp, holder: Timestamp) -> bool {
        if !self.inner.deadlocks.wait(waiter, holder) {
            return false;
        }
        let Some(forward) = self.range1_elsewhere() else {
            return true;
        };
        self.inner.deadlocks.forwarded(waiter);
        match forward.wait_for(waiter, Some(holder)).await {
            Ok(cycle) => !cycle,
            Err(e) => {
                tracing::debug!(waiter, "deadlock detector at range 1's leader: {e}");
                true
            }
        }
    }

    /// `waiter` waits no more (it got the lock, gave up, or ended).
    pub(crate) fn deadlock_done(&self, waiter: Timestamp) {
        self.inner.deadlocks.done(waiter);
        if self.inner.deadlocks.take_forwarded(waiter)
            && let Some(forward) = self.inner.forward.clone()
        {
            // Best effort: a wait that is not repeated fades out of the graph anyway.
            tokio::spawn(async move {
                let _ = forward.wait_for(waiter, None).await;
            });
        }
    }

    /// A wait (`holder`: Some) or its end (None) sent by another node, recorded here if this
    /// node leads range 1: whether it closes a cycle. None when this node does not lead it.
    pub fn record_wait(&self, waiter: Timestamp, holder: Option<Timestamp>) -> Option<bool> {
        self.inner.client.led_descriptor(1)?;
        Some(match holder {
            Some(holder) => !self.inner.deadlocks.wait(waiter, holder),
            None => {
                self.inner.deadlocks.done(waiter);
                false
            }
        })
    }

    /// Where range 1's leader's services are, when another node leads it.
    fn range1_elsewhere(&self) -> Option<Arc<dyn crate::oracle::Forward>> {
        let forward = self.inner.forward.clone()?;
        match self.inner.client.led_descriptor(1) {
            Some(_) => None,
            None => Some(forward),
        }
    }
}

/// Runs `task` every `interval` until the transaction layer is dropped, logging its failures.
async fn every<F, Fut>(
    inner: std::sync::Weak<Inner>,
    interval: Duration,
    what: &'static str,
    task: F,
) where
    F: Fn(Db) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if let Err(e) = task(Db { inner }).await {
            tracing::warn!("{what}: {e}");
        }
    }
}

pub(crate) fn kv_err(e: kv::Error) -> Error {
    match e {
        kv::Error::BelowGcThreshold { .. } => Error::BelowGcThreshold(e.to_string()),
        kv::Error::DiskFull(m) => Error::DiskFull(m),
        kv::Error::Storage(_) => Error::Storage(e.to_string()),
        // Every path that can reach a commit point (one-phase commit, the primary's commit)
        // decides an unknown outcome itself before it gets here: short of the commit point an
        // unknown outcome means the transaction did not commit.
        kv::Error::Unavailable(m) | kv::Error::Ambiguous(m) => Error::Unavailable(m),
        kv::Error::NotLeader { .. } | kv::Error::RangeNotFound(_) => {
            Error::Unavailable(e.to_string())
        }
        e => Error::Internal(e.to_string()),
    }
}

impl Db {
    /// Splits the range holding `key` at `key` (ALTER TABLE ... SPLIT AT); returns the ids of
    /// the left- and right-hand ranges. Splitting at an existing range boundary does nothing.
    pub async fn split_at(&self, key: &[u8]) -> Result<(kv::RangeId, kv::RangeId)> {
        crate::split::split_at(self, key).await
    }
}
