//! Node-wide Raft log storage on fjall.
//!
//! One keyspace, `raft`, holds the logs of every group on the node. Keys start with the group id
//! (u64 big-endian) and a one-byte tag:
//!
//! - `group ++ 'e' ++ index (u64 BE)` → log entry (see `codec::encode_entry`)
//! - `group ++ 'v'` → vote
//! - `group ++ 'c'` → committed log id
//! - `group ++ 'p'` → last purged log id
//! - `format` → the log format ([`LOG_FORMAT`], one byte), written when the keyspace is created.
//!   The key is shorter than any group's keys, so no group prefix covers it.
//!
//! A keyspace with records but no format marker was written in format 1 (entries' commands in
//! JSON); it is refused at open, as is any format other than [`LOG_FORMAT`]: there is no
//! in-place upgrade.
//!
//! Appends are group-committed: `append` writes its entries to fjall's journal and hands
//! openraft's completion callback to the node's syncer thread, which fsyncs the journal
//! (`PersistMode::SyncData`) once for every append that arrived while the previous fsync ran —
//! of all groups on the node — and only then reports them done. The Raft core is not blocked by
//! the fsync meanwhile. Votes are written with `SyncData` before `save_vote` returns.
//! Truncation, purge and the committed id need no fsync of their own: losing them in a crash
//! leaves a state openraft recovers from (extra entries are re-truncated, purged entries
//! re-purged, committed is re-learned), and any later synced write syncs them too (one journal).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode};
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};

use crate::codec;
use crate::state::AppliedState;
use crate::types::{Cfg, LogId, OrEntry, Vote};
use crate::{Command, GroupId, NodeId, Response};

/// Name of the fjall keyspace holding every group's log.
pub const KEYSPACE: &str = "raft";

/// The format of the `raft` keyspace this build reads and writes. Format 1 (no marker) stored a
/// `Normal` entry's command as JSON; format 2 stores the command's own binary encoding.
pub const LOG_FORMAT: u8 = 2;

/// Key of the format marker.
const FORMAT_KEY: &[u8] = b"format";

const TAG_ENTRY: u8 = b'e';
const TAG_VOTE: u8 = b'v';
const TAG_COMMITTED: u8 = b'c';
const TAG_PURGED: u8 = b'p';

fn key(group: GroupId, tag: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(17);
    k.extend_from_slice(&group.to_be_bytes());
    k.push(tag);
    k
}

fn entry_key(group: GroupId, index: u64) -> Vec<u8> {
    let mut k = key(group, TAG_ENTRY);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn index_of(k: &[u8]) -> io::Result<u64> {
    let tail: [u8; 8] = k
        .get(9..17)
        .and_then(|t| t.try_into().ok())
        .ok_or_else(|| codec::corrupt("entry key"))?;
    Ok(u64::from_be_bytes(tail))
}

/// Checks the log format marker of the `raft` keyspace, writing it (durably) into an empty one.
fn check_format(db: &Database, ks: &Keyspace) -> io::Result<()> {
    match ks.get(FORMAT_KEY).map_err(io_err)? {
        Some(v) => match *v {
            [LOG_FORMAT] => Ok(()),
            [format] => Err(wrong_format(format)),
            _ => Err(codec::corrupt("log format marker")),
        },
        None => {
            if let Some(g) = ks.iter().next() {
                g.key().map_err(io_err)?;
                return Err(wrong_format(1));
            }
            let mut batch = db.batch().durability(Some(PersistMode::SyncData));
            batch.insert(ks, FORMAT_KEY, [LOG_FORMAT]);
            batch.commit().map_err(io_err)
        }
    }
}

fn wrong_format(format: u8) -> io::Error {
    let (age, advice) = if format < LOG_FORMAT {
        (
            "an earlier",
            "this version does not upgrade it in place: to keep its data, run the earlier \
             version on it; to start afresh, give this version a new, empty data directory",
        )
    } else {
        ("a newer", "run the newer version on it")
    };
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "this data directory was written by {age} TinkerDB (raft log format {format}); this \
             version reads raft log format {LOG_FORMAT} only; {advice}"
        ),
    )
}

pub(crate) fn io_err(e: fjall::Error) -> io::Error {
    io::Error::other(e)
}

/// Node-wide Raft log storage: the `raft` keyspace of the node's fjall database, shared by every
/// group on the node. Cheap to clone.
#[derive(Clone)]
pub struct LogStore {
    db: Database,
    ks: Keyspace,
    syncer: Syncer,
}

