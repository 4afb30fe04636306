//! The node's fjall database and the layout of its `meta` keyspace.
//!
//! One database per node holds the keyspaces `data` (MVCC versions), `locks`, `meta` (per-range
//! state) and `raft` (every group's log, owned by the raft crate). `meta` keys are
//! `range_id (u64 BE) ++ tag`; range id 0 holds node-level entries such as the format version.

use std::path::Path;
use std::sync::Arc;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::range::{RangeDescriptor, RangeId};

/// The on-disk format version this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// Node-level meta tags (range id 0).
pub const NODE_FORMAT: u8 = 1;
pub const NODE_CLUSTER_ID: u8 = 2;
pub const NODE_ID: u8 = 3;
pub const NODE_BOOTSTRAPPED: u8 = 4;

/// Per-range meta tags.
pub const RANGE_APPLIED: u8 = 1;
pub const RANGE_DESCRIPTOR: u8 = 2;
pub const RANGE_STATS: u8 = 3;
pub const RANGE_TSO_BOUND: u8 = 4;
pub const RANGE_GC_THRESHOLD: u8 = 5;

/// The `meta` key of a range's (or, for range 0, the node's) entry.
pub fn meta_key(range_id: RangeId, tag: u8) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..8].copy_from_slice(&range_id.to_be_bytes());
    k[8] = tag;
    k
}

/// MVCC statistics of a range, updated at apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes of versions (keys and records) in `data`, including superseded ones.
    pub version_bytes: i64,
    /// Number of versions, including superseded ones and rollback records.
    pub versions: i64,
    /// Number of locks.
    pub locks: i64,
    /// Set when the numbers are estimates (after a split), until recomputed.
    pub estimate: bool,
}

impl Stats {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::versioned(1);
        w.u64(self.version_bytes as u64)
            .u64(self.versions as u64)
            .u64(self.locks as u64)
            .bool(self.estimate);
        w.finish()
    }

    pub fn decode(buf: &[u8]) -> std::io::Result<Stats> {
        let mut r = Reader::versioned(buf, 1, "stats")?;
        Ok(Stats {
            version_bytes: r.u64()? as i64,
            versions: r.u64()? as i64,
            locks: r.u64()? as i64,
            estimate: r.bool()?,
        })
    }

    pub fn add(&mut self, d: &crate::mvcc::StatsDelta) {
        self.version_bytes += d.version_bytes;
        self.versions += d.versions;
        self.locks += d.locks;
    }
}

/// Options of the storage engine.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Block cache size in bytes.
    pub cache_bytes: u64,
    /// Skip fsyncs (unsafe: acknowledged writes can be lost on a crash; for semantic test suites).
    pub unsafe_no_fsync: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_bytes: 64 << 20,
            unsafe_no_fsync: false,
        }
    }
}

/// The node's fjall database and its keyspaces.
#[derive(Clone)]
pub struct Engine {
    pub db: Database,
    pub data: Keyspace,
    pub locks: Keyspace,
    pub meta: Keyspace,
    pub options: Arc<EngineOptions>,
    /// Transactions waiting for locks on this node's keys to be released.
    pub waiters: Arc<crate::wait::WaitQueues>,
}

impl Engine {
    /// Opens (or creates) the database under `dir`, checking the format version.
    pub fn open(dir: &Path, options: EngineOptions) -> Result<Engine> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Storage(format!("{}: {e}", dir.display())))?;
        let db = Database::builder(dir)
            .cache_size(options.cache_bytes)
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => Error::DirectoryLocked(dir.display().to_string()),
                e => Error::Storage(format!("opening {}: {e}", dir.display())),
            })?;
        let data = db.keyspace("data", KeyspaceCreateOptions::default)?;
        let locks = db.keyspace("locks", KeyspaceCreateOptions::default)?;
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default)?;
        let engine = Engine {
            db,
            data,
            locks,
            meta,
            options: Arc::new(options),
            waiters: Arc::default(),
        };
        engine.check_format()?;
        Ok(engine)
    }

    fn check_format(&self) -> Result<()> {
        match self.meta.get(meta_key(0, NODE_FORMAT))? {
            Some(v) => {
                let v: [u8; 8] = v
                    .as_ref()
                    .try_into()
                    .map_err(|_| Error::Storage("malformed format version".into()))?;
                let version = u64::from_be_bytes(v);
                if version != FORMAT_VERSION {
                    return Err(Error::Storage(format!(
                        "data directory has format version {version}; this build reads version {FORMAT_VERSION}"
                    )));
                }
            }
            None => {
                self.meta
                    .insert(meta_key(0, NODE_FORMAT), FORMAT_VERSION.to_be_bytes())?;
                self.persist()?;
            }
        }
        Ok(())
    }

    /// The persist mode for writes that must be durable when acknowledged.
    pub fn durable_mode(&self) -> Option<PersistMode> {
        (!self.options.unsafe_no_fsync).then_some(PersistMode::SyncAll)
    }

    /// Makes everything written so far durable.
    pub fn persist(&self) -> Result<()> {
        if !self.options.unsafe_no_fsync {
            self.db.persist(PersistMode::SyncAll)?;
        }
        Ok(())
    }

    /// Reads a node-level u64 entry.
    pub fn node_u64(&self, tag: u8) -> Result<Option<u64>> {
        Ok(self
            .meta
            .get(meta_key(0, tag))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes))
    }

    /// The descriptors of every range with a replica on this node.
    pub fn descriptors(&self) -> Result<Vec<RangeDescriptor>> {
        let snapshot = self.db.snapshot();
        let mut out = Vec::new();
        for guard in snapshot.iter(&self.meta) {
            let (k, v) = guard.into_inner()?;
            if k.len() == 9 && k[8] == RANGE_DESCRIPTOR && k[..8] != [0; 8] {
                out.push(RangeDescriptor::decode(&v)?);
            }
        }
        Ok(out)
    }
}
