//! A node's store: the storage engine, the Raft log, and a replica per range hosted here.
//!
//! At start-up a replica is created for every range descriptor in `meta`. A node started on an
//! empty directory without peers bootstraps a new cluster: range 1 = [KeyMin, start of `sql`) and
//! range 2 = [start of `sql`, KeyMax), their descriptors, range-local descriptor copies and
//! directory entries, the node directory entry of node 1 and the id counters written in one
//! atomic batch, then the only `initialize()` calls. None of it is in a log entry, so the
//! bootstrap's Raft groups purge their log past it: a replica added later starts from a
//! snapshot, which carries that data (`Replica::add_learner`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use crate::engine::{
    Engine, EngineOptions, NODE_BOOTSTRAPPED, NODE_CLUSTER_ID, NODE_ID, RANGE_APPLIED,
    RANGE_DESCRIPTOR, RANGE_GC_THRESHOLD, RANGE_STATS, RANGE_TSO_BOUND, Stats, meta_key,
};
use crate::error::{Error, Result};
use crate::keys::{
    KEY_MAX, KEY_MIN, Key, node_id_counter_key, node_key, range_descriptor_key,
    range_id_counter_key, sql_start,
};
use crate::mvcc::{Record, RecordKind, version_key};
use crate::range::{NodeId, NodeRecord, RangeDescriptor, RangeId};
use crate::replica::{RangeStateMachine, Replica};
use crate::split::StoreEvent;

/// The commit timestamp of the data written by the cluster bootstrap (below every oracle timestamp).
pub const BOOTSTRAP_TS: u64 = 1;

/// Options of a node's store.
#[derive(Clone)]
pub struct StoreOptions {
    /// The data directory.
    pub dir: PathBuf,
    /// The address peers reach this node at (recorded in Raft membership).
    pub advertise_addr: String,
    /// Storage engine options.
    pub engine: EngineOptions,
    /// Raft timing options.
    pub raft: raft::Options,
    /// How this node's Raft groups reach other nodes.
    pub network: Network,
    /// Join an existing cluster as this node instead of bootstrapping a new one on an empty
    /// directory (ignored once the directory holds a node).
    pub join: Option<Join>,
}

/// How a store's Raft groups reach other nodes' (see [`StoreOptions::network`]).
#[derive(Clone, Default)]
pub enum Network {
    /// An in-process transport that knows only this node: a single-node cluster.
    #[default]
    Alone,
    /// gRPC to the other nodes of the store's cluster ([`raft::GrpcTransport`]); the node's
    /// gRPC server serves [`Store::raft_service`].
    Grpc(raft::GrpcOptions),
    /// A transport given by the caller (tests: a [`raft::LocalTransport`] shared by stores in
    /// one process); whatever delivers messages to this node hands them to
    /// [`Store::registry`].
    Custom(Arc<dyn raft::Transport>),
}

/// The identity a store joining an existing cluster takes on its empty directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Join {
    /// The cluster's id: messages of other clusters are not this node's.
    pub cluster_id: u64,
    /// This node's id, unique in the cluster.
    pub node_id: NodeId,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("dir", &self.dir)
            .field("advertise_addr", &self.advertise_addr)
            .field("engine", &self.engine)
            .field("raft", &self.raft)
            .field(
                "network",
                &match &self.network {
                    Network::Alone => "alone",
                    Network::Grpc(_) => "grpc",
                    Network::Custom(_) => "custom",
                },
            )
            .field("join", &self.join)
            .finish()
    }
}

impl StoreOptions {
    /// Options for a store in `dir` with defaults elsewhere.
    pub fn new(dir: impl AsRef<Path>) -> StoreOptions {
        StoreOptions {
            dir: dir.as_ref().to_path_buf(),
            advertise_addr: "127.0.0.1:0".into(),
            engine: EngineOptions::default(),
            raft: raft::Options::default(),
            network: Network::Alone,
            join: None,
        }
    }
}

