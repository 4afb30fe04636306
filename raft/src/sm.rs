//! Adapts a synchronous [`StateMachine`] to openraft's state machine and snapshot traits.
//!
//! Snapshots come in two kinds ([`SnapshotBody`]):
//!
//! - A *checkpoint* is what openraft's log compaction builds: the state machine is persisted
//!   (`persist()`, an fsync) and its applied state reported, which lets openraft purge the log up
//!   to it. No data is copied. Checkpoints are also what `get_current_snapshot` reports while the
//!   group is starting, so start-up never reads a whole range.
//! - A *data* snapshot is built fresh by `get_current_snapshot` once the group runs, i.e. when a
//!   follower needs one: the state machine reads its data and applied state at one point.
//!
//! A checkpoint is never sent to a follower (the network refuses it) and never installed.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{OptionalSend, RaftSnapshotBuilder};

use crate::state::{AppliedState, Entry};
use crate::types::{Cfg, LogId, Payload, SnapshotMeta, StoredMembership};
use crate::{GroupId, StateMachine};

type Snapshot =
    openraft::Snapshot<crate::types::Clid, crate::NodeId, crate::types::Node, SnapshotBody>;
pub(crate) type SmCfg<SM> = Cfg<<SM as StateMachine>::Command, <SM as StateMachine>::Response>;

/// The data of an openraft snapshot.
#[derive(Debug)]
pub(crate) enum SnapshotBody {
    /// Metadata-only log-compaction checkpoint; never transferred.
    Checkpoint,
    /// The state machine's snapshot data.
    Data(Vec<u8>),
    /// Data still to be read from the view the state machine fixed: built by the replication
    /// task that sends it, so that neither the state machine's lock nor openraft's state
    /// machine worker (which applies entries) waits for it.
    Pending(PendingData),
}

/// A snapshot's data builder, run once.
pub(crate) struct PendingData(Mutex<Option<crate::SnapshotBuild>>);

impl PendingData {
    /// Reads the data, on a blocking thread.
    pub(crate) async fn build(self) -> io::Result<Vec<u8>> {
        let build = self
            .0
            .into_inner()
            .map_err(|_| io::Error::other("snapshot builder poisoned"))?
            .ok_or_else(|| io::Error::other("snapshot data already built"))?;
        tokio::task::spawn_blocking(build)
            .await
            .map_err(|e| io::Error::other(format!("snapshot build: {e}")))?
    }
}

impl std::fmt::Debug for PendingData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingData")
    }
}

/// A state machine shared between openraft's state machine worker, snapshot builders and the
/// [`Group`](crate::Group) handle.
pub(crate) struct Shared<SM> {
    sm: Mutex<SM>,
    /// Membership in force, cached so that every applied entry can carry it.
    membership: Mutex<Option<StoredMembership>>,
}

impl<SM: StateMachine> Shared<SM> {
    pub(crate) fn new(sm: SM) -> Arc<Self> {
        Arc::new(Self {
            sm: Mutex::new(sm),
            membership: Mutex::new(None),
        })
    }

    pub(crate) fn lock(&self) -> io::Result<MutexGuard<'_, SM>> {
        self.sm
            .lock()
            .map_err(|_| io::Error::other("state machine lock poisoned"))
    }

    fn membership(&self, sm: &SM) -> io::Result<StoredMembership> {
        let mut cached = self
            .membership
            .lock()
            .map_err(|_| io::Error::other("membership lock poisoned"))?;
        if let Some(m) = cached.as_ref() {
            return Ok(m.clone());
        }
        let m = sm.applied_state()?.unwrap_or_default().membership;
        *cached = Some(m.clone());
        Ok(m)
    }

    fn set_membership(&self, m: StoredMembership) -> io::Result<()> {
        *self
            .membership
            .lock()
            .map_err(|_| io::Error::other("membership lock poisoned"))? = Some(m);
        Ok(())
    }

    /// Persists the state machine and returns a checkpoint of what it has applied.
    fn checkpoint(&self) -> io::Result<Snapshot> {
        let sm = self.lock()?;
        sm.persist()?;
        let state = sm.applied_state()?.unwrap_or_default();
        Ok(snapshot(state, SnapshotBody::Checkpoint))
    }
}

