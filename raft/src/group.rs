//! [`Group`]: one Raft group (one range replica) on this node.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::error::{
    ChangeMembershipError, ClientWriteError, Fatal, ForwardReason, InitializeError,
    LinearizableReadError, PreconditionFailed, RaftError,
};
use openraft::raft::{ChangeMembershipOutcome, ChangeMembershipRequest};
use openraft::{ChangeMembers, Precondition, ReadPolicy};
use tracing::Instrument;

use crate::log_store::LogStore;
use crate::quiesce::{QuiesceReply, QuiesceRequest, Quiet};
use crate::sm::{Shared, Store};
use crate::transport::{GroupRaft, NetworkFactory, Registry, Transport};
use crate::types::{Node, Payload};
use crate::wire::Body;
use crate::{
    Error, GroupId, MembershipChange, MembershipId, MembershipStatus, NodeId, Options, StateMachine,
};

/// Pause between retries of a proposal that a new leader refused while its lease was unconfirmed.
const LEASE_RETRY: Duration = Duration::from_millis(10);

/// A snapshot of a group's Raft progress, for diagnostics and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub node: NodeId,
    /// The leader this replica knows of.
    pub leader: Option<NodeId>,
    /// True when this replica is the leader.
    pub is_leader: bool,
    /// Current term.
    pub term: u64,
    /// Index of the last entry in the local log.
    pub last_log_index: Option<u64>,
    /// Index of the last entry known committed.
    pub committed_index: Option<u64>,
    /// Index of the last entry applied to the state machine.
    pub applied_index: Option<u64>,
    /// Index of the last log checkpoint (or installed snapshot).
    pub snapshot_index: Option<u64>,
    /// Index of the last purged log entry.
    pub purged_index: Option<u64>,
    /// Set when the group has stopped on a fatal error (a storage failure): it serves nothing
    /// more until the node restarts.
    pub fatal: Option<String>,
}

/// One Raft group hosted on this node. Cheap to clone.
pub struct Group<SM: StateMachine> {
    inner: Arc<Inner<SM>>,
}

impl<SM: StateMachine> Clone for Group<SM> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<SM: StateMachine> {
    group: GroupId,
    node: NodeId,
    raft: GroupRaft<SM>,
    shared: Arc<Shared<SM>>,
    registry: Registry,
    opts: Options,
    span: tracing::Span,
    reads: std::sync::Mutex<Reads>,
    /// The term this replica was last seen leading in, and when that was first seen
    /// ([`Group::unresponsive`] counts silence from then for peers never heard from).
    leader_since: std::sync::Mutex<Option<(u64, std::time::Instant)>>,
    quiet: Arc<Quiet>,
    transport: Arc<dyn Transport>,
}

/// Read barriers waiting for a leadership confirmation. Concurrent callers share one: a caller
/// that arrives while a confirmation is in flight waits for the next one, which starts only
/// after it arrived, so every caller's barrier is still issued after its call.
#[derive(Default)]
struct Reads {
    /// A task is confirming (and will take `waiting` when its round ends).
    running: bool,
    /// Callers for the next round.
    waiting: Vec<tokio::sync::oneshot::Sender<Result<u64, Error>>>,
}

/// One round of read barriers run by the caller that found none in flight ([`Group::read_index`]).
/// Whether it completes or its caller goes away mid-round (the future dropped), the callers that
/// are left — its unanswered batch first, then those that arrived meanwhile — are handed to a
/// task of their own, so none waits forever.
struct Round<'a, SM: StateMachine> {
    group: &'a Group<SM>,
    /// The callers of the round in flight, until answered.
    batch: Option<Vec<tokio::sync::oneshot::Sender<Result<u64, Error>>>>,
    done: bool,
}

