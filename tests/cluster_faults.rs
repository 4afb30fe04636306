//! A list-append workload and a bank workload over pgwire, one client of each on every node of a
//! three-node cluster, while nodes are killed and restarted, paused and resumed, and cut off from
//! the others (`PUT /debug/cut`, compiled in with the `failpoints` feature). At the end the
//! history has no dependency cycle, every acknowledged append is read back, and the bank's total
//! never changed.
//!
//! `cargo test --features failpoints --test cluster_faults`

#![cfg(feature = "failpoints")]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::cluster::*;
use common::history::{self, Op, Outcome, Txn};
use tokio_postgres::error::SqlState;

const KEYS: u32 = 8;
const ACCOUNTS: i64 = 5;
const BALANCE: i64 = 100;
/// The longest one transaction may take before its client gives up on it (and on the
/// connection): a statement may wait out an election or a partition.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// A small xorshift generator: the workload is random but needs no crate for it.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The SQL address the node in `dir` serves now (it changes when the node restarts).
fn sql_addr(dir: &Path) -> Option<SocketAddr> {
    let text = std::fs::read_to_string(dir.join("addresses.json")).ok()?;
    Some(serde_json::from_str::<tinkerdb::Addresses>(&text).ok()?.sql)
}

async fn try_connect(dir: &Path) -> Option<tokio_postgres::Client> {
    let addr = sql_addr(dir)?;
    let url = format!(
        "host={} port={} user=root dbname=tinkerdb connect_timeout=5",
        addr.ip(),
        addr.port()
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(client)
}

/// Why a transaction ended without an acknowledged COMMIT.
enum Abort {
    /// Before COMMIT was sent, or refused with 40001 at it: it did not commit.
    Failed,
    /// COMMIT was sent and its answer is unknown.
    Unknown,
}

/// Commits the open transaction and classifies the answer.
async fn commit(client: &tokio_postgres::Client) -> Result<(), Abort> {
    match client.batch_execute("COMMIT").await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => Err(Abort::Failed),
        Err(_) => Err(Abort::Unknown),
    }
}

/// The list of `key` as the open transaction reads it.
async fn read_list(client: &tokio_postgres::Client, key: u32) -> Result<Vec<u64>, Abort> {
    let rows = client
        .query("SELECT v FROM la WHERE k = $1", &[&(key as i32)])
        .await
        .map_err(|_| Abort::Failed)?;
    Ok(match rows.first() {
        None => Vec::new(),
        Some(row) => row
            .get::<_, String>(0)
            .split(',')
            .map(|e| e.parse().expect("elements are numbers"))
            .collect(),
    })
}

/// One list-append transaction: 1–3 operations on random keys; an append reads the list and
/// writes it back one element longer.
async fn list_txn(
    client: &tokio_postgres::Client,
    rng: &mut Rng,
    id: u64,
    ops: &mut Vec<Op>,
) -> Result<(), Abort> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|_| Abort::Failed)?;
    for n in 0..=rng.below(3) {
        let key = rng.below(KEYS as u64) as u32;
        let list = read_list(client, key).await?;
        ops.push(Op::Read {
            key,
            list: list.clone(),
        });
        if rng.below(2) == 0 {
            continue;
        }
        let element = id * 10 + n;
        let mut text: Vec<String> = list.iter().map(u64::to_string).collect();
        text.push(element.to_string());
        let value = text.join(",");
        let stmt = if list.is_empty() {
            "INSERT INTO la VALUES ($1, $2)"
        } else {
            "UPDATE la SET v = $2 WHERE k = $1"
        };
        ops.push(Op::Append { key, element });
        client
            .execute(stmt, &[&(key as i32), &value])
            .await
            .map_err(|_| Abort::Failed)?;
    }
    commit(client).await
}

/// One bank transaction: a transfer between two accounts, or a read of the total (which must
/// always be the starting total).
async fn bank_txn(client: &tokio_postgres::Client, rng: &mut Rng) -> Result<Option<i64>, Abort> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|_| Abort::Failed)?;
    let total = if rng.below(4) == 0 {
        let row = client
            .query_one("SELECT sum(bal) FROM acct", &[])
            .await
            .map_err(|_| Abort::Failed)?;
        Some(row.get::<_, i64>(0))
    } else {
        let (a, b) = (
            rng.below(ACCOUNTS as u64) as i32,
            rng.below(ACCOUNTS as u64) as i32,
        );
        let amount = rng.below(20) as i32;
        for (acct, delta) in [(a, -amount), (b, amount)] {
            let row = client
                .query_one("SELECT bal FROM acct WHERE id = $1", &[&acct])
                .await
                .map_err(|_| Abort::Failed)?;
            let bal: i32 = row.get(0);
            client
                .execute(
                    "UPDATE acct SET bal = $2 WHERE id = $1",
                    &[&acct, &(bal + delta)],
                )
                .await
                .map_err(|_| Abort::Failed)?;
        }
        None
    };
    commit(client).await.map(|()| total)
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    txns: Vec<Txn>,
    /// Totals read by committed bank transactions.
    totals: Vec<i64>,
    bank_commits: usize,
}