fn snapshot(state: AppliedState, body: SnapshotBody) -> Snapshot {
    let meta = SnapshotMeta {
        last_log_id: state.log_id,
        last_membership: state.membership,
    };
    openraft::Snapshot {
        meta,
        snapshot: body,
    }
}

/// openraft's view of a group's state machine.
pub(crate) struct Store<SM> {
    pub(crate) shared: Arc<Shared<SM>>,
    /// False while the group starts: `get_current_snapshot` then reports a checkpoint.
    pub(crate) serve_data: Arc<AtomicBool>,
    pub(crate) group: GroupId,
}

/// Builds log-compaction checkpoints.
pub(crate) struct Builder<SM> {
    shared: Arc<Shared<SM>>,
    group: GroupId,
}

impl<SM: StateMachine> RaftSnapshotBuilder<SmCfg<SM>> for Builder<SM> {
    type SnapshotData = SnapshotBody;

    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        let snap = self.shared.checkpoint()?;
        tracing::debug!(group = self.group, applied = ?snap.meta.last_log_id, "built log checkpoint");
        Ok(snap)
    }
}

impl<SM: StateMachine> Store<SM> {
    /// Applies one entry. A membership entry's command (if any) is applied with the NEW
    /// membership as the entry's state: its effects and the membership land in one batch.
    fn apply_one(&self, log_id: LogId, payload: Payload<SM::Command>) -> io::Result<SM::Response> {
        let mut sm = self.shared.lock()?;
        let (command, membership) = match payload {
            Payload::Blank => (None, self.shared.membership(&sm)?),
            Payload::Normal(cmd) => (Some(cmd), self.shared.membership(&sm)?),
            Payload::Membership {
                membership,
                command,
            } => (command, StoredMembership::new(Some(log_id), membership)),
        };
        let state = AppliedState::new(Some(log_id), membership.clone());
        let response = sm.apply(Entry { command, state })?;
        self.shared.set_membership(membership)?;
        Ok(response)
    }
}

impl<SM: StateMachine> RaftStateMachine<SmCfg<SM>> for Store<SM> {
    type SnapshotData = SnapshotBody;
    type SnapshotBuilder = Builder<SM>;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        let state = self.shared.lock()?.applied_state()?.unwrap_or_default();
        self.shared.set_membership(state.membership.clone())?;
        Ok((state.log_id, state.membership))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: Stream<Item = io::Result<EntryResponder<SmCfg<SM>>>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let response = self
                .apply_one(entry.log_id, entry.payload)
                .inspect_err(|e| {
                    tracing::error!(group = self.group, error = %e, "state machine apply failed");
                })?;
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        Builder {
            shared: self.shared.clone(),
            group: self.group,
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        body: SnapshotBody,
    ) -> io::Result<()> {
        let SnapshotBody::Data(data) = body else {
            return Err(io::Error::other(
                "only received snapshot data can be installed",
            ));
        };
        let state = AppliedState::new(meta.last_log_id, meta.last_membership.clone());
        let mut sm = self.shared.lock()?;
        sm.install_snapshot(&state, &data)?;
        // openraft purges the log behind an installed snapshot: make it durable first.
        sm.persist()?;
        self.shared.set_membership(state.membership)?;
        metrics::counter!("tinkerdb_raft_snapshots_installed_total").increment(1);
        tracing::info!(group = self.group, applied = ?state.log_id, bytes = data.len(), "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        if !self.serve_data.load(Ordering::Acquire) {
            let state = self.shared.lock()?.applied_state()?;
            return Ok(state.map(|s| snapshot(s, SnapshotBody::Checkpoint)));
        }
        // The lock is held only while the state machine fixes its view; the data is read
        // from that view when the snapshot is sent, with applies going on.
        let (state, build) = self.shared.lock()?.snapshot()?;
        if state.log_id.is_none() {
            return Ok(None);
        }
        metrics::counter!("tinkerdb_raft_snapshots_sent_total").increment(1);
        tracing::info!(group = self.group, applied = ?state.log_id, "snapshot for a follower");
        let pending = PendingData(Mutex::new(Some(build)));
        Ok(Some(snapshot(state, SnapshotBody::Pending(pending))))
    }
}
