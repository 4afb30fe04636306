//! A replica of a range: the Raft state machine that applies commands to the range's span of the
//! node's fjall database, and the handle that proposes commands and serves reads.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fjall::{Readable, Snapshot};

use crate::codec::{Reader, Writer, corrupt};
use crate::command::{Command, Response, SplitTrigger};
use crate::engine::{
    Engine, RANGE_APPLIED, RANGE_DESCRIPTOR, RANGE_GC_THRESHOLD, RANGE_STATS, RANGE_TSO_BOUND,
    Stats, meta_key,
};
use crate::error::{Error, Result};
use crate::keys::{TAG_LOCAL, TAG_SYS, encode_bytes, next_key, routing_key};
use crate::latch::Latches;
use crate::mvcc::{
    LockedKey, Mvcc, RollbackExpired, ScanResult, StatsDelta, Timestamp, TxnMeta, clear_span,
};
use crate::range::{NodeId, RangeDescriptor, RangeId};
use crate::split::StoreEvent;

/// The largest command a range accepts; larger ones are refused before they are proposed.
pub const MAX_COMMAND_BYTES: usize = 32 << 20;

const SNAPSHOT_V1: u8 = 1;

/// The raw-key spans whose data belongs to a range: its span outside the local space, and the
/// range-local keys of the start keys in its span.
pub fn replicated_spans(desc: &RangeDescriptor) -> [(Vec<u8>, Vec<u8>); 2] {
    let global_start = desc.start.clone().max(vec![TAG_SYS]);
    let global_end = desc.end.clone().max(global_start.clone());
    let local = |k: &[u8]| {
        let mut out = vec![TAG_LOCAL];
        encode_bytes(&mut out, k);
        out
    };
    [
        (global_start, global_end),
        (local(&desc.start), local(&desc.end)),
    ]
}

/// `[start, end)` minus the spans `holes`: the parts no hole covers, in key order.
pub(crate) fn span_minus(
    start: &[u8],
    end: &[u8],
    holes: &[(Vec<u8>, Vec<u8>)],
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut holes: Vec<_> = holes
        .iter()
        .filter(|(s, e)| s.as_slice() < end && start < e.as_slice() && s < e)
        .collect();
    holes.sort();
    let mut out = Vec::new();
    let mut from = start.to_vec();
    for (s, e) in holes {
        if from.as_slice() >= end {
            break;
        }
        if s.as_slice() > from.as_slice() {
            out.push((from.clone(), s.as_slice().min(end).to_vec()));
        }
        if e.as_slice() > from.as_slice() {
            from = e.clone();
        }
    }
    if from.as_slice() < end {
        out.push((from, end.to_vec()));
    }
    out
}

/// What applying one command produces, written in one batch.
struct Effects {
    batch: fjall::OwnedWriteBatch,
    stats: StatsDelta,
    /// A split trigger that applied, and the left half's statistics.
    split: Option<(SplitTrigger, Stats)>,
    /// Statistics recounted from the data.
    recounted: Option<Stats>,
    /// The descriptor after a change of replicas.
    replicas_changed: Option<RangeDescriptor>,
}

/// The state machine of one range on one node.
pub struct RangeStateMachine {
    range_id: RangeId,
    pub(crate) engine: Engine,
    pub(crate) log: raft::LogStore,
    desc: Arc<RwLock<RangeDescriptor>>,
    pub(crate) stats: Stats,
    events: tokio::sync::mpsc::UnboundedSender<StoreEvent>,
    /// Reads below this timestamp fail; shared with the replica's read path.
    gc_threshold: Arc<AtomicU64>,
}

impl RangeStateMachine {
    /// The state machine of a range whose descriptor is already stored in `meta`.
    pub fn open(
        engine: Engine,
        log: raft::LogStore,
        desc: Arc<RwLock<RangeDescriptor>>,
        events: tokio::sync::mpsc::UnboundedSender<StoreEvent>,
        gc_threshold: Arc<AtomicU64>,
    ) -> Result<Self> {
        let range_id = desc.read().expect("descriptor lock").range_id;
        let stats = match engine.meta.get(meta_key(range_id, RANGE_STATS))? {
            Some(v) => Stats::decode(&v)?,
            None => Stats::default(),
        };
        let threshold = engine.meta.get(meta_key(range_id, RANGE_GC_THRESHOLD))?;
        let threshold = threshold
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map_or(0, u64::from_be_bytes);
        gc_threshold.store(threshold, Ordering::SeqCst);
        Ok(RangeStateMachine {
            range_id,
            engine,
            log,
            desc,
            stats,
            events,
            gc_threshold,
        })
    }

    fn descriptor(&self) -> RangeDescriptor {
        self.desc.read().expect("descriptor lock").clone()
    }

