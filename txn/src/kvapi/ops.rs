//! The transactions behind the KV API's calls, on encoded keys, with bounded retries of
//! conflicts and per-tenant key counts. Nothing here knows about gRPC except the final mapping
//! of errors to statuses.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kv::keys::next_key;
use tonic::Status;

use super::envelope::{Envelope, expiry};
use super::{decode_key, tenant_span};
use crate::{Db, Error, Transaction, TxnOptions};

/// Key-value pairs in key order.
pub(crate) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Rows read per kv scan while filtering expired values or counting keys.
const SCAN_CHUNK: usize = 1_000;

/// A boxed transaction body borrowing its transaction.
pub(crate) type TxFuture<'a, T> = Pin<Box<dyn Future<Output = crate::Result<T>> + Send + 'a>>;

/// A transaction of the KV API: envelope-aware reads and writes that track the change in the
/// tenant's number of stored keys.
pub(crate) struct Tx {
    pub txn: Transaction,
    /// Stored keys added minus stored keys removed by this transaction's writes.
    delta: i64,
}

impl Tx {
    /// The transaction's read timestamp.
    pub fn read_ts(&self) -> crate::Timestamp {
        self.txn.start_ts()
    }

    /// The stored value of `key`, expired or not.
    pub async fn get_stored(&mut self, key: &[u8]) -> crate::Result<Option<Envelope>> {
        // Boxed: the store's read futures nest deeply enough to exceed the layout depth limit.
        match Box::pin(self.txn.get(key)).await? {
            Some(v) => Envelope::decode(v)
                .map(Some)
                .map_err(|e| Error::Internal(e.to_string())),
            None => Ok(None),
        }
    }

    /// The live value of `key` (expired values are absent).
    pub async fn get(&mut self, key: &[u8]) -> crate::Result<Option<Envelope>> {
        let ts = self.read_ts();
        Ok(self.get_stored(key).await?.and_then(|e| e.live(ts)))
    }

    /// Writes `value` to `key`, expiring `ttl_ms` after this transaction's start (0 = never).
    pub async fn put(&mut self, key: Vec<u8>, value: &[u8], ttl_ms: u64) -> crate::Result<()> {
        if Box::pin(self.txn.get(&key)).await?.is_none() {
            self.delta += 1;
        }
        let stored = Envelope::encode(value, expiry(self.read_ts(), ttl_ms));
        self.txn.put(key, stored)
    }

    /// Deletes `key`; returns whether it held a live value.
    pub async fn delete(&mut self, key: Vec<u8>) -> crate::Result<bool> {
        let ts = self.read_ts();
        let existed = match self.get_stored(&key).await? {
            Some(e) => {
                self.delta -= 1;
                !e.is_expired(ts)
            }
            None => return Ok(false),
        };
        self.txn.delete(key)?;
        Ok(existed)
    }

    /// Live pairs of `[start, end)` (encoded keys) in key order, at most `limit` of them and,
    /// past the first, at most `max_bytes` of keys and values; with whether more may follow.
    pub async fn scan(
        &mut self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        max_bytes: usize,
    ) -> crate::Result<(Pairs, bool)> {
        let ts = self.read_ts();
        let (mut out, mut bytes) = (Vec::new(), 0);
        let mut from = start.to_vec();
        loop {
            let rows = Box::pin(self.txn.scan(&from, end, SCAN_CHUNK)).await?;
            let full = rows.len() == SCAN_CHUNK;
            if let Some((last, _)) = rows.last() {
                from = next_key(last);
            }
            for (k, v) in rows {
                let Some(e) = decode_live(v, ts)? else {
                    continue;
                };
                if out.len() == limit || (!out.is_empty() && bytes + k.len() + e.len() > max_bytes)
                {
                    return Ok((out, true));
                }
                bytes += k.len() + e.len();
                out.push((k, e));
            }
            if !full {
                return Ok((out, false));
            }
        }
    }

