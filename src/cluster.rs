//! How a node becomes part of a cluster at start, and the cluster duties it runs after.
//!
//! - A node whose data directory holds a node opens it as that node (its identity is on disk;
//!   `--join` is then only where it finds its peers).
//! - A node started without `--join` on an empty directory bootstraps a new cluster at once.
//! - A node started with `--join` on an empty directory serves only the node-to-node service
//!   and waits: `tinkerdb init` sent to it bootstraps a new cluster here, or a member among the
//!   `--join` addresses admits it (a new node id from `sys`), and the leaders of the ranges
//!   then add it to their groups.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How often a forming node asks the `--join` addresses to admit it.
const JOIN_RETRY: Duration = Duration::from_secs(1);
/// How often the address book is refreshed from the node directory.
const PEERS_REFRESH: Duration = Duration::from_secs(2);

/// A node id and the gRPC address it is reached at.
pub(crate) type Member = (kv::NodeId, String);

/// Opens the node's store, forming or joining a cluster first when the directory holds no node
/// and `join` names peers. Returns the store, the nodes it learnt of meanwhile, and the gRPC
/// listener to serve on (the same address; rebound when a forming server used it meanwhile).
pub(crate) async fn open_store(
    mut options: kv::StoreOptions,
    join: &[String],
    listener: TcpListener,
) -> Result<(kv::Node, Vec<Member>, TcpListener)> {
    let identity = kv::Node::identity(&options.dir).map_err(|e| store_error(&options, e))?;
    if identity.is_some() || join.is_empty() {
        let store = kv::Node::open(options.clone())
            .await
            .map_err(|e| store_error(&options, e))?;
        return Ok((store, Vec::new(), listener));
    }
    let addr = listener.local_addr()?;
    let (formation, mut init) = txn::cluster::Formation::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(txn::cluster::serve_forming(
        listener,
        formation,
        async move {
            let _ = stopped.await;
        },
    ));
    tracing::info!(
        join = ?join,
        "waiting to join a cluster (or for `tinkerdb init --host {addr}`)"
    );
    let me = options.advertise_addr.clone();
    let peers: Vec<&String> = join.iter().filter(|a| !is_self(a, &me, addr)).collect();
    let mut tick = tokio::time::interval(JOIN_RETRY);
    let mut members = Vec::new();
    let store = loop {
        tokio::select! {
            Some(reply) = init.recv() => {
                // Bootstrap here while the forming server still answers the init call.
                match kv::Node::open(options.clone()).await {
                    Ok(store) => {
                        let _ = reply.send(Ok(store.cluster_id()));
                        tracing::info!(cluster_id = %format!("{:x}", store.cluster_id()), "cluster initialised");
                        break store;
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                        return Err(store_error(&options, e));
                    }
                }
            }
            _ = tick.tick() => {
                let mut admitted = None;
                for peer in &peers {
                    match txn::cluster::join(peer, &me).await {
                        Ok((identity, known)) => {
                            admitted = Some(identity);
                            members = known;
                            break;
                        }
                        Err(e) => tracing::debug!("join through {peer}: {e}"),
                    }
                }
                if let Some(identity) = admitted {
                    tracing::info!(node_id = identity.node_id, "admitted to the cluster");
                    options.join = Some(identity);
                    let store = kv::Node::open(options.clone())
                        .await
                        .map_err(|e| store_error(&options, e))?;
                    break store;
                }
            }
        }
    };
    let _ = stop.send(());
    let _ = server.await;
    let listener = crate::bind("gRPC", addr).await?;
    Ok((store, members, listener))
}

/// Whether a `--join` address is this node's own.
fn is_self(peer: &str, me: &str, bound: SocketAddr) -> bool {
    peer == me || peer.parse::<SocketAddr>().is_ok_and(|p| p == bound)
}

fn store_error(options: &kv::StoreOptions, e: kv::Error) -> anyhow::Error {
    match e {
        kv::Error::DirectoryLocked(_) => anyhow::anyhow!(
            "the data directory {} is in use by another tinkerdb process",
            options.dir.display()
        ),
        e => anyhow::anyhow!("opening the data directory {}: {e}", options.dir.display()),
    }
}

/// Keeps the address book up to date with the node directory in `sys`. While the directory
/// cannot be read (a restarted node that knows no peer yet) the `--join` addresses are asked
/// for the nodes they know.
///
/// `single`: the SQL engine of a node started as its own cluster, told to stop reusing plans
/// once another node has joined.
pub(crate) async fn refresh_peers(
    db: txn::Db,
    peers: Arc<txn::cluster::Peers>,
    join: Vec<String>,
    mut single: Option<Arc<sql::Engine>>,
) {
    let mut tick = tokio::time::interval(PEERS_REFRESH);
    loop {
        tick.tick().await;
        match txn::cluster::node_directory(&db).await {
            Ok(nodes) => {
                if nodes.len() > 1
                    && let Some(engine) = single.take()
                {
                    engine.set_schema_shared(true);
                }
                for node in nodes {
                    peers.set_addr(node.node_id, node.addr);
                }
            }
            Err(e) => {
                tracing::debug!("reading the node directory: {e}");
                for addr in &join {
                    if let Ok(known) = txn::cluster::nodes(addr, peers.cluster_id()).await {
                        for (node, addr) in known {
                            peers.set_addr(node, addr);
                        }
                    }
                }
            }
        }
    }
}

/// How often the leaders' replicate queue runs.
const REPLICATE_EVERY: Duration = Duration::from_secs(1);

/// Runs the replicate queue of the ranges this node leads, and removes the replicas this node
/// no longer holds (every fifth pass), forever.
pub(crate) async fn replicate(
    db: txn::Db,
    peers: Arc<txn::cluster::Peers>,
    replication: txn::cluster::Replication,
) {
    let mut tick = tokio::time::interval(REPLICATE_EVERY);
    let mut pass = 0u64;
    loop {
        tick.tick().await;
        pass += 1;
        if let Err(e) = txn::cluster::replicate(&db, &peers, replication).await {
            tracing::debug!("replicate queue: {e}");
        }
        if pass.is_multiple_of(5)
            && let Err(e) = txn::cluster::remove_stale_replicas(&db, peers.node_id()).await
        {
            tracing::debug!("removing replicas this node no longer holds: {e}");
        }
    }
}

/// Starts the node's kv client and transaction layer on the network: requests to ranges led
/// elsewhere and timestamps go to the nodes that lead them.
pub(crate) async fn open_db(
    store: kv::Node,
    advertise: &str,
    members: Vec<Member>,
    config: txn::Config,
) -> Result<(txn::Db, Arc<txn::cluster::Peers>)> {
    let peers =
        txn::cluster::Peers::new(store.node_id(), store.cluster_id(), members, store.faults());
    // A restarted node knows its peers' addresses from its ranges' Raft membership at once:
    // reading the node directory needs them (range 1's leader may be elsewhere).
    for replica in store.replicas() {
        for (node, addr) in replica.membership.nodes {
            peers.set_addr(node, addr);
        }
    }
    peers.set_addr(store.node_id(), advertise.to_string());
    let mut sender = None;
    let client = store.client_with_sender(|local| {
        let s = txn::cluster::NodeSender::new(local, peers.clone());
        sender = Some(s.clone());
        s
    });
    let forward: Arc<dyn txn::oracle::Forward> = sender.expect("set by with_sender");
    let db = txn::Db::open_with(client, config, Some(forward))
        .await
        .context("starting transactions")?;
    Ok((db, peers))
}
