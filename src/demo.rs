//! `tinkerdb demo`: a local cluster of N nodes in one process, formed the way an operator forms
//! one (every node started with `--join` naming all of them, then `init` on the first).

use std::path::Path;

use anyhow::{Context, Result};

use crate::{Config, Node};

/// A running demo cluster.
pub struct Demo {
    nodes: Vec<Node>,
}

impl Demo {
    /// Starts `n` nodes under `root` (one data directory each) on loopback ports picked now,
    /// and initialises the cluster.
    pub async fn start(root: &Path, n: usize) -> Result<Demo> {
        let mut grpc = Vec::new();
        for _ in 0..n {
            // Bound and released: each node binds its port next (its gRPC address is fixed,
            // recorded in the cluster's membership).
            let l = std::net::TcpListener::bind("127.0.0.1:0").context("picking a port")?;
            grpc.push(l.local_addr()?);
        }
        let join: Vec<String> = grpc.iter().map(|a| a.to_string()).collect();
        let mut starting = Vec::new();
        for (i, addr) in grpc.iter().enumerate() {
            let config = Config {
                data_dir: root.join(format!("node{}", i + 1)),
                sql_addr: "127.0.0.1:0".parse().expect("valid address"),
                http_addr: "127.0.0.1:0".parse().expect("valid address"),
                grpc_addr: *addr,
                join: join.clone(),
                ..Config::default()
            };
            starting.push(tokio::spawn(Node::start(config)));
        }
        let first = join[0].clone();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match txn::cluster::init(&first).await {
                Ok(_) => break,
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::debug!("init: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => anyhow::bail!("initialising the demo cluster: {e}"),
            }
        }
        let mut nodes = Vec::new();
        for s in starting {
            nodes.push(s.await.context("starting a node")??);
        }
        Ok(Demo { nodes })
    }

    /// The nodes, in the order they were started.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Stops every node.
    pub async fn shutdown(self) -> Result<()> {
        for node in self.nodes {
            node.shutdown().await?;
        }
        Ok(())
    }
}