    /// Evaluates a command against the current state, adding its effects to `fx`.
    fn eval(
        &self,
        cmd: &Command,
        state: &raft::AppliedState,
        snapshot: &Snapshot,
        fx: &mut Effects,
    ) -> io::Result<Response> {
        let (batch, stats) = (&mut fx.batch, &mut fx.stats);
        let desc = self.descriptor();
        if cmd.keys().iter().any(|k| !desc.contains(&routing_key(k))) {
            return Ok(Response::RangeKeyMismatch(desc));
        }
        let mvcc = Mvcc {
            snapshot,
            data: &self.engine.data,
            locks: &self.engine.locks,
        };
        if let Command::Prewrite { start_ts, .. }
        | Command::PessimisticLock { start_ts, .. }
        | Command::OnePhaseCommit { start_ts, .. } = cmd
        {
            let threshold = self.gc_threshold.load(Ordering::SeqCst);
            if *start_ts < threshold {
                return Ok(Response::BelowGcThreshold {
                    ts: *start_ts,
                    threshold,
                });
            }
        }
        Ok(match cmd {
            Command::Noop => Response::Done,
            Command::Prewrite {
                start_ts,
                read_ts,
                primary,
                expiry_ms,
                mutations,
            } => match mvcc.prewrite(
                batch,
                stats,
                mutations,
                TxnMeta {
                    start_ts: *start_ts,
                    read_ts: *read_ts,
                    primary,
                },
                *expiry_ms,
            )? {
                Ok(()) => Response::KeyErrors(Vec::new()),
                Err(e) => Response::KeyErrors(vec![e]),
            },
            Command::PessimisticLock {
                start_ts,
                read_ts,
                primary,
                expiry_ms,
                keys,
            } => {
                let txn = TxnMeta {
                    start_ts: *start_ts,
                    read_ts: *read_ts,
                    primary,
                };
                match mvcc.pessimistic_lock(batch, stats, keys, txn, *expiry_ms)? {
                    Ok(newer) => Response::Locked { newer },
                    Err(e) => Response::KeyErrors(vec![e]),
                }
            }
            Command::OnePhaseCommit {
                start_ts,
                read_ts,
                commit_ts,
                primary,
                mutations,
                reads,
            } => {
                if reads.iter().any(|(s, e)| !desc.contains_span(s, e)) {
                    return Ok(Response::RangeKeyMismatch(desc));
                }
                let txn = TxnMeta {
                    start_ts: *start_ts,
                    read_ts: *read_ts,
                    primary,
                };
                match mvcc.one_phase_commit(batch, stats, mutations, reads, txn, *commit_ts)? {
                    Ok(()) => Response::KeyErrors(Vec::new()),
                    Err(e) => Response::KeyErrors(vec![e]),
                }
            }
            Command::CommitSplit {
                start_ts,
                commit_ts,
                key,
                trigger,
            } => {
                let committing = matches!(mvcc.lock(key)?, Some(l) if l.start_ts == *start_ts);
                // A split planned on an older descriptor (its replicas changed since) would
                // give both halves a stale replica list.
                let stale = trigger.left.generation != desc.generation + 1
                    || trigger.left.replicas != desc.replicas;
                if committing && stale {
                    mvcc.rollback(batch, stats, std::slice::from_ref(key), *start_ts)?;
                    return Ok(Response::SplitRefused {
                        reason: format!(
                            "range {} changed while splitting (now {desc}); split again",
                            self.range_id
                        ),
                    });
                }
                if committing && state.is_joint_or_has_learners() {
                    // The commit point is here, so the split can still be refused: its primary
                    // is rolled back (the coordinator rolls back the rest). A membership change
                    // in progress would give the right half a configuration that is not the
                    // parent's settled one.
                    mvcc.rollback(batch, stats, std::slice::from_ref(key), *start_ts)?;
                    return Ok(Response::SplitRefused {
                        reason: format!(
                            "range {} is changing its membership (joint configuration or learners: \
                             voters {:?}, members {:?}); split again once it has settled",
                            self.range_id,
                            state.voters(),
                            state.nodes().keys().collect::<Vec<_>>()
                        ),
                    });
                }
                let errors = mvcc.commit(
                    batch,
                    stats,
                    std::slice::from_ref(key),
                    *start_ts,
                    *commit_ts,
                )?;
                if committing && errors.is_empty() {
                    if crate::split::is_valid(&desc, trigger) {
                        let left_stats = crate::split::apply_trigger(
                            self, batch, trigger, state, *start_ts, *commit_ts,
                        )?;
                        fx.split = Some((trigger.clone(), left_stats));
                    } else {
                        tracing::error!(range = self.range_id, %desc, "split trigger does not match the range; ignored");
                    }
                }
                Response::KeyErrors(errors)
            }
            Command::ReleaseLocks { start_ts, keys } => {
                mvcc.release_locks(batch, stats, keys, *start_ts)?;
                Response::Done
            }
            Command::Heartbeat {
                primary,
                start_ts,
                expiry_ms,
            } => Response::TxnStatus(mvcc.heartbeat(batch, primary, *start_ts, *expiry_ms)?),
            Command::Commit {
                start_ts,
                commit_ts,
                keys,
            } => Response::KeyErrors(mvcc.commit(batch, stats, keys, *start_ts, *commit_ts)?),
            Command::Rollback { start_ts, keys } => {
                Response::KeyErrors(mvcc.rollback(batch, stats, keys, *start_ts)?)
            }
            Command::CheckTxnStatus {
                primary,
                start_ts,
                now_ms,
                rollback_if_expired,
            } => {
                let rollback = rollback_if_expired.then(|| RollbackExpired {
                    now_ms: *now_ms,
                    gc_threshold: self.gc_threshold.load(Ordering::SeqCst),
                });
                Response::TxnStatus(
                    mvcc.check_txn_status(batch, stats, primary, *start_ts, rollback)?,
                )
            }
            Command::Gc { safe_point } => {
                if *safe_point > self.gc_threshold.load(Ordering::SeqCst) {
                    for (start, end) in replicated_spans(&desc) {
                        crate::mvcc::gc_span(
                            snapshot,
                            &self.engine.data,
                            batch,
                            stats,
                            &start,
                            &end,
                            *safe_point,
                        )?;
                    }
                    let key = meta_key(self.range_id, RANGE_GC_THRESHOLD);
                    batch.insert(&self.engine.meta, key, safe_point.to_be_bytes());
                    // Raised before the batch lands: a read in between fails, which is safe.
                    self.gc_threshold.store(*safe_point, Ordering::SeqCst);
                }
                Response::Done
            }
            Command::ChangeReplicas { desc: new } => {
                if new.range_id != desc.range_id || new.start != desc.start || new.end != desc.end {
                    tracing::error!(range = self.range_id, %desc, %new, "replica change for another span; ignored");
                    return Ok(Response::RangeKeyMismatch(desc));
                }
                batch.insert(
                    &self.engine.meta,
                    meta_key(self.range_id, RANGE_DESCRIPTOR),
                    new.encode(),
                );
                fx.replicas_changed = Some(new.clone());
                Response::Done
            }
            Command::RecomputeStats => {
                let mut total = Stats::default();
                for (start, end) in replicated_spans(&desc) {
                    total.add(&crate::mvcc::count_span(
                        snapshot,
                        &self.engine.data,
                        &self.engine.locks,
                        &start,
                        &end,
                    )?);
                }
                fx.recounted = Some(total);
                Response::Done
            }
            Command::SetTsoBound { bound } => {
                let current = read_tso_bound(&self.engine, snapshot, self.range_id)?.unwrap_or(0);
                batch.insert(
                    &self.engine.meta,
                    meta_key(self.range_id, RANGE_TSO_BOUND),
                    current.max(*bound).to_be_bytes(),
                );
                Response::Done
            }
        })
    }
}

