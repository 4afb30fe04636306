//! The replicate queue: each range's leader keeps the range on `replication_factor` nodes
//! (every node when there are fewer), one step per pass.
//!
//! A step is one of: finish a change left joint (a leader died mid-change); promote a learner
//! or remove one that is not wanted; add a replica on a node that has none (an empty replica
//! there, then a learner, which starts from a snapshot, then its promotion); remove the
//! replica of a decommissioning or dead node once enough others stay. A member is dead to a
//! range when it has not answered the range's leader for [`Replication::dead_after`]
//! (liveness as the leader's Raft heartbeats measure it); its replica is replaced, never
//! removed first, so a dead member costs no quorum that a replacement cannot restore. Every membership
//! change carries the range's descriptor in the same entries
//! ([`kv::Client::change_replicas`]) and is guarded by the membership it was decided on. The
//! descriptor's copies (the range-local key and the directory entry in range 1) then follow
//! in a transaction; until they do, a split planned on the old copy is refused at its commit
//! point and retried.

use std::collections::BTreeSet;
use std::time::Duration;

use kv::keys::{Key, range_descriptor_key};
use kv::{NodeId, RangeDescriptor};

use super::peers::Peers;
use super::proto;
use crate::{Db, Error, Result, TxnOptions};

/// How the replicate queue places replicas.
#[derive(Clone, Copy, Debug)]
pub struct Replication {
    /// Replicas per range (every node when there are fewer).
    pub factor: usize,
    /// How long a member may leave the range's leader unanswered before its replica is
    /// replaced elsewhere.
    pub dead_after: Duration,
}

/// One pass over the ranges this node leads; returns how many steps it took. Replicas go to
/// nodes of the node directory that are not being decommissioned; the replicas of a
/// decommissioning or dead node are moved off it (a new one added first, then the old one
/// removed).
pub async fn replicate(db: &Db, peers: &Peers, replication: Replication) -> Result<usize> {
    let factor = replication.factor;
    let directory = super::node_directory(db).await?;
    let nodes: Vec<(NodeId, String)> = directory
        .iter()
        .filter(|n| !n.decommissioning)
        .map(|n| (n.node_id, n.addr.clone()))
        .collect();
    let leaving: BTreeSet<NodeId> = directory
        .iter()
        .filter(|n| n.decommissioning)
        .map(|n| n.node_id)
        .collect();
    let want = factor.clamp(1, nodes.len().max(1));
    let mut steps = 0;
    for led in db.client().led_ranges().map_err(crate::db::kv_err)? {
        let range = led.desc.range_id;
        let dead = db
            .client()
            .unresponsive(range, replication.dead_after)
            .unwrap_or_default();
        match step(db, peers, &led.desc, want, &nodes, &leaving, &dead).await {
            Ok(true) => steps += 1,
            Ok(false) => {}
            Err(e) => tracing::debug!(range, "replicate: {e}"),
        }
        if let Err(e) = sync_copies(db, peers, range).await {
            tracing::debug!(range, "replicate: updating the descriptor copies: {e}");
        }
    }
    Ok(steps)
}

/// Takes one replication step for the range `desc`, led here; whether it changed anything.
async fn step(
    db: &Db,
    peers: &Peers,
    desc: &RangeDescriptor,
    want: usize,
    nodes: &[(NodeId, String)],
    leaving: &BTreeSet<NodeId>,
    dead: &BTreeSet<NodeId>,
) -> kv::Result<bool> {
    let client = db.client();
    let range = desc.range_id;
    let m = client.membership(range)?;
    if !m.committed {
        return Ok(false);
    }
    let voters = m.voters.last().cloned().unwrap_or_default();
    if m.is_joint() {
        tracing::info!(range, ?voters, "finishing a replica change left joint");
        client.change_replicas(range, voters, m.id).await?;
        return Ok(true);
    }
    let going = |n: &NodeId| leaving.contains(n) || dead.contains(n);
    let staying = voters.iter().filter(|v| !going(v)).count();
    if let Some(learner) = m.learners.iter().next().copied() {
        if staying < want && !going(&learner) {
            let mut promoted = voters.clone();
            promoted.insert(learner);
            tracing::info!(range, node = learner, "promoting a replica to voter");
            client.change_replicas(range, promoted, m.id).await?;
        } else {
            tracing::info!(range, node = learner, "removing an unwanted learner");
            client
                .remove_learners(range, BTreeSet::from([learner]), m.id)
                .await?;
        }
        return Ok(true);
    }
    if staying >= want {
        // Enough replicas stay: one on a decommissioning or dead node goes.
        let Some(gone) = voters.iter().copied().find(|v| going(v)) else {
            return Ok(false);
        };
        let mut kept = voters.clone();
        kept.remove(&gone);
        if kept.is_empty() {
            return Ok(false);
        }
        let why = if leaving.contains(&gone) {
            "removing the replica of a decommissioning node"
        } else {
            "removing the replica of a dead node (replaced)"
        };
        tracing::info!(range, node = gone, "{why}");
        client.change_replicas(range, kept, m.id).await?;
        return Ok(true);
    }
    // A node that cannot take a replica now (down, say) is passed over for the next one.
    for (node, addr) in nodes
        .iter()
        .filter(|(n, _)| !voters.contains(n) && !dead.contains(n))
    {
        match add_replica(db, peers, range, *node, addr).await {
            Ok(()) => return Ok(true),
            Err(e) => tracing::debug!(range, node, "cannot add a replica there: {e}"),
        }
    }
    Ok(false)
}

