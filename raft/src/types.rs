//! The openraft type configuration and the concrete openraft types this crate uses. Everything
//! here is crate-private: no openraft type appears in the public API.

use std::cmp::Ordering;
use std::fmt;
use std::marker::PhantomData;

use openraft::impls::leader_id_adv;

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
pub(crate) type Payload<C> = openraft::EntryPayload<C, NodeId, Node>;
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