/// A node's store.
pub struct Store {
    node_id: NodeId,
    cluster_id: u64,
    engine: Engine,
    log: raft::LogStore,
    registry: raft::Registry,
    transport: Arc<dyn raft::Transport>,
    options: StoreOptions,
    replicas: RwLock<HashMap<RangeId, Arc<Replica>>>,
    events: tokio::sync::mpsc::UnboundedSender<StoreEvent>,
    /// Set when shutdown begins: no replica starts after it (a split applied just before a
    /// shutdown must not start a group that nothing stops, holding the directory open).
    closing: std::sync::atomic::AtomicBool,
}

impl Store {
    /// Opens the store in `options.dir`, bootstrapping a single-node cluster on an empty directory,
    /// and waits until every range has a leader.
    pub async fn open(options: StoreOptions) -> Result<Arc<Store>> {
        let engine = Engine::open(&options.dir.join("store"), options.engine.clone())?;
        let log = raft::LogStore::open(&engine.db)?;
        if engine.node_u64(NODE_ID)?.is_none() {
            match options.join {
                None => bootstrap_state(&engine, &options.advertise_addr)?,
                Some(join) => join_state(&engine, join)?,
            }
        }
        let node_id = engine.node_u64(NODE_ID)?.expect("written by the bootstrap");
        let cluster_id = engine
            .node_u64(NODE_CLUSTER_ID)?
            .expect("written by the bootstrap");
        let registry = raft::Registry::new();
        let transport: Arc<dyn raft::Transport> = match &options.network {
            Network::Alone => {
                let local = Arc::new(raft::LocalTransport::new());
                local.add_node(node_id, registry.clone());
                local
            }
            Network::Grpc(grpc) => Arc::new(raft::GrpcTransport::new(cluster_id, grpc.clone())),
            Network::Custom(t) => t.clone(),
        };
        let (events, event_rx) = tokio::sync::mpsc::unbounded_channel();
        let store = Arc::new(Store {
            node_id,
            cluster_id,
            engine,
            log,
            registry,
            transport,
            options,
            replicas: RwLock::new(HashMap::new()),
            events,
            closing: std::sync::atomic::AtomicBool::new(false),
        });
        for desc in store.engine.descriptors()? {
            store.start_replica(desc).await?;
        }
        store.maybe_initialize().await?;
        tokio::spawn(handle_events(Arc::downgrade(&store), event_rx));
        // A node joining a cluster may hold replicas whose leaders it cannot reach yet; a node
        // on the network elects its leaders with its peers, which reach it only once its
        // server runs (the caller waits then, `Store::wait_for_leaders`).
        if store.options.join.is_none() && !matches!(store.options.network, Network::Grpc(_)) {
            store.wait_for_leaders(Duration::from_secs(30)).await?;
        }
        tracing::info!(
            node_id,
            cluster_id,
            ranges = store.replicas().len(),
            "store open"
        );
        Ok(store)
    }

    /// The identity (cluster id, node id) of the node whose store is in `dir`, None when the
    /// directory holds no node yet (a node that joins a cluster must learn its identity first).
    /// The store must not be open.
    pub fn identity(dir: &Path) -> Result<Option<(u64, NodeId)>> {
        let path = dir.join("store");
        if !path.exists() {
            return Ok(None);
        }
        let engine = Engine::open(&path, EngineOptions::default())?;
        let node = engine.node_u64(NODE_ID)?;
        let cluster = engine.node_u64(NODE_CLUSTER_ID)?;
        Ok(cluster.zip(node))
    }

    async fn start_replica(&self, desc: RangeDescriptor) -> Result<()> {
        let range_id = desc.range_id;
        let desc = Arc::new(RwLock::new(desc));
        let gc_threshold = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sm = RangeStateMachine::open(
            self.engine.clone(),
            self.log.clone(),
            desc.clone(),
            self.events.clone(),
            gc_threshold.clone(),
        )?;
        let group = raft::Group::start(
            range_id,
            self.node_id,
            &self.log,
            sm,
            self.transport.clone(),
            &self.registry,
            &self.options.raft,
        )
        .await?;
        let replica = Arc::new(Replica::new(desc, group, self.engine.clone(), gc_threshold));
        {
            // Checked under the lock that `shutdown` takes after setting the flag: either the
            // shutdown sees this replica, or this sees the flag.
            let mut replicas = self.replicas.write().expect("replicas lock");
            if !self.closing.load(std::sync::atomic::Ordering::SeqCst) {
                replicas.insert(range_id, replica);
                return Ok(());
            }
        }
        replica.group().shutdown().await?;
        Err(Error::Unavailable(format!(
            "range {range_id} not started: the store is shutting down"
        )))
    }

