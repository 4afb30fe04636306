//! The raw KV gRPC API through the real server of an in-process node: CRUD, limits, tenants,
//! token auth, Txn atomicity, MVCC history, TTLs, reflection and health.

use std::time::{Duration, Instant};

use tinkerdb::{Config, Node};
use tonic::Code;
use txn::kvapi::proto::{Condition, Expect, TxnRequest, VersionKind, Write};
use txn::kvapi::{Client, ScanRange};

async fn start(dir: &tempfile::TempDir, auth_file: Option<std::path::PathBuf>) -> Node {
    Node::start(Config {
        data_dir: dir.path().to_path_buf(),
        sql_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        kv_auth_file: auth_file,
        ..Default::default()
    })
    .await
    .expect("node starts")
}

async fn client(node: &Node, tenant: &str) -> Client {
    Client::connect(&node.grpc_addr().to_string())
        .await
        .expect("connects")
        .with_tenant(tenant)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crud_with_binary_and_large_values() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None).await;
    let kv = client(&node, "t").await;

    assert_eq!(kv.get(b"k").await.unwrap(), None);
    assert!(!kv.exists(b"k").await.unwrap());
    kv.set(b"k", b"v1").await.unwrap();
    assert_eq!(kv.get(b"k").await.unwrap(), Some(b"v1".to_vec()));
    assert!(kv.exists(b"k").await.unwrap());
    kv.set(b"k", b"v2").await.unwrap();
    assert_eq!(kv.get(b"k").await.unwrap(), Some(b"v2".to_vec()));
    assert!(kv.delete(b"k").await.unwrap());
    assert!(!kv.delete(b"k").await.unwrap());
    assert_eq!(kv.get(b"k").await.unwrap(), None);

    // Zero bytes in keys and values, and an empty value (present, not absent).
    let binary = b"\0a\0\0\xff\x01\0".to_vec();
    kv.set(b"\0key\0", &binary).await.unwrap();
    assert_eq!(kv.get(b"\0key\0").await.unwrap(), Some(binary));
    kv.set(b"empty", b"").await.unwrap();
    assert_eq!(kv.get(b"empty").await.unwrap(), Some(Vec::new()));

    // A 1 MiB value round-trips.
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    kv.set(b"big", &big).await.unwrap();
    assert_eq!(kv.get(b"big").await.unwrap(), Some(big));

    // Batch reads and writes.
    kv.batch_set(&[(b"b1", b"x"), (b"b2", b"y")]).await.unwrap();
    let got = kv.batch_get(&[b"b1", b"nope", b"b2"]).await.unwrap();
    assert_eq!(got, vec![Some(b"x".to_vec()), None, Some(b"y".to_vec())]);

    // Empty tenant or key: INVALID_ARGUMENT.
    let e = kv.get(b"").await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = kv.clone().with_tenant("").get(b"k").await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_value_over_the_limit_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None).await;
    let kv = client(&node, "t").await;
    let too_big = vec![7u8; txn::kvapi::DEFAULT_MAX_VALUE_BYTES + 1];
    let e = kv.set(b"huge", &too_big).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    let e = kv
        .batch_set(&[(b"a", b"small"), (b"huge", &too_big)])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert_eq!(kv.get(b"huge").await.unwrap(), None);
    assert_eq!(kv.get(b"a").await.unwrap(), None);
    let history = kv.history(b"huge").await.unwrap();
    assert!(history.versions.is_empty() && history.lock.is_none());
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_clients_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None).await;
    let mut tasks = Vec::new();
    for c in 0..100 {
        let kv = client(&node, "many").await;
        tasks.push(tokio::spawn(async move {
            for i in 0..5 {
                let key = format!("c{c:03}-{i}");
                let value = format!("value {c} {i}");
                kv.set(key.as_bytes(), value.as_bytes()).await.unwrap();
                assert_eq!(
                    kv.get(key.as_bytes()).await.unwrap(),
                    Some(value.into_bytes())
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kv = client(&node, "many").await;
    let all = kv
        .scan_all(&ScanRange::default(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(all.len(), 500);
    for (key, value) in &all {
        let key = String::from_utf8(key.clone()).unwrap();
        let (c, i) = key[1..].split_once('-').unwrap();
        let expected = format!("value {} {i}", c.parse::<u32>().unwrap());
        assert_eq!(value, expected.as_bytes());
    }
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None).await;
    let a = client(&node, "alpha").await;
    let b = client(&node, "beta").await;
    for i in 0..20 {
        a.set(format!("k{i:02}").as_bytes(), b"a").await.unwrap();
    }
    assert_eq!(b.get(b"k01").await.unwrap(), None);
    assert!(!b.exists(b"k01").await.unwrap());
    assert!(
        b.keys(&ScanRange::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        b.scan_all(&ScanRange::default(), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!b.delete(b"k01").await.unwrap());
    assert_eq!(a.get(b"k01").await.unwrap(), Some(b"a".to_vec()));
    let keys = a.keys(&ScanRange::default()).await.unwrap();
    assert_eq!(keys.items.len(), 20);

    // Tenant `a/b` with key `c` and tenant `a` with key `b/c` are different keys.
    let ab = client(&node, "a/b").await;
    let just_a = client(&node, "a").await;
    ab.set(b"c", b"from a/b").await.unwrap();
    assert_eq!(just_a.get(b"b/c").await.unwrap(), None);
    just_a.set(b"b/c", b"from a").await.unwrap();
    assert_eq!(ab.get(b"c").await.unwrap(), Some(b"from a/b".to_vec()));
    assert_eq!(just_a.get(b"b/c").await.unwrap(), Some(b"from a".to_vec()));
    let listed = just_a.keys(&ScanRange::default()).await.unwrap().items;
    assert_eq!(listed, vec![b"b/c".to_vec()]);

    // RangeInfo's bounds never reach outside the tenant.
    let info = a.range_info(b"k01").await.unwrap();
    assert!(info.range_id > 0);
    assert!(info.start.is_empty(), "{info:?}");
    assert!(info.end_unbounded && info.end.is_empty(), "{info:?}");
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_acts_only_for_its_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("kv-auth");
    std::fs::write(
        &auth,
        "# token tenant\ntoken-a tenant-a\ntoken-b tenant-b\n",
    )
    .unwrap();
    let node = start(&dir, Some(auth)).await;
    let anonymous = client(&node, "tenant-a").await;
    let e = anonymous.get(b"k").await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let bad = anonymous.clone().with_token("nope").unwrap();
    assert_eq!(
        bad.get(b"k").await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let a = anonymous.clone().with_token("token-a").unwrap();
    a.set(b"k", b"secret").await.unwrap();
    assert_eq!(a.get(b"k").await.unwrap(), Some(b"secret".to_vec()));
    // Token A naming tenant B: denied, for reads and writes alike.
    let a_as_b = a.clone().with_tenant("tenant-b");
    for e in [
        a_as_b.get(b"k").await.unwrap_err(),
        a_as_b.set(b"k", b"x").await.unwrap_err(),
        a_as_b.keys(&ScanRange::default()).await.unwrap_err(),
    ] {
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    }
    let b = anonymous
        .with_tenant("tenant-b")
        .with_token("token-b")
        .unwrap();
    assert_eq!(b.get(b"k").await.unwrap(), None);
    assert!(b.status().await.unwrap().node_id > 0);
    node.shutdown().await.unwrap();
}

/// Moves `amount` between two accounts with one `Txn` call conditioned on the balances read
/// just before; retries when a condition fails or the transaction aborts.
async fn transfer(kv: &Client, from: &str, to: &str, amount: i64) {
    loop {
        let got = kv
            .batch_get(&[from.as_bytes(), to.as_bytes()])
            .await
            .unwrap();
        let balance = |v: &Option<Vec<u8>>| -> i64 {
            String::from_utf8(v.clone().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        };
        let (f, t) = (balance(&got[0]), balance(&got[1]));
        let condition = |key: &str, v: i64| Condition {
            key: key.as_bytes().to_vec().into(),
            expect: Expect::Value as i32,
            value: v.to_string().into_bytes().into(),
        };
        let write = |key: &str, v: i64| Write {
            key: key.as_bytes().to_vec().into(),
            value: v.to_string().into_bytes().into(),
            ..Default::default()
        };
        let req = TxnRequest {
            conditions: vec![condition(from, f), condition(to, t)],
            writes: vec![write(from, f - amount), write(to, t + amount)],
            ..Default::default()
        };
        match kv.txn(req).await {
            Ok(r) if r.succeeded => return,
            Ok(r) => assert!(r.failed_condition.is_some_and(|i| i < 2)),
            Err(e) => assert_eq!(e.code(), Code::Aborted, "{e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_keep_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None).await;
    let kv = client(&node, "bank").await;
    const ACCOUNTS: usize = 5;
    for i in 0..ACCOUNTS {
        kv.set(format!("acct{i}").as_bytes(), b"100").await.unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..8 {
        let kv = kv.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..10 {
                let from = format!("acct{}", (w + n) % ACCOUNTS);
                let to = format!("acct{}", (w + 2 * n + 1) % ACCOUNTS);
                if from != to {
                    transfer(&kv, &from, &to, (n + 1) as i64).await;
                }
            }
        }));
    }
    // Meanwhile, every snapshot read sees the same total.
    for _ in 0..20 {
        let all = kv.scan_all(&ScanRange::default(), 100).await.unwrap();
        let total: i64 = all
            .iter()
            .map(|(_, v)| String::from_utf8_lossy(v).parse::<i64>().unwrap())
            .sum();
        assert_eq!(total, 100 * ACCOUNTS as i64);
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = kv.scan_all(&ScanRange::default(), 100).await.unwrap();
    let total: i64 = all
        .iter()
        .map(|(_, v)| String::from_utf8_lossy(v).parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, 100 * ACCOUNTS as i64);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compare_and_set_and_txn_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None).await;
    let kv = client(&node, "cas").await;
    // Expected absent: the first wins, the second sees the current value.
    assert_eq!(
        kv.compare_and_set(b"k", None, Some(b"1")).await.unwrap(),
        Ok(())
    );
    assert_eq!(
        kv.compare_and_set(b"k", None, Some(b"2")).await.unwrap(),
        Err(Some(b"1".to_vec()))
    );
    assert_eq!(
        kv.compare_and_set(b"k", Some(b"1"), Some(b"2"))
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        kv.compare_and_set(b"k", Some(b"2"), None).await.unwrap(),
        Ok(())
    );
    assert_eq!(kv.get(b"k").await.unwrap(), None);

    // Concurrent increments through CompareAndSet lose nothing.
    kv.set(b"counter", b"0").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let kv = kv.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                loop {
                    let current = kv.get(b"counter").await.unwrap().unwrap();
                    let n: u64 = String::from_utf8(current.clone()).unwrap().parse().unwrap();
                    let next = (n + 1).to_string();
                    match kv
                        .compare_and_set(b"counter", Some(&current), Some(next.as_bytes()))
                        .await
                    {
                        Ok(Ok(())) => break,
                        Ok(Err(_)) => {}
                        Err(e) => assert_eq!(e.code(), Code::Aborted, "{e:?}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(kv.get(b"counter").await.unwrap(), Some(b"40".to_vec()));

    // A Txn reports the first failed condition and writes nothing.
    let req = TxnRequest {
        conditions: vec![
            Condition {
                key: b"counter".to_vec().into(),
                expect: Expect::Present as i32,
                ..Default::default()
            },
            Condition {
                key: b"missing".to_vec().into(),
                expect: Expect::Present as i32,
                ..Default::default()
            },
        ],
        reads: vec![b"counter".to_vec().into()],
        writes: vec![Write {
            key: b"w".to_vec().into(),
            value: b"x".to_vec().into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = kv.txn(req.clone()).await.unwrap();
    assert!(!r.succeeded);
    assert_eq!(r.failed_condition, Some(1));
    assert_eq!(r.reads[0].value.as_ref(), b"40");
    assert_eq!(kv.get(b"w").await.unwrap(), None);
    let mut ok = req;
    ok.conditions[1].expect = Expect::Absent as i32;
    let r = kv.txn(ok).await.unwrap();
    assert!(r.succeeded && r.failed_condition.is_none());
    assert_eq!(kv.get(b"w").await.unwrap(), Some(b"x".to_vec()));
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mvcc_history_shows_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None).await;
    let kv = client(&node, "h").await;
    kv.set(b"k", b"one").await.unwrap();
    kv.set(b"k", b"two").await.unwrap();
    kv.delete(b"k").await.unwrap();
    kv.set(b"k", b"three").await.unwrap();
    let history = kv.history(b"k").await.unwrap();
    let seen: Vec<(i32, Vec<u8>)> = history
        .versions
        .iter()
        .map(|v| (v.kind, v.value.to_vec()))
        .collect();
    let put = VersionKind::Put as i32;
    assert_eq!(
        seen,
        vec![
            (put, b"three".to_vec()),
            (VersionKind::Delete as i32, Vec::new()),
            (put, b"two".to_vec()),
            (put, b"one".to_vec()),
        ]
    );
    for pair in history.versions.windows(2) {
        assert!(pair[0].commit_ts > pair[1].commit_ts);
    }
    for v in &history.versions {
        assert!(v.start_ts < v.commit_ts);
    }
    assert!(history.lock.is_none());
    // Another tenant's key of the same name has no history.
    let other = client(&node, "other").await;
    assert!(other.history(b"k").await.unwrap().versions.is_empty());
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scans_page_by_prefix_range_and_in_reverse() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None).await;
    let kv = client(&node, "s").await;
    for i in 0..25 {
        kv.set(format!("p/{i:02}").as_bytes(), i.to_string().as_bytes())
            .await
            .unwrap();
    }
    kv.set(b"q", b"outside the prefix").await.unwrap();
    let key = |i: usize| format!("p/{i:02}").into_bytes();

    // Forward pages of 10 by prefix.
    let mut range = ScanRange {
        prefix: b"p/".to_vec(),
        limit: 10,
        ..Default::default()
    };
    let mut keys = Vec::new();
    loop {
        let page = kv.keys(&range).await.unwrap();
        assert!(page.items.len() <= 10);
        keys.extend(page.items);
        match page.next_page_token {
            Some(t) => range.page_token = t,
            None => break,
        }
    }
    assert_eq!(keys, (0..25).map(key).collect::<Vec<_>>());

    // Reverse pages of 10 over [p/05, p/20).
    let mut range = ScanRange {
        start: key(5),
        end: key(20),
        limit: 10,
        reverse: true,
        ..Default::default()
    };
    let mut pairs = Vec::new();
    loop {
        let page = kv.scan(&range).await.unwrap();
        pairs.extend(page.items);
        match page.next_page_token {
            Some(t) => range.page_token = t,
            None => break,
        }
    }
    let expected: Vec<_> = (5..20)
        .rev()
        .map(|i| (key(i), i.to_string().into_bytes()))
        .collect();
    assert_eq!(pairs, expected);

    // A token of a forward listing is refused by a reverse one.
    let page = kv
        .keys(&ScanRange {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let e = kv
        .keys(&ScanRange {
            reverse: true,
            page_token: page.next_page_token.unwrap(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_expire_after_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None).await;
    let kv = client(&node, "ttl").await;
    kv.set_with_ttl(b"long", b"v", Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    kv.set_with_ttl(b"short", b"v", Some(Duration::from_millis(200)))
        .await
        .unwrap();
    kv.set(b"forever", b"v").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while kv.get(b"short").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the short TTL never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!kv.exists(b"short").await.unwrap());
    let keys = kv.keys(&ScanRange::default()).await.unwrap().items;
    assert_eq!(keys, vec![b"forever".to_vec(), b"long".to_vec()]);
    assert_eq!(kv.get(b"long").await.unwrap(), Some(b"v".to_vec()));
    // An expired key counts as absent for CompareAndSet.
    assert_eq!(
        kv.compare_and_set(b"short", None, Some(b"new"))
            .await
            .unwrap(),
        Ok(())
    );
    // The expired version stays stored (no GC yet) and shows its expiry.
    let history = kv.history(b"short").await.unwrap();
    assert_eq!(history.versions.len(), 2);
    assert!(history.versions[1].expires_at_ms > 0);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reflection_health_status_and_metrics() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir, None).await;
    let channel = tonic::transport::Channel::from_shared(txn::kvapi::url(node.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"tinkerdb.kv.v1.Kv".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );

    let mut health = HealthClient::new(channel);
    for service in ["", "tinkerdb.kv.v1.Kv"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }

    let kv = client(&node, "metered").await;
    let status = kv.status().await.unwrap();
    assert!(status.node_id > 0 && !status.ranges.is_empty());
    assert!(!status.version.is_empty());

    // The per-tenant key count reaches /metrics.
    kv.set(b"a", b"1").await.unwrap();
    kv.set(b"b", b"1").await.unwrap();
    kv.delete(b"a").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = http_get(node.http_addr(), "/metrics").await;
        if body.contains("tinkerdb_kv_keys{tenant=\"metered\"} 1") {
            break;
        }
        assert!(Instant::now() < deadline, "no key count in:\n{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.shutdown().await.unwrap();
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    buf
}
