//! The kv client: routes each request to the range that holds its keys, through a cached range
//! directory, and retries on routing errors. Every request reaches a range as a
//! [`Request`](crate::request::Request) value through the node's
//! [`RangeSender`](crate::request::RangeSender) (see [`crate::request`]).
//!
//! Range 1 always starts at KeyMin and holds the directory itself, so a lookup starts there. Every
//! other range is found by the directory entry with the smallest end key greater than the key.
//! Directory reads take the latest committed descriptor; a lock met on a directory entry is
//! rolled forward or back when its split transaction is decided (see `Client::lookup`).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::command::{Command, Response};
use crate::engine::Stats;
use crate::error::{Error, Result};
use crate::keys::{Key, SYS_RANGES, TAG_SYS, next_key, prefix_end, routing_key, sql_start};
use crate::mvcc::{LockedKey, Mutation, ScanResult, Timestamp, TxnStatus, Validation};
use crate::range::{NodeId, RangeDescriptor, RangeId};
use crate::request::{LocalSender, RangeSender, Reply, Request, TimestampSource};
use crate::store::Store;

/// How often a request is retried after routing errors before giving up.
const MAX_ATTEMPTS: usize = 20;

/// Routes requests to ranges.
#[derive(Clone)]
pub struct Client {
    store: Arc<Store>,
    local: Arc<LocalSender>,
    sender: Arc<dyn RangeSender>,
    /// Cached descriptors by end key.
    cache: Arc<RwLock<BTreeMap<Vec<u8>, RangeDescriptor>>>,
}

/// What this node knows of a range whose replica it leads: for the leader's own duties (GC,
/// size-based splits), which run where the leader is.
#[derive(Clone, Debug)]
pub struct LedRange {
    /// The replica's descriptor.
    pub desc: RangeDescriptor,
    /// The range's GC threshold.
    pub gc_threshold: Timestamp,
    /// The range's MVCC statistics as last applied.
    pub stats: Stats,
}

fn unexpected(req: &'static str, reply: Reply) -> Error {
    Error::Storage(format!("unexpected reply to {req}: {reply:?}"))
}

impl Client {
    /// A client over the node's store, sending through a [`LocalSender`].
    pub fn new(store: Arc<Store>) -> Client {
        let local = Arc::new(LocalSender::new(store.clone()));
        Client {
            store,
            sender: local.clone(),
            local,
            cache: Arc::default(),
        }
    }

    /// A client over the node's store whose requests go through the sender `make` builds from
    /// the node's [`LocalSender`] (a network sender serves local leaders through it).
    pub fn with_sender(
        store: Arc<Store>,
        make: impl FnOnce(Arc<LocalSender>) -> Arc<dyn RangeSender>,
    ) -> Client {
        let local = Arc::new(LocalSender::new(store.clone()));
        Client {
            store,
            sender: make(local.clone()),
            local,
            cache: Arc::default(),
        }
    }

    /// Opens the node's store ([`Store::open`]) and a client over it.
    pub async fn open(options: crate::StoreOptions) -> Result<Client> {
        Ok(Client::new(Store::open(options).await?))
    }

    /// Sets the node's timestamp source, which one-phase commits on this node's leaders use
    /// (held weakly: the caller keeps it alive).
    pub fn set_timestamp_source(&self, source: &Arc<dyn TimestampSource>) {
        self.local.set_timestamp_source(source);
    }

    /// Sends one request to the range `desc` (no routing, no retry).
    pub async fn call(&self, desc: &RangeDescriptor, req: Request) -> Result<Reply> {
        self.sender.send(desc, req).await
    }

    /// Runs one request on this node's replica of the range `desc` (no routing, no retry): what
    /// a peer's network sender asks of this node.
    pub async fn call_local(&self, desc: &RangeDescriptor, req: Request) -> Result<Reply> {
        self.local.send(desc, req).await
    }

    /// Range 1's descriptor (its span never moves: it starts at KeyMin and ends at the SQL
    /// keys). A node without a replica of range 1 knows its span but not its replicas: the
    /// sender finds the leader through the other nodes.
    pub fn range1(&self) -> RangeDescriptor {
        match self.store.replica(1) {
            Ok(r) => r.descriptor(),
            Err(_) => RangeDescriptor {
                range_id: 1,
                start: crate::keys::KEY_MIN.to_vec(),
                end: sql_start(),
                replicas: Vec::new(),
                generation: 0,
            },
        }
    }

