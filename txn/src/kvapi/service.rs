//! The gRPC service: checks each request (tenant, token, sizes), runs its transaction, and builds
//! the response.

use std::sync::Arc;

use kv::keys::{Key, decode_bytes, prefix_end};
use kv::{LockKind as KvLockKind, RecordKind};
use prost::bytes::Bytes;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::envelope::Envelope;
use super::ops::{Pairs, Runner, Tx, TxFuture, user_pairs};
use super::proto::kv_server::Kv;
use super::proto::*;
use super::{MAX_KEY_BYTES, MAX_TENANT_BYTES, Options, encode_key, tenant_end, tenant_start};
use crate::Db;

/// Entries per page of `Keys`/`Scan` when the request gives no limit.
const DEFAULT_PAGE: usize = 1_000;
/// The largest page of `Keys`/`Scan`.
const MAX_PAGE: usize = 10_000;
/// An encoded span `[start, end)`.
type Span = (Vec<u8>, Vec<u8>);

/// Page token format version.
const TOKEN_V1: u8 = 1;

/// The KV service over a node's transactional store.
#[derive(Clone)]
pub struct Service {
    runner: Runner,
    options: Arc<Options>,
}

impl Service {
    /// A service over `db`.
    pub fn new(db: Db, options: Options) -> Service {
        Service {
            runner: Runner::new(db, options.max_retries),
            options: Arc::new(options),
        }
    }

    /// Checks the tenant's name and the request's right to act for it.
    fn tenant(&self, metadata: &MetadataMap, tenant: &[u8]) -> Result<(), Status> {
        if tenant.is_empty() {
            return Err(Status::invalid_argument("the tenant is empty"));
        }
        if tenant.len() > MAX_TENANT_BYTES {
            return Err(Status::invalid_argument(format!(
                "the tenant name is longer than {MAX_TENANT_BYTES} bytes"
            )));
        }
        match &self.options.auth {
            Some(auth) => auth.check(metadata, tenant),
            None => Ok(()),
        }
    }

    /// Checks one write of a request and returns its size toward the write limit.
    fn write_size(&self, key: &[u8], value: &[u8]) -> Result<usize, Status> {
        check_key(key)?;
        if value.len() > self.options.max_value_bytes {
            return Err(Status::resource_exhausted(format!(
                "the value of {} bytes exceeds the limit of {} bytes",
                value.len(),
                self.options.max_value_bytes
            )));
        }
        Ok(key.len() + Envelope::max_encoded_len(value.len()) + MAX_TENANT_BYTES)
    }

    /// Checks the total size of a request's writes.
    fn check_writes(&self, total: usize) -> Result<(), Status> {
        if total > self.options.max_write_bytes {
            return Err(Status::resource_exhausted(format!(
                "the request writes about {total} bytes, more than the limit of {} bytes",
                self.options.max_write_bytes
            )));
        }
        Ok(())
    }

    /// Checks that a response of about `bytes` bytes fits the message limit.
    fn check_response(&self, bytes: usize) -> Result<(), Status> {
        if bytes + MAX_KEY_BYTES > self.options.max_message_bytes {
            return Err(Status::resource_exhausted(
                "the response would exceed the message size limit; read fewer keys per call",
            ));
        }
        Ok(())
    }

    async fn scan_page(&self, req: ScanRequest) -> Result<(Pairs, Bytes), Status> {
        let tenant = req.tenant.clone();
        let limit = match req.limit as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let Some((start, end)) = scan_span(&req)? else {
            return Ok((Vec::new(), Bytes::new()));
        };
        let max_bytes = self.options.max_write_bytes;
        let reverse = req.reverse;
        let (rows, more) = self
            .runner
            .run(&tenant, true, move |tx: &mut Tx| {
                let (start, end) = (start.clone(), end.clone());
                Box::pin(async move {
                    if reverse {
                        tx.scan_reverse(&start, &end, limit, max_bytes).await
                    } else {
                        tx.scan(&start, &end, limit, max_bytes).await
                    }
                }) as TxFuture<'_, _>
            })
            .await?;
        let rows = user_pairs(&tenant, rows)?;
        let token = match (more, rows.last()) {
            (true, Some((last, _))) => page_token(reverse, last),
            _ => Bytes::new(),
        };
        Ok((rows, token))
    }
}

