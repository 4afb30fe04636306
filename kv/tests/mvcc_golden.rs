//! Data-driven tests of MVCC reads and the transactional commands, on a real fjall database.
//!
//! Each file under `testdata/mvcc/` holds records: command lines, `----`, the expected output,
//! then a blank line. Regenerate with `UPDATE_GOLDEN=1 cargo test -p kv --test mvcc_golden` and
//! review the diff.
//!
//! Commands (timestamps are plain integers, keys and values are text):
//! - `prewrite start=T [read=R] primary=K expiry=E put:K=V insert:K=V del:K lock:K ...`
//! - `1pc start=T [read=R] commit=C primary=K put:K=V insert:K=V del:K lock:K read:FROM..TO ...`
//! - `lock start=T [read=R] primary=K expiry=E K...` / `heartbeat primary=K start=T expiry=E`
//! - `commit start=T commit=C K...` / `rollback start=T K...`
//! - `check primary=K start=T now=N [threshold=G] [rollback]`
//! - `get K ts=T` / `scan FROM TO ts=T [limit=N]` / `gc FROM TO safe=T` / `dump`

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use kv::engine::{Engine, EngineOptions};
use kv::mvcc::{KeyError, Lock, Record};
use kv::mvcc::{Mutation, Mvcc, Op, RollbackExpired, StatsDelta, TxnMeta};

fn args(line: &str) -> (Vec<&str>, HashMap<&str, &str>) {
    let mut pos = Vec::new();
    let mut kw = HashMap::new();
    for tok in line.split_whitespace() {
        match tok.split_once('=') {
            Some((k, v)) if !k.contains(':') => {
                kw.insert(k, v);
            }
            _ => pos.push(tok),
        }
    }
    (pos, kw)
}

fn num(kw: &HashMap<&str, &str>, k: &str) -> u64 {
    kw.get(k)
        .unwrap_or_else(|| panic!("missing {k}="))
        .parse()
        .expect("a number")
}

fn text(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// Bytes of a token, with `\xNN` escapes.
fn bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = s.as_bytes();
    while let Some((&c, tail)) = rest.split_first() {
        if c == b'\\' && tail.len() >= 3 && tail[0] == b'x' {
            out.push(u8::from_str_radix(std::str::from_utf8(&tail[1..3]).unwrap(), 16).unwrap());
            rest = &tail[3..];
        } else {
            out.push(c);
            rest = tail;
        }
    }
    out
}

fn key_error(e: &KeyError) -> String {
    match e {
        KeyError::Locked { key, lock } => format!("locked {} by txn {}", text(key), lock.start_ts),
        KeyError::WriteConflict { key, conflict_ts } => {
            format!("write conflict on {} at {conflict_ts}", text(key))
        }
        KeyError::RolledBack { key } => format!("rolled back on {}", text(key)),
        KeyError::Committed { key, commit_ts } => {
            format!("committed on {} at {commit_ts}", text(key))
        }
        KeyError::LockNotFound { key } => format!("lock not found on {}", text(key)),
        KeyError::AlreadyExists { key } => format!("already exists {}", text(key)),
    }
}

fn errors(errs: &[KeyError]) -> String {
    if errs.is_empty() {
        "ok".into()
    } else {
        errs.iter().map(key_error).collect::<Vec<_>>().join(", ")
    }
}