/// The persisted timestamp-oracle bound of a range (range 1), if any.
pub fn read_tso_bound(
    engine: &Engine,
    snapshot: &Snapshot,
    range_id: RangeId,
) -> io::Result<Option<Timestamp>> {
    let v = snapshot
        .get(&engine.meta, meta_key(range_id, RANGE_TSO_BOUND))
        .map_err(io::Error::other)?;
    v.map(|v| {
        <[u8; 8]>::try_from(v.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| corrupt("tso bound"))
    })
    .transpose()
}

impl raft::StateMachine for RangeStateMachine {
    type Command = Command;
    type Response = Response;

    fn applied_state(&self) -> io::Result<Option<raft::AppliedState>> {
        match self
            .engine
            .meta
            .get(meta_key(self.range_id, RANGE_APPLIED))
            .map_err(io::Error::other)?
        {
            Some(v) => raft::AppliedState::from_bytes(&v).map(Some),
            None => Ok(None),
        }
    }

    fn apply(&mut self, entry: raft::Entry<Command>) -> io::Result<Response> {
        // Tests: the disk fills up under an apply.
        fail::fail_point!("kv::apply_storage_full", |_| Err(io::Error::new(
            io::ErrorKind::StorageFull,
            "No space left on device (failpoint kv::apply_storage_full)"
        )));
        let snapshot = self.engine.db.snapshot();
        let mut fx = Effects {
            batch: self.engine.db.batch(),
            stats: StatsDelta::default(),
            split: None,
            recounted: None,
            replicas_changed: None,
        };
        let response = match &entry.command {
            Some(cmd) => self.eval(cmd, &entry.state, &snapshot, &mut fx)?,
            None => Response::Done,
        };
        let Effects {
            mut batch,
            stats: delta,
            split,
            recounted,
            replicas_changed,
        } = fx;
        if let Some((_, left_stats)) = &split {
            self.stats = *left_stats;
        }
        let recounted = recounted.map(|stats| self.stats = stats).is_some();
        let meta = &self.engine.meta;
        batch.insert(
            meta,
            meta_key(self.range_id, RANGE_APPLIED),
            entry.state.to_bytes(),
        );
        if delta != StatsDelta::default() || split.is_some() || recounted {
            self.stats.add(&delta);
            batch.insert(
                meta,
                meta_key(self.range_id, RANGE_STATS),
                self.stats.encode(),
            );
        }
        batch.commit().map_err(io::Error::other)?;
        if let Some(cmd) = &entry.command
            && cmd.may_release_locks()
        {
            self.engine.waiters.released(cmd.keys());
        }
        if let Some(desc) = replicas_changed {
            tracing::info!(%desc, voters = ?entry.state.voters(), "range replicas changed");
            *self.desc.write().expect("descriptor lock") = desc;
        }
        if let Some((trigger, _)) = split {
            *self.desc.write().expect("descriptor lock") = trigger.left.clone();
            tracing::info!(left = %trigger.left, right = %trigger.right, "range split");
            // The store may be shutting down; the right range starts with the next open then.
            let _ = self.events.send(StoreEvent::Split {
                left: trigger.left,
                right: trigger.right,
            });
        }
        Ok(response)
    }

