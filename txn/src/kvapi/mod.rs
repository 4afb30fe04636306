//! # kvapi: the raw KV gRPC API
//!
//! A key-value service (`tinkerdb.kv.v1.Kv`, defined in `proto/kv.proto`) over the
//! transactional store, for key-value users and debugging. Every data request names a tenant;
//! keys and values are bytes. A tenant's key `k` is stored at `Key::Kv { tenant, key: k }`, i.e.
//! `0x04 esc(tenant) esc(k)`, so a tenant's keys form one contiguous span ([`tenant_span`]) and
//! no two (tenant, key) pairs share a stored key: tenant `a/b` with key `c` and tenant `a` with
//! key `b/c` are different keys.
//!
//! Each RPC runs in one [`crate::Transaction`] (snapshot isolation): `Set`/`Put`, `Get`,
//! `Delete`, `Exists`, `Keys` and `Scan` (prefix or range, limit, opaque page token, reverse),
//! `BatchGet`, `BatchSet` (atomic), `CompareAndSet` (expected value or expected absence) and
//! `Txn` (reads and conditions at one snapshot; writes committed atomically only if every
//! condition holds, reporting the first condition that failed). A transaction that loses a
//! write-write conflict is retried internally a bounded number of times (its reads and
//! conditions are re-evaluated, so a retry never applies a write whose condition no longer
//! holds); after that the call fails with `ABORTED` and the client may retry. A commit whose
//! outcome is unknown is never retried: it fails with `UNKNOWN`.
//!
//! Debug RPCs: `MvccHistory` (every stored version of a key and its lock), `RangeInfo` (the
//! range holding a key, bounds clamped to the caller's tenant span), `Status` (node identity).
//! The server also serves gRPC reflection (v1 and v1alpha) and the standard health service.
//!
//! ## Values and TTLs
//!
//! A stored value is a small versioned envelope ([`envelope`]): `0x01 flags [expires_at_ms] value`.
//! A TTL sets `expires_at_ms` = the TSO-physical time of the writing transaction's start_ts plus
//! the TTL. A value is expired for a reader whose start_ts has a physical time at or past it, and
//! every read (Get, Exists, Scan, BatchGet, CompareAndSet, Txn conditions) treats an expired
//! value as absent. Expired versions stay stored until MVCC garbage collection removes them
//! (there is none yet), and `MvccHistory` shows them.
//!
//! ## Authentication
//!
//! Optional: with a token file ([`auth::Auth::load`], `--kv-auth-file`), every request must carry
//! `authorization: Bearer <token>` metadata. A missing or unknown token is `UNAUTHENTICATED`;
//! a token used for another tenant is `PERMISSION_DENIED`. The file has one `token tenant` pair
//! per line; blank lines and lines starting with `#` are ignored.
//!
//! ## Invariants
//!
//! - A request can only read or write keys inside its tenant's span; debug answers (lock
//!   primaries, range bounds) are clamped or withheld so that no other tenant's keys or SQL keys
//!   leak.
//! - Input limits are checked before anything is proposed: an empty tenant or key is
//!   `INVALID_ARGUMENT`; a value above [`Options::max_value_bytes`] or a request writing more than
//!   [`Options::max_write_bytes`] is `RESOURCE_EXHAUSTED`. The gRPC message limits are set above
//!   them, and kv's command limit (`kv::MAX_COMMAND_BYTES`) above those.
//!
//! ## Caveats
//!
//! - Pages of `Keys`/`Scan` are read in separate transactions: a multi-page listing is not one
//!   snapshot. A reverse scan reads its span forward (kv has no reverse iteration yet), so each
//!   reverse page costs a read of the whole remaining span.
//! - Expired data is not deleted until MVCC GC exists; expiry uses TSO time, not wall time.
//! - The per-tenant key count (`tinkerdb_kv_keys`) counts stored keys including expired ones; it
//!   is seeded by one scan per tenant when the tenant is first written after start and then
//!   kept by the writes of this node, so it is approximate.
//! - `RangeInfo`'s size is the whole range's (it may hold other tenants' data too).
//! - No TLS: tokens travel in plaintext unless the network is trusted.

pub mod auth;
pub mod client;
pub mod envelope;
mod ops;
mod service;

use std::net::SocketAddr;

use kv::keys::{Key, TAG_KV, encode_bytes, prefix_end};

pub use auth::Auth;
pub use client::{Client, DEFAULT_TENANT, Page, ScanRange};
pub use service::Service;

/// The generated protobuf messages and gRPC stubs of `tinkerdb.kv.v1`.
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("tinkerdb.kv.v1");
}

/// The encoded file descriptor set of `proto/kv.proto`, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kv_descriptor.bin"));

/// The default largest value.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 16 << 20;
/// The default largest total of keys and values written by one request.
pub const DEFAULT_MAX_WRITE_BYTES: usize = 24 << 20;
/// The default gRPC message size limit (decoding and encoding), above the write limit so that
/// oversized values get `RESOURCE_EXHAUSTED` from the service rather than a transport error.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 48 << 20;
/// The largest key.
pub const MAX_KEY_BYTES: usize = 64 << 10;
/// The largest tenant name.
pub const MAX_TENANT_BYTES: usize = 1 << 10;