/// The fjall journal file being written, synced outside fjall's journal lock.
///
/// `Database::persist(SyncData)` holds the journal's writer lock through the fsync, which would
/// stall every write of the node (appends and applies) behind each group commit. So the syncer
/// flushes fjall's buffer to the OS under the lock (`PersistMode::Buffer`, quick), then
/// `fdatasync`s the active journal file (the highest-numbered `N.jnl` in the database folder)
/// through its own descriptor, without the lock. A journal sealed in between was fsynced by
/// fjall when it rotated. If the file cannot be found or opened, the syncer falls back to
/// `persist(SyncData)`.
#[derive(Default)]
struct JournalFile {
    open: Option<(PathBuf, std::fs::File)>,
}

impl JournalFile {
    fn sync(&mut self, db: &Database, dir: &Path) -> io::Result<()> {
        db.persist(PersistMode::Buffer).map_err(io_err)?;
        // The cached journal stays the active one until fjall rotates to the next number.
        if let Some((path, _)) = &self.open
            && next_journal(path).is_none_or(|next| next.exists())
        {
            self.open = None;
        }
        if self.open.is_none() {
            self.open = active_journal(dir)
                .and_then(|path| Some((path.clone(), std::fs::File::open(&path).ok()?)));
        }
        let synced = self
            .open
            .as_ref()
            .and_then(|(_, file)| file.sync_data().ok());
        match synced {
            Some(()) => Ok(()),
            None => {
                self.open = None;
                db.persist(PersistMode::SyncData).map_err(io_err)
            }
        }
    }
}

/// The journal file fjall rotates to after `path` (`N.jnl` → `N+1.jnl`).
fn next_journal(path: &Path) -> Option<PathBuf> {
    let id: u64 = path
        .file_name()?
        .to_str()?
        .strip_suffix(".jnl")?
        .parse()
        .ok()?;
    Some(path.with_file_name(format!("{}.jnl", id + 1)))
}

/// The highest-numbered journal file (`N.jnl`) in fjall's database folder.
fn active_journal(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            let id: u64 = name.to_str()?.strip_suffix(".jnl")?.parse().ok()?;
            Some((id, dir.join(name)))
        })
        .max_by_key(|(id, _)| *id)
        .map(|(_, path)| path)
}

/// A completion waiting for the journal to be durable.
type Waiter = Box<dyn FnOnce(io::Result<()>) + Send>;

/// The sending side of the node's syncer thread (group commit of log appends). The thread ends
/// when the last `LogStore` clone is dropped.
#[derive(Clone)]
struct Syncer {
    tx: Arc<Mutex<mpsc::Sender<Waiter>>>,
}

impl Syncer {
    fn start(db: Database, dir: PathBuf) -> io::Result<Syncer> {
        let (tx, rx) = mpsc::channel::<Waiter>();
        std::thread::Builder::new()
            .name("raft-log-sync".into())
            .spawn(move || {
                let mut journal = JournalFile::default();
                while let Ok(first) = rx.recv() {
                    let mut waiters = vec![first];
                    waiters.extend(rx.try_iter());
                    let result = journal.sync(&db, &dir);
                    metrics::counter!("tinkerdb_raft_log_syncs_total").increment(1);
                    metrics::histogram!("tinkerdb_raft_log_sync_batch")
                        .record(waiters.len() as f64);
                    for waiter in waiters {
                        waiter(match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                        });
                    }
                }
            })?;
        Ok(Syncer {
            tx: Arc::new(Mutex::new(tx)),
        })
    }

    /// Calls `waiter` once everything written to the journal before this call is durable.
    fn after_sync(&self, waiter: Waiter) {
        let tx = self.tx.lock().expect("syncer channel");
        if let Err(mpsc::SendError(waiter)) = tx.send(waiter) {
            waiter(Err(io::Error::other("the log syncer has stopped")));
        }
    }
}