/// A client of the node in `dir` running transactions until `stop`; it reconnects whenever its
/// connection is lost (the node died or a transaction timed out).
async fn client_loop(dir: PathBuf, worker: u64, bank: bool, stop: Arc<AtomicBool>) -> Seen {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (worker + 1).wrapping_mul(0x2545_f491));
    let mut seen = Seen::default();
    let mut client: Option<tokio_postgres::Client> = None;
    let mut seq = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = client.as_ref().filter(|c| !c.is_closed()) else {
            client = try_connect(&dir).await;
            if client.is_none() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            continue;
        };
        seq += 1;
        if bank {
            match tokio::time::timeout(TXN_TIMEOUT, bank_txn(c, &mut rng)).await {
                Ok(Ok(total)) => {
                    seen.bank_commits += 1;
                    seen.totals.extend(total);
                }
                Ok(Err(_)) => {
                    let _ = c.batch_execute("ROLLBACK").await;
                }
                Err(_) => client = None,
            }
            continue;
        }
        let id = worker * 1_000_000 + seq;
        let mut ops = Vec::new();
        let outcome =
            match tokio::time::timeout(TXN_TIMEOUT, list_txn(c, &mut rng, id, &mut ops)).await {
                Ok(Ok(())) => Outcome::Committed,
                Ok(Err(Abort::Failed)) => {
                    let _ = c.batch_execute("ROLLBACK").await;
                    Outcome::Failed
                }
                Ok(Err(Abort::Unknown)) => Outcome::Unknown,
                Err(_) => {
                    client = None;
                    // Timed out at COMMIT or before it: only the former can have committed.
                    Outcome::Unknown
                }
            };
        seen.txns.push(Txn { id, ops, outcome });
    }
    seen
}

