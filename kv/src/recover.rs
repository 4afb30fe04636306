//! Unsafe recovery of ranges that lost quorum: the operator's last resort.
//!
//! With the node stopped, [`Recovery`] opens its data directory (refused while a live process
//! holds it) and, for every range with a replica there whose Raft membership includes a node
//! declared dead, appends to the range's log a membership entry without the dead nodes
//! (`raft::LogStore::remove_dead_members`), carrying a `ChangeReplicas` command that drops
//! them from the range's descriptor in the same entry. On restart the surviving voters elect
//! a leader among themselves and commit everything their logs hold. Writes acknowledged only
//! by the dead nodes (a quorum that did not include a survivor) are lost, and the dead nodes
//! must never be restarted with their old data: they would form a second majority.

use std::collections::BTreeSet;
use std::path::Path;

use crate::command::Command;
use crate::engine::{Engine, EngineOptions, NODE_ID, RANGE_APPLIED, meta_key};
use crate::error::{Error, Result};
use crate::range::{NodeId, RangeDescriptor};

/// A stopped node's data directory, opened for unsafe recovery (held until dropped).
pub struct Recovery {
    engine: Engine,
    log: raft::LogStore,
    node_id: NodeId,
}

/// A range whose membership unsafe recovery rewrites (or would rewrite).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredRange {
    /// The range's descriptor before the change.
    pub desc: RangeDescriptor,
    /// Its Raft voters before (of every config, if joint).
    pub old_voters: BTreeSet<NodeId>,
    /// Its Raft voters after.
    pub new_voters: BTreeSet<NodeId>,
}

impl Recovery {
    /// Opens the node's data directory `dir` (the directory `tinkerdb start --data-dir` uses).
    /// Refused when it holds no node or when a live process holds it.
    pub fn open(dir: &Path) -> Result<Recovery> {
        let path = dir.join("store");
        if !path.exists() {
            return Err(Error::Storage(format!(
                "{} holds no tinkerdb node",
                dir.display()
            )));
        }
        let engine = Engine::open(&path, EngineOptions::default())?;
        let node_id = engine.node_u64(NODE_ID)?.ok_or_else(|| {
            Error::Storage(format!("{} holds no initialised node", dir.display()))
        })?;
        let log = raft::LogStore::open(&engine.db)?;
        Ok(Recovery {
            engine,
            log,
            node_id,
        })
    }

    /// The node whose directory this is.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The ranges whose membership includes a node of `dead`, and how they would change;
    /// writes nothing.
    pub fn plan(&self, dead: &BTreeSet<NodeId>) -> Result<Vec<RecoveredRange>> {
        self.run(dead, true)
    }

    /// Rewrites the membership of every range that includes a node of `dead` (durably), and
    /// returns them. Refused, writing nothing, when `dead` holds this node or a range would
    /// keep no voter.
    pub fn apply(&self, dead: &BTreeSet<NodeId>) -> Result<Vec<RecoveredRange>> {
        self.run(dead, true)?;
        self.run(dead, false)
    }

    fn run(&self, dead: &BTreeSet<NodeId>, dry_run: bool) -> Result<Vec<RecoveredRange>> {
        if dead.contains(&self.node_id) {
            return Err(Error::Storage(format!(
                "node {} is this directory's node: it cannot be declared dead here",
                self.node_id
            )));
        }
        let mut changed = Vec::new();
        for desc in self.engine.descriptors()? {
            let applied = match self
                .engine
                .meta
                .get(meta_key(desc.range_id, RANGE_APPLIED))?
            {
                Some(v) => raft::AppliedState::from_bytes(&v)?,
                None => raft::AppliedState::default(),
            };
            let new_desc = |voters: &BTreeSet<NodeId>| {
                let mut replicas: Vec<NodeId> = desc
                    .replicas
                    .iter()
                    .copied()
                    .filter(|n| !dead.contains(n))
                    .collect();
                for v in voters {
                    if !replicas.contains(v) {
                        replicas.push(*v);
                    }
                }
                Some(Command::ChangeReplicas {
                    desc: RangeDescriptor {
                        replicas,
                        generation: desc.generation + 1,
                        ..desc.clone()
                    },
                })
            };
            let forced = self
                .log
                .remove_dead_members::<Command>(desc.range_id, &applied, dead, dry_run, new_desc)
                .map_err(|e| Error::Storage(format!("range {}: {e}", desc.range_id)))?;
            if let Some(f) = forced {
                changed.push(RecoveredRange {
                    desc,
                    old_voters: f.old_voters,
                    new_voters: f.new_voters,
                });
            }
        }
        if !dry_run {
            self.engine.db.persist(fjall::PersistMode::SyncAll)?;
        }
        Ok(changed)
    }
}