impl LogStore {
    /// Opens (creating if needed) the `raft` keyspace of `db`, and starts the node's log syncer.
    ///
    /// A keyspace written in another log format than [`LOG_FORMAT`] is refused with an
    /// [`io::ErrorKind::InvalidData`] error that says what to do.
    pub fn open(db: &Database) -> io::Result<LogStore> {
        let ks = db
            .keyspace(KEYSPACE, KeyspaceCreateOptions::default)
            .map_err(io_err)?;
        check_format(db, &ks)?;
        // fjall keeps keyspaces in `<db>/keyspaces/<id>` and journals in `<db>`.
        let dir = ks
            .path()
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| io::Error::other("unexpected fjall keyspace path"))?
            .to_path_buf();
        let syncer = Syncer::start(db.clone(), dir)?;
        Ok(LogStore {
            db: db.clone(),
            ks,
            syncer,
        })
    }

    /// The `raft` keyspace, e.g. for tools that dump it.
    pub fn keyspace(&self) -> &Keyspace {
        &self.ks
    }

    /// Adds to `batch` the initial log state of the right-hand range of a split: last purged =
    /// the state's applied log id, no entries, no vote, no committed id. `state` must come from
    /// [`split_initial_state`](crate::split_initial_state), and the state machine must write the
    /// same state in the same batch.
    pub fn write_initial_log_state(
        &self,
        batch: &mut OwnedWriteBatch,
        group: GroupId,
        state: &AppliedState,
    ) {
        let purged = state
            .log_id
            .as_ref()
            .expect("split initial state has a log id");
        batch.insert(
            &self.ks,
            key(group, TAG_PURGED),
            codec::encode_opt_log_id(Some(purged)),
        );
        batch.remove(&self.ks, key(group, TAG_VOTE));
        batch.remove(&self.ks, key(group, TAG_COMMITTED));
    }

    /// True when the log of `group` holds anything (entries, vote or log state).
    pub fn has_group(&self, group: GroupId) -> io::Result<bool> {
        match self.ks.prefix(group.to_be_bytes()).next() {
            None => Ok(false),
            Some(g) => g.key().map(|_| true).map_err(io_err),
        }
    }

    /// Removes everything of `group` (after its replica was removed from this node).
    pub fn delete_group(&self, group: GroupId) -> io::Result<()> {
        let mut batch = self.db.batch();
        for g in self.ks.prefix(group.to_be_bytes()) {
            batch.remove(&self.ks, g.key().map_err(io_err)?);
        }
        batch.commit().map_err(io_err)
    }

    /// Unsafe recovery of a group that lost quorum, on a stopped node: appends to the log of
    /// `group` one uniform membership entry that keeps every member of the membership in force
    /// (the last membership entry of the log after `applied`, else `applied`'s) except the
    /// `dead` nodes, with the command `command` builds from the surviving voters, so that the
    /// survivors elect a leader among themselves when the group starts. The entry takes the
    /// last entry's leader id, so the survivors' logs stay consistent with it; whatever only
    /// the dead nodes held is lost.
    ///
    /// Returns None, writing nothing, when no dead node is a member; refuses (InvalidInput)
    /// when no voter survives. With `dry_run`, writes nothing but answers the same.
    pub fn remove_dead_members<C: Command>(
        &self,
        group: GroupId,
        applied: &AppliedState,
        dead: &BTreeSet<NodeId>,
        dry_run: bool,
        command: impl FnOnce(&BTreeSet<NodeId>) -> Option<C>,
    ) -> io::Result<Option<ForcedMembership>> {
        let from = applied.index().map_or(0, |i| i + 1);
        let mut membership = applied.membership.membership().clone();
        for g in self
            .ks
            .range(entry_key(group, from)..=entry_key(group, u64::MAX))
        {
            let value = g.value().map_err(io_err)?;
            if let crate::types::Payload::Membership { membership: m, .. } =
                codec::decode_entry::<C>(&value)?.payload
            {
                membership = m;
            }
        }
        // The new entry follows the last one of the log (applied or not), else the purged one.
        let last = match self.ks.prefix(key(group, TAG_ENTRY)).next_back() {
            Some(g) => Some(codec::decode_entry::<C>(&g.value().map_err(io_err)?)?.log_id),
            None => match self.get(group, TAG_PURGED)? {
                Some(b) => codec::decode_opt_log_id(&b)?,
                None => None,
            },
        }
        .or(applied.log_id);
        let Some(last) = last else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("group {group} has no log"),
            ));
        };
        let old_voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members: BTreeMap<NodeId, crate::types::Node> = membership
            .nodes()
            .map(|(id, node)| (*id, node.clone()))
            .collect();
        if !members.keys().any(|id| dead.contains(id)) {
            return Ok(None);
        }
        let new_voters: BTreeSet<NodeId> = old_voters.difference(dead).copied().collect();
        if new_voters.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("group {group}: no voter of {old_voters:?} survives"),
            ));
        }
        let nodes: BTreeMap<_, _> = members
            .into_iter()
            .filter(|(id, _)| !dead.contains(id))
            .collect();
        let membership = crate::types::Membership::new(vec![new_voters.clone()], nodes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let index = last.index + 1;
        if dry_run {
            return Ok(Some(ForcedMembership {
                old_voters,
                new_voters,
                index,
            }));
        }
        let entry: OrEntry<C> = openraft::Entry {
            log_id: crate::types::log_id(last.leader_id.term, last.leader_id.node_id, index),
            payload: crate::types::Payload::Membership {
                membership,
                command: command(&new_voters),
            },
        };
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        batch.insert(
            &self.ks,
            entry_key(group, index),
            codec::encode_entry(&entry),
        );
        batch.commit().map_err(io_err)?;
        Ok(Some(ForcedMembership {
            old_voters,
            new_voters,
            index,
        }))
    }

    pub(crate) fn group<C, R>(&self, group: GroupId) -> GroupLog<C, R> {
        GroupLog {
            store: self.clone(),
            group,
            before_purge: None,
            _types: PhantomData,
        }
    }

    fn get(&self, group: GroupId, tag: u8) -> io::Result<Option<fjall::Slice>> {
        self.ks.get(key(group, tag)).map_err(io_err)
    }
}