/// Adds a learner of `range` on `node`: an empty replica there first, then the membership
/// change; the next pass promotes it once it is a member.
async fn add_replica(
    db: &Db,
    peers: &Peers,
    range: kv::RangeId,
    node: NodeId,
    addr: &str,
) -> kv::Result<()> {
    tracing::info!(range, node, "adding a replica");
    let mut remote = peers.client(node).await?;
    remote
        .add_replica(proto::AddReplicaRequest {
            header: Some(peers.header(node)),
            range_id: range,
        })
        .await
        .map_err(|s| kv::Error::Unavailable(format!("node {node}: {}", s.message())))?;
    db.client().add_learner(range, node, addr.to_string()).await
}

/// Brings the range's descriptor copies (its range-local key and its directory entry) up to
/// the descriptor its leader applied, when a replica change moved it past them.
async fn sync_copies(db: &Db, peers: &Peers, range: kv::RangeId) -> Result<()> {
    let Some(desc) = db.client().led_descriptor(range) else {
        return Ok(());
    };
    // Copies go stale only when the descriptor changes (its generation moves): one check per
    // generation, not a transaction per range and pass (that read would also keep an idle
    // range from quiescing).
    if peers.copies_synced(range, desc.generation) {
        return Ok(());
    }
    let local = range_descriptor_key(&desc.start);
    let entry = Key::RangeDirectory {
        end_key: desc.end.clone(),
    }
    .encode();
    let mut txn = db.begin(TxnOptions::default()).await?;
    let mut stale = false;
    for key in [&local, &entry] {
        let copy = match txn.get(key).await? {
            Some(v) => RangeDescriptor::decode(&v).map_err(|e| Error::Internal(e.to_string()))?,
            None => return txn.rollback().await,
        };
        // Another change of the span (a split) is the split's to write; only a copy of the
        // same span that is older than the applied descriptor is rewritten.
        if copy.range_id != desc.range_id || copy.start != desc.start || copy.end != desc.end {
            return txn.rollback().await;
        }
        stale |= copy.generation < desc.generation;
    }
    if !stale {
        txn.rollback().await?;
        peers.set_copies_synced(range, desc.generation);
        return Ok(());
    }
    txn.put(local, desc.encode())?;
    txn.put(entry, desc.encode())?;
    txn.commit().await?;
    peers.set_copies_synced(range, desc.generation);
    tracing::info!(%desc, "range descriptor copies updated");
    Ok(())
}

/// Removes this node's replicas of ranges that no longer have one here: the range's directory
/// entry (read in a transaction, so it is the committed truth; the directory is read once per
/// call) does not list this node, and is newer than the replica's descriptor or the replica's
/// own membership has left this node out; a learner being added, and a voter of a change in
/// progress, are kept. Returns how many it removed.
pub async fn remove_stale_replicas(db: &Db, me: NodeId) -> Result<usize> {
    let client = db.client();
    let mut removed = 0;
    // A placeholder waiting for its first snapshot, a leader, a learner: all wanted.
    let candidates: Vec<_> = client
        .local_replicas()
        .into_iter()
        .filter(|(desc, leads, m)| !leads && !desc.end.is_empty() && !m.learners.contains(&me))
        .collect();
    if candidates.is_empty() {
        return Ok(0);
    }
    let (start, end) = kv::keys::directory_span();
    let directory: std::collections::HashMap<Vec<u8>, Vec<u8>> =
        db.read_span(&start, &end).await?.into_iter().collect();
    for (desc, _, membership) in candidates {
        let entry = Key::RangeDirectory {
            end_key: desc.end.clone(),
        }
        .encode();
        let Some(current) = directory.get(&entry) else {
            continue;
        };
        let current =
            RangeDescriptor::decode(current).map_err(|e| Error::Internal(e.to_string()))?;
        // Gone from the committed descriptor, and either that descriptor is newer than ours
        // (we missed the change) or our own group already left us out.
        let gone = current.range_id == desc.range_id
            && !current.replicas.contains(&me)
            && (current.generation > desc.generation
                || (current.generation >= desc.generation
                    && !membership.all_voters().contains(&me)));
        if gone {
            client
                .remove_replica(desc.range_id)
                .await
                .map_err(crate::db::kv_err)?;
            removed += 1;
        }
    }
    Ok(removed)
}