impl<SM: StateMachine> Round<'_, SM> {
    async fn run(&mut self) {
        self.batch = Some(std::mem::take(
            &mut self
                .group
                .inner
                .reads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .waiting,
        ));
        let result = self.group.confirm_read().await;
        for tx in self.batch.take().unwrap_or_default() {
            let _ = tx.send(result.clone());
        }
        self.hand_over();
    }

    /// Ends the round: the callers still waiting (an unanswered batch goes back first; its
    /// barrier is then issued later, still after each call) get a task that serves them.
    fn hand_over(&mut self) {
        self.done = true;
        let mut reads = self
            .group
            .inner
            .reads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(batch) = self.batch.take() {
            reads.waiting.splice(0..0, batch);
        }
        if reads.waiting.is_empty() {
            reads.running = false;
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                drop(reads);
                let group = self.group.clone();
                runtime.spawn(async move { group.confirm_reads().await });
            }
            Err(_) => {
                // No runtime left to serve them: their callers see the group shut down.
                reads.waiting.clear();
                reads.running = false;
            }
        }
    }
}

impl<SM: StateMachine> Drop for Round<'_, SM> {
    fn drop(&mut self) {
        if !self.done {
            self.hand_over();
        }
    }
}

fn fatal<C: openraft::RaftTypeConfig>(e: Fatal<C>) -> Error {
    match e {
        Fatal::Stopped => Error::Unavailable("raft group is shut down".to_string()),
        e => Error::Fatal(e.to_string()),
    }
}

/// A failed membership change: worth retrying shortly (a new leader not yet established), or
/// final.
enum ChangeFailure {
    Retry(Error),
    Final(Error),
}

type ChangeResult<SM> = Result<
    ChangeMembershipOutcome<crate::sm::SmCfg<SM>>,
    RaftError<crate::sm::SmCfg<SM>, ClientWriteError<crate::sm::SmCfg<SM>>>,
>;

/// Maps openraft's answer to a membership change. `moved` tells whether this replica's
/// membership changed meanwhile: a leadership loss after the joint entry was written is not a
/// plain "not the leader".
fn change_result<SM: StateMachine>(
    result: ChangeResult<SM>,
    expected: Option<MembershipId>,
    moved: bool,
) -> Result<MembershipChange<SM::Response>, ChangeFailure> {
    use ChangeFailure::{Final, Retry};
    let e = match result {
        Ok(outcome) => {
            return Ok(MembershipChange {
                joint: outcome.joint.map(|r| r.data),
                id: MembershipId::from_log_id(&outcome.uniform.log_id),
                uniform: outcome.uniform.data,
            });
        }
        Err(RaftError::Fatal(e)) => return Err(Final(fatal(e))),
        Err(RaftError::APIError(e)) => e,
    };
    Err(match e {
        ClientWriteError::ForwardToLeader(f) if !moved => {
            let not_leader = Error::NotLeader {
                leader: f.leader_id,
            };
            match f.reason {
                ForwardReason::LeaseExpired => Retry(not_leader),
                _ => Final(not_leader),
            }
        }
        ClientWriteError::ForwardToLeader(f) | ClientWriteError::LogEntryDiscarded(f) => {
            Final(Error::Ambiguous(format!(
                "leadership lost during the membership change (leader: {:?})",
                f.leader_id
            )))
        }
        ClientWriteError::PreconditionFailed(PreconditionFailed::LastMembershipLogIdMismatch {
            expected: failed,
            actual,
        }) if failed.as_ref().map(MembershipId::from_log_id) == expected => {
            Final(Error::MembershipChanged(format!(
                "expected membership {expected:?}, found {:?}",
                actual.as_ref().map(MembershipId::from_log_id)
            )))
        }
        // The uniform step's own guard (the joint entry's id) failed: the joint entry is in.
        ClientWriteError::PreconditionFailed(p) => Final(Error::Ambiguous(format!(
            "membership change left joint: {p}"
        ))),
        ClientWriteError::ChangeMembershipError(ChangeMembershipError::UncommittedLeaderLog(e)) => {
            Retry(Error::Unavailable(e.to_string()))
        }
        ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(e)) => {
            Final(Error::Unavailable(e.to_string()))
        }
        ClientWriteError::ChangeMembershipError(e) => Final(Error::Invalid(e.to_string())),
    })
}