/// What [`LogStore::remove_dead_members`] wrote into one group's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForcedMembership {
    /// The voters before (of every config, if joint).
    pub old_voters: BTreeSet<NodeId>,
    /// The voters after.
    pub new_voters: BTreeSet<NodeId>,
    /// The index of the membership entry appended.
    pub index: u64,
}

/// The log of one group: implements openraft's log storage and log reader.
pub(crate) struct GroupLog<C, R> {
    store: LogStore,
    group: GroupId,
    /// Makes the state machine durable; called before every purge so that the durably applied
    /// index never falls behind the purged log, whichever openraft path purges.
    before_purge: Option<BeforePurge>,
    _types: PhantomData<fn() -> (C, R)>,
}

pub(crate) type BeforePurge = Arc<dyn Fn() -> io::Result<()> + Send + Sync>;

impl<C, R> Clone for GroupLog<C, R> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            group: self.group,
            before_purge: self.before_purge.clone(),
            _types: PhantomData,
        }
    }
}

impl<C, R> GroupLog<C, R> {
    pub(crate) fn before_purge(mut self, f: BeforePurge) -> Self {
        self.before_purge = Some(f);
        self
    }
}

impl<C: Command, R: Response> GroupLog<C, R> {
    fn read_log_id(&self, tag: u8) -> io::Result<Option<LogId>> {
        match self.store.get(self.group, tag)? {
            None => Ok(None),
            Some(b) => codec::decode_opt_log_id(&b),
        }
    }

    fn last_entry_id(&self) -> io::Result<Option<LogId>> {
        let Some(g) = self.store.ks.prefix(key(self.group, TAG_ENTRY)).next_back() else {
            return Ok(None);
        };
        let value = g.value().map_err(io_err)?;
        Ok(Some(codec::decode_entry::<C>(&value)?.log_id))
    }

    /// Removes the entries with index in `range` into `batch`.
    fn remove_entries(
        &self,
        batch: &mut OwnedWriteBatch,
        from: u64,
        to_inclusive: u64,
    ) -> io::Result<()> {
        let range = entry_key(self.group, from)..=entry_key(self.group, to_inclusive);
        for g in self.store.ks.range(range) {
            batch.remove(&self.store.ks, g.key().map_err(io_err)?);
        }
        Ok(())
    }
}

impl<C: Command, R: Response> RaftLogReader<Cfg<C, R>> for GroupLog<C, R> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<OrEntry<C>>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(entry_key(self.group, *i)),
            Bound::Excluded(i) => Bound::Excluded(entry_key(self.group, *i)),
            Bound::Unbounded => Bound::Included(entry_key(self.group, u64::MAX)),
        };
        let mut entries = Vec::new();
        for g in self
            .store
            .ks
            .range((Bound::Included(entry_key(self.group, start)), end))
        {
            let (k, v) = g.into_inner().map_err(io_err)?;
            let entry = codec::decode_entry::<C>(&v)?;
            if entry.log_id.index != index_of(&k)? {
                return Err(codec::corrupt("entry index does not match its key"));
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        match self.store.get(self.group, TAG_VOTE)? {
            None => Ok(None),
            Some(b) => codec::decode_vote(&b).map(Some),
        }
    }
}

