//! Lock waits: transactions blocked by a live lock wait in the key's queue and get the lock in
//! arrival order when it is released.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::row;
use txn::{Config, IsolationLevel, TxnOptions};

fn opts() -> TxnOptions {
    TxnOptions {
        isolation: IsolationLevel::Serializable,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_get_the_lock_in_arrival_order_when_it_is_released() {
    let dir = tempfile::tempdir().unwrap();
    // Rechecks so rare that only the queue's wake-ups can drive the waiters in time.
    let config = Config {
        lock_recheck: Duration::from_secs(600),
        lock_wait_timeout: Duration::from_secs(600),
        ..Config::default()
    };
    let (store, db) = common::open(dir.path(), config).await;
    let mut owner = db.begin(opts()).await.unwrap();
    owner.lock_keys(vec![row(1)]).await.unwrap();

    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 1..=3 {
        let (db, order) = (db.clone(), order.clone());
        waiters.push(tokio::spawn(async move {
            let mut t = db.begin(opts()).await.unwrap();
            t.lock_keys(vec![row(1)]).await.unwrap();
            order.lock().unwrap().push(i);
            t.put(row(1), format!("{i}").into_bytes()).unwrap();
            t.commit().await.unwrap();
        }));
        // Each waiter is in line before the next one starts.
        let queues = &store.engine().waiters;
        tokio::time::timeout(Duration::from_secs(30), async {
            while queues.waiting(&row(1)) < i {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the waiter joined the queue");
    }
    assert!(
        order.lock().unwrap().is_empty(),
        "nobody passes a live lock"
    );
    owner.commit().await.unwrap();
    for w in waiters {
        tokio::time::timeout(Duration::from_secs(60), w)
            .await
            .expect("each waiter is woken by the previous commit")
            .unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![1, 2, 3]);
    let mut r = db.begin(TxnOptions::default()).await.unwrap();
    assert_eq!(r.get(&row(1)).await.unwrap(), Some(b"3".to_vec()));
}