/// `PUT /debug/cut` on the node serving HTTP at `http`: cut it off from `nodes`.
async fn cut(http: SocketAddr, nodes: &[u64]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = nodes
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
    s.write_all(
        format!(
            "PUT /debug/cut HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "cut refused: {reply}");
}

async fn node_id(node: &mut ClusterNode) -> u64 {
    let (_, body) = common::http_get(node.ready().http, "/status").await;
    let status: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
    status["node_id"].as_u64().expect("node_id")
}

/// Reads every list in one transaction through `client`, retrying until it commits.
async fn final_lists(client: &tokio_postgres::Client) -> BTreeMap<u32, Vec<u64>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut lists = BTreeMap::new();
        let read = async {
            client
                .batch_execute("BEGIN")
                .await
                .map_err(|_| Abort::Failed)?;
            for key in 0..KEYS {
                let list = read_list(client, key).await?;
                if !list.is_empty() {
                    lists.insert(key, list);
                }
            }
            commit(client).await
        };
        match read.await {
            Ok(()) => return lists,
            Err(_) if Instant::now() < deadline => {
                let _ = client.batch_execute("ROLLBACK").await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(_) => panic!("the final read never committed"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_stay_serializable_under_kills_pauses_and_a_partition() {
    let tmp = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(tmp.path(), 3);
    let a = replicated_table(&mut nodes).await;
    let mut setup = vec![
        "CREATE TABLE la (k INT PRIMARY KEY, v TEXT)".to_string(),
        "CREATE TABLE acct (id INT PRIMARY KEY, bal INT)".to_string(),
    ];
    setup.extend((0..ACCOUNTS).map(|i| format!("INSERT INTO acct VALUES ({i}, {BALANCE})")));
    for stmt in &setup {
        eventually(&a, stmt, Duration::from_secs(30)).await;
    }
    wait_replicated(&mut nodes[0], 3).await;
    let mut ids = Vec::new();
    for node in nodes.iter_mut() {
        ids.push(node_id(node).await);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for bank in [false, true] {
            let worker = (i * 2 + bank as usize) as u64 + 1;
            clients.push(tokio::spawn(client_loop(
                node.dir.clone(),
                worker,
                bank,
                stop.clone(),
            )));
        }
    }
    let pause = |s| tokio::time::sleep(Duration::from_secs(s));

    pause(3).await;
    eprintln!("fault: SIGKILL node {}", ids[2]);
    nodes[2].kill9();
    pause(4).await;
    let join = join_list(&nodes);
    nodes[2].spawn(&join);
    pause(5).await;

    eprintln!("fault: SIGSTOP node {} past the election timeout", ids[0]);
    nodes[0].signal("STOP");
    pause(3).await;
    nodes[0].signal("CONT");
    pause(4).await;

    let others: Vec<u64> = ids.iter().copied().filter(|&id| id != ids[1]).collect();
    eprintln!("fault: node {} cut off from {others:?}", ids[1]);
    let http = nodes[1].ready().http;
    cut(http, &others).await;
    // Cut off, the node reaches no quorum: a write through it must not succeed (it fails, or
    // is still waiting when the test stops waiting).
    let cut_off = nodes[1].sql().await;
    let write = cut_off.batch_execute("INSERT INTO t VALUES (-1, 'cut off')");
    if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(3), write).await {
        panic!("a write through a node cut off from the others succeeded");
    }
    pause(1).await;
    cut(http, &[]).await;
    pause(5).await;

    stop.store(true, Ordering::Relaxed);
    let mut txns = Vec::new();
    let (mut totals, mut bank_commits) = (Vec::new(), 0);
    for c in clients {
        let seen = c.await.expect("client task");
        txns.extend(seen.txns);
        totals.extend(seen.totals);
        bank_commits += seen.bank_commits;
    }

    let client = nodes[0].sql().await;
    let finals = final_lists(&client).await;
    let committed = history::check(&txns, &finals).unwrap_or_else(|e| panic!("{e}"));
    let outcomes = |o| txns.iter().filter(|t| t.outcome == o).count();
    eprintln!(
        "{} list-append txns: {} acknowledged, {} failed, {} unknown; {committed} taken as \
         committed; {bank_commits} bank txns committed",
        txns.len(),
        outcomes(Outcome::Committed),
        outcomes(Outcome::Failed),
        outcomes(Outcome::Unknown),
    );
    assert!(
        outcomes(Outcome::Committed) >= 20 && bank_commits >= 20,
        "the workload hardly ran, so the check says little"
    );
    let expected = ACCOUNTS * BALANCE;
    assert!(
        totals.iter().all(|&t| t == expected),
        "a committed read saw a bank total other than {expected}: {totals:?}"
    );
    let row = client
        .query_one("SELECT sum(bal), count(*) FROM acct", &[])
        .await
        .expect("final bank read");
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (expected, ACCOUNTS)
    );
}

/// The checker itself: it finds a lost append, a non-prefix read and a write skew cycle.
#[test]
fn the_checker_rejects_lost_writes_bad_reads_and_cycles() {
    let txn = |id, ops, outcome| Txn { id, ops, outcome };
    let append = |key, element| Op::Append { key, element };
    let read = |key, list: &[u64]| Op::Read {
        key,
        list: list.to_vec(),
    };
    let finals = |lists: &[(u32, &[u64])]| {
        lists
            .iter()
            .map(|(k, l)| (*k, l.to_vec()))
            .collect::<BTreeMap<_, _>>()
    };
    let ok = [
        txn(1, vec![append(0, 10)], Outcome::Committed),
        txn(2, vec![read(0, &[10]), append(0, 20)], Outcome::Committed),
        txn(3, vec![append(1, 30)], Outcome::Failed),
    ];
    assert_eq!(history::check(&ok, &finals(&[(0, &[10, 20])])), Ok(2));
    // The acknowledged append of 20 is missing.
    assert!(history::check(&ok, &finals(&[(0, &[10])])).is_err());
    // The failed transaction's element is there.
    assert!(history::check(&ok, &finals(&[(0, &[10, 20]), (1, &[30])])).is_err());
    // A read that is not a prefix of the final list.
    let bad_read = [
        txn(1, vec![append(0, 10)], Outcome::Committed),
        txn(2, vec![append(0, 20)], Outcome::Committed),
        txn(3, vec![read(0, &[20])], Outcome::Committed),
    ];
    assert!(history::check(&bad_read, &finals(&[(0, &[10, 20])])).is_err());
    // Write skew: each read the other's key empty, then appended to its own.
    let skew = [
        txn(1, vec![read(1, &[]), append(0, 10)], Outcome::Committed),
        txn(2, vec![read(0, &[]), append(1, 20)], Outcome::Committed),
    ];
    let err = history::check(&skew, &finals(&[(0, &[10]), (1, &[20])])).unwrap_err();
    assert!(err.contains("cycle"), "{err}");
}