fn run(engine: &Engine, line: &str, out: &mut String) {
    let (pos, kw) = args(line);
    let snapshot = engine.db.snapshot();
    let mvcc = Mvcc {
        snapshot: &snapshot,
        data: &engine.data,
        locks: &engine.locks,
    };
    let mut batch = engine.db.batch();
    let mut stats = StatsDelta::default();
    let keys = |from: usize| pos[from..].iter().map(|k| bytes(k)).collect::<Vec<_>>();
    match pos[0] {
        "prewrite" | "1pc" => {
            let mutations = pos[1..]
                .iter()
                .filter(|m| !m.starts_with("read:"))
                .map(|m| {
                    let (op, rest) = m.split_once(':').expect("op:key");
                    match op {
                        "put" => {
                            let (k, v) = rest.split_once('=').expect("put:k=v");
                            Mutation {
                                key: bytes(k),
                                op: Op::Put(bytes(v)),
                            }
                        }
                        "insert" => {
                            let (k, v) = rest.split_once('=').expect("insert:k=v");
                            Mutation {
                                key: bytes(k),
                                op: Op::Insert(bytes(v)),
                            }
                        }
                        "del" => Mutation {
                            key: bytes(rest),
                            op: Op::Delete,
                        },
                        "lock" => Mutation {
                            key: bytes(rest),
                            op: Op::Lock,
                        },
                        _ => panic!("unknown op {op}"),
                    }
                })
                .collect::<Vec<_>>();
            let primary = &bytes(kw["primary"]);
            let start = num(&kw, "start");
            let read = kw.get("read").map_or(start, |r| r.parse().unwrap());
            let r = if pos[0] == "1pc" {
                let reads = pos[1..]
                    .iter()
                    .filter_map(|m| m.strip_prefix("read:"))
                    .map(|span| {
                        let (from, to) = span.split_once("..").expect("read:FROM..TO");
                        (bytes(from), bytes(to))
                    })
                    .collect::<Vec<_>>();
                mvcc.one_phase_commit(
                    &mut batch,
                    &mut stats,
                    &mutations,
                    &reads,
                    TxnMeta {
                        start_ts: start,
                        read_ts: read,
                        primary,
                    },
                    num(&kw, "commit"),
                )
            } else {
                mvcc.prewrite(
                    &mut batch,
                    &mut stats,
                    &mutations,
                    TxnMeta {
                        start_ts: start,
                        read_ts: read,
                        primary,
                    },
                    num(&kw, "expiry"),
                )
            };
            writeln!(out, "{}", errors(r.unwrap().err().as_slice())).unwrap();
        }
        "lock" => {
            let start = num(&kw, "start");
            let read = kw.get("read").map_or(start, |r| r.parse().unwrap());
            let primary = &bytes(kw["primary"]);
            let txn = TxnMeta {
                start_ts: start,
                read_ts: read,
                primary,
            };
            let r =
                mvcc.pessimistic_lock(&mut batch, &mut stats, &keys(1), txn, num(&kw, "expiry"));
            match r.unwrap() {
                Ok(None) => writeln!(out, "locked").unwrap(),
                Ok(Some(ts)) => writeln!(out, "locked; newer version at {ts}").unwrap(),
                Err(e) => writeln!(out, "{}", key_error(&e)).unwrap(),
            }
        }
        "heartbeat" => {
            let r = mvcc.heartbeat(
                &mut batch,
                &bytes(kw["primary"]),
                num(&kw, "start"),
                num(&kw, "expiry"),
            );
            writeln!(out, "{:?}", r.unwrap()).unwrap();
        }
        "commit" => {
            let r = mvcc.commit(
                &mut batch,
                &mut stats,
                &keys(1),
                num(&kw, "start"),
                num(&kw, "commit"),
            );
            writeln!(out, "{}", errors(&r.unwrap())).unwrap();
        }
        "rollback" => {
            let r = mvcc.rollback(&mut batch, &mut stats, &keys(1), num(&kw, "start"));
            writeln!(out, "{}", errors(&r.unwrap())).unwrap();
        }
        "check" => {
            let rollback = pos.contains(&"rollback");
            let rollback = rollback.then(|| RollbackExpired {
                now_ms: num(&kw, "now"),
                gc_threshold: kw
                    .get("threshold")
                    .map_or(0, |t| t.parse().expect("a number")),
            });
            let r = mvcc.check_txn_status(
                &mut batch,
                &mut stats,
                &bytes(kw["primary"]),
                num(&kw, "start"),
                rollback,
            );
            writeln!(out, "{:?}", r.unwrap()).unwrap();
        }
        "get" => match mvcc.get(&bytes(pos[1]), num(&kw, "ts")).unwrap() {
            Ok(v) => writeln!(out, "{}", v.map_or("<none>".into(), |v| text(&v))).unwrap(),
            Err(l) => writeln!(
                out,
                "locked by txn {} (primary {})",
                l.lock.start_ts,
                text(&l.lock.primary)
            )
            .unwrap(),
        },
        "scan" => {
            let limit = kw.get("limit").map_or(usize::MAX, |l| l.parse().unwrap());
            let r = mvcc
                .scan(&bytes(pos[1]), &bytes(pos[2]), num(&kw, "ts"), limit)
                .unwrap();
            for (k, v) in &r.rows {
                writeln!(out, "{} = {}", text(k), text(v)).unwrap();
            }
            if let Some(resume) = &r.resume {
                writeln!(out, "resume at {}", text(resume)).unwrap();
            }
            for l in &r.locks {
                writeln!(out, "locked: {} by txn {}", text(&l.key), l.lock.start_ts).unwrap();
            }
        }
        "gc" => {
            let r = kv::mvcc::gc_span(
                &snapshot,
                &engine.data,
                &mut batch,
                &mut stats,
                &bytes(pos[1]),
                &bytes(pos[2]),
                num(&kw, "safe"),
            );
            r.unwrap();
            writeln!(out, "gc below {}", num(&kw, "safe")).unwrap();
        }
        "dump" => dump(engine, out),
        other => panic!("unknown command {other}"),
    }
    batch.commit().unwrap();
    if stats != StatsDelta::default() && pos[0] != "dump" {
        writeln!(
            out,
            "stats: {:+} versions, {:+} locks",
            stats.versions, stats.locks
        )
        .unwrap();
    }
}