    fn persist(&self) -> io::Result<()> {
        self.engine
            .persist()
            .map_err(|e| io::Error::other(e.to_string()))
    }

    /// Snapshot format: `[1] [descriptor] [stats] [tso bound: 0 | 1 u64] [gc threshold u64]` then entries
    /// `[keyspace: 1 data | 2 locks] [key] [value]` until the end, all read from one fjall snapshot.
    /// The metadata is read here, under the state machine's lock; the data entries are read
    /// by the returned builder from the same fjall snapshot, after the lock is released.
    fn snapshot(&self) -> io::Result<(raft::AppliedState, raft::SnapshotBuild)> {
        let snapshot = self.engine.db.snapshot();
        let get = |tag| {
            snapshot
                .get(&self.engine.meta, meta_key(self.range_id, tag))
                .map_err(io::Error::other)
        };
        let state = get(RANGE_APPLIED)?
            .ok_or_else(|| corrupt("snapshot of a range with nothing applied"))?;
        let state = raft::AppliedState::from_bytes(&state)?;
        let desc_bytes =
            get(RANGE_DESCRIPTOR)?.ok_or_else(|| corrupt("range without descriptor"))?;
        let desc = RangeDescriptor::decode(&desc_bytes)?;
        let stats = get(RANGE_STATS)?
            .map(|v| v.to_vec())
            .unwrap_or_else(|| Stats::default().encode());
        let mut w = Writer::versioned(SNAPSHOT_V1);
        w.bytes(&desc_bytes).bytes(&stats);
        match read_tso_bound(&self.engine, &snapshot, self.range_id)? {
            Some(b) => w.u8(1).u64(b),
            None => w.u8(0),
        };
        let threshold = get(RANGE_GC_THRESHOLD)?.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok());
        w.u64(threshold.map_or(0, u64::from_be_bytes));
        let engine = self.engine.clone();
        let build = move || {
            for (start, end) in replicated_spans(&desc) {
                let (mut ds, mut de) = (Vec::new(), Vec::new());
                encode_bytes(&mut ds, &start);
                encode_bytes(&mut de, &end);
                for (tag, ks, range) in [
                    (1u8, &engine.data, ds..de),
                    (2u8, &engine.locks, start..end),
                ] {
                    for guard in snapshot.range(ks, range) {
                        let (k, v) = guard.into_inner().map_err(io::Error::other)?;
                        w.u8(tag).bytes(&k).bytes(&v);
                    }
                }
            }
            Ok(w.finish())
        };
        Ok((state, Box::new(build)))
    }

    fn install_snapshot(&mut self, state: &raft::AppliedState, data: &[u8]) -> io::Result<()> {
        let mut r = Reader::versioned(data, SNAPSHOT_V1, "range snapshot")?;
        let desc_bytes = r.bytes()?;
        let desc = RangeDescriptor::decode(&desc_bytes)?;
        if desc.range_id != self.range_id {
            return Err(corrupt("snapshot of another range"));
        }
        let stats = Stats::decode(&r.bytes()?)?;
        let tso_bound = if r.bool()? { Some(r.u64()?) } else { None };
        let gc_threshold = r.u64()?;
        let engine = &self.engine;
        let others: Vec<RangeDescriptor> = engine
            .descriptors()
            .map_err(|e| io::Error::other(e.to_string()))?
            .into_iter()
            .filter(|d| d.range_id != self.range_id)
            .collect();
        // Another replica on this node owns part of the new span: installing would overwrite
        // its data. Refused (the group stops; a later snapshot or an operator repairs it).
        if let Some(other) = others
            .iter()
            .find(|o| o.start < desc.end && desc.start < o.end)
        {
            return Err(io::Error::other(format!(
                "snapshot of {desc} overlaps {other}, which has a replica on this node; refused"
            )));
        }
        let snapshot = engine.db.snapshot();
        let mut batch = engine.db.batch().durability(engine.durable_mode());
        // Clear what the new descriptor covers, and what the old one covers that no other local
        // replica does (a parent that missed its split must not erase the right half's data when
        // the right half has a replica here), then write the snapshot's data.
        let mut clear: Vec<(Vec<u8>, Vec<u8>)> = replicated_spans(&desc).to_vec();
        for (i, (start, end)) in replicated_spans(&self.descriptor()).into_iter().enumerate() {
            let holes: Vec<_> = others
                .iter()
                .map(|o| replicated_spans(o)[i].clone())
                .collect();
            clear.extend(span_minus(&start, &end, &holes));
        }
        for (start, end) in clear {
            clear_span(
                &snapshot,
                &engine.data,
                &engine.locks,
                &mut batch,
                &start,
                &end,
            )?;
        }
        while !r.rest().is_empty() {
            let ks = match r.u8()? {
                1 => &engine.data,
                2 => &engine.locks,
                _ => return Err(corrupt("snapshot entry")),
            };
            let (k, v) = (r.bytes()?, r.bytes()?);
            batch.insert(ks, k, v);
        }
        let meta = &engine.meta;
        batch.insert(meta, meta_key(self.range_id, RANGE_DESCRIPTOR), desc_bytes);
        batch.insert(meta, meta_key(self.range_id, RANGE_STATS), stats.encode());
        batch.insert(
            meta,
            meta_key(self.range_id, RANGE_APPLIED),
            state.to_bytes(),
        );
        if let Some(b) = tso_bound {
            batch.insert(
                meta,
                meta_key(self.range_id, RANGE_TSO_BOUND),
                b.to_be_bytes(),
            );
        }
        let key = meta_key(self.range_id, RANGE_GC_THRESHOLD);
        batch.insert(meta, key, gc_threshold.to_be_bytes());
        batch.commit().map_err(io::Error::other)?;
        self.gc_threshold.store(gc_threshold, Ordering::SeqCst);
        *self.desc.write().expect("descriptor lock") = desc;
        self.stats = stats;
        Ok(())
    }
}