    /// Like [`Tx::scan`] in descending key order: the last `limit` live pairs of the span (and at
    /// most `max_bytes` past the first), highest first. Reads the whole span.
    pub async fn scan_reverse(
        &mut self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        max_bytes: usize,
    ) -> crate::Result<(Pairs, bool)> {
        let ts = self.read_ts();
        let mut kept: VecDeque<(Vec<u8>, Vec<u8>)> = VecDeque::new();
        let (mut bytes, mut dropped) = (0, false);
        let mut from = start.to_vec();
        loop {
            let rows = Box::pin(self.txn.scan(&from, end, SCAN_CHUNK)).await?;
            let full = rows.len() == SCAN_CHUNK;
            if let Some((last, _)) = rows.last() {
                from = next_key(last);
            }
            for (k, v) in rows {
                let Some(e) = decode_live(v, ts)? else {
                    continue;
                };
                bytes += k.len() + e.len();
                kept.push_back((k, e));
                while kept.len() > limit || (kept.len() > 1 && bytes > max_bytes) {
                    let (k, v) = kept.pop_front().expect("not empty");
                    bytes -= k.len() + v.len();
                    dropped = true;
                }
            }
            if !full {
                return Ok((kept.into_iter().rev().collect(), dropped));
            }
        }
    }
}

fn decode_live(stored: Vec<u8>, ts: crate::Timestamp) -> crate::Result<Option<Vec<u8>>> {
    let e = Envelope::decode(stored).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(e.live(ts).map(|e| e.value))
}

/// Runs KV API transactions.
#[derive(Clone)]
pub(crate) struct Runner {
    pub db: Db,
    max_retries: u32,
    counts: KeyCounts,
}

impl Runner {
    pub fn new(db: Db, max_retries: u32) -> Runner {
        Runner {
            db,
            max_retries,
            counts: KeyCounts::default(),
        }
    }

    /// Runs `body` in a transaction and commits it, retrying the whole transaction after a
    /// conflict or a deadlock (it was rolled back) up to `max_retries` times. A commit whose outcome is unknown is
    /// never retried.
    pub async fn run<T, F>(&self, tenant: &[u8], read_only: bool, body: F) -> Result<T, Status>
    where
        T: Send,
        F: for<'a> Fn(&'a mut Tx) -> TxFuture<'a, T> + Send + Sync,
    {
        let opts = TxnOptions {
            read_only,
            ..TxnOptions::default()
        };
        let mut attempt = 0;
        loop {
            let result = async {
                let txn = Box::pin(self.db.begin(opts)).await?;
                let mut tx = Tx { txn, delta: 0 };
                let value = body(&mut tx).await?;
                Box::pin(tx.txn.commit()).await?;
                Ok((value, tx.delta))
            }
            .await;
            match result {
                Ok((value, delta)) => {
                    if delta != 0 {
                        self.counts.add(&self.db, tenant, delta);
                    }
                    return Ok(value);
                }
                Err(Error::Serialization(_) | Error::Deadlock(_)) if attempt < self.max_retries => {
                    attempt += 1;
                    metrics::counter!("tinkerdb_kv_retries_total").increment(1);
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(status(e)),
            }
        }
    }
}

/// Exponential backoff with jitter: 1, 2, 4 … ms up to 64 ms, times 0.5–1.5.
fn backoff(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(6);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 500 + u64::from(nanos % 1000);
    Duration::from_micros(base * jitter)
}