fn check_key(key: &[u8]) -> Result<(), Status> {
    if key.is_empty() {
        return Err(Status::invalid_argument("the key is empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Status::invalid_argument(format!(
            "the key is longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The token of the page after one that ended at user key `last`: forward pages resume just
/// after it, reverse pages just before it.
fn page_token(reverse: bool, last: &[u8]) -> Bytes {
    let mut token = vec![TOKEN_V1, reverse as u8];
    token.extend_from_slice(last);
    if !reverse {
        token.push(0); // the smallest key after `last`
    }
    token.into()
}

/// The encoded span a scan request reads; `None` when it is empty.
fn scan_span(req: &ScanRequest) -> Result<Option<Span>, Status> {
    let tenant = &req.tenant;
    // Bounds as user keys: [lo, hi), hi = None is the end of the tenant.
    let mut lo = req.start.to_vec();
    let mut hi = (!req.end.is_empty()).then(|| req.end.to_vec());
    if !req.prefix.is_empty() {
        lo = lo.max(req.prefix.to_vec());
        if let Some(pe) = prefix_end(&req.prefix) {
            hi = Some(hi.map_or(pe.clone(), |h| h.min(pe)));
        }
    }
    if !req.page_token.is_empty() {
        let (version, direction, key) = match &req.page_token[..] {
            [v, d, key @ ..] => (*v, *d, key.to_vec()),
            _ => return Err(Status::invalid_argument("malformed page token")),
        };
        if version != TOKEN_V1 || direction != req.reverse as u8 {
            return Err(Status::invalid_argument(
                "the page token belongs to another request",
            ));
        }
        if req.reverse {
            hi = Some(hi.map_or(key.clone(), |h| h.min(key)));
        } else {
            lo = lo.max(key);
        }
    }
    let start = encode_key(tenant, &lo);
    let end = hi.map_or_else(|| tenant_end(tenant), |h| encode_key(tenant, &h));
    Ok((start < end).then_some((start, end)))
}

fn get_result(key: Bytes, value: Option<Envelope>) -> GetResult {
    GetResult {
        key,
        found: value.is_some(),
        value: value.map(|e| e.value.into()).unwrap_or_default(),
    }
}

/// The user key a range bound is clamped to inside the tenant's span.
fn clamp_bound(tenant: &[u8], raw: &[u8]) -> Vec<u8> {
    let start = tenant_start(tenant);
    if raw <= start.as_slice() {
        return Vec::new();
    }
    // A key of the tenant: strip the tenant component and unescape what follows; a bound that
    // is not a whole key (a split point may be any byte string) unescapes as far as it can.
    let component_len = start.len() - 2;
    let rest = &raw[component_len..];
    match decode_bytes(rest) {
        Some((key, _)) => key,
        None => {
            let mut out = Vec::with_capacity(rest.len());
            let mut i = 0;
            while i < rest.len() {
                if rest[i] == 0 && rest.get(i + 1) == Some(&0xFF) {
                    out.push(0);
                    i += 2;
                } else {
                    out.push(rest[i]);
                    i += 1;
                }
            }
            out
        }
    }
}

#[tonic::async_trait]
impl Kv for Service {
    async fn set(&self, request: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
        let (metadata, extensions, req) = request.into_parts();
        let batch = BatchSetRequest {
            tenant: req.tenant,
            pairs: vec![KeyValue {
                key: req.key,
                value: req.value,
            }],
            ttl_ms: req.ttl_ms,
        };
        self.batch_set(Request::from_parts(metadata, extensions, batch))
            .await
            .map(|_| Response::new(SetResponse {}))
    }

    async fn put(&self, request: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
        self.set(request).await
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        self.tenant(request.metadata(), &request.get_ref().tenant)?;
        let req = request.into_inner();
        check_key(&req.key)?;
        let key = encode_key(&req.tenant, &req.key);
        let value = self
            .runner
            .run(&req.tenant, true, move |tx| {
                let key = key.clone();
                Box::pin(async move { tx.get(&key).await })
            })
            .await?;
        Ok(Response::new(GetResponse {
            found: value.is_some(),
            expires_at_ms: value.as_ref().and_then(|e| e.expires_at_ms).unwrap_or(0),
            value: value.map(|e| e.value.into()).unwrap_or_default(),
        }))
    }

    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        self.tenant(request.metadata(), &request.get_ref().tenant)?;
        let req = request.into_inner();
        check_key(&req.key)?;
        let key = encode_key(&req.tenant, &req.key);
        let deleted = self
            .runner
            .run(&req.tenant, false, move |tx| {
                let key = key.clone();
                Box::pin(async move { tx.delete(key).await })
            })
            .await?;
        Ok(Response::new(DeleteResponse { deleted }))
    }

    async fn exists(
        &self,
        request: Request<ExistsRequest>,
    ) -> Result<Response<ExistsResponse>, Status> {
        self.tenant(request.metadata(), &request.get_ref().tenant)?;
        let req = request.into_inner();
        check_key(&req.key)?;
        let key = encode_key(&req.tenant, &req.key);
        let exists = self
            .runner
            .run(&req.tenant, true, move |tx| {
                let key = key.clone();
                Box::pin(async move { Ok(tx.get(&key).await?.is_some()) })
            })
            .await?;
        Ok(Response::new(ExistsResponse { exists }))
    }

    async fn keys(&self, request: Request<ScanRequest>) -> Result<Response<KeysResponse>, Status> {
        self.tenant(request.metadata(), &request.get_ref().tenant)?;
        let (rows, next_page_token) = self.scan_page(request.into_inner()).await?;
        Ok(Response::new(KeysResponse {
            keys: rows.into_iter().map(|(k, _)| k.into()).collect(),
            next_page_token,
        }))
    }

    async fn scan(&self, request: Request<ScanRequest>) -> Result<Response<ScanResponse>, Status> {
        self.tenant(request.metadata(), &request.get_ref().tenant)?;
        let (rows, next_page_token) = self.scan_page(request.into_inner()).await?;
        Ok(Response::new(ScanResponse {
            pairs: rows
                .into_iter()
                .map(|(key, value)| KeyValue {
                    key: key.into(),
                    value: value.into(),
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn batch_get(
        &self,
        request: Request<BatchGetRequest>,
    ) -> Result<Response<BatchGetResponse>, Status> {
        self.tenant(request.metadata(), &request.get_ref().tenant)?;
        let req = request.into_inner();
        for key in &req.keys {
            check_key(key)?;
        }
        let keys: Vec<Vec<u8>> = req
            .keys
            .iter()
            .map(|k| encode_key(&req.tenant, k))
            .collect();
        let values = self
            .runner
            .run(&req.tenant, true, move |tx| {
                let keys = keys.clone();
                Box::pin(async move {
                    let mut out = Vec::with_capacity(keys.len());
                    for key in &keys {
                        out.push(tx.get(key).await?);
                    }
                    Ok(out)
                })
            })
            .await?;
        let bytes: usize = values.iter().flatten().map(|e| e.value.len()).sum();
        self.check_response(bytes + req.keys.iter().map(Bytes::len).sum::<usize>())?;
        let results = req
            .keys
            .into_iter()
            .zip(values)
            .map(|(k, v)| get_result(k, v));
        Ok(Response::new(BatchGetResponse {
            results: results.collect(),
        }))
    }

    async fn batch_set(
        &self,
        request: Request<BatchSetRequest>,
    ) -> Result<Response<BatchSetResponse>, Status> {
        self.tenant(request.metadata(), &request.get_ref().tenant)?;
        let req = request.into_inner();
        let mut total = 0;
        for pair in &req.pairs {
            total += self.write_size(&pair.key, &pair.value)?;
        }
        self.check_writes(total)?;
        let pairs: Arc<Vec<(Vec<u8>, Bytes)>> = Arc::new(
            req.pairs
                .into_iter()
                .map(|p| (encode_key(&req.tenant, &p.key), p.value))
                .collect(),
        );
        let ttl_ms = req.ttl_ms;
        self.runner
            .run(&req.tenant, false, move |tx| {
                let pairs = pairs.clone();
                Box::pin(async move {
                    for (key, value) in pairs.iter() {
                        tx.put(key.clone(), value, ttl_ms).await?;
                    }
                    Ok(())
                })
            })
            .await?;
        Ok(Response::new(BatchSetResponse {}))
    }

    async fn compare_and_set(
        &self,
        request: Request<CompareAndSetRequest>,
    ) -> Result<Response<CompareAndSetResponse>, Status> {
        self.tenant(request.metadata(), &request.get_ref().tenant)?;
        let req = Arc::new(request.into_inner());
        self.check_writes(self.write_size(&req.key, &req.value)?)?;
        let key = encode_key(&req.tenant, &req.key);
        let r = req.clone();
        let (succeeded, current) = self
            .runner
            .run(&req.tenant, false, move |tx| {
                let (key, req) = (key.clone(), r.clone());
                Box::pin(async move {
                    let current = tx.get(&key).await?.map(|e| e.value);
                    if current.as_deref() != req.expected.as_deref() {
                        return Ok((false, current));
                    }
                    if req.delete {
                        tx.delete(key).await?;
                    } else {
                        tx.put(key, &req.value, req.ttl_ms).await?;
                    }
                    Ok((true, None))
                })
            })
            .await?;
        Ok(Response::new(CompareAndSetResponse {
            succeeded,
            current: current.map(Bytes::from),
        }))
    }

    async fn txn(&self, request: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        self.tenant(request.metadata(), &request.get_ref().tenant)?;
        let req = request.into_inner();
        let mut total = 0;
        for c in &req.conditions {
            check_key(&c.key)?;
            if Expect::try_from(c.expect).unwrap_or(Expect::Unspecified) == Expect::Unspecified {
                return Err(Status::invalid_argument("a condition has no expectation"));
            }
        }
        for key in &req.reads {
            check_key(key)?;
        }
        for w in &req.writes {
            total += self.write_size(&w.key, &w.value)?;
        }
        self.check_writes(total)?;
        let tenant = req.tenant.clone();
        let req = Arc::new(req);
        let r = req.clone();
        let (failed, reads) = self
            .runner
            .run(&tenant, false, move |tx| {
                let req = r.clone();
                Box::pin(async move { run_txn(tx, &req).await })
            })
            .await?;
        let bytes: usize = reads.iter().flatten().map(|e| e.value.len()).sum();
        self.check_response(bytes)?;
        let reads = req.reads.iter().cloned().zip(reads);
        Ok(Response::new(TxnResponse {
            succeeded: failed.is_none(),
            failed_condition: failed,
            reads: reads.map(|(k, v)| get_result(k, v)).collect(),
        }))
    }

    async fn mvcc_history(
        &self,
        request: Request<MvccHistoryRequest>,
    ) -> Result<Response<MvccHistoryResponse>, Status> {
        self.tenant(request.metadata(), &request.get_ref().tenant)?;
        let req = request.into_inner();
        check_key(&req.key)?;
        let raw = encode_key(&req.tenant, &req.key);
        let history = self
            .runner
            .db
            .client()
            .history(&raw)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let versions = history.versions.into_iter().map(|v| {
            let kind = match v.record.kind {
                RecordKind::Put => VersionKind::Put,
                RecordKind::Delete => VersionKind::Delete,
                RecordKind::Rollback => VersionKind::Rollback,
                RecordKind::Lock => VersionKind::Lock,
            };
            let (value, expires_at_ms) = match v.record.kind {
                RecordKind::Put => match Envelope::decode(v.record.value) {
                    Ok(e) => (e.value, e.expires_at_ms.unwrap_or(0)),
                    Err(e) => (e.to_string().into_bytes(), 0),
                },
                _ => (Vec::new(), 0),
            };
            Version {
                commit_ts: v.commit_ts,
                start_ts: v.record.start_ts,
                kind: kind as i32,
                value: value.into(),
                expires_at_ms,
            }
        });
        let lock = history.lock.map(|l| {
            let primary = super::decode_key(&req.tenant, &l.primary);
            LockInfo {
                start_ts: l.start_ts,
                primary_in_tenant: primary.is_some(),
                primary: primary.unwrap_or_default().into(),
                expiry_ms: l.expiry_ms,
                kind: match l.kind {
                    KvLockKind::Put => LockKind::Put,
                    KvLockKind::Delete => LockKind::Delete,
                    KvLockKind::Lock => LockKind::Lock,
                } as i32,
            }
        });
        Ok(Response::new(MvccHistoryResponse {
            versions: versions.collect(),
            lock,
        }))
    }

    async fn range_info(
        &self,
        request: Request<RangeInfoRequest>,
    ) -> Result<Response<RangeInfoResponse>, Status> {
        self.tenant(request.metadata(), &request.get_ref().tenant)?;
        let req = request.into_inner();
        let raw = Key::Kv {
            tenant: req.tenant.to_vec(),
            key: req.key.to_vec(),
        }
        .encode();
        let info = self
            .runner
            .db
            .client()
            .range_info(&raw)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let tenant_end = tenant_end(&req.tenant);
        let end_unbounded = info.desc.end >= tenant_end;
        Ok(Response::new(RangeInfoResponse {
            range_id: info.desc.range_id,
            replicas: info.desc.replicas.clone(),
            leader: info.leader.unwrap_or(0),
            approximate_bytes: info.stats.version_bytes.max(0) as u64,
            generation: info.desc.generation,
            start: clamp_bound(&req.tenant, &info.desc.start).into(),
            end: if end_unbounded {
                Bytes::new()
            } else {
                clamp_bound(&req.tenant, &info.desc.end).into()
            },
            end_unbounded,
        }))
    }

    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        if let Some(auth) = &self.options.auth {
            auth.tenant_of(request.metadata())?;
        }
        let client = self.runner.db.client();
        let (node_id, cluster_id) = client.node_and_cluster();
        Ok(Response::new(StatusResponse {
            node_id,
            cluster_id,
            ranges: client.local_ranges(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }))
    }
}

/// The body of a `Txn` call: reads and conditions at the snapshot, then the writes if every
/// condition held. Returns the first failed condition's index and the values read.
async fn run_txn(
    tx: &mut Tx,
    req: &TxnRequest,
) -> crate::Result<(Option<u32>, Vec<Option<Envelope>>)> {
    let tenant = &req.tenant;
    let mut reads = Vec::with_capacity(req.reads.len());
    for key in &req.reads {
        reads.push(tx.get(&encode_key(tenant, key)).await?);
    }
    for (i, c) in req.conditions.iter().enumerate() {
        let current = tx.get(&encode_key(tenant, &c.key)).await?;
        let holds = match Expect::try_from(c.expect).unwrap_or(Expect::Unspecified) {
            Expect::Value => current.is_some_and(|e| e.value == c.value),
            Expect::Absent => current.is_none(),
            Expect::Present => current.is_some(),
            Expect::Unspecified => false,
        };
        if !holds {
            return Ok((Some(i as u32), reads));
        }
    }
    for w in &req.writes {
        let key = encode_key(tenant, &w.key);
        if w.delete {
            tx.delete(key).await?;
        } else {
            tx.put(key, &w.value, w.ttl_ms).await?;
        }
    }
    Ok((None, reads))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(prefix: &[u8], start: &[u8], end: &[u8], token: &[u8], reverse: bool) -> ScanRequest {
        ScanRequest {
            tenant: Bytes::from_static(b"t"),
            prefix: Bytes::copy_from_slice(prefix),
            start: Bytes::copy_from_slice(start),
            end: Bytes::copy_from_slice(end),
            page_token: Bytes::copy_from_slice(token),
            reverse,
            limit: 0,
        }
    }

    #[test]
    fn scan_spans_intersect_prefix_range_and_token() {
        let k = |key: &[u8]| encode_key(b"t", key);
        let span = |r| scan_span(&r).expect("valid");
        assert_eq!(
            span(scan(b"", b"", b"", b"", false)),
            Some((k(b""), tenant_end(b"t")))
        );
        assert_eq!(
            span(scan(b"p", b"a", b"pz", b"", false)),
            Some((k(b"p"), k(b"pz")))
        );
        assert_eq!(
            span(scan(b"p", b"", b"", b"", false)),
            Some((k(b"p"), k(b"q")))
        );
        assert_eq!(span(scan(b"p", b"x", b"", b"", false)), None);
        let forward = page_token(false, b"pa");
        assert_eq!(
            span(scan(b"p", b"", b"", &forward, false)),
            Some((k(b"pa\0"), k(b"q")))
        );
        let reverse = page_token(true, b"pa");
        assert_eq!(
            span(scan(b"p", b"", b"", &reverse, true)),
            Some((k(b"p"), k(b"pa")))
        );
        for bad in [&forward[..], b"\x01", b"\x09\x00k"] {
            let e = scan_span(&scan(b"", b"", b"", bad, true)).expect_err("refused");
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
        }
    }

    #[test]
    fn range_bounds_clamp_to_the_tenant() {
        assert_eq!(clamp_bound(b"t", b""), b"");
        assert_eq!(clamp_bound(b"t", &[0x03]), b"");
        assert_eq!(clamp_bound(b"t", &encode_key(b"t", b"k\0x")), b"k\0x");
        // A split point inside a key's escaped bytes unescapes as far as it goes.
        let mut partial = encode_key(b"t", b"ab\0c");
        partial.truncate(partial.len() - 3);
        assert_eq!(clamp_bound(b"t", &partial), b"ab\0");
    }
}