/// A range's replica on this node: proposes commands and serves linearizable reads.
pub struct Replica {
    pub range_id: RangeId,
    desc: Arc<RwLock<RangeDescriptor>>,
    group: raft::Group<RangeStateMachine>,
    engine: Engine,
    gc_threshold: Arc<AtomicU64>,
    latches: Arc<Latches>,
}

impl Replica {
    /// Wraps a started Raft group.
    pub fn new(
        desc: Arc<RwLock<RangeDescriptor>>,
        group: raft::Group<RangeStateMachine>,
        engine: Engine,
        gc_threshold: Arc<AtomicU64>,
    ) -> Self {
        let range_id = desc.read().expect("descriptor lock").range_id;
        Replica {
            range_id,
            desc,
            group,
            engine,
            gc_threshold,
            latches: Arc::default(),
        }
    }

    /// The leader's latches (one-phase commit; see [`crate::latch`]).
    pub fn latches(&self) -> &Arc<Latches> {
        &self.latches
    }

    /// The range's MVCC statistics as last applied.
    pub fn stats(&self) -> Result<Stats> {
        match self.engine.meta.get(meta_key(self.range_id, RANGE_STATS))? {
            Some(v) => Ok(Stats::decode(&v)?),
            None => Ok(Stats::default()),
        }
    }

    /// A key near the middle of the range's data by bytes, to split at: a user key strictly
    /// inside the range (None when the range holds fewer than two keys).
    pub async fn split_key(&self) -> Result<Option<Vec<u8>>> {
        let (snapshot, desc) = self.read_snapshot().await?;
        let [(start, end), _] = replicated_spans(&desc);
        let (mut ds, mut de) = (Vec::new(), Vec::new());
        encode_bytes(&mut ds, &start);
        encode_bytes(&mut de, &end);
        let mut total = 0usize;
        for guard in snapshot.range(&self.engine.data, ds.clone()..de.clone()) {
            let (k, v) = guard
                .into_inner()
                .map_err(|e| Error::Storage(e.to_string()))?;
            total += k.len() + v.len();
        }
        let mut seen = 0usize;
        for guard in snapshot.range(&self.engine.data, ds..de) {
            let (k, v) = guard
                .into_inner()
                .map_err(|e| Error::Storage(e.to_string()))?;
            seen += k.len() + v.len();
            if seen * 2 >= total {
                let (key, _) = crate::keys::decode_bytes(&k)
                    .ok_or_else(|| Error::Storage("malformed version key".into()))?;
                return Ok(
                    (key.as_slice() > desc.start.as_slice() && desc.contains(&key)).then_some(key),
                );
            }
        }
        Ok(None)
    }

