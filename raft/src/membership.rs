//! The public view of a group's Raft membership: [`MembershipId`], [`MembershipStatus`] and
//! the outcome of a change ([`MembershipChange`]). No openraft type appears here.

use std::collections::{BTreeMap, BTreeSet};

use crate::NodeId;
use crate::types::{self, LogId, StoredMembership};

/// Id of a membership: the log id (term, leader node, index) of the entry that carries it.
/// Given as `expected` to [`Group::change_membership`](crate::Group::change_membership), it
/// makes the change conditional on that membership still being in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MembershipId {
    /// Term of the leader that wrote the entry.
    pub term: u64,
    /// The leader that wrote the entry.
    pub node: NodeId,
    /// Index of the entry.
    pub index: u64,
}

impl MembershipId {
    pub(crate) fn from_log_id(id: &LogId) -> Self {
        Self {
            term: id.leader_id.term,
            node: id.leader_id.node_id,
            index: id.index,
        }
    }

    pub(crate) fn to_log_id(self) -> LogId {
        types::log_id(self.term, self.node, self.index)
    }
}

/// A group's membership as one replica sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipStatus {
    /// The entry carrying this membership; None for a group that has none yet.
    pub id: Option<MembershipId>,
    /// The voter sets: one when uniform, two during a joint change (old, then new).
    pub voters: Vec<BTreeSet<NodeId>>,
    /// Members that receive the log but do not vote.
    pub learners: BTreeSet<NodeId>,
    /// Every member (voter or learner) with its address.
    pub nodes: BTreeMap<NodeId, String>,
    /// True when this replica knows the membership's entry to be committed (false when there
    /// is no membership). An uncommitted membership is already in force (Raft uses a membership
    /// once it is in the log) but may still be reverted by a new leader that never saw it.
    pub committed: bool,
}

impl MembershipStatus {
    pub(crate) fn new(m: &StoredMembership, committed: Option<&LogId>) -> Self {
        let id = m.log_id().as_ref().map(MembershipId::from_log_id);
        let membership = m.membership();
        Self {
            id,
            voters: membership.get_joint_config().clone(),
            learners: membership.learner_ids().collect(),
            nodes: membership
                .nodes()
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect(),
            committed: match (m.log_id(), committed) {
                (Some(id), Some(c)) => id.index <= c.index,
                _ => false,
            },
        }
    }

    /// True during a joint change: the voters are two sets, both of which must agree.
    pub fn is_joint(&self) -> bool {
        self.voters.len() > 1
    }

    /// Every voter, of all voter sets.
    pub fn all_voters(&self) -> BTreeSet<NodeId> {
        self.voters.iter().flatten().copied().collect()
    }

    /// True when the membership is uniform, has no learners and is committed: no change is in
    /// progress or left half-done.
    pub fn is_settled(&self) -> bool {
        !self.is_joint() && self.learners.is_empty() && self.committed
    }
}

/// What a completed membership change applied, on the leader.
#[derive(Clone, Debug, PartialEq)]
pub struct MembershipChange<R> {
    /// The state machine's response to the joint entry's command; None when the change needed
    /// no joint entry (the new voters were already a voter set in force), and the joint command
    /// was not written.
    pub joint: Option<R>,
    /// The state machine's response to the uniform entry's command.
    pub uniform: R,
    /// The id of the new membership (the uniform entry): the `expected` of a next change.
    pub id: MembershipId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::membership;
    use crate::types::{Membership, log_id, node};

    #[test]
    fn status_of_a_joint_membership_with_a_learner() {
        let nodes = BTreeMap::from([
            (1, node("a".into())),
            (2, node("b".into())),
            (3, node("c".into())),
        ]);
        let joint = Membership::new(vec![[1].into(), [1, 2].into()], nodes).unwrap();
        let stored = StoredMembership::new(Some(log_id(4, 1, 9)), joint);
        let s = MembershipStatus::new(&stored, Some(&log_id(4, 1, 8)));
        let id = MembershipId {
            term: 4,
            node: 1,
            index: 9,
        };
        assert_eq!(s.id, Some(id));
        assert_eq!(id.to_log_id(), log_id(4, 1, 9));
        assert_eq!(s.voters, vec![BTreeSet::from([1]), BTreeSet::from([1, 2])]);
        assert_eq!(s.all_voters(), BTreeSet::from([1, 2]));
        assert_eq!(s.learners, BTreeSet::from([3]));
        assert_eq!(s.nodes[&3], "c");
        assert!(s.is_joint() && !s.committed && !s.is_settled());
        assert!(MembershipStatus::new(&stored, Some(&log_id(4, 1, 9))).committed);

        let uniform = StoredMembership::new(Some(log_id(4, 1, 2)), membership());
        let s = MembershipStatus::new(&uniform, Some(&log_id(4, 1, 9)));
        assert!(!s.is_joint() && s.committed && s.is_settled());
        assert!(!MembershipStatus::new(&StoredMembership::default(), None).committed);
    }
}