/// Options of the KV service.
#[derive(Clone, Debug)]
pub struct Options {
    /// The largest value accepted.
    pub max_value_bytes: usize,
    /// The largest total of keys and values one request may write (bounded by kv's command limit).
    pub max_write_bytes: usize,
    /// The gRPC message limit (decoding requests and encoding responses).
    pub max_message_bytes: usize,
    /// How often a transaction that lost a conflict is retried before `ABORTED`.
    pub max_retries: u32,
    /// Token authentication; `None` lets every request name any tenant.
    pub auth: Option<Auth>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_write_bytes: DEFAULT_MAX_WRITE_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_retries: 10,
            auth: None,
        }
    }
}

impl Options {
    /// Checks that the limits nest: value ≤ write ≤ message, and writes fit a kv command.
    pub fn validate(&self) -> Result<(), String> {
        // Room for per-key overhead (tenant prefix, envelope, command framing).
        let command_room = kv::MAX_COMMAND_BYTES - (4 << 20);
        if self.max_value_bytes == 0 || self.max_value_bytes > self.max_write_bytes {
            return Err("max_value_bytes must be between 1 and max_write_bytes".into());
        }
        if self.max_write_bytes > command_room {
            return Err(format!(
                "max_write_bytes must be at most {command_room} (kv's command limit less overhead)"
            ));
        }
        if self.max_message_bytes <= self.max_write_bytes + MAX_KEY_BYTES {
            return Err("max_message_bytes must be above max_write_bytes plus a key".into());
        }
        Ok(())
    }
}

/// The encoded start of a tenant's span (its empty key, the smallest key of the tenant).
pub fn tenant_start(tenant: &[u8]) -> Vec<u8> {
    Key::Kv {
        tenant: tenant.to_vec(),
        key: Vec::new(),
    }
    .encode()
}

/// The encoded end (exclusive) of a tenant's span: the end of every key with its tenant component.
pub fn tenant_end(tenant: &[u8]) -> Vec<u8> {
    let mut component = vec![TAG_KV];
    encode_bytes(&mut component, tenant);
    prefix_end(&component).expect("a terminated component is not all 0xFF")
}

/// The encoded span `[start, end)` holding every key of a tenant.
pub fn tenant_span(tenant: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (tenant_start(tenant), tenant_end(tenant))
}

/// The stored key of a tenant's user key.
pub fn encode_key(tenant: &[u8], key: &[u8]) -> Vec<u8> {
    Key::Kv {
        tenant: tenant.to_vec(),
        key: key.to_vec(),
    }
    .encode()
}

/// The user key of a stored key of `tenant`; `None` for a key of another tenant or space.
pub fn decode_key(tenant: &[u8], raw: &[u8]) -> Option<Vec<u8>> {
    match Key::decode(raw)? {
        Key::Kv { tenant: t, key } if t == tenant => Some(key),
        _ => None,
    }
}

/// Serves the KV service, other nodes' Raft messages for this node (`raft`), the node-to-node
/// service (`node`: kv requests, the oracle, joins), reflection and health on `listener` until
/// `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    db: crate::Db,
    options: Options,
    raft: raft::RaftService,
    node: crate::cluster::NodeService,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    options.validate()?;
    let max = options.max_message_bytes;
    let kv = proto::kv_server::KvServer::new(Service::new(db, options))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<proto::kv_server::KvServer<Service>>()
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    tonic::transport::Server::builder()
        .add_service(kv)
        .add_service(raft.into_server())
        .add_service(node.into_server())
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(nodelay(listener), shutdown)
        .await?;
    Ok(())
}

/// The connections accepted on `listener`, with Nagle's algorithm off: replies (Raft
/// heartbeats, kv replies between nodes) are small and latency-bound, and delayed ACKs on a
/// Nagle-held reply cost tens of milliseconds. (tonic's `tcp_nodelay` applies only to
/// listeners it binds itself.)
pub fn nodelay(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        Ok(conn)
    })
}

/// The `http://` URL of a gRPC address, as clients connect to it.
pub fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_spans_are_disjoint_and_hold_their_keys() {
        let (a_start, a_end) = tenant_span(b"a");
        let (ab_start, ab_end) = tenant_span(b"a/b");
        let (z_start, _) = tenant_span(b"a\0");
        for key in [&b""[..], b"x", b"\xff\xff", b"\0"] {
            let k = encode_key(b"a", key);
            assert!(a_start <= k && k < a_end, "{key:?}");
            assert!(!(ab_start <= k && k < ab_end));
            assert_eq!(decode_key(b"a", &k), Some(key.to_vec()));
            assert_eq!(decode_key(b"a/b", &k), None);
        }
        assert!(a_end <= ab_start || ab_end <= a_start);
        assert!(a_end <= z_start, "tenant a\\0 lies after tenant a");
        assert_ne!(encode_key(b"a/b", b"c"), encode_key(b"a", b"b/c"));
    }

    #[test]
    fn default_options_validate() {
        Options::default().validate().expect("defaults are valid");
        let bad = Options {
            max_value_bytes: DEFAULT_MAX_WRITE_BYTES + 1,
            ..Options::default()
        };
        assert!(bad.validate().is_err());
    }
}
