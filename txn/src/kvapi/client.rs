//! A typed client of the KV API for Rust programs and the `tinkerdb kv` command.
//!
//! ```no_run
//! # async fn example() -> Result<(), tonic::Status> {
//! let kv = txn::kvapi::Client::connect("127.0.0.1:50051").await?.with_tenant("orders");
//! kv.set(b"k", b"v").await?;
//! assert_eq!(kv.get(b"k").await?, Some(b"v".to_vec()));
//! # Ok(()) }
//! ```
//!
//! Every method returns the server's `tonic::Status` on failure; connection failures are
//! `UNAVAILABLE`. The client is cheap to clone and safe to share between tasks.

use std::time::Duration;

use prost::bytes::Bytes;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use super::DEFAULT_MAX_MESSAGE_BYTES;
use super::proto::kv_client::KvClient;
use super::proto::*;

/// The default timeout of one call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The tenant a client uses unless told otherwise.
pub const DEFAULT_TENANT: &str = "default";

/// A connection to a node's KV API, acting for one tenant.
#[derive(Clone)]
pub struct Client {
    inner: KvClient<Channel>,
    tenant: Bytes,
    token: Option<MetadataValue<Ascii>>,
    timeout: Duration,
}

/// The span and paging of a `keys`/`scan` call.
#[derive(Clone, Debug, Default)]
pub struct ScanRange {
    /// Only keys starting with this prefix (empty = all).
    pub prefix: Vec<u8>,
    /// The first key (inclusive; empty = from the beginning).
    pub start: Vec<u8>,
    /// The end key (exclusive; empty = to the end).
    pub end: Vec<u8>,
    /// Entries per page (0 = the server's default).
    pub limit: u32,
    /// Descending key order.
    pub reverse: bool,
    /// The token of the page to read (from [`Page::next_page_token`]).
    pub page_token: Vec<u8>,
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Set when more may follow: pass it back in [`ScanRange::page_token`].
    pub next_page_token: Option<Vec<u8>>,
}