    /// The range's GC threshold: reads below it fail.
    pub fn gc_threshold(&self) -> Timestamp {
        self.gc_threshold.load(Ordering::SeqCst)
    }

    /// Refuses a read at `ts` below the GC threshold. Called after the snapshot is taken: a
    /// `Gc` raises the threshold before its batch lands, so a snapshot that may lack collected
    /// versions is always met by the raised threshold here.
    fn check_gc(&self, ts: Timestamp) -> Result<()> {
        let threshold = self.gc_threshold();
        if ts < threshold {
            return Err(Error::BelowGcThreshold { ts, threshold });
        }
        Ok(())
    }

    /// The locks in the range's replicated spans of transactions that started before `before`
    /// (GC resolves them first).
    pub async fn locks_before(&self, before: Timestamp) -> Result<Vec<LockedKey>> {
        let (snapshot, desc) = self.read_snapshot().await?;
        let mut out = Vec::new();
        for (start, end) in replicated_spans(&desc) {
            out.extend(self.mvcc(&snapshot).locks_before(&start, &end, before)?);
        }
        Ok(out)
    }

    /// The replica's current descriptor.
    pub fn descriptor(&self) -> RangeDescriptor {
        self.desc.read().expect("descriptor lock").clone()
    }

    /// The Raft group.
    pub fn group(&self) -> &raft::Group<RangeStateMachine> {
        &self.group
    }

    /// Proposes a command and returns its apply-time response.
    pub async fn propose(&self, cmd: Command) -> Result<Response> {
        self.propose_holding(cmd, ()).await
    }