    /// Runs the bootstrap's `initialize()` calls once (they are skipped when already done).
    async fn maybe_initialize(&self) -> Result<()> {
        if self.engine.node_u64(NODE_BOOTSTRAPPED)?.is_some() {
            return Ok(());
        }
        let voters = BTreeMap::from([(self.node_id, self.options.advertise_addr.clone())]);
        for replica in self.replicas() {
            if !replica.group().is_initialized().await? {
                replica.group().initialize(voters.clone()).await?;
            }
        }
        self.engine
            .meta
            .insert(meta_key(0, NODE_BOOTSTRAPPED), 1u64.to_be_bytes())?;
        self.engine.persist()?;
        Ok(())
    }

    /// Waits until every replica on this node knows a leader (at most `timeout` each).
    pub async fn wait_for_leaders(&self, timeout: Duration) -> Result<()> {
        for replica in self.replicas() {
            replica.group().wait_for_leader(timeout).await?;
        }
        Ok(())
    }

    /// Creates an empty replica of `range_id` on this node, to be filled by a snapshot once the
    /// range's leader adds this node ([`Replica::add_learner`] on the leader's node). Its
    /// descriptor is a placeholder covering no keys until the snapshot installs the real one
    /// (refused if it overlaps another replica here). Survives restarts like any replica.
    pub async fn add_replica(&self, range_id: RangeId) -> Result<()> {
        if self.replica(range_id).is_ok() {
            return Err(Error::Unavailable(format!(
                "range {range_id} already has a replica on node {}",
                self.node_id
            )));
        }
        let desc = RangeDescriptor {
            range_id,
            start: Vec::new(),
            end: Vec::new(),
            replicas: Vec::new(),
            generation: 0,
        };
        self.engine
            .meta
            .insert(meta_key(range_id, RANGE_DESCRIPTOR), desc.encode())?;
        self.engine.persist()?;
        self.start_replica(desc).await
    }

    /// Removes this node's replica of `range_id` (the range no longer has one here): stops its
    /// group, deletes its Raft state and metadata, and clears the part of its span that no
    /// other replica on this node covers (a split's right half may still be here).
    pub async fn remove_replica(&self, range_id: RangeId) -> Result<()> {
        let replica = self.replica(range_id)?;
        replica.group().shutdown().await?;
        let desc = replica.descriptor();
        self.replicas
            .write()
            .expect("replicas lock")
            .remove(&range_id);
        drop(replica);
        let others: Vec<RangeDescriptor> = self
            .engine
            .descriptors()?
            .into_iter()
            .filter(|d| d.range_id != range_id)
            .collect();
        let snapshot = self.engine.db.snapshot();
        let mut batch = self
            .engine
            .db
            .batch()
            .durability(self.engine.durable_mode());
        for (i, (start, end)) in crate::replica::replicated_spans(&desc)
            .into_iter()
            .enumerate()
        {
            let holes: Vec<_> = others
                .iter()
                .map(|o| crate::replica::replicated_spans(o)[i].clone())
                .collect();
            for (s, e) in crate::replica::span_minus(&start, &end, &holes) {
                crate::mvcc::clear_span(
                    &snapshot,
                    &self.engine.data,
                    &self.engine.locks,
                    &mut batch,
                    &s,
                    &e,
                )?;
            }
        }
        for tag in [
            RANGE_APPLIED,
            RANGE_DESCRIPTOR,
            RANGE_STATS,
            RANGE_TSO_BOUND,
            RANGE_GC_THRESHOLD,
        ] {
            batch.remove(&self.engine.meta, meta_key(range_id, tag));
        }
        batch.commit()?;
        self.log.delete_group(range_id)?;
        self.engine.persist()?;
        tracing::info!(range = range_id, %desc, "replica removed from this node");
        Ok(())
    }