/// The gRPC status of a transaction error.
pub(crate) fn status(e: Error) -> Status {
    match e {
        Error::Serialization(m) => Status::aborted(format!(
            "conflict with a concurrent transaction: {m}; the call was retried and may be retried again"
        )),
        Error::Ambiguous(m) => Status::unknown(format!(
            "the commit's outcome is unknown (the writes may or may not have been applied): {m}"
        )),
        Error::LockTimeout(m) => Status::unavailable(format!("lock wait timeout: {m}")),
        Error::InvalidArgument(m) => Status::invalid_argument(m),
        Error::Deadlock(m) => Status::aborted(format!("deadlock: {m}")),
        Error::BelowGcThreshold(m) => Status::failed_precondition(m),
        Error::DiskFull(m) => Status::resource_exhausted(m),
        Error::Storage(m) => Status::unavailable(m),
        e @ Error::Unavailable(_) => Status::unavailable(e.to_string()),
        e @ Error::Duplicate { .. } => Status::already_exists(e.to_string()),
        e @ (Error::ReadOnly | Error::Internal(_)) => Status::internal(e.to_string()),
    }
}

/// Approximate numbers of stored keys per tenant, exported as the `tinkerdb_kv_keys` gauge.
#[derive(Clone, Default)]
struct KeyCounts(Arc<Mutex<HashMap<Vec<u8>, i64>>>);

impl KeyCounts {
    /// Adds a committed change. The first change of a tenant after start seeds its count by
    /// counting its keys in the background (writes racing with that count may be counted twice).
    fn add(&self, db: &Db, tenant: &[u8], delta: i64) {
        let seed = {
            let mut counts = self.0.lock().expect("key counts lock");
            let seed = !counts.contains_key(tenant);
            let count = counts.entry(tenant.to_vec()).or_insert(0);
            *count += delta;
            publish(tenant, *count);
            seed
        };
        if seed {
            let (counts, db, tenant) = (self.clone(), db.clone(), tenant.to_vec());
            tokio::spawn(async move {
                match count_keys(&db, &tenant).await {
                    Ok(n) => {
                        let mut counts = counts.0.lock().expect("key counts lock");
                        let count = counts.entry(tenant.clone()).or_insert(0);
                        *count += n - delta;
                        publish(&tenant, *count);
                    }
                    Err(e) => tracing::warn!("counting the keys of a KV tenant: {e}"),
                }
            });
        }
    }
}

fn publish(tenant: &[u8], count: i64) {
    let tenant = String::from_utf8_lossy(tenant).into_owned();
    metrics::gauge!("tinkerdb_kv_keys", "tenant" => tenant).set(count as f64);
}

/// Counts the stored keys of a tenant (expired ones included) in one read-only transaction.
async fn count_keys(db: &Db, tenant: &[u8]) -> crate::Result<i64> {
    let (mut from, end) = tenant_span(tenant);
    let mut txn = db
        .begin(TxnOptions {
            read_only: true,
            ..TxnOptions::default()
        })
        .await?;
    let mut n = 0;
    loop {
        let rows = Box::pin(txn.scan(&from, &end, SCAN_CHUNK)).await?;
        n += rows.len() as i64;
        match rows.last() {
            Some((last, _)) if rows.len() == SCAN_CHUNK => from = next_key(last),
            _ => return Ok(n),
        }
    }
}

/// The user keys of stored pairs of `tenant`.
pub(crate) fn user_pairs(tenant: &[u8], rows: Pairs) -> Result<Pairs, Status> {
    rows.into_iter()
        .map(|(k, v)| {
            decode_key(tenant, &k)
                .map(|k| (k, v))
                .ok_or_else(|| Status::internal("a scan returned a key outside the tenant"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn errors_map_to_grpc_codes() {
        assert_eq!(
            status(Error::Serialization("x".into())).code(),
            Code::Aborted
        );
        let unknown = status(Error::Ambiguous("x".into()));
        assert_eq!(unknown.code(), Code::Unknown);
        assert!(unknown.message().contains("may or may not"));
        assert_eq!(status(Error::Internal("x".into())).code(), Code::Internal);
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(1) <= Duration::from_millis(3));
        assert!(backoff(20) <= Duration::from_millis(96));
        assert!(backoff(20) >= Duration::from_millis(32));
    }
}
