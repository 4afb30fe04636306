//! The openraft type configuration and the concrete openraft types this crate uses. Everything
//! here is crate-private: no openraft type appears in the public API.

use std::cmp::Ordering;
use std::fmt;
use std::marker::PhantomData;

use openraft::entry::RaftPayload;
use openraft::impls::leader_id_adv;
use serde::{Deserialize, Serialize};

use crate::{Command, NodeId, Response};

/// The openraft type configuration for commands `C` and responses `R`. A zero-sized marker;
/// the trait impls are written by hand so they do not require anything of `C` and `R`.
pub(crate) struct Cfg<C, R>(PhantomData<fn() -> (C, R)>);

impl<C, R> Clone for Cfg<C, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C, R> Copy for Cfg<C, R> {}
impl<C, R> Default for Cfg<C, R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}
impl<C, R> fmt::Debug for Cfg<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cfg")
    }
}
impl<C, R> PartialEq for Cfg<C, R> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<C, R> Eq for Cfg<C, R> {}
impl<C, R> PartialOrd for Cfg<C, R> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<C, R> Ord for Cfg<C, R> {
    fn cmp(&self, _: &Self) -> Ordering {
        Ordering::Equal
    }
}

/// Committed leader id: (term, node). With the "advanced" leader id it is the leader id itself.
pub(crate) type Clid = leader_id_adv::LeaderId<u64, NodeId>;
pub(crate) type LogId = openraft::LogId<Clid>;
pub(crate) type Vote = openraft::impls::Vote<Clid>;
pub(crate) type Node = openraft::BasicNode;
pub(crate) type Membership = openraft::Membership<NodeId, Node>;
pub(crate) type StoredMembership = openraft::StoredMembership<Clid, NodeId, Node>;
pub(crate) type OrEntry<C> = openraft::Entry<Clid, Payload<C>>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<Clid, NodeId, Node>;

impl<C: Command, R: Response> openraft::RaftTypeConfig for Cfg<C, R> {
    type D = C;
    type R = R;
    type NodeId = NodeId;
    type Node = Node;
    type Term = u64;
    type LeaderId = Clid;
    type Vote = Vote;
    type Payload = Payload<C>;
    type Entry = OrEntry<C>;
    #[allow(deprecated)]
    type AsyncRuntime = openraft::impls::TokioRuntime;
    type Responder<T>
        = openraft::impls::ProgressResponder<Self, T>
    where
        T: openraft::OptionalSend + 'static;
    type Batch<T>
        = openraft::impls::InlineBatch<T>
    where
        T: openraft::OptionalSend + 'static;
    type ErrorSource = openraft::impls::BoxedErrorSource;
}

/// The payload of a log entry. Unlike openraft's own `EntryPayload`, a membership entry may
/// carry a command too: the state machine applies it at the membership's log id, in the same
/// batch that records the new membership (a range's descriptor and its Raft membership change
/// together).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "C: Command")]
pub(crate) enum Payload<C> {
    /// Written by a new leader; no command.
    Blank,
    /// A command.
    Normal(C),
    /// A membership change, with the command applied together with it, if any.
    Membership {
        membership: Membership,
        command: Option<C>,
    },
}

impl<C: Command> fmt::Display for Payload<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Blank => f.write_str("blank"),
            Payload::Normal(cmd) => write!(f, "normal:{cmd}"),
            Payload::Membership {
                membership,
                command: None,
            } => write!(f, "membership:{membership}"),
            Payload::Membership {
                membership,
                command: Some(cmd),
            } => write!(f, "membership:{membership} with normal:{cmd}"),
        }
    }
}

impl<C: Command> RaftPayload for Payload<C> {
    type D = C;
    type NodeId = NodeId;
    type Node = Node;

    fn blank() -> Self {
        Payload::Blank
    }

    /// Sets the command; a membership payload keeps its membership.
    fn with_normal(self, data: C) -> Self {
        match self {
            Payload::Blank | Payload::Normal(_) => Payload::Normal(data),
            Payload::Membership { membership, .. } => Payload::Membership {
                membership,
                command: Some(data),
            },
        }
    }

    /// Sets the membership and keeps the command: openraft calls this on the payloads given to
    /// `change_membership_with_payload`, once per membership entry it writes.
    fn with_membership(self, membership: Membership) -> Self {
        let command = match self {
            Payload::Blank => None,
            Payload::Normal(cmd) => Some(cmd),
            Payload::Membership { command, .. } => command,
        };
        Payload::Membership {
            membership,
            command,
        }
    }

    fn get_membership(&self) -> Option<Membership> {
        match self {
            Payload::Membership { membership, .. } => Some(membership.clone()),
            _ => None,
        }
    }
}

pub(crate) fn log_id(term: u64, node: NodeId, index: u64) -> LogId {
    openraft::LogId::new(
        leader_id_adv::LeaderId {
            term,
            node_id: node,
        },
        index,
    )
}

pub(crate) fn node(addr: String) -> Node {
    Node { addr }
}

#[cfg(test)]
mod tests {
    use openraft::entry::RaftPayload;

    use super::*;
    use crate::codec::tests::{Cmd, membership};

    #[test]
    fn with_membership_keeps_the_command() {
        let cmd = Cmd("desc".into());
        let with = Payload::Normal(cmd.clone()).with_membership(membership());
        assert_eq!(
            with,
            Payload::Membership {
                membership: membership(),
                command: Some(cmd.clone()),
            }
        );
        assert_eq!(with.get_membership(), Some(membership()));
        assert_eq!(
            Payload::<Cmd>::blank().with_membership(membership()),
            Payload::Membership {
                membership: membership(),
                command: None,
            }
        );
        // A second membership replaces the first and still keeps the command.
        let other = Membership::new(
            vec![[1].into()],
            std::collections::BTreeMap::from([(1, node("a".into()))]),
        )
        .unwrap();
        assert_eq!(
            with.clone().with_membership(other.clone()),
            Payload::Membership {
                membership: other,
                command: Some(cmd.clone()),
            }
        );
        assert_eq!(
            Payload::<Cmd>::normal(cmd.clone()),
            Payload::Normal(cmd.clone())
        );
        assert_eq!(Payload::Normal(cmd.clone()).get_membership(), None);
        assert_eq!(
            with.to_string(),
            format!("membership:{} with normal:desc", membership())
        );
    }
}