impl Client {
    /// Connects to `addr` (`host:port` or an `http://` URL).
    pub async fn connect(addr: &str) -> Result<Client, Status> {
        let url = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let endpoint = Endpoint::from_shared(url)
            .map_err(|e| Status::invalid_argument(format!("bad address {addr}: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| Status::unavailable(format!("cannot connect to {addr}: {e}")))?;
        let inner = KvClient::new(channel)
            .max_decoding_message_size(DEFAULT_MAX_MESSAGE_BYTES)
            .max_encoding_message_size(DEFAULT_MAX_MESSAGE_BYTES);
        Ok(Client {
            inner,
            tenant: Bytes::from_static(DEFAULT_TENANT.as_bytes()),
            token: None,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same connection acting for `tenant`.
    pub fn with_tenant(mut self, tenant: impl AsRef<[u8]>) -> Client {
        self.tenant = Bytes::copy_from_slice(tenant.as_ref());
        self
    }

    /// The same connection sending `authorization: Bearer <token>` with every call.
    pub fn with_token(mut self, token: &str) -> Result<Client, Status> {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::invalid_argument("the token must be printable ASCII"))?;
        self.token = Some(value);
        Ok(self)
    }

    /// The same connection with a timeout per call.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The tenant this client acts for.
    pub fn tenant(&self) -> &[u8] {
        &self.tenant
    }

    /// The generated client, for calls this type does not wrap.
    pub fn raw(&self) -> KvClient<Channel> {
        self.inner.clone()
    }

    /// Wraps a message with the client's token and timeout.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        request
    }

    fn bytes(b: &[u8]) -> Bytes {
        Bytes::copy_from_slice(b)
    }

    /// The value of `key`, if it holds a live one.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Status> {
        let req = GetRequest {
            tenant: self.tenant.clone(),
            key: Self::bytes(key),
        };
        let resp = self.raw().get(self.request(req)).await?.into_inner();
        Ok(resp.found.then(|| resp.value.to_vec()))
    }

    /// Writes `value` to `key`.
    pub async fn set(&self, key: &[u8], value: &[u8]) -> Result<(), Status> {
        self.set_with_ttl(key, value, None).await
    }

    /// Writes `value` to `key`, expiring after `ttl` (rounded up to milliseconds).
    pub async fn set_with_ttl(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), Status> {
        let req = SetRequest {
            tenant: self.tenant.clone(),
            key: Self::bytes(key),
            value: Self::bytes(value),
            ttl_ms: ttl_ms(ttl),
        };
        self.raw().set(self.request(req)).await?;
        Ok(())
    }

    /// Deletes `key`; returns whether it held a live value.
    pub async fn delete(&self, key: &[u8]) -> Result<bool, Status> {
        let req = DeleteRequest {
            tenant: self.tenant.clone(),
            key: Self::bytes(key),
        };
        Ok(self
            .raw()
            .delete(self.request(req))
            .await?
            .into_inner()
            .deleted)
    }

    /// Whether `key` holds a live value.
    pub async fn exists(&self, key: &[u8]) -> Result<bool, Status> {
        let req = ExistsRequest {
            tenant: self.tenant.clone(),
            key: Self::bytes(key),
        };
        Ok(self
            .raw()
            .exists(self.request(req))
            .await?
            .into_inner()
            .exists)
    }

    fn scan_request(&self, range: &ScanRange) -> ScanRequest {
        ScanRequest {
            tenant: self.tenant.clone(),
            prefix: Self::bytes(&range.prefix),
            start: Self::bytes(&range.start),
            end: Self::bytes(&range.end),
            limit: range.limit,
            page_token: Self::bytes(&range.page_token),
            reverse: range.reverse,
        }
    }

    /// One page of keys.
    pub async fn keys(&self, range: &ScanRange) -> Result<Page<Vec<u8>>, Status> {
        let resp = self
            .raw()
            .keys(self.request(self.scan_request(range)))
            .await?
            .into_inner();
        Ok(Page {
            items: resp.keys.into_iter().map(|k| k.to_vec()).collect(),
            next_page_token: token(resp.next_page_token),
        })
    }

    /// One page of key-value pairs.
    pub async fn scan(&self, range: &ScanRange) -> Result<Page<(Vec<u8>, Vec<u8>)>, Status> {
        let resp = self
            .raw()
            .scan(self.request(self.scan_request(range)))
            .await?
            .into_inner();
        Ok(Page {
            items: resp
                .pairs
                .into_iter()
                .map(|p| (p.key.to_vec(), p.value.to_vec()))
                .collect(),
            next_page_token: token(resp.next_page_token),
        })
    }

    /// Up to `max` pairs of a range across pages (each page is its own snapshot).
    pub async fn scan_all(
        &self,
        range: &ScanRange,
        max: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, Status> {
        all_pages(range, max, |r| async move { self.scan(&r).await }).await
    }

    /// Up to `max` keys of a range across pages (each page is its own snapshot).
    pub async fn keys_all(&self, range: &ScanRange, max: usize) -> Result<Vec<Vec<u8>>, Status> {
        all_pages(range, max, |r| async move { self.keys(&r).await }).await
    }

    /// The values of `keys` at one snapshot, in order.
    pub async fn batch_get(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, Status> {
        let req = BatchGetRequest {
            tenant: self.tenant.clone(),
            keys: keys.iter().map(|k| Self::bytes(k)).collect(),
        };
        let resp = self.raw().batch_get(self.request(req)).await?.into_inner();
        Ok(resp
            .results
            .into_iter()
            .map(|r| r.found.then(|| r.value.to_vec()))
            .collect())
    }

    /// Writes every pair atomically.
    pub async fn batch_set(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), Status> {
        let req = BatchSetRequest {
            tenant: self.tenant.clone(),
            pairs: pairs
                .iter()
                .map(|(k, v)| KeyValue {
                    key: Self::bytes(k),
                    value: Self::bytes(v),
                })
                .collect(),
            ttl_ms: 0,
        };
        self.raw().batch_set(self.request(req)).await?;
        Ok(())
    }

    /// Writes `new` (or deletes, for `None`) if `key` holds `expected` (or is absent, for
    /// `None`). Returns `Ok(Ok(()))` on success and `Ok(Err(current))` when the comparison failed.
    pub async fn compare_and_set(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Result<(), Option<Vec<u8>>>, Status> {
        let req = CompareAndSetRequest {
            tenant: self.tenant.clone(),
            key: Self::bytes(key),
            expected: expected.map(Self::bytes),
            value: Self::bytes(new.unwrap_or_default()),
            delete: new.is_none(),
            ttl_ms: 0,
        };
        let resp = self
            .raw()
            .compare_and_set(self.request(req))
            .await?
            .into_inner();
        Ok(if resp.succeeded {
            Ok(())
        } else {
            Err(resp.current.map(|c| c.to_vec()))
        })
    }

    /// Runs a `Txn` call; the request's tenant is set to the client's.
    pub async fn txn(&self, mut req: TxnRequest) -> Result<TxnResponse, Status> {
        req.tenant = self.tenant.clone();
        Ok(self.raw().txn(self.request(req)).await?.into_inner())
    }

    /// Every stored version of `key` and its lock.
    pub async fn history(&self, key: &[u8]) -> Result<MvccHistoryResponse, Status> {
        let req = MvccHistoryRequest {
            tenant: self.tenant.clone(),
            key: Self::bytes(key),
        };
        Ok(self
            .raw()
            .mvcc_history(self.request(req))
            .await?
            .into_inner())
    }

    /// The range holding `key`, clamped to the tenant.
    pub async fn range_info(&self, key: &[u8]) -> Result<RangeInfoResponse, Status> {
        let req = RangeInfoRequest {
            tenant: self.tenant.clone(),
            key: Self::bytes(key),
        };
        Ok(self.raw().range_info(self.request(req)).await?.into_inner())
    }

    /// The node's identity.
    pub async fn status(&self) -> Result<StatusResponse, Status> {
        Ok(self
            .raw()
            .status(self.request(StatusRequest {}))
            .await?
            .into_inner())
    }
}

fn ttl_ms(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |d| {
        let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
        u64::try_from(ms).unwrap_or(u64::MAX).max(1)
    })
}

fn token(t: Bytes) -> Option<Vec<u8>> {
    (!t.is_empty()).then(|| t.to_vec())
}

/// Follows page tokens from `range` until `max` items or the last page.
async fn all_pages<T, F, Fut>(range: &ScanRange, max: usize, fetch: F) -> Result<Vec<T>, Status>
where
    F: Fn(ScanRange) -> Fut,
    Fut: std::future::Future<Output = Result<Page<T>, Status>>,
{
    let mut range = range.clone();
    let mut out = Vec::new();
    loop {
        let page = fetch(range.clone()).await?;
        out.extend(page.items);
        match page.next_page_token {
            Some(t) if out.len() < max => range.page_token = t,
            _ => break,
        }
    }
    out.truncate(max);
    Ok(out)
}