    /// Where messages for this node's Raft groups are delivered (the receiving side of a
    /// transport).
    pub fn registry(&self) -> &raft::Registry {
        &self.registry
    }

    /// The gRPC service through which other nodes reach this node's Raft groups (to add to the
    /// node's gRPC server): it refuses messages of other clusters or for other nodes.
    pub fn raft_service(&self) -> raft::RaftService {
        let options = match &self.options.network {
            Network::Grpc(grpc) => grpc.clone(),
            _ => raft::GrpcOptions::default(),
        };
        raft::RaftService::new(
            self.registry.clone(),
            self.cluster_id,
            self.node_id,
            options,
        )
    }

    /// The nodes this node is cut off from, shared with its Raft transport and service
    /// (fault injection; a store without a gRPC network has a set of its own that cuts nothing).
    pub fn faults(&self) -> raft::Faults {
        match &self.options.network {
            Network::Grpc(grpc) => grpc.faults.clone(),
            _ => raft::Faults::default(),
        }
    }

    /// The address peers reach this node at.
    pub fn advertise_addr(&self) -> &str {
        &self.options.advertise_addr
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The cluster's id.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// The storage engine (for statistics and debug tools).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The replica of `range_id` on this node.
    pub fn replica(&self, range_id: RangeId) -> Result<Arc<Replica>> {
        self.replicas
            .read()
            .expect("replicas lock")
            .get(&range_id)
            .cloned()
            .ok_or(Error::RangeNotFound(range_id))
    }

    /// Every replica on this node, by range id.
    pub fn replicas(&self) -> Vec<Arc<Replica>> {
        let mut all: Vec<_> = self
            .replicas
            .read()
            .expect("replicas lock")
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|r| r.range_id);
        all
    }

    /// Whether the node can serve: `Err` names the first range whose Raft group stopped on a
    /// fatal error (a failed write to the log or the state machine: disk full, I/O error). Such a
    /// group serves nothing more; the node must restart (recovery replays the durable log).
    pub fn health(&self) -> std::result::Result<(), String> {
        for replica in self.replicas() {
            if let Some(fatal) = replica.group().status().fatal {
                return Err(format!(
                    "range {} stopped on a storage failure: {fatal}",
                    replica.range_id
                ));
            }
        }
        Ok(())
    }

    /// Stops a replica's Raft group and starts it again on its stored log and state, then waits
    /// for a leader. The restarted group must win an election, so its term moves on: a change of
    /// leadership on one node, which is what leadership-sensitive services (the timestamp oracle)
    /// must survive. Requests in flight on the old group fail with a retryable error.
    pub async fn restart_replica(&self, range_id: RangeId) -> Result<()> {
        let old = self.replica(range_id)?;
        old.group().shutdown().await?;
        let desc = old.descriptor();
        self.replicas
            .write()
            .expect("replicas lock")
            .remove(&range_id);
        drop(old);
        self.start_replica(desc).await?;
        self.replica(range_id)?
            .group()
            .wait_for_leader(Duration::from_secs(30))
            .await?;
        Ok(())
    }

    /// Stops every replica's Raft group and makes applied state durable.
    pub async fn shutdown(&self) -> Result<()> {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for replica in self.replicas() {
            if let Err(e) = replica.group().shutdown().await {
                tracing::warn!(range = replica.range_id, "raft shutdown: {e}");
            }
        }
        // Drop the groups so their state machines release the database once the last handle
        // on the store goes.
        self.replicas.write().expect("replicas lock").clear();
        self.engine.persist()
    }
}

