//! The timestamp oracle across a change of range 1's leadership.
//!
//! Another leadership may have served timestamps while this node was not the leader; all it
//! leaves behind is the bound it persisted in range 1. The test plays that part by persisting a
//! bound well ahead of the clock, then makes range 1 change leadership (its group restarts and
//! must win a new election), and asks for a timestamp: it must lie above the persisted bound.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use txn::Config;
use txn::oracle::compose;

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_reinitialises_when_range1_leadership_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, db) = open(dir.path(), Config::default()).await;
    let before = db.now().await.unwrap();

    // What another leader would leave: a bound a minute ahead of every timestamp issued so far.
    let bound = compose(wall_ms() + 60_000, 0);
    assert!(bound > before);
    db.client()
        .send_range1(kv::Command::SetTsoBound { bound })
        .await
        .unwrap();

    let term = store.replica(1).unwrap().group().status().term;
    store.restart_replica(1).await.unwrap();
    let new_term = store.replica(1).unwrap().group().status().term;
    assert!(new_term > term, "term {term} -> {new_term}");

    // The first batch after the change may meet the old group shutting down: retry briefly.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let ts = loop {
        match db.now().await {
            Ok(ts) => break ts,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("retrying after: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("oracle after leadership change: {e}"),
        }
    };
    assert!(
        ts >= bound,
        "timestamp {ts} issued below the bound {bound} persisted by an earlier leadership"
    );
    // And it keeps increasing from there.
    assert!(db.now().await.unwrap() > ts);
    store.shutdown().await.unwrap();
}

/// A request whose caller goes away while it serves the oracle's batch itself leaves the
/// requests that queued behind it with a server: they are answered, in order, and later
/// requests still are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_survives_a_caller_cancelled_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = open(dir.path(), Config::default()).await;
    let mut last = db.now().await.unwrap();
    for _ in 0..20 {
        // The first caller finds no batch in flight and serves one itself; the second waits.
        let mut first = Box::pin(db.now());
        assert!(futures::poll!(first.as_mut()).is_pending());
        let mut second = Box::pin(db.now());
        let polled = futures::poll!(second.as_mut());
        drop(first);
        let ts = match polled {
            std::task::Poll::Ready(r) => r.unwrap(),
            std::task::Poll::Pending => tokio::time::timeout(Duration::from_secs(10), second)
                .await
                .expect("a queued request is answered after the serving caller left")
                .unwrap(),
        };
        assert!(ts > last, "{ts} after {last}");
        let later = tokio::time::timeout(Duration::from_secs(10), db.now())
            .await
            .expect("a later request is answered")
            .unwrap();
        assert!(later > ts, "{later} after {ts}");
        last = later;
    }
}