impl<C: Command, R: Response> RaftLogStorage<Cfg<C, R>> for GroupLog<C, R> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> io::Result<LogState<Cfg<C, R>>> {
        let last_purged_log_id = self.read_log_id(TAG_PURGED)?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        let mut batch = self
            .store
            .db
            .batch()
            .durability(Some(PersistMode::SyncData));
        batch.insert(
            &self.store.ks,
            key(self.group, TAG_VOTE),
            codec::encode_vote(vote),
        );
        batch.commit().map_err(io_err)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        let bytes = codec::encode_opt_log_id(committed.as_ref());
        self.store
            .ks
            .insert(key(self.group, TAG_COMMITTED), bytes)
            .map_err(io_err)
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        self.read_log_id(TAG_COMMITTED)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<Cfg<C, R>>) -> io::Result<()>
    where
        I: IntoIterator<Item = OrEntry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = self.store.db.batch();
        for entry in entries {
            let bytes = codec::encode_entry(&entry);
            batch.insert(
                &self.store.ks,
                entry_key(self.group, entry.log_id.index),
                bytes,
            );
        }
        let result = batch.commit().map_err(io_err);
        match result {
            Ok(()) => {
                // Done once the journal holding the batch is fsynced, with other groups' appends.
                self.store
                    .syncer
                    .after_sync(Box::new(move |r| callback.io_completed(r)));
                Ok(())
            }
            Err(e) => {
                callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let from = last_log_id.map_or(0, |id| id.index + 1);
        let mut batch = self.store.db.batch();
        self.remove_entries(&mut batch, from, u64::MAX)?;
        batch.commit().map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        tracing::debug!(group = self.group, index = log_id.index, "purging log");
        if let Some(persist) = &self.before_purge {
            persist()?;
        }
        let mut batch = self.store.db.batch();
        batch.insert(
            &self.store.ks,
            key(self.group, TAG_PURGED),
            codec::encode_opt_log_id(Some(&log_id)),
        );
        self.remove_entries(&mut batch, 0, log_id.index)?;
        batch.commit().map_err(io_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::Cmd;
    use crate::types::{Membership, Payload, StoredMembership, log_id, node};

    fn three_voters() -> Membership {
        let nodes = (1..=3)
            .map(|n| (n, node(format!("n{n}"))))
            .collect::<BTreeMap<_, _>>();
        Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes).unwrap()
    }

    fn put(store: &LogStore, entry: &OrEntry<Cmd>) {
        let k = entry_key(7, entry.log_id.index);
        store.ks.insert(k, codec::encode_entry(entry)).unwrap();
    }

    /// The forced membership follows the last entry of the log, applied or not, keeps the
    /// survivors only, carries the command, and a second run finds nothing to do.
    #[test]
    fn dead_members_are_removed_by_an_entry_after_the_last_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let store = LogStore::open(&db).unwrap();
        for index in 1..=5 {
            put(
                &store,
                &openraft::Entry {
                    log_id: log_id(2, 2, index),
                    payload: Payload::Normal(Cmd(format!("c{index}"))),
                },
            );
        }
        // Applied up to 3, with the three-node membership of entry 1.
        let applied = AppliedState::new(
            Some(log_id(2, 2, 3)),
            StoredMembership::new(Some(log_id(2, 2, 1)), three_voters()),
        );
        let dead = BTreeSet::from([2, 3]);
        let plan = store
            .remove_dead_members::<Cmd>(7, &applied, &dead, true, |_| None)
            .unwrap()
            .expect("a change");
        assert_eq!(plan.index, 6);
        assert!(store.ks.get(entry_key(7, 6)).unwrap().is_none(), "dry run");
        let done = store
            .remove_dead_members::<Cmd>(7, &applied, &dead, false, |v| Some(Cmd(format!("{v:?}"))))
            .unwrap()
            .expect("a change");
        assert_eq!(done, plan);
        assert_eq!(done.old_voters, BTreeSet::from([1, 2, 3]));
        assert_eq!(done.new_voters, BTreeSet::from([1]));
        let bytes = store.ks.get(entry_key(7, 6)).unwrap().expect("appended");
        let entry = codec::decode_entry::<Cmd>(&bytes).unwrap();
        assert_eq!(entry.log_id, log_id(2, 2, 6));
        let Payload::Membership {
            membership,
            command,
        } = entry.payload
        else {
            panic!("not a membership entry: {entry:?}");
        };
        assert_eq!(membership.voter_ids().collect::<Vec<_>>(), vec![1]);
        assert_eq!(membership.nodes().count(), 1);
        assert_eq!(command, Some(Cmd("{1}".into())));
        let again = store.remove_dead_members::<Cmd>(7, &applied, &dead, false, |_| None);
        assert_eq!(again.unwrap(), None);
        // No voter would survive: refused.
        let all = BTreeSet::from([1, 2, 3]);
        let fresh = AppliedState::new(
            Some(log_id(2, 2, 3)),
            StoredMembership::new(Some(log_id(2, 2, 1)), three_voters()),
        );
        store.ks.remove(entry_key(7, 6)).unwrap();
        let refused = store.remove_dead_members::<Cmd>(7, &fresh, &all, false, |_| None);
        assert_eq!(refused.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert!(store.ks.get(entry_key(7, 6)).unwrap().is_none());
    }

    #[test]
    fn the_syncer_finds_the_active_journal() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let store = LogStore::open(&db).unwrap();
        store.ks.insert(b"k", b"v").unwrap();
        let journal = active_journal(dir.path()).expect("a journal file in the database folder");
        assert!(journal.to_str().unwrap().ends_with(".jnl"));
        let mut file = JournalFile::default();
        file.sync(&db, dir.path()).unwrap();
        assert_eq!(file.open.as_ref().map(|(p, _)| p.clone()), Some(journal));
    }

    #[test]
    fn a_new_keyspace_gets_the_format_marker() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let store = LogStore::open(&db).unwrap();
        let marker = store.ks.get(FORMAT_KEY).unwrap().expect("marker");
        assert_eq!(&*marker, &[LOG_FORMAT]);
        assert!(!store.has_group(u64::from_be_bytes(*b"format\0\0")).unwrap());
        store.ks.insert(entry_key(1, 1), b"entry").unwrap();
        LogStore::open(&db).expect("a keyspace with the marker opens again");
    }

    /// A log written before the format marker existed (format 1: JSON commands) is refused.
    #[test]
    fn an_old_format_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let ks = db
            .keyspace(KEYSPACE, KeyspaceCreateOptions::default)
            .unwrap();
        let mut v1 = vec![1];
        v1.extend_from_slice(
            &codec::encode_entry(&OrEntry::<crate::codec::tests::Cmd> {
                log_id: crate::types::log_id(1, 1, 1),
                payload: crate::types::Payload::Blank,
            })[1..],
        );
        ks.insert(entry_key(1, 1), v1).unwrap();
        ks.insert(key(1, TAG_VOTE), b"vote").unwrap();
        let e = LogStore::open(&db).err().expect("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            e.to_string(),
            "this data directory was written by an earlier TinkerDB (raft log format 1); this \
             version reads raft log format 2 only; this version does not upgrade it in place: \
             to keep its data, run the earlier version on it; to start afresh, give this \
             version a new, empty data directory"
        );
        assert!(ks.get(FORMAT_KEY).unwrap().is_none(), "no marker written");
    }

    #[test]
    fn other_format_markers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let ks = db
            .keyspace(KEYSPACE, KeyspaceCreateOptions::default)
            .unwrap();
        ks.insert(FORMAT_KEY, [1]).unwrap();
        let e = LogStore::open(&db).err().expect("format 1");
        assert!(
            e.to_string()
                .contains("an earlier TinkerDB (raft log format 1)"),
            "{e}"
        );
        ks.insert(FORMAT_KEY, [3]).unwrap();
        let e = LogStore::open(&db).err().expect("format 3");
        assert!(
            e.to_string()
                .contains("a newer TinkerDB (raft log format 3); this version reads raft log format 2 only; run the newer version on it"),
            "{e}"
        );
        ks.insert(FORMAT_KEY, [2, 0]).unwrap();
        assert!(LogStore::open(&db).is_err());
    }

    #[test]
    fn keys_are_grouped_and_ordered() {
        let group = 5u64;
        let prefix = group.to_be_bytes();
        for k in [
            key(group, TAG_VOTE),
            key(group, TAG_PURGED),
            entry_key(group, 0),
        ] {
            assert!(k.starts_with(&prefix));
        }
        assert!(entry_key(group, 255) < entry_key(group, 256));
        assert!(entry_key(group, u64::MAX) < entry_key(group + 1, 0));
        assert!(!entry_key(group + 1, 0).starts_with(&prefix));
        assert_eq!(index_of(&entry_key(group, 300)).unwrap(), 300);
    }
}