/// Starts the replicas of ranges created by splits applied on this node. The parent's leader
/// campaigns for the new range at once.
async fn handle_events(
    store: Weak<Store>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<StoreEvent>,
) {
    while let Some(event) = events.recv().await {
        let Some(store) = store.upgrade() else { return };
        match event {
            StoreEvent::Split { left, right } => {
                let range_id = right.range_id;
                if let Err(e) = store.start_replica(right).await {
                    tracing::error!(
                        range = range_id,
                        "starting the right-hand range of a split: {e}"
                    );
                    continue;
                }
                let leads_parent = store
                    .replica(left.range_id)
                    .is_ok_and(|p| p.group().is_leader());
                if leads_parent
                    && let Ok(r) = store.replica(range_id)
                    && let Err(e) = r.group().campaign().await
                {
                    tracing::warn!(range = range_id, "campaign after split: {e}");
                }
            }
        }
    }
}

/// Writes the initial state of a new single-node cluster in one durable batch.
fn bootstrap_state(engine: &Engine, addr: &str) -> Result<()> {
    let node_id: NodeId = 1;
    let cluster_id = new_cluster_id();
    let ranges = [
        RangeDescriptor {
            range_id: 1,
            start: KEY_MIN.to_vec(),
            end: sql_start(),
            replicas: vec![node_id],
            generation: 0,
        },
        RangeDescriptor {
            range_id: 2,
            start: sql_start(),
            end: KEY_MAX.to_vec(),
            replicas: vec![node_id],
            generation: 0,
        },
    ];
    let mut batch = engine.db.batch().durability(engine.durable_mode());
    let mut put = |key: Vec<u8>, value: Vec<u8>| {
        let record = Record {
            kind: RecordKind::Put,
            start_ts: BOOTSTRAP_TS,
            value,
        };
        batch.insert(
            &engine.data,
            version_key(&key, BOOTSTRAP_TS),
            record.encode(),
        );
    };
    for desc in &ranges {
        put(
            Key::RangeDirectory {
                end_key: desc.end.clone(),
            }
            .encode(),
            desc.encode(),
        );
        put(range_descriptor_key(&desc.start), desc.encode());
    }
    let next_range_id = ranges.len() as u64 + 1;
    put(range_id_counter_key(), next_range_id.to_be_bytes().to_vec());
    let record = NodeRecord {
        node_id,
        addr: addr.to_string(),
        decommissioning: false,
    };
    put(node_key(node_id), record.encode());
    put(node_id_counter_key(), (node_id + 1).to_be_bytes().to_vec());
    for desc in &ranges {
        batch.insert(
            &engine.meta,
            meta_key(desc.range_id, RANGE_DESCRIPTOR),
            desc.encode(),
        );
        batch.insert(
            &engine.meta,
            meta_key(desc.range_id, RANGE_STATS),
            Stats {
                estimate: true,
                ..Stats::default()
            }
            .encode(),
        );
    }
    batch.insert(&engine.meta, meta_key(0, NODE_ID), node_id.to_be_bytes());
    batch.insert(
        &engine.meta,
        meta_key(0, NODE_CLUSTER_ID),
        cluster_id.to_be_bytes(),
    );
    batch.commit()?;
    tracing::info!(cluster_id, "bootstrapped a new cluster");
    Ok(())
}

/// Records the identity of a node joining an existing cluster: no ranges, nothing to
/// initialize (the ranges' leaders add this node to their groups).
fn join_state(engine: &Engine, join: Join) -> Result<()> {
    let mut batch = engine.db.batch().durability(engine.durable_mode());
    batch.insert(
        &engine.meta,
        meta_key(0, NODE_ID),
        join.node_id.to_be_bytes(),
    );
    batch.insert(
        &engine.meta,
        meta_key(0, NODE_CLUSTER_ID),
        join.cluster_id.to_be_bytes(),
    );
    batch.insert(
        &engine.meta,
        meta_key(0, NODE_BOOTSTRAPPED),
        1u64.to_be_bytes(),
    );
    batch.commit()?;
    tracing::info!(
        cluster_id = join.cluster_id,
        node_id = join.node_id,
        "joined a cluster"
    );
    Ok(())
}

/// A cluster id that differs between clusters created on different machines or at different times.
fn new_cluster_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}
