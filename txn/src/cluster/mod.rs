//! The node's side of a cluster: kv requests carried to range leaders on other nodes, the
//! timestamp oracle reached on range 1's leader, and cluster formation (init, join).
//!
//! Everything here travels over the node's one gRPC port, next to the Raft transport
//! (`proto/node.proto`). Every call names the cluster and the target node, and the receiver
//! checks both before anything else ([`service`]).
//!
//! - [`NodeSender`] is the node's [`kv::RangeSender`]: a request runs on this node's replica
//!   when it leads the range, else it goes to the leader this node knows of (its own replica's
//!   view, the hint of an earlier `NotLeader`, then the descriptor's replicas), following
//!   `NotLeader` hints a few hops. A write (`Propose`, `OnePhaseCommit`) sent to a peer that
//!   never answered may have applied: it is reported `Ambiguous`, never retried blindly.
//! - [`Peers`] is the node's address book (node id → gRPC address, from the node directory in
//!   `sys`) and its connections.
//! - [`NodeService`] serves the calls: kv requests on the local replica ([`kv::Client::call_local`]),
//!   forwarded oracle batches, empty replicas to be filled by snapshot, joins (a new node id
//!   allocated in `sys`), and the init of a node started with `--join`.
//! - [`replicate`] is the leaders' replicate queue: every range on `replication_factor` nodes,
//!   by empty replica + learner (snapshot) + promotion, the descriptor changing in the same
//!   Raft entries as the membership.
//! - [`show`] is what `SHOW NODES` and `SHOW RANGES` report.

pub mod proto {
    //! Generated from `proto/node.proto`.
    #![allow(missing_docs)]
    tonic::include_proto!("tinkerdb.node.v1");
}

mod peers;
mod replicate;
mod sender;
mod service;
pub mod show;

pub use peers::{Peers, connect};
pub use replicate::remove_stale_replicas;
pub use replicate::{Replication, replicate};
pub use sender::NodeSender;
pub use service::{
    Formation, NodeService, init, join, node_directory, nodes, request_decommission, serve_forming,
};