    /// [`propose`](Self::propose), keeping `hold` (a one-phase commit's latches) alive until the
    /// entry's fate is known, even after the proposal reports [`Error::Ambiguous`] (see
    /// `raft::Group::propose_holding`).
    pub async fn propose_holding<H: Send + 'static>(
        &self,
        cmd: Command,
        hold: H,
    ) -> Result<Response> {
        let size = cmd.encode().len();
        if size > MAX_COMMAND_BYTES {
            return Err(Error::CommandTooLarge {
                size,
                limit: MAX_COMMAND_BYTES,
            });
        }
        metrics::counter!("tinkerdb_raft_proposals_total").increment(1);
        #[allow(unused_variables)] // read only by the failpoint below
        let one_phase = matches!(cmd, Command::OnePhaseCommit { .. });
        let response = self.group.propose_holding(cmd, hold).await?;
        // Tests: a one-phase commit that applied, reported as if its reply were lost.
        fail::fail_point!("kv::one_phase_commit_reply", one_phase, |arg| {
            Err(match arg.as_deref() {
                Some("not_leader") => Error::NotLeader { leader: None },
                _ => Error::Ambiguous("failpoint kv::one_phase_commit_reply".into()),
            })
        });
        match response {
            Response::RangeKeyMismatch(desc) => Err(Error::RangeKeyMismatch(Box::new(desc))),
            Response::BelowGcThreshold { ts, threshold } => {
                Err(Error::BelowGcThreshold { ts, threshold })
            }
            r => Ok(r),
        }
    }

    /// Adds node `node` (reached at `addr`, holding an empty replica, see `Store::add_replica`)
    /// to the range's group as a learner. The log is first compacted into a snapshot, so the
    /// learner starts from a snapshot of the state machine rather than from the first entry
    /// (data written at bootstrap is in no entry). The range descriptor's replica list is not
    /// changed here. Only the leader can do it.
    pub async fn add_learner(&self, node: NodeId, addr: String) -> Result<()> {
        self.group.compact(Duration::from_secs(30)).await?;
        self.group.add_learner(node, addr).await?;
        Ok(())
    }

    /// Changes the range's voters to `voters` (members already: learners to promote, voters to
    /// keep; a voter left out leaves the group), with the descriptor's replica list changed in
    /// the same Raft entries: the joint entry carries the union of the old and new voters, the
    /// uniform entry the new voters. `expected` is the membership the change was decided on:
    /// a group whose membership moved on refuses it. Only the leader can do it. Returns the
    /// descriptor after the change.
    pub async fn change_replicas(
        &self,
        voters: std::collections::BTreeSet<NodeId>,
        expected: Option<raft::MembershipId>,
    ) -> Result<RangeDescriptor> {
        let desc = self.descriptor();
        let old = self.group.membership().all_voters();
        let joint = RangeDescriptor {
            replicas: old.union(&voters).copied().collect(),
            generation: desc.generation + 1,
            ..desc.clone()
        };
        let uniform = RangeDescriptor {
            replicas: voters.iter().copied().collect(),
            generation: desc.generation + 2,
            ..desc
        };
        self.group
            .change_membership(
                voters,
                false,
                Command::ChangeReplicas { desc: joint },
                Command::ChangeReplicas { desc: uniform },
                expected,
            )
            .await?;
        Ok(self.descriptor())
    }

    /// Removes `learners` from the group (a learner added for a replica that is no longer
    /// wanted); the descriptor's generation moves on in the same entry.
    pub async fn remove_learners(
        &self,
        learners: std::collections::BTreeSet<NodeId>,
        expected: Option<raft::MembershipId>,
    ) -> Result<()> {
        let desc = self.descriptor();
        let desc = RangeDescriptor {
            generation: desc.generation + 1,
            ..desc
        };
        self.group
            .remove_learners(learners, Command::ChangeReplicas { desc }, expected)
            .await?;
        Ok(())
    }

    /// Confirms leadership, then returns a fjall snapshot that includes everything committed
    /// before the call, and the descriptor to check bounds against.
    pub(crate) async fn read_snapshot(&self) -> Result<(Snapshot, RangeDescriptor)> {
        self.group.read_index().await?;
        Ok((self.engine.db.snapshot(), self.descriptor()))
    }

    pub(crate) fn mvcc<'a>(&'a self, snapshot: &'a Snapshot) -> Mvcc<'a> {
        Mvcc {
            snapshot,
            data: &self.engine.data,
            locks: &self.engine.locks,
        }
    }

    /// Reads `key` at `ts` (linearizable).
    pub async fn get(
        &self,
        key: &[u8],
        ts: Timestamp,
    ) -> Result<std::result::Result<Option<Vec<u8>>, LockedKey>> {
        self.latches.wait(key, &next_key(key), ts, None).await;
        let (snapshot, desc) = self.read_snapshot().await?;
        self.check_gc(ts)?;
        if !desc.contains(&routing_key(key)) {
            return Err(Error::RangeKeyMismatch(Box::new(desc)));
        }
        Ok(self.mvcc(&snapshot).get(key, ts)?)
    }

    /// Reads each of `keys` at `ts` (linearizable) after one leadership check; every key
    /// must lie inside the range.
    pub async fn get_many(
        &self,
        keys: &[Vec<u8>],
        ts: Timestamp,
    ) -> Result<Vec<std::result::Result<Option<Vec<u8>>, LockedKey>>> {
        for key in keys {
            self.latches.wait(key, &next_key(key), ts, None).await;
        }
        let (snapshot, desc) = self.read_snapshot().await?;
        self.check_gc(ts)?;
        if !keys.iter().all(|k| desc.contains(&routing_key(k))) {
            return Err(Error::RangeKeyMismatch(Box::new(desc)));
        }
        let mvcc = self.mvcc(&snapshot);
        keys.iter()
            .map(|k| mvcc.get(k, ts).map_err(Into::into))
            .collect()
    }

    /// Scans `[start, end)` at `ts` (linearizable); the span must lie inside the range.
    pub async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: usize,
    ) -> Result<ScanResult> {
        self.latches.wait(start, end, ts, None).await;
        let (snapshot, desc) = self.read_snapshot().await?;
        self.check_gc(ts)?;
        if !desc.contains_span(start, end) {
            return Err(Error::RangeKeyMismatch(Box::new(desc)));
        }
        Ok(self.mvcc(&snapshot).scan(start, end, ts, limit)?)
    }

    /// Validates a read of `[start, end)` (see [`Mvcc::validate`]); the span must lie inside the range.
    pub async fn validate(
        &self,
        start: &[u8],
        end: &[u8],
        own_start_ts: Timestamp,
        from_ts: Timestamp,
        to_ts: Timestamp,
    ) -> Result<crate::mvcc::Validation> {
        self.latches.wait(start, end, to_ts, None).await;
        let (snapshot, desc) = self.read_snapshot().await?;
        self.check_gc(from_ts)?;
        if !desc.contains_span(start, end) {
            return Err(Error::RangeKeyMismatch(Box::new(desc)));
        }
        Ok(self
            .mvcc(&snapshot)
            .validate(start, end, own_start_ts, from_ts, to_ts)?)
    }

    /// The status of the transaction `start_ts` as recorded on its primary key (linearizable;
    /// decides nothing, so it needs no proposal).
    pub async fn txn_status(
        &self,
        primary: &[u8],
        start_ts: Timestamp,
    ) -> Result<crate::mvcc::TxnStatus> {
        let (snapshot, desc) = self.read_snapshot().await?;
        if !desc.contains(&routing_key(primary)) {
            return Err(Error::RangeKeyMismatch(Box::new(desc)));
        }
        Ok(self.mvcc(&snapshot).txn_status(primary, start_ts)?)
    }

    /// The persisted timestamp-oracle bound (range 1), read after a leadership check.
    pub async fn tso_bound(&self) -> Result<Option<Timestamp>> {
        let (snapshot, _) = self.read_snapshot().await?;
        Ok(read_tso_bound(&self.engine, &snapshot, self.range_id)?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use raft::StateMachine;

    use super::*;
    use crate::engine::EngineOptions;
    use crate::mvcc::{Record, RecordKind, version_key};

    fn k(s: &str) -> Vec<u8> {
        let mut out = vec![0x03];
        out.extend_from_slice(s.as_bytes());
        out
    }

    fn span(a: &str, b: &str) -> (Vec<u8>, Vec<u8>) {
        (k(a), k(b))
    }

    #[test]
    fn span_minus_leaves_what_no_hole_covers() {
        let (a, z) = span("a", "z");
        assert_eq!(span_minus(&a, &z, &[]), vec![span("a", "z")]);
        assert_eq!(span_minus(&a, &z, &[span("m", "z")]), vec![span("a", "m")]);
        assert_eq!(
            span_minus(&a, &z, &[span("p", "q"), span("c", "f"), span("e", "g")]),
            vec![span("a", "c"), span("g", "p"), span("q", "z")]
        );
        assert!(span_minus(&a, &z, &[span("0", "zz")]).is_empty());
        assert_eq!(
            span_minus(&a, &z, &[span("zz", "zzz")]),
            vec![span("a", "z")]
        );
    }

    fn desc(range_id: RangeId, start: &str, end: &str) -> RangeDescriptor {
        RangeDescriptor {
            range_id,
            start: k(start),
            end: k(end),
            replicas: vec![1],
            generation: 0,
        }
    }

    fn put(engine: &Engine, key: &[u8]) {
        let record = Record {
            kind: RecordKind::Put,
            start_ts: 5,
            value: b"v".to_vec(),
        };
        engine
            .data
            .insert(version_key(key, 6), record.encode())
            .unwrap();
    }

    fn has(engine: &Engine, key: &[u8]) -> bool {
        engine.data.get(version_key(key, 6)).unwrap().is_some()
    }

    /// A snapshot body of `d` holding one version of `key` (the layout `snapshot` writes).
    fn body(d: &RangeDescriptor, key: &[u8]) -> Vec<u8> {
        let record = Record {
            kind: RecordKind::Put,
            start_ts: 5,
            value: b"from the snapshot".to_vec(),
        };
        let mut w = Writer::versioned(SNAPSHOT_V1);
        w.bytes(&d.encode()).bytes(&Stats::default().encode());
        w.u8(0).u64(0);
        w.u8(1).bytes(&version_key(key, 6)).bytes(&record.encode());
        w.finish()
    }

    /// A replica of range 2 that missed its split ([a, z) here) while range 3, the right half
    /// [m, z), has a replica on this node; then range 2 installs a snapshot taken after the
    /// split ([a, m)).
    #[test]
    fn a_parent_snapshot_after_a_split_keeps_the_right_half() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), EngineOptions::default()).unwrap();
        let log = raft::LogStore::open(&engine.db).unwrap();
        let (parent, right) = (desc(2, "a", "z"), desc(3, "m", "z"));
        for d in [&parent, &right] {
            engine
                .meta
                .insert(meta_key(d.range_id, RANGE_DESCRIPTOR), d.encode())
                .unwrap();
        }
        for key in [k("b"), k("n"), k("y")] {
            put(&engine, &key);
        }
        let (events, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut sm = RangeStateMachine::open(
            engine.clone(),
            log,
            Arc::new(RwLock::new(parent.clone())),
            events,
            Arc::default(),
        )
        .unwrap();
        let state = raft::split_initial_state(BTreeMap::from([(1, "node-1".to_string())]));

        // Overlapping the right half's replica: refused, nothing touched.
        let err = sm
            .install_snapshot(&state, &body(&parent, &k("c")))
            .unwrap_err();
        assert!(err.to_string().contains("overlaps"), "{err}");
        assert!(has(&engine, &k("b")) && has(&engine, &k("n")));

        let left = RangeDescriptor {
            end: k("m"),
            generation: 1,
            ..parent.clone()
        };
        sm.install_snapshot(&state, &body(&left, &k("c"))).unwrap();
        assert!(
            !has(&engine, &k("b")),
            "the left half is replaced by the snapshot"
        );
        assert!(has(&engine, &k("c")));
        assert!(
            has(&engine, &k("n")) && has(&engine, &k("y")),
            "the right half is kept"
        );
        assert_eq!(sm.descriptor(), left);
    }
}
