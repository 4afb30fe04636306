//! A test state machine that stores its data in fjall, so restarts are real.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};
use raft::{
    AppliedState, Entry, Group, GroupId, LocalTransport, LogStore, NodeId, Options, Registry,
    StateMachine,
};
use serde::{Deserialize, Serialize};

pub const WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Cmd {
    Put { key: String, value: String },
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cmd::Put { key, value } => write!(f, "put {key}={value}"),
        }
    }
}

/// Encoding: version 1, then key and value, each u32-length-prefixed.
impl raft::Command for Cmd {
    fn encode(&self) -> Vec<u8> {
        let Cmd::Put { key, value } = self;
        let mut buf = vec![1];
        for s in [key, value] {
            buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
            buf.extend_from_slice(s.as_bytes());
        }
        buf
    }

    fn decode(bytes: &[u8]) -> io::Result<Self> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad test command");
        let mut rest = match bytes.split_first() {
            Some((1, rest)) => rest,
            _ => return Err(bad()),
        };
        let mut field = || -> io::Result<String> {
            let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
            let len = u32::from_be_bytes(*len) as usize;
            if tail.len() < len {
                return Err(bad());
            }
            let (s, tail) = tail.split_at(len);
            rest = tail;
            String::from_utf8(s.to_vec()).map_err(|_| bad())
        };
        let key = field()?;
        let value = field()?;
        if !rest.is_empty() {
            return Err(bad());
        }
        Ok(Cmd::Put { key, value })
    }
}

