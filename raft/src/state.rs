//! The Raft bookkeeping a state machine stores together with its data.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use crate::codec::{Reader, Writer};
use crate::types::{self, LogId, Membership, StoredMembership};
use crate::{MembershipStatus, NodeId};

/// Index of the fixed initial log id of a range created by a split (see [`split_initial_state`]).
pub const SPLIT_INITIAL_INDEX: u64 = 10;

/// Opaque, durable Raft bookkeeping that a state machine stores in the same atomic batch as an
/// entry's effects: the id of the last applied log entry and the membership in force.
///
/// [`to_bytes`](Self::to_bytes) is a stable binary encoding starting with a version byte.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AppliedState {
    pub(crate) log_id: Option<LogId>,
    pub(crate) membership: StoredMembership,
}

impl AppliedState {
    pub(crate) fn new(log_id: Option<LogId>, membership: StoredMembership) -> Self {
        Self { log_id, membership }
    }

    /// Encodes the state: version byte, applied log id, stored membership.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::versioned();
        w.opt_log_id(self.log_id.as_ref());
        w.stored_membership(&self.membership);
        w.buf
    }

    /// Decodes bytes written by [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(b: &[u8]) -> io::Result<Self> {
        let mut r = Reader::versioned(b, "applied state")?;
        let log_id = r.opt_log_id()?;
        let membership = r.stored_membership()?;
        r.finish()?;
        Ok(Self { log_id, membership })
    }

    /// Index of the last applied entry, None when nothing was applied.
    pub fn index(&self) -> Option<u64> {
        self.log_id.as_ref().map(|id| id.index)
    }

    /// Term of the last applied entry, None when nothing was applied.
    pub fn term(&self) -> Option<u64> {
        self.log_id.as_ref().map(|id| id.leader_id.term)
    }

    /// Voter ids of the membership in force (of every config, if joint).
    pub fn voters(&self) -> BTreeSet<NodeId> {
        self.membership.voter_ids().collect()
    }

    /// Every member (voter or learner) of the membership in force, with its address.
    pub fn nodes(&self) -> BTreeMap<NodeId, String> {
        self.membership
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect()
    }

    /// The voters of the membership in force (of every config, if joint), with their addresses;
    /// learners are left out.
    pub fn voter_nodes(&self) -> BTreeMap<NodeId, String> {
        let voters = self.voters();
        self.nodes()
            .into_iter()
            .filter(|(id, _)| voters.contains(id))
            .collect()
    }

    /// The membership in force after this state's entry (applied entries are committed).
    pub fn membership(&self) -> MembershipStatus {
        MembershipStatus::new(&self.membership, self.membership.log_id().as_ref())
    }

    /// True when the membership is a joint configuration or has learners: splits are refused then.
    pub fn is_joint_or_has_learners(&self) -> bool {
        let m = self.membership.membership();
        m.get_joint_config().len() > 1 || m.learner_ids().next().is_some()
    }
}

/// One committed log entry handed to [`StateMachine::apply`](crate::StateMachine::apply).
#[derive(Clone, Debug)]
pub struct Entry<C> {
    /// The command; None for blank entries (written by a new leader) and for membership
    /// entries that carry no command. A membership entry's command (see
    /// [`Group::change_membership`](crate::Group::change_membership)) comes with the new
    /// membership in `state`.
    pub command: Option<C>,
    /// The applied state after this entry, to be stored in the same batch as its effects. For
    /// a membership entry it holds the membership the entry carries.
    pub state: AppliedState,
}

/// Initial applied state of the right-hand range of a split, identical on every replica.
///
/// Its applied log id and membership log id are the fixed id L0 = (term 0, node 0,
/// [`SPLIT_INITIAL_INDEX`]); node id 0 is therefore reserved and never a member. The state
/// machine writes this state, and [`LogStore::write_initial_log_state`](crate::LogStore::write_initial_log_state)
/// writes the matching log state, in the same fjall batch (the split trigger's apply batch);
/// then [`Group::start`](crate::Group::start) runs on every replica without `initialize()`.
pub fn split_initial_state(voters: BTreeMap<NodeId, String>) -> AppliedState {
    let l0 = types::log_id(0, 0, SPLIT_INITIAL_INDEX);
    let ids: BTreeSet<NodeId> = voters.keys().copied().collect();
    let nodes: BTreeMap<NodeId, types::Node> = voters
        .into_iter()
        .map(|(id, a)| (id, types::node(a)))
        .collect();
    let membership = Membership::new(vec![ids], nodes).expect("voters are exactly the nodes");
    AppliedState::new(Some(l0), StoredMembership::new(Some(l0), membership))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_state_roundtrip() {
        let empty = AppliedState::default();
        assert_eq!(AppliedState::from_bytes(&empty.to_bytes()).unwrap(), empty);
        assert_eq!(empty.index(), None);

        let voters = BTreeMap::from([(1, "a:1".to_string()), (2, "b:2".to_string())]);
        let s = split_initial_state(voters.clone());
        let back = AppliedState::from_bytes(&s.to_bytes()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.index(), Some(SPLIT_INITIAL_INDEX));
        assert_eq!(back.nodes(), voters);
        assert_eq!(back.voters(), BTreeSet::from([1, 2]));
        assert!(!back.is_joint_or_has_learners());
    }

    #[test]
    fn applied_state_rejects_bad_input() {
        assert!(AppliedState::from_bytes(&[]).is_err());
        assert!(AppliedState::from_bytes(&[9, 0]).is_err());
        let mut b = AppliedState::default().to_bytes();
        b.push(0);
        assert!(AppliedState::from_bytes(&b).is_err());
        let b = split_initial_state(BTreeMap::from([(1, "a".to_string())])).to_bytes();
        assert!(AppliedState::from_bytes(&b[..b.len() - 1]).is_err());
    }
}