    /// The node's store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The descriptor of the range holding `key` (a routing key).
    pub async fn range_for(&self, key: &[u8]) -> Result<RangeDescriptor> {
        if let Some((_, desc)) = self
            .cache
            .read()
            .expect("cache lock")
            .range(next_key(key)..)
            .next()
            && desc.contains(key)
        {
            return Ok(desc.clone());
        }
        let desc = if key < sql_start().as_slice() {
            self.range1()
        } else {
            self.lookup(key).await?
        };
        self.cache
            .write()
            .expect("cache lock")
            .insert(desc.end.clone(), desc.clone());
        Ok(desc)
    }

    /// Reads the directory entry of the range holding `key` from range 1.
    ///
    /// Directory entries are written by split transactions, whose primary is the parent range's
    /// range-local descriptor key. A lock met on an entry is resolved here when its transaction
    /// is decided: a committed split whose coordinator died past the commit point would otherwise
    /// leave the right-hand range routed by the parent's old descriptor until GC resolved the lock.
    /// While the split is undecided the committed entries are still the truth (the parent has not
    /// split before its primary commits), so they are used as they are.
    async fn lookup(&self, key: &[u8]) -> Result<RangeDescriptor> {
        for _ in 0..3 {
            let found = self.scan_directory(key).await?;
            let mut resolved = false;
            for locked in &found.locks {
                resolved |= self.resolve_directory_lock(locked).await?;
            }
            if !resolved {
                return first_entry(key, &found);
            }
        }
        first_entry(key, &self.scan_directory(key).await?)
    }

    /// The directory entries from the one covering `key`: committed rows and the locks met.
    async fn scan_directory(&self, key: &[u8]) -> Result<ScanResult> {
        let start = Key::RangeDirectory {
            end_key: next_key(key),
        }
        .encode();
        let end = prefix_end(&[TAG_SYS, SYS_RANGES]).expect("not all 0xFF");
        let req = Request::Scan {
            start,
            end,
            ts: u64::MAX,
            limit: 1,
        };
        match self.call(&self.range1(), req).await? {
            Reply::Scan(found) => Ok(found),
            other => Err(unexpected("scan", other)),
        }
    }

    /// Rolls a directory entry's lock forward or back when its transaction is decided; returns
    /// whether it did. The status is read from the primary's range found through the committed
    /// directory (not through `range_for`, which would meet the same locks again): a split's
    /// primary is its parent's descriptor key, and the parent keeps its start key.
    async fn resolve_directory_lock(&self, locked: &LockedKey) -> Result<bool> {
        let lock = &locked.lock;
        let route = routing_key(&lock.primary).into_owned();
        let owner = if route.as_slice() < sql_start().as_slice() {
            self.range1()
        } else {
            first_entry(&route, &self.scan_directory(&route).await?)?
        };
        let req = Request::TxnStatus {
            primary: lock.primary.clone(),
            start_ts: lock.start_ts,
        };
        let status = match self.call(&owner, req).await? {
            Reply::TxnStatus(status) => status,
            other => return Err(unexpected("txn_status", other)),
        };
        let cmd = match status {
            crate::mvcc::TxnStatus::Committed { commit_ts } => Command::Commit {
                start_ts: lock.start_ts,
                commit_ts,
                keys: vec![locked.key.clone()],
            },
            crate::mvcc::TxnStatus::RolledBack => Command::Rollback {
                start_ts: lock.start_ts,
                keys: vec![locked.key.clone()],
            },
            crate::mvcc::TxnStatus::Pending { .. } | crate::mvcc::TxnStatus::Missing => {
                return Ok(false);
            }
        };
        tracing::info!(
            key = %crate::keys::Pretty(&locked.key),
            start_ts = lock.start_ts,
            "resolving a decided split's lock on a range directory entry"
        );
        self.call(&self.range1(), Request::Propose(cmd)).await?;
        Ok(true)
    }

    /// Forgets a cached descriptor (after a routing error or a change of the range).
    pub fn evict(&self, desc: &RangeDescriptor) {
        self.cache.write().expect("cache lock").remove(&desc.end);
    }