pub fn put(key: &str, value: &str) -> Cmd {
    Cmd::Put {
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// Response: the entry's index and the key's previous value.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Resp {
    pub index: u64,
    pub prev: Option<String>,
}

/// Counters shared with the test.
#[derive(Default)]
pub struct Probe {
    pub persists: AtomicU64,
    /// Applied index + 1 at the last persist (0: nothing applied yet).
    pub durable_index: AtomicU64,
    pub installs: AtomicU64,
    /// Applying a put of this key fails (an injected I/O error, fatal for the group).
    pub fail_apply_of: std::sync::Mutex<Option<String>>,
    /// While set, building a snapshot's data waits (at most [`WAIT`]) before reading.
    pub snapshot_hold: std::sync::atomic::AtomicBool,
    /// Snapshot data builds started.
    pub snapshot_builds: AtomicU64,
}

/// Data under `group ++ key` in keyspace `data`; applied state under `group` in `meta`; the
/// applied state of the entry that last wrote a key under `group ++ key` in `at`.
pub struct TestSm {
    db: Database,
    data: Keyspace,
    meta: Keyspace,
    at: Keyspace,
    group: GroupId,
    pub probe: Arc<Probe>,
}

impl TestSm {
    pub fn new(db: &Database, group: GroupId) -> Self {
        let data = db.keyspace("data", KeyspaceCreateOptions::default).unwrap();
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default).unwrap();
        let at = db.keyspace("at", KeyspaceCreateOptions::default).unwrap();
        Self {
            db: db.clone(),
            data,
            meta,
            at,
            group,
            probe: Arc::default(),
        }
    }

    fn prefix(&self) -> Vec<u8> {
        self.group.to_be_bytes().to_vec()
    }

    fn data_key(&self, key: &str) -> Vec<u8> {
        let mut k = self.prefix();
        k.extend_from_slice(key.as_bytes());
        k
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.data
            .get(self.data_key(key))
            .unwrap()
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
    }

    /// The applied state (log id, membership) of the entry that last wrote `key` (applied
    /// here; snapshots do not carry it).
    pub fn applied_at(&self, key: &str) -> Option<AppliedState> {
        self.at
            .get(self.data_key(key))
            .unwrap()
            .map(|b| AppliedState::from_bytes(&b).unwrap())
    }

    /// Writes the initial applied state of a split's right-hand range into `batch`.
    pub fn write_initial(&self, batch: &mut fjall::OwnedWriteBatch, state: &AppliedState) {
        batch.insert(&self.meta, self.prefix(), state.to_bytes());
    }

    pub fn dump(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for g in self.data.prefix(self.prefix()) {
            let (k, v) = g.into_inner().unwrap();
            out.insert(
                String::from_utf8(k[8..].to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            );
        }
        out
    }
}

fn io(e: fjall::Error) -> io::Error {
    io::Error::other(e)
}

impl StateMachine for TestSm {
    type Command = Cmd;
    type Response = Resp;

    fn applied_state(&self) -> io::Result<Option<AppliedState>> {
        match self.meta.get(self.prefix()).map_err(io)? {
            None => Ok(None),
            Some(b) => AppliedState::from_bytes(&b).map(Some),
        }
    }

    fn apply(&mut self, entry: Entry<Cmd>) -> io::Result<Resp> {
        let index = entry.state.index().expect("applied entries have an index");
        let mut batch = self.db.batch();
        let mut resp = Resp { index, prev: None };
        if let Some(Cmd::Put { key, value }) = entry.command {
            if self.probe.fail_apply_of.lock().unwrap().as_ref() == Some(&key) {
                return Err(io::Error::other(format!("injected failure applying {key}")));
            }
            resp.prev = self.get(&key);
            batch.insert(&self.data, self.data_key(&key), value.into_bytes());
            batch.insert(&self.at, self.data_key(&key), entry.state.to_bytes());
        }
        batch.insert(&self.meta, self.prefix(), entry.state.to_bytes());
        batch.commit().map_err(io)?;
        Ok(resp)
    }

    fn persist(&self) -> io::Result<()> {
        self.db.persist(PersistMode::SyncAll).map_err(io)?;
        let index = self
            .applied_state()?
            .and_then(|s| s.index())
            .map_or(0, |i| i + 1);
        self.probe.durable_index.store(index, Ordering::SeqCst);
        self.probe.persists.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn snapshot(&self) -> io::Result<(AppliedState, raft::SnapshotBuild)> {
        let snap = self.db.snapshot();
        let state = match snap.get(&self.meta, self.prefix()).map_err(io)? {
            None => AppliedState::default(),
            Some(b) => AppliedState::from_bytes(&b)?,
        };
        let (data, prefix, probe) = (self.data.clone(), self.prefix(), self.probe.clone());
        Ok((
            state,
            Box::new(move || {
                probe.snapshot_builds.fetch_add(1, Ordering::SeqCst);
                let held = std::time::Instant::now();
                while probe.snapshot_hold.load(Ordering::SeqCst) && held.elapsed() < WAIT {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let mut pairs = Vec::new();
                for g in snap.prefix(&data, prefix) {
                    let (k, v) = g.into_inner().map_err(io)?;
                    pairs.push((k[8..].to_vec(), v.to_vec()));
                }
                serde_json::to_vec(&pairs).map_err(io::Error::other)
            }),
        ))
    }

    fn install_snapshot(&mut self, state: &AppliedState, data: &[u8]) -> io::Result<()> {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> =
            serde_json::from_slice(data).map_err(io::Error::other)?;
        let mut batch = self.db.batch();
        for g in self.data.prefix(self.prefix()) {
            batch.remove(&self.data, g.key().map_err(io)?);
        }
        for (k, v) in pairs {
            let mut key = self.prefix();
            key.extend_from_slice(&k);
            batch.insert(&self.data, key, v);
        }
        batch.insert(&self.meta, self.prefix(), state.to_bytes());
        batch.commit().map_err(io)?;
        self.probe.installs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

pub fn open_db(path: &Path) -> Database {
    Database::builder(path).open().unwrap()
}

/// Test options: short timeouts so tests run fast (still no timing assertions).
pub fn fast_options() -> Options {
    Options {
        heartbeat_interval: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(200),
        election_timeout_max: Duration::from_millis(400),
        ..Options::default()
    }
}

/// One node of a test cluster hosting one group.
pub struct TestNode {
    pub id: NodeId,
    pub db: Database,
    pub registry: Registry,
    pub group: Group<TestSm>,
    pub probe: Arc<Probe>,
}

pub async fn start_node(
    id: NodeId,
    group: GroupId,
    path: &Path,
    transport: &LocalTransport,
    opts: &Options,
) -> TestNode {
    let db = open_db(path);
    let log = LogStore::open(&db).unwrap();
    let sm = TestSm::new(&db, group);
    let probe = sm.probe.clone();
    let registry = Registry::new();
    transport.add_node(id, registry.clone());
    let g = Group::start(
        group,
        id,
        &log,
        sm,
        Arc::new(transport.clone()),
        &registry,
        opts,
    )
    .await
    .unwrap();
    TestNode {
        id,
        db,
        registry,
        group: g,
        probe,
    }
}

pub fn addr(id: NodeId) -> String {
    format!("node-{id}")
}