impl<SM: StateMachine> Group<SM> {
    /// Starts the group's Raft instance over the log in `log` and the state machine `sm`, and
    /// registers it in `registry`. A group that was never initialized (and has no split initial
    /// state) starts empty and waits to be contacted by a leader or [`initialize`](Self::initialize)d.
    pub async fn start(
        group: GroupId,
        node: NodeId,
        log: &LogStore,
        sm: SM,
        transport: Arc<dyn Transport>,
        registry: &Registry,
        opts: &Options,
    ) -> Result<Self, Error> {
        if registry.contains(group) {
            return Err(Error::Invalid(format!(
                "group {group} already runs on this node"
            )));
        }
        let span = tracing::info_span!("raft", group, node);
        let config = Arc::new(opts.to_config()?);
        let shared = Shared::new(sm);
        let serve_data = Arc::new(AtomicBool::new(false));
        let persist = shared.clone();
        let log_store = log
            .group(group)
            .before_purge(Arc::new(move || persist.lock()?.persist()));
        let store = Store {
            shared: shared.clone(),
            serve_data: serve_data.clone(),
            group,
        };
        let network = NetworkFactory {
            transport: transport.clone(),
            group,
            node,
            chunk_bytes: opts.snapshot_chunk_bytes,
        };
        let raft = GroupRaft::<SM>::new(node, config, network, log_store, store)
            .instrument(span.clone())
            .await
            .map_err(fatal)?;
        serve_data.store(true, Ordering::Release);
        let quiet = Arc::new(Quiet::new());
        if let Err(e) = registry.register::<SM>(
            group,
            raft.clone(),
            quiet.clone(),
            opts.election_timeout_max,
        ) {
            let _ = raft.shutdown().await;
            return Err(e);
        }
        span.in_scope(|| tracing::info!("raft group started"));
        let this = Self {
            inner: Arc::new(Inner {
                group,
                node,
                raft,
                shared,
                registry: registry.clone(),
                opts: opts.clone(),
                span,
                reads: Default::default(),
                leader_since: Default::default(),
                quiet,
                transport: transport.clone(),
            }),
        };
        if let Some(idle) = opts.quiesce_after {
            registry.start_monitor(transport, node, opts);
            tokio::spawn(quiesce_loop(Arc::downgrade(&this.inner), idle));
        }
        Ok(this)
    }

    /// Records activity: restarts the ticker of a quiesced group before a request reaches
    /// openraft.
    fn wake(&self) {
        let raft = &self.inner.raft;
        self.inner.quiet.wake(|on| raft.runtime_config().tick(on));
    }

    /// True while this replica's ticker is stopped (see `quiesce`).
    pub fn is_quiesced(&self) -> bool {
        self.inner.quiet.is_quiesced()
    }

    /// On an idle leader whose followers all hold its whole log, asks them to quiesce and
    /// quiesces if they all did and nothing woke the group meanwhile. Returns whether the
    /// group is quiesced now.
    async fn maybe_quiesce(&self) -> bool {
        let inner = &self.inner;
        if inner.quiet.is_quiesced() {
            return true;
        }
        let epoch = inner.quiet.epoch();
        let (vote, last_index, followers) = {
            let m = inner.raft.metrics();
            let m = m.borrow_watched();
            let membership = m.membership_config.membership();
            let last_index = m.last_log_index;
            let at_last =
                |id: &Option<crate::types::LogId>| id.as_ref().map(|l| l.index) == last_index;
            let matched = m.replication.as_ref().is_some_and(|r| {
                r.iter()
                    .all(|(node, id)| *node == inner.node || at_last(id))
            });
            if !m.state.is_leader()
                || m.running_state.is_err()
                || membership.get_joint_config().len() != 1
                || membership.learner_ids().next().is_some()
                || !at_last(&m.local_committed)
                || !at_last(&m.last_applied)
                || !matched
            {
                return false;
            }
            let followers: Vec<(NodeId, String)> = membership
                .nodes()
                .filter(|(id, _)| **id != inner.node)
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect();
            (m.vote, last_index, followers)
        };
        let body = QuiesceRequest { vote, last_index }.encode();
        let asks = followers.into_iter().map(|(to, addr)| {
            let msg = crate::Message {
                group: inner.group,
                from: inner.node,
                to,
                kind: crate::RpcKind::Quiesce,
                body: body.clone(),
            };
            let send = inner.transport.send(&addr, msg);
            let ttl = inner.opts.heartbeat_interval;
            async move {
                match tokio::time::timeout(ttl, send).await {
                    Ok(Ok(reply)) => QuiesceReply::decode(&reply.body).is_ok_and(|r| r.quiesced),
                    _ => false,
                }
            }
        });
        if !futures::future::join_all(asks)
            .await
            .into_iter()
            .all(|ok| ok)
        {
            return false;
        }
        let raft = &inner.raft;
        let quiesced = inner
            .quiet
            .quiesce(Some(epoch), |on| raft.runtime_config().tick(on));
        if quiesced {
            inner.span.in_scope(|| tracing::debug!("quiesced"));
        }
        quiesced
    }