    /// Sends the request `make` builds for the range holding `key` (a routing key), retrying
    /// on routing errors with a fresh descriptor; answers the reply and the descriptor used.
    async fn with_range(
        &self,
        key: &[u8],
        make: impl Fn(&RangeDescriptor) -> Request,
    ) -> Result<(Reply, RangeDescriptor)> {
        let mut attempt = 0;
        loop {
            let desc = self.range_for(key).await?;
            match self.call(&desc, make(&desc)).await {
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(range = desc.range_id, attempt, "retrying after {e}");
                    self.evict(&desc);
                    tokio::time::sleep(Duration::from_millis(10 * attempt as u64)).await;
                }
                Err(e) => return Err(e),
                Ok(reply) => return Ok((reply, desc)),
            }
        }
    }

    /// Reads `key` at `ts`.
    pub async fn get(
        &self,
        key: &[u8],
        ts: Timestamp,
    ) -> Result<std::result::Result<Option<Vec<u8>>, LockedKey>> {
        let route = routing_key(key).into_owned();
        let make = |_: &RangeDescriptor| Request::Get {
            key: key.to_vec(),
            ts,
        };
        match self.with_range(&route, make).await?.0 {
            Reply::Value(v) => Ok(v),
            other => Err(unexpected("get", other)),
        }
    }

    /// Reads each of `keys` at `ts`: one request per range holding some of them. Answers, for
    /// each key in order, its value or the foreign lock that hides it.
    pub async fn get_many(
        &self,
        keys: &[Vec<u8>],
        ts: Timestamp,
    ) -> Result<Vec<std::result::Result<Option<Vec<u8>>, LockedKey>>> {
        let mut out: Vec<Option<std::result::Result<Option<Vec<u8>>, LockedKey>>> =
            vec![None; keys.len()];
        let routes: Vec<Vec<u8>> = keys.iter().map(|k| routing_key(k).into_owned()).collect();
        let mut pending: Vec<usize> = (0..keys.len()).collect();
        while let Some(&first) = pending.first() {
            // The keys of `pending` the range `desc` holds (recomputed from the descriptor a
            // retry used, so a split in between leaves the rest for the next round).
            let held = |desc: &RangeDescriptor| -> Vec<usize> {
                pending
                    .iter()
                    .copied()
                    .filter(|&i| desc.contains(&routes[i]))
                    .collect()
            };
            let make = |desc: &RangeDescriptor| Request::GetMany {
                keys: held(desc).into_iter().map(|i| keys[i].clone()).collect(),
                ts,
            };
            let (reply, desc) = self.with_range(&routes[first], make).await?;
            let Reply::Values(values) = reply else {
                return Err(unexpected("get_many", reply));
            };
            let held = held(&desc);
            if values.len() != held.len() {
                return Err(Error::Unavailable(format!(
                    "get_many: {} answers for {} keys",
                    values.len(),
                    held.len()
                )));
            }
            for (i, v) in held.iter().zip(values) {
                out[*i] = Some(v);
            }
            pending.retain(|i| out[*i].is_none());
        }
        Ok(out
            .into_iter()
            .map(|v| v.expect("every key answered"))
            .collect())
    }

    /// Scans up to `limit` rows of `[start, end)` at `ts` across ranges. Stops at the first range
    /// that reports locks (the result then carries them and a resume key where the scan stopped).
    pub async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        ts: Timestamp,
        limit: usize,
    ) -> Result<ScanResult> {
        let mut result = ScanResult::default();
        let mut from = start.to_vec();
        while from.as_slice() < end {
            let want = limit - result.rows.len();
            let make = |desc: &RangeDescriptor| Request::Scan {
                start: from.clone(),
                end: end.min(desc.end.as_slice()).to_vec(),
                ts,
                limit: want,
            };
            let (part, desc) = match self.with_range(&from, make).await? {
                (Reply::Scan(part), desc) => (part, desc),
                (other, _) => return Err(unexpected("scan", other)),
            };
            let range_end = end.min(desc.end.as_slice()).to_vec();
            result.rows.extend(part.rows);
            if !part.locks.is_empty() {
                result.locks = part.locks;
                result.resume = Some(from);
                return Ok(result);
            }
            if let Some(resume) = part.resume {
                result.resume = Some(resume);
                return Ok(result);
            }
            if result.rows.len() == limit && range_end.as_slice() < end {
                result.resume = Some(range_end);
                return Ok(result);
            }
            from = range_end;
        }
        Ok(result)
    }

    /// Validates a read of `[start, end)` across ranges: the first conflicting version, or the
    /// foreign locks met (see `Mvcc::validate`).
    pub async fn validate(
        &self,
        start: &[u8],
        end: &[u8],
        own_start_ts: Timestamp,
        from_ts: Timestamp,
        to_ts: Timestamp,
    ) -> Result<Validation> {
        let mut result = Validation::default();
        let mut from = start.to_vec();
        while from.as_slice() < end {
            let make = |desc: &RangeDescriptor| Request::Validate {
                start: from.clone(),
                end: end.min(desc.end.as_slice()).to_vec(),
                own_start_ts,
                from_ts,
                to_ts,
            };
            let (part, desc) = match self.with_range(&from, make).await? {
                (Reply::Validation(part), desc) => (part, desc),
                (other, _) => return Err(unexpected("validate", other)),
            };
            if part.conflict.is_some() {
                return Ok(part);
            }
            result.locks.extend(part.locks);
            from = end.min(desc.end.as_slice()).to_vec();
        }
        Ok(result)
    }

    /// Reads the status of the transaction `start_ts` from its primary key (see
    /// `Mvcc::txn_status`); deciding an outcome takes a `CheckTxnStatus` command instead.
    pub async fn txn_status(&self, primary: &[u8], start_ts: Timestamp) -> Result<TxnStatus> {
        let route = routing_key(primary).into_owned();
        let make = |_: &RangeDescriptor| Request::TxnStatus {
            primary: primary.to_vec(),
            start_ts,
        };
        match self.with_range(&route, make).await?.0 {
            Reply::TxnStatus(status) => Ok(status),
            other => Err(unexpected("txn_status", other)),
        }
    }

    /// Sends a command whose keys all lie in one range (routed by its first key; range 1 when it
    /// has none) and returns its response.
    pub async fn send(&self, cmd: Command) -> Result<Response> {
        let route = cmd
            .keys()
            .first()
            .map(|k| routing_key(k).into_owned())
            .unwrap_or_default();
        let make = |_: &RangeDescriptor| Request::Propose(cmd.clone());
        match self.with_range(&route, make).await?.0 {
            Reply::Response(r) => Ok(r),
            other => Err(unexpected("propose", other)),
        }
    }

    /// Proposes a command to the range `desc` as it is (no routing by keys: GC and statistics
    /// commands, which have none).
    pub async fn propose_to(&self, desc: &RangeDescriptor, cmd: Command) -> Result<Response> {
        match self.call(desc, Request::Propose(cmd)).await? {
            Reply::Response(r) => Ok(r),
            other => Err(unexpected("propose", other)),
        }
    }

    /// Commits in one step a transaction whose writes and reads all lie in the range holding
    /// `primary`, on that range's leader (see [`crate::request`]). Not retried here: a routing
    /// error (`NotLeader`, `RangeKeyMismatch`) or `CommandTooLarge` means nothing was written
    /// and the caller commits in two phases instead (the cached descriptor is evicted).
    pub async fn one_phase_commit(
        &self,
        start_ts: Timestamp,
        read_ts: Timestamp,
        primary: &[u8],
        mutations: &[Mutation],
        reads: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Reply> {
        let desc = self.range_for(&routing_key(primary)).await?;
        let req = Request::OnePhaseCommit {
            start_ts,
            read_ts,
            primary: primary.to_vec(),
            mutations: mutations.to_vec(),
            reads: reads.to_vec(),
        };
        let reply = self.call(&desc, req).await;
        if let Err(Error::RangeKeyMismatch(_) | Error::NotLeader { .. }) = &reply {
            self.evict(&desc);
        }
        reply
    }

    /// Groups keys by the range that holds them, in key order.
    pub async fn group_by_range<T>(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> &[u8],
    ) -> Result<Vec<(RangeId, Vec<T>)>> {
        let mut groups: BTreeMap<Vec<u8>, (RangeId, Vec<T>)> = BTreeMap::new();
        for item in items {
            let desc = self.range_for(&routing_key(key(&item))).await?;
            groups
                .entry(desc.end.clone())
                .or_insert_with(|| (desc.range_id, Vec::new()))
                .1
                .push(item);
        }
        Ok(groups.into_values().collect())
    }

    /// Proposes a command to this node's replica of range 1, which must lead it (the oracle's
    /// bound lives there, and the oracle serves only where range 1's leader is).
    pub async fn send_range1(&self, cmd: Command) -> Result<Response> {
        match self
            .call_local(&self.range1(), Request::Propose(cmd))
            .await?
        {
            Reply::Response(r) => Ok(r),
            other => Err(unexpected("propose", other)),
        }
    }

    /// The persisted oracle bound, read from this node's replica of range 1 after a leadership
    /// check (`NotLeader` when it does not lead range 1).
    pub async fn tso_bound(&self) -> Result<Option<Timestamp>> {
        match self.call_local(&self.range1(), Request::TsoBound).await? {
            Reply::TsoBound(b) => Ok(b),
            other => Err(unexpected("tso_bound", other)),
        }
    }

    /// Confirms that this node's replica of range 1 (the oracle's home) leads it, with a
    /// ReadIndex check issued after the call, and returns the term of that leadership
    /// (`NotLeader` with the leader it knows of otherwise; `RangeNotFound` without a replica).
    pub async fn range1_read_index(&self) -> Result<u64> {
        match self.call_local(&self.range1(), Request::ReadIndex).await? {
            Reply::Term(t) => Ok(t),
            other => Err(unexpected("read_index", other)),
        }
    }

    /// Every range's descriptor in key order, each read afresh from the directory (range 1's
    /// as this node's replica of it has it).
    pub async fn all_ranges(&self) -> Result<Vec<RangeDescriptor>> {
        let first = self.range1();
        let mut key = first.end.clone();
        let mut ranges = vec![first];
        while key.as_slice() < crate::keys::KEY_MAX {
            let desc = self.lookup(&key).await?;
            if desc.end <= key {
                return Err(Error::Storage(format!(
                    "the range directory entry for {} ends at {}",
                    crate::keys::Pretty(&key),
                    crate::keys::Pretty(&desc.end)
                )));
            }
            key = desc.end.clone();
            ranges.push(desc);
        }
        Ok(ranges)
    }

    /// The locks of transactions that started before `before` in the range `desc`.
    pub async fn locks_before(
        &self,
        desc: &RangeDescriptor,
        before: Timestamp,
    ) -> Result<Vec<LockedKey>> {
        match self.call(desc, Request::LocksBefore { before }).await? {
            Reply::Locks(locks) => Ok(locks),
            other => Err(unexpected("locks_before", other)),
        }
    }

    /// A key near the middle of the range `desc`'s data, to split at.
    pub async fn split_key(&self, desc: &RangeDescriptor) -> Result<Option<Vec<u8>>> {
        match self.call(desc, Request::SplitKey).await? {
            Reply::SplitKey(key) => Ok(key),
            other => Err(unexpected("split_key", other)),
        }
    }

    /// The ranges whose replica on this node is the leader, with what the leader's duties need.
    pub fn led_ranges(&self) -> Result<Vec<LedRange>> {
        let mut out = Vec::new();
        for replica in self.store.replicas() {
            if replica.group().is_leader() {
                out.push(LedRange {
                    desc: replica.descriptor(),
                    gc_threshold: replica.gc_threshold(),
                    stats: replica.stats()?,
                });
            }
        }
        Ok(out)
    }

    /// The ids of the ranges with a replica on this node.
    pub fn local_ranges(&self) -> Vec<RangeId> {
        self.store.replicas().iter().map(|r| r.range_id).collect()
    }

    /// Whether the range `range_id` has a replica on this node that knows a leader (a split's
    /// new range is ready).
    pub fn range_has_leader(&self, range_id: RangeId) -> bool {
        self.store
            .replica(range_id)
            .is_ok_and(|r| r.group().leader().is_some())
    }

    /// The node's per-key lock wait queues (lock waits and their wake-ups on apply).
    pub fn wait_queues(&self) -> &crate::wait::WaitQueues {
        &self.store.engine().waiters
    }

    /// This node's id and its cluster's id.
    pub fn node_and_cluster(&self) -> (crate::range::NodeId, u64) {
        (self.store.node_id(), self.store.cluster_id())
    }

    /// The Raft membership of this node's replica of `range_id` (a leader's replica changes).
    pub fn membership(&self, range_id: RangeId) -> Result<raft::MembershipStatus> {
        Ok(self.store.replica(range_id)?.group().membership())
    }

    /// The members of `range_id`, led by this node, that have not answered its leader for
    /// `after` ([`raft::Group::unresponsive`]); empty where this node does not lead.
    pub fn unresponsive(
        &self,
        range_id: RangeId,
        after: std::time::Duration,
    ) -> Result<std::collections::BTreeSet<NodeId>> {
        Ok(self.store.replica(range_id)?.group().unresponsive(after))
    }

    /// Adds `node` (at `addr`) as a learner of `range_id`, led by this node; it starts from a
    /// snapshot ([`Replica::add_learner`](crate::replica::Replica::add_learner)).
    pub async fn add_learner(&self, range_id: RangeId, node: NodeId, addr: String) -> Result<()> {
        self.store.replica(range_id)?.add_learner(node, addr).await
    }

    /// Changes the voters of `range_id`, led by this node, with its descriptor in the same
    /// entries ([`Replica::change_replicas`](crate::replica::Replica::change_replicas)).
    pub async fn change_replicas(
        &self,
        range_id: RangeId,
        voters: std::collections::BTreeSet<NodeId>,
        expected: Option<raft::MembershipId>,
    ) -> Result<RangeDescriptor> {
        self.store
            .replica(range_id)?
            .change_replicas(voters, expected)
            .await
    }

    /// Removes learners of `range_id`, led by this node.
    pub async fn remove_learners(
        &self,
        range_id: RangeId,
        learners: std::collections::BTreeSet<NodeId>,
        expected: Option<raft::MembershipId>,
    ) -> Result<()> {
        self.store
            .replica(range_id)?
            .remove_learners(learners, expected)
            .await
    }

    /// Which other nodes this node has heard from within `within`, as its replicas' Raft
    /// groups tell: true for a node that acknowledged a group this node leads, or that leads a
    /// group this node follows; false for a member of a group led here that has been silent
    /// longer. Nodes that share no group with this node are absent.
    pub fn peer_liveness(&self, within: std::time::Duration) -> BTreeMap<NodeId, bool> {
        let me = self.store.node_id();
        let mut live: BTreeMap<NodeId, bool> = BTreeMap::new();
        for replica in self.store.replicas() {
            let group = replica.group();
            let status = group.status();
            if status.is_leader {
                let silent = group.unresponsive(within);
                for node in group.membership().nodes.keys() {
                    if *node != me {
                        *live.entry(*node).or_default() |= !silent.contains(node);
                    }
                }
            } else if let Some(leader) = status.leader.filter(|l| *l != me) {
                live.insert(leader, true);
            }
        }
        live
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.store.node_id()
    }

    /// The leader of `range_id` as this node's replica of it knows (None without a replica).
    pub fn leader_of(&self, range_id: RangeId) -> Option<NodeId> {
        self.store.replica(range_id).ok()?.group().leader()
    }

    /// The descriptor of `range_id` if this node leads it.
    pub fn led_descriptor(&self, range_id: RangeId) -> Option<RangeDescriptor> {
        let replica = self.store.replica(range_id).ok()?;
        replica.group().is_leader().then(|| replica.descriptor())
    }

    /// Every replica on this node: its descriptor, whether it leads, and its membership.
    pub fn local_replicas(&self) -> Vec<(RangeDescriptor, bool, raft::MembershipStatus)> {
        self.store
            .replicas()
            .iter()
            .map(|r| {
                (
                    r.descriptor(),
                    r.group().is_leader(),
                    r.group().membership(),
                )
            })
            .collect()
    }

    /// Removes this node's replica of `range_id` ([`Store::remove_replica`]).
    pub async fn remove_replica(&self, range_id: RangeId) -> Result<()> {
        self.store.remove_replica(range_id).await
    }

    /// Creates an empty replica of `range_id` here, for the range's leader to fill by snapshot
    /// ([`Store::add_replica`]); does nothing when one exists.
    pub async fn add_replica(&self, range_id: RangeId) -> Result<()> {
        if self.store.replica(range_id).is_ok() {
            return Ok(());
        }
        self.store.add_replica(range_id).await
    }

    /// Stops the node's Raft groups and makes the store durable.
    pub async fn shutdown(&self) -> Result<()> {
        self.store.shutdown().await
    }
}

/// The descriptor in the first directory entry of a scan started at `key`'s entry.
fn first_entry(key: &[u8], found: &ScanResult) -> Result<RangeDescriptor> {
    let (_, value) = found.rows.first().ok_or_else(|| {
        Error::Storage(format!(
            "no range directory entry covers key {}",
            crate::keys::Pretty(key)
        ))
    })?;
    Ok(RangeDescriptor::decode(value)?)
}