fn dump(engine: &Engine, out: &mut String) {
    for guard in engine.data.iter() {
        let (k, v) = guard.into_inner().unwrap();
        let (key, rest) = kv::keys::decode_bytes(&k).unwrap();
        let ts = !u64::from_be_bytes(rest.try_into().unwrap());
        let r = Record::decode(&v).unwrap();
        writeln!(
            out,
            "data {}@{ts}: {:?} start={} {}",
            text(&key),
            r.kind,
            r.start_ts,
            text(&r.value)
        )
        .unwrap();
    }
    for guard in engine.locks.iter() {
        let (k, v) = guard.into_inner().unwrap();
        let l = Lock::decode(&v).unwrap();
        writeln!(
            out,
            "lock {}: {:?} start={} primary={} expiry={} {}",
            text(&k),
            l.kind,
            l.start_ts,
            text(&l.primary),
            l.expiry_ms,
            l.value.as_deref().map(text).unwrap_or_default()
        )
        .unwrap();
    }
}

fn run_file(path: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        dir.path(),
        EngineOptions {
            unsafe_no_fsync: true,
            ..Default::default()
        },
    )
    .unwrap();
    let input = std::fs::read_to_string(path).unwrap();
    let mut expected_file = String::new();
    let mut actual_file = String::new();
    let mut lines = input.lines().peekable();
    while lines.peek().is_some() {
        let mut block = String::new();
        // Comments and blank lines between records pass through.
        while let Some(l) = lines.peek() {
            if l.trim().is_empty() || l.starts_with('#') {
                block.push_str(l);
                block.push('\n');
                lines.next();
            } else {
                break;
            }
        }
        expected_file.push_str(&block);
        actual_file.push_str(&block);
        let mut commands = Vec::new();
        for l in lines.by_ref() {
            if l == "----" {
                break;
            }
            commands.push(l.to_string());
        }
        if commands.is_empty() {
            continue;
        }
        let mut expected = String::new();
        for l in lines.by_ref() {
            if l.is_empty() {
                break;
            }
            expected.push_str(l);
            expected.push('\n');
        }
        let mut actual = String::new();
        for c in &commands {
            run(&engine, c, &mut actual);
        }
        let header = format!("{}\n----\n", commands.join("\n"));
        expected_file.push_str(&format!("{header}{expected}\n"));
        actual_file.push_str(&format!("{header}{actual}\n"));
    }
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(path, actual_file.trim_end().to_string() + "\n").unwrap();
    } else {
        assert_eq!(
            expected_file.trim_end(),
            actual_file.trim_end(),
            "golden mismatch in {}; rerun with UPDATE_GOLDEN=1 and review the diff",
            path.display()
        );
    }
}

#[test]
fn golden() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/mvcc");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden files in {}", dir.display());
    for f in files {
        run_file(&f);
    }
}