    /// The group id.
    pub fn id(&self) -> GroupId {
        self.inner.group
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.inner.node
    }

    /// Bootstraps a new group with these voters (node id → address). Only for cluster bootstrap;
    /// fails with [`Error::Invalid`] on a group that already has a log or a vote.
    pub async fn initialize(&self, voters: BTreeMap<NodeId, String>) -> Result<(), Error> {
        let members: BTreeMap<NodeId, Node> = voters
            .into_iter()
            .map(|(id, addr)| (id, Node { addr }))
            .collect();
        match self
            .inner
            .raft
            .initialize(members)
            .instrument(self.inner.span.clone())
            .await
        {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                Err(Error::Invalid(e.to_string()))
            }
            Err(RaftError::APIError(InitializeError::NotInMembers(e))) => {
                Err(Error::Invalid(e.to_string()))
            }
            Err(RaftError::Fatal(e)) => Err(fatal(e)),
        }
    }

    /// True when the group has a membership (initialized, joined, or created by a split).
    pub async fn is_initialized(&self) -> Result<bool, Error> {
        self.inner.raft.is_initialized().await.map_err(fatal)
    }

    /// Proposes a command and returns the state machine's response once the entry is committed
    /// and applied here. Only the leader accepts proposals ([`Error::NotLeader`] otherwise). A
    /// new leader's brief refusal until a quorum acknowledged it is retried internally.
    pub async fn propose(&self, cmd: SM::Command) -> Result<SM::Response, Error> {
        self.propose_holding(cmd, ()).await
    }

    /// [`propose`](Self::propose), keeping `hold` alive until the entry's fate is known: it is
    /// dropped once the proposal returns, except after a timeout ([`Error::Ambiguous`]): then it
    /// lives on in a background task until the write finishes: applied here, or discarded from
    /// this replica's log (truncated by another leader's log, or purged under an installed
    /// snapshot), or the group stopped. A one-phase commit holds its latches this way, so that no
    /// reader passes them while its versions may still land below the reader's timestamp.
    pub async fn propose_holding<H: Send + 'static>(
        &self,
        cmd: SM::Command,
        hold: H,
    ) -> Result<SM::Response, Error> {
        self.wake();
        let deadline = tokio::time::Instant::now() + self.inner.opts.propose_timeout;
        loop {
            let raft = self.inner.raft.clone();
            let command = cmd.clone();
            let mut write = Box::pin(
                async move { raft.client_write(command).await }.instrument(self.inner.span.clone()),
            );
            let result = match tokio::time::timeout_at(deadline, &mut write).await {
                Ok(r) => r,
                Err(_) => {
                    // openraft answers a pending write when its entry applies here, or when the
                    // entry is truncated or purged from this replica's log (superseded by another
                    // leader's log or a snapshot): exactly when its fate is known here.
                    tokio::spawn(async move {
                        let _ = write.await;
                        drop(hold);
                    });
                    return Err(Error::Ambiguous("proposal timed out".to_string()));
                }
            };
            match result {
                Ok(resp) => return Ok(resp.data),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    if f.reason == ForwardReason::LeaseExpired
                        && tokio::time::Instant::now() + LEASE_RETRY < deadline
                    {
                        tokio::time::sleep(LEASE_RETRY).await;
                        continue;
                    }
                    return Err(Error::NotLeader {
                        leader: f.leader_id,
                    });
                }
                Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(f))) => {
                    return Err(Error::Ambiguous(format!(
                        "entry discarded on leader change (leader: {:?})",
                        f.leader_id
                    )));
                }
                Err(RaftError::APIError(e)) => return Err(Error::Invalid(e.to_string())),
                // The core stopped (a storage failure, or shutdown) with the entry perhaps in the
                // durable log: a restart may still apply it.
                Err(RaftError::Fatal(e)) => {
                    return Err(Error::Ambiguous(format!("the raft group stopped: {e}")));
                }
            }
        }
    }

    /// Adds `node` (reached at `addr`) as a learner: a member that receives the log but does not
    /// vote. Returns once the membership entry has committed, without waiting for the learner to
    /// catch up. Only the leader can do it.
    pub async fn add_learner(&self, node: NodeId, addr: String) -> Result<(), Error> {
        self.wake();
        let add = self
            .inner
            .raft
            .add_learner(node, crate::types::node(addr), false)
            .instrument(self.inner.span.clone());
        let result = tokio::time::timeout(self.inner.opts.propose_timeout, add).await;
        match result {
            Err(_) => Err(Error::Ambiguous("membership change timed out".to_string())),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(Error::NotLeader {
                    leader: f.leader_id,
                })
            }
            Ok(Err(RaftError::APIError(e))) => Err(Error::Invalid(e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => Err(fatal(e)),
        }
    }

    /// Changes the voters to exactly `voters` and applies `joint_command` and `uniform_command`
    /// in the membership entries themselves, so that what the commands record (a range's
    /// descriptor) changes in the same entry, and the same apply batch, as the membership.
    ///
    /// Every node in `voters` must already be a member: a learner (see
    /// [`add_learner`](Self::add_learner)) is promoted, a voter stays one. A voter not in
    /// `voters` is removed from the group, or kept as a learner when `retain` is true. Learners
    /// not in `voters` stay learners (remove them with [`remove_learners`](Self::remove_learners)).
    ///
    /// When the voters change, openraft writes two entries: a joint membership (the last voter
    /// set in force and `voters`) carrying `joint_command`, then, once it has committed, the
    /// uniform new membership carrying `uniform_command`. When `voters` already is one of the
    /// voter sets in force (no voter change, or finishing or reverting a joint membership), it
    /// writes only the uniform entry and `joint_command` is dropped. Each command is applied at
    /// its entry's log id, with that entry's membership in [`Entry::state`](crate::Entry::state).
    ///
    /// With `expected`, the change is made only while the membership in force is the one with
    /// that id ([`membership`](Self::membership)): otherwise it fails with
    /// [`Error::MembershipChanged`] and nothing is written. Concurrent changes are serialised
    /// this way. Without it, the change applies to whatever membership is in force.
    ///
    /// Returns once the uniform entry has committed and applied here. Only the leader can do it
    /// ([`Error::NotLeader`], nothing written). Other failures may leave the change half done,
    /// like a leader that dies mid-change: the membership is then joint, which
    /// [`membership`](Self::membership) shows, and a next change with the current id as
    /// `expected` finishes or reverts it. A change still running when
    /// [`Options::propose_timeout`] passes is reported as [`Error::Ambiguous`] and goes on in
    /// the background.
    pub async fn change_membership(
        &self,
        voters: BTreeSet<NodeId>,
        retain: bool,
        joint_command: SM::Command,
        uniform_command: SM::Command,
        expected: Option<MembershipId>,
    ) -> Result<MembershipChange<SM::Response>, Error> {
        let changes = ChangeMembers::ReplaceAllVoters(voters);
        self.change(
            changes,
            retain,
            Some(joint_command),
            uniform_command,
            expected,
        )
        .await
    }

    /// Removes `learners` from the group, applying `command` in the same (single, uniform)
    /// membership entry. Fails with [`Error::Invalid`] when one of them is a voter (demote it
    /// first with [`change_membership`](Self::change_membership)); `expected` and the errors
    /// are as there.
    pub async fn remove_learners(
        &self,
        learners: BTreeSet<NodeId>,
        command: SM::Command,
        expected: Option<MembershipId>,
    ) -> Result<MembershipChange<SM::Response>, Error> {
        let changes = ChangeMembers::RemoveNodes(learners);
        self.change(changes, false, None, command, expected).await
    }

    /// This replica's view of the membership in force: the latest membership entry in its log,
    /// which may not be committed yet (see [`MembershipStatus::committed`]). Its `id` is what
    /// [`change_membership`](Self::change_membership) takes as `expected`. It is read from the
    /// Raft core's published state, which can trail a change that just returned by a moment:
    /// to chain changes, pass the returned [`MembershipChange::id`].
    pub fn membership(&self) -> MembershipStatus {
        // The watch guard must not live across an await: it blocks the Raft core.
        let m = self.inner.raft.metrics().borrow_watched().clone();
        MembershipStatus::new(&m.membership_config, m.local_committed.as_ref())
    }

    /// One membership change through `change_membership_with_payload`, retried while a new
    /// leader is not yet established, bounded by the proposal timeout.
    async fn change(
        &self,
        changes: ChangeMembers<NodeId, Node>,
        retain: bool,
        joint: Option<SM::Command>,
        uniform: SM::Command,
        expected: Option<MembershipId>,
    ) -> Result<MembershipChange<SM::Response>, Error> {
        self.wake();
        let deadline = tokio::time::Instant::now() + self.inner.opts.propose_timeout;
        loop {
            let before = self.membership().id;
            let mut request = ChangeMembershipRequest::new(changes.clone(), retain).with_payload(
                joint.clone().map_or(Payload::Blank, Payload::Normal),
                Payload::Normal(uniform.clone()),
            );
            if let Some(id) = expected {
                request = request.with_preconditions([Precondition::LastMembershipLogId {
                    last_membership_log_id: Some(id.to_log_id()),
                }]);
            }
            // A task of its own: the second (uniform) step is driven by this future, and must
            // not be abandoned half way when the caller stops waiting.
            let raft = self.inner.raft.clone();
            let change = tokio::spawn(
                async move { raft.change_membership_with_payload(request).await }
                    .instrument(self.inner.span.clone()),
            );
            let result = match tokio::time::timeout_at(deadline, change).await {
                Err(_) => return Err(Error::Ambiguous("membership change timed out".to_string())),
                Ok(Err(e)) => return Err(Error::Fatal(format!("membership change task: {e}"))),
                Ok(Ok(result)) => result,
            };
            let retry = tokio::time::Instant::now() + LEASE_RETRY < deadline;
            match change_result::<SM>(result, expected, before != self.membership().id) {
                Err(ChangeFailure::Retry(_)) if retry => tokio::time::sleep(LEASE_RETRY).await,
                Err(ChangeFailure::Retry(e) | ChangeFailure::Final(e)) => return Err(e),
                Ok(change) => return Ok(change),
            }
        }
    }

    /// Takes a snapshot of everything applied so far and purges the log up to it, waiting (at
    /// most `timeout`) for both. A member added afterwards starts from that snapshot instead of
    /// replaying the log from its first entry (which a state machine seeded outside the log, or
    /// a replica created empty, could not apply). Followers behind the purge point also catch
    /// up by snapshot. Returns the snapshot's last index.
    pub async fn compact(&self, timeout: Duration) -> Result<u64, Error> {
        self.wake();
        let applied = self.status().applied_index.unwrap_or(0);
        let raft = &self.inner.raft;
        raft.trigger().snapshot().await.map_err(fatal)?;
        let m = raft
            .wait(Some(timeout))
            .metrics(
                |m| m.snapshot.as_ref().is_some_and(|s| s.index >= applied),
                "snapshot taken",
            )
            .await
            .map_err(|e| Error::Unavailable(format!("snapshot not taken: {e}")))?;
        let upto = m.snapshot.map_or(0, |s| s.index);
        raft.trigger().purge_log(upto).await.map_err(fatal)?;
        raft.wait(Some(timeout))
            .metrics(
                |m| m.purged.as_ref().is_some_and(|p| p.index >= upto),
                "log purged",
            )
            .await
            .map_err(|e| Error::Unavailable(format!("log not purged: {e}")))?;
        Ok(upto)
    }

    /// Linearizable read barrier (ReadIndex): confirms leadership with a quorum and waits until
    /// the local state machine has applied everything committed before the call. Only the leader
    /// can serve it. Returns the term of the leadership that confirmed the read: a caller that
    /// keeps state per leadership (the timestamp oracle) compares it with the term it last saw.
    /// Concurrent callers share confirmations: one round answers every caller that arrived
    /// before it started. A caller that finds no round in flight runs one itself (no hop to
    /// another task); callers that arrive during it are served by a task it leaves behind.
    pub async fn read_index(&self) -> Result<u64, Error> {
        self.wake();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let lead = {
            let mut reads = self.inner.reads.lock().unwrap_or_else(|e| e.into_inner());
            reads.waiting.push(tx);
            !std::mem::replace(&mut reads.running, true)
        };
        if lead {
            let mut round = Round {
                group: self,
                batch: None,
                done: false,
            };
            round.run().await;
        }
        rx.await
            .unwrap_or_else(|_| Err(Error::Unavailable("raft group is shut down".to_string())))
    }

    /// Serves rounds of read barriers until no caller waits: each round takes the callers
    /// waiting when it starts and answers them all with one confirmation.
    async fn confirm_reads(&self) {
        // Should a round panic, the next caller starts a new task instead of waiting forever.
        struct Running<'a>(&'a std::sync::Mutex<Reads>, bool);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.lock().unwrap_or_else(|e| e.into_inner()).running = false;
                }
            }
        }
        let mut running = Running(&self.inner.reads, true);
        loop {
            let batch = {
                let mut reads = self.inner.reads.lock().unwrap_or_else(|e| e.into_inner());
                if reads.waiting.is_empty() {
                    reads.running = false;
                    running.1 = false;
                    return;
                }
                std::mem::take(&mut reads.waiting)
            };
            let result = self.confirm_read().await;
            for tx in batch {
                let _ = tx.send(result.clone());
            }
        }
    }

    /// One leadership confirmation (ReadIndex) and the wait for the state machine to apply up
    /// to the index it returns.
    async fn confirm_read(&self) -> Result<u64, Error> {
        let deadline = tokio::time::Instant::now() + self.inner.opts.read_timeout;
        loop {
            let read = self
                .inner
                .raft
                .ensure_linearizable(ReadPolicy::ReadIndex)
                .instrument(self.inner.span.clone());
            let result = match tokio::time::timeout_at(deadline, read).await {
                Ok(r) => r,
                Err(_) => return Err(Error::Unavailable("read barrier timed out".to_string())),
            };
            match result {
                Ok(read) => return Ok(read.committed_leader_id().term),
                Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
                    if f.reason == ForwardReason::LeaseExpired
                        && tokio::time::Instant::now() + LEASE_RETRY < deadline
                    {
                        tokio::time::sleep(LEASE_RETRY).await;
                        continue;
                    }
                    return Err(Error::NotLeader {
                        leader: f.leader_id,
                    });
                }
                Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(e))) => {
                    return Err(Error::Unavailable(e.to_string()));
                }
                Err(RaftError::Fatal(e)) => return Err(fatal(e)),
            }
        }
    }

    /// The leader this replica knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.status().leader
    }

    /// True when this replica is the leader.
    pub fn is_leader(&self) -> bool {
        self.status().is_leader
    }

    /// This replica's Raft progress.
    pub fn status(&self) -> Status {
        // The watch guard must not live across an await: it blocks the Raft core.
        let m = self.inner.raft.metrics().borrow_watched().clone();
        let index = |id: &Option<crate::types::LogId>| id.as_ref().map(|id| id.index);
        Status {
            node: self.inner.node,
            leader: m.current_leader,
            is_leader: m.state.is_leader(),
            term: m.current_term,
            last_log_index: m.last_log_index,
            committed_index: index(&m.local_committed),
            applied_index: index(&m.last_applied),
            snapshot_index: index(&m.snapshot),
            purged_index: index(&m.purged),
            fatal: m.running_state.as_ref().err().map(|e| e.to_string()),
        }
    }

    /// On the leader, the other members (voters and learners) that have not acknowledged a
    /// heartbeat for `after`; a member not heard from since this replica became leader counts
    /// from then (as first observed by a call of this method). Empty on a follower.
    pub fn unresponsive(&self, after: Duration) -> BTreeSet<NodeId> {
        let (term, heartbeats) = {
            let m = self.inner.raft.metrics();
            let m = m.borrow_watched();
            if !m.state.is_leader() {
                return BTreeSet::new();
            }
            (m.current_term, m.heartbeat.clone().unwrap_or_default())
        };
        let since = {
            let mut seen = self
                .inner
                .leader_since
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match *seen {
                Some((t, at)) if t == term => at,
                _ => {
                    let now = std::time::Instant::now();
                    *seen = Some((term, now));
                    now
                }
            }
        };
        // A quiesced group hears from no one: its monitor wakes it when a member goes silent,
        // and silence counts from the wake-up at the earliest.
        if self.inner.quiet.is_quiesced() {
            return BTreeSet::new();
        }
        let awake = self.inner.quiet.awake_since().elapsed() >= after;
        heartbeats
            .into_iter()
            .filter(|(node, _)| *node != self.inner.node)
            .filter(|(_, acked)| match acked {
                Some(at) => awake && openraft::Instant::elapsed(&**at) >= after,
                None => awake && since.elapsed() >= after,
            })
            .map(|(node, _)| node)
            .collect()
    }

    /// Waits (at most `timeout`) until the group has a leader, and returns it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId, Error> {
        let m = self
            .inner
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "leader elected")
            .await;
        match m {
            Ok(m) => m
                .current_leader
                .ok_or_else(|| Error::Unavailable("no leader".to_string())),
            Err(e) => Err(Error::Unavailable(format!("no leader: {e}"))),
        }
    }

    /// Waits (at most `timeout`) until this replica has applied the entry at `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), Error> {
        let wait = self.inner.raft.wait(Some(timeout));
        match wait.applied_index_at_least(Some(index), "applied").await {
            Ok(_) => Ok(()),
            Err(e) => Err(Error::Unavailable(format!(
                "index {index} not applied: {e}"
            ))),
        }
    }

    /// Starts an election at once on this replica (e.g. the parent's leader for a new right-hand
    /// range after a split), instead of waiting for an election timeout.
    pub async fn campaign(&self) -> Result<(), Error> {
        self.wake();
        self.inner.raft.trigger().elect(true).await.map_err(fatal)
    }

    /// Runs `f` on the state machine (e.g. to read what was applied). Blocks applies meanwhile.
    pub fn with_state_machine<T>(&self, f: impl FnOnce(&SM) -> T) -> Result<T, Error> {
        let sm = self.inner.shared.lock()?;
        Ok(f(&sm))
    }

    /// Stops the group: unregisters it and shuts its Raft instance down. Other handles then
    /// answer [`Error::Unavailable`].
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.inner.registry.unregister(self.inner.group);
        self.inner
            .raft
            .shutdown()
            .await
            .map_err(|e| Error::Fatal(format!("raft shutdown: {e}")))?;
        self.inner
            .span
            .in_scope(|| tracing::info!("raft group stopped"));
        Ok(())
    }
}

/// Checks an idle group for quiescence once per election timeout, until the group is gone.
/// The group counts as idle when its last log index and its wake-up epoch stayed the same for
/// `idle`.
async fn quiesce_loop<SM: StateMachine>(inner: std::sync::Weak<Inner<SM>>, idle: Duration) {
    let every = match inner.upgrade() {
        Some(i) => i.opts.election_timeout_max,
        None => return,
    };
    let mut seen: Option<(Option<u64>, u64, tokio::time::Instant)> = None;
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if !inner.registry.contains(inner.group) {
            return;
        }
        let group = Group { inner };
        if group.inner.quiet.is_quiesced() || !group.is_leader() {
            seen = None;
            continue;
        }
        let now = (group.status().last_log_index, group.inner.quiet.epoch());
        match seen {
            Some((index, epoch, since)) if (index, epoch) == now => {
                if since.elapsed() >= idle && group.maybe_quiesce().await {
                    seen = None;
                }
            }
            _ => seen = Some((now.0, now.1, tokio::time::Instant::now())),
        }
    }
}
