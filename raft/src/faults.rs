//! Injected network faults: the nodes a node pretends it cannot reach.
//!
//! A node's [`Faults`] is shared by everything that talks to other nodes — the Raft transport
//! ([`crate::GrpcTransport`] refuses to send to a cut node, [`crate::RaftService`] refuses
//! messages from one) and the node-to-node request service above it — so cutting a set of nodes
//! on one node partitions it from them in both directions, as a failed network link would,
//! while its clients can still reach it. Nothing cuts anything unless a test asks for it: the
//! node exposes the switch only in builds with fault injection compiled in.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::NodeId;

/// The nodes this node is cut off from (none by default). Cheap to clone; clones share the set.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Whether any node is cut: the common case (none) costs one atomic load.
    any: AtomicBool,
    cut: RwLock<BTreeSet<NodeId>>,
}

impl Faults {
    /// Cuts this node off from exactly `nodes` (replacing any earlier cut; empty heals).
    pub fn cut(&self, nodes: impl IntoIterator<Item = NodeId>) {
        let nodes: BTreeSet<NodeId> = nodes.into_iter().collect();
        let mut cut = self.inner.cut.write().unwrap_or_else(|e| e.into_inner());
        self.inner.any.store(!nodes.is_empty(), Ordering::Release);
        *cut = nodes;
    }

    /// Whether messages to and from `node` are dropped.
    pub fn is_cut(&self, node: NodeId) -> bool {
        self.inner.any.load(Ordering::Acquire)
            && self
                .inner
                .cut
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&node)
    }

    /// The nodes currently cut off, in order.
    pub fn cut_nodes(&self) -> Vec<NodeId> {
        let cut = self.inner.cut.read().unwrap_or_else(|e| e.into_inner());
        cut.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_cut_and_an_empty_cut_heals() {
        let faults = Faults::default();
        let other = faults.clone();
        assert!(!other.is_cut(2));
        faults.cut([2, 3]);
        assert!(other.is_cut(2) && other.is_cut(3) && !other.is_cut(1));
        assert_eq!(other.cut_nodes(), vec![2, 3]);
        faults.cut([]);
        assert!(!other.is_cut(2));
    }
}
