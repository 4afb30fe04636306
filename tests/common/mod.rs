//! Helpers shared by the integration tests: nodes as processes of the real binary, and
//! in-process nodes, on ephemeral ports.

#![allow(dead_code)] // each test file uses a part

pub mod cluster;
pub mod history;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tinkerdb::{Addresses, Config, Node};

/// The arguments of `tinkerdb start` on `dir` with every address on an ephemeral port.
pub fn start_args(dir: &Path) -> Vec<String> {
    let mut args = vec![
        "start".to_string(),
        "--data-dir".into(),
        dir.display().to_string(),
    ];
    for flag in ["--sql-addr", "--http-addr", "--grpc-addr"] {
        args.extend([flag.to_string(), "127.0.0.1:0".into()]);
    }
    args
}

/// A `tinkerdb start` process on ephemeral ports; killed with SIGKILL when dropped.
pub struct Process {
    pub child: Child,
    pub addresses: Addresses,
}

impl Process {
    /// Starts the binary on `dir` and waits (bounded) for it to write its addresses.
    pub fn start(dir: &Path) -> Process {
        Self::start_with_env(dir, &[])
    }

    /// Like [`start`](Self::start), with extra environment variables.
    pub fn start_with_env(dir: &Path, env: &[(&str, &str)]) -> Process {
        let _ = std::fs::remove_file(dir.join("addresses.json"));
        let child = Command::new(env!("CARGO_BIN_EXE_tinkerdb"))
            .args(start_args(dir))
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tinkerdb starts");
        let path = dir.join("addresses.json");
        let deadline = Instant::now() + Duration::from_secs(60);
        let addresses = loop {
            if let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(a) = serde_json::from_str::<Addresses>(&text)
            {
                break a;
            }
            assert!(
                Instant::now() < deadline,
                "the node did not write {}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Process { child, addresses }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts an in-process node in `dir` with every address on an ephemeral port.
pub async fn start_node(dir: &Path) -> Node {
    Node::start(Config {
        data_dir: dir.to_path_buf(),
        sql_addr: "127.0.0.1:0".parse().expect("valid address"),
        http_addr: "127.0.0.1:0".parse().expect("valid address"),
        grpc_addr: "127.0.0.1:0".parse().expect("valid address"),
        ..Default::default()
    })
    .await
    .expect("node starts")
}

/// A PostgreSQL client of `node`.
pub async fn connect(addr: std::net::SocketAddr) -> tokio_postgres::Client {
    let url = format!(
        "host={} port={} user=root dbname=tinkerdb",
        addr.ip(),
        addr.port()
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(conn);
    client
}

/// A plain HTTP/1.1 GET: the status code and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let status = buf.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
