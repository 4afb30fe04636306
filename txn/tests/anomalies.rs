//! The anomaly catalogue, as data-driven scripts against a real store (two Raft groups): each
//! file under `testdata/anomalies/` interleaves the statements of named transactions (`a:`,
//! `b:`…) and records what each one saw, per isolation level. Regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p txn --test anomalies` and review the diff.
//!
//! Lines: `setup k=v ...` (one committed transaction), `x: begin serializable|snapshot`,
//! `x: get k`, `x: scan from to`, `x: put k v`, `x: del k`, `x: commit`, `x: rollback`,
//! `x: commit-primary-only` (the coordinator stops right after its commit point).
//! Keys are single letters: `a`–`m` live in range 2, `n`–`z` in range 3 (split at `n`).

mod common;

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use kv::keys::Key;
use txn::{Config, Db, Error, IsolationLevel, Transaction, TxnOptions};

fn key(name: &str) -> Vec<u8> {
    Key::Sql {
        table_id: if name < "n" { 8 } else { 9 },
        index_id: 1,
        columns: name.as_bytes().to_vec(),
    }
    .encode()
}

fn name(raw: &[u8]) -> String {
    match Key::decode(raw) {
        Some(Key::Sql {
            columns: suffix, ..
        }) => String::from_utf8_lossy(&suffix).into(),
        _ => format!("{raw:?}"),
    }
}

fn outcome(e: &Error) -> &'static str {
    match e {
        Error::Serialization(_) => "40001 serialization failure",
        Error::Deadlock(_) => "40P01 deadlock",
        Error::LockTimeout(_) => "55P03 lock timeout",
        _ => "other error",
    }
}

async fn step(db: &Db, txns: &mut HashMap<String, Transaction>, line: &str, out: &mut String) {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words[0] == "setup" {
        let mut t = db.begin(TxnOptions::default()).await.unwrap();
        for kv in &words[1..] {
            let (k, v) = kv.split_once('=').expect("k=v");
            t.put(key(k), v.as_bytes().to_vec()).unwrap();
        }
        t.commit().await.unwrap();
        return;
    }
    let actor = words[0].trim_end_matches(':').to_string();
    let say = |out: &mut String, s: String| writeln!(out, "{actor}: {s}").unwrap();
    match words[1] {
        "begin" => {
            let isolation = match words.get(2) {
                Some(&"snapshot") => IsolationLevel::Snapshot,
                _ => IsolationLevel::Serializable,
            };
            let t = db
                .begin(TxnOptions {
                    isolation,
                    ..Default::default()
                })
                .await
                .unwrap();
            txns.insert(actor, t);
        }
        "get" => {
            let v = txns
                .get_mut(&actor)
                .expect("begun")
                .get(&key(words[2]))
                .await
                .unwrap();
            say(
                out,
                format!(
                    "{} = {}",
                    words[2],
                    v.map_or("<none>".into(), |v| String::from_utf8_lossy(&v)
                        .into_owned())
                ),
            );
        }
        "scan" => {
            let t = txns.get_mut(&actor).expect("begun");
            let rows = t.scan(&key(words[2]), &key(words[3]), 100).await.unwrap();
            let rows: Vec<String> = rows
                .iter()
                .map(|(k, v)| format!("{}={}", name(k), String::from_utf8_lossy(v)))
                .collect();
            say(
                out,
                format!("scan [{}, {}) = [{}]", words[2], words[3], rows.join(" ")),
            );
        }
        "put" => txns
            .get_mut(&actor)
            .expect("begun")
            .put(key(words[2]), words[3].as_bytes().to_vec())
            .unwrap(),
        "del" => txns
            .get_mut(&actor)
            .expect("begun")
            .delete(key(words[2]))
            .unwrap(),
        "commit" => match txns.remove(&actor).expect("begun").commit().await {
            Ok(()) => say(out, "committed".into()),
            Err(e) => say(out, outcome(&e).into()),
        },
        // The coordinator stops right after the commit point: the primary is committed, the
        // other keys keep their locks (old secondary locks) until someone resolves them.
        "commit-primary-only" => {
            let t = txns.remove(&actor).expect("begun");
            fail::cfg("txn::after_commit_primary", "return").unwrap();
            let result = t.commit().await;
            fail::remove("txn::after_commit_primary");
            match result {
                Err(txn::Error::Internal(m)) if m.contains("after_commit_primary") => {
                    say(out, "committed the primary only".into())
                }
                Ok(()) => say(out, "committed (in one phase)".into()),
                Err(e) => say(out, outcome(&e).into()),
            }
        }
        "rollback" => txns
            .remove(&actor)
            .expect("begun")
            .rollback()
            .await
            .unwrap(),
        other => panic!("unknown step {other}"),
    }
}

async fn run_file(path: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let (_store, db) = common::open(dir.path(), Config::default()).await;
    db.split_at(&key("n")).await.unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let mut txns = HashMap::new();
    let (mut expected, mut actual) = (String::new(), String::new());
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            expected.push_str(line);
            expected.push('\n');
            actual.push_str(line);
            actual.push('\n');
            continue;
        }
        let mut steps = vec![line];
        for l in lines.by_ref() {
            if l == "----" {
                break;
            }
            steps.push(l);
        }
        let mut want = String::new();
        while let Some(l) = lines.next_if(|l| !l.is_empty()) {
            want.push_str(l);
            want.push('\n');
        }
        let mut got = String::new();
        for s in &steps {
            step(&db, &mut txns, s, &mut got).await;
        }
        let header = format!("{}\n----\n", steps.join("\n"));
        expected.push_str(&format!("{header}{want}"));
        actual.push_str(&format!("{header}{got}"));
    }
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(path, &actual).unwrap();
    } else {
        assert_eq!(
            expected,
            actual,
            "golden mismatch in {}; rerun with UPDATE_GOLDEN=1",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomalies() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/anomalies");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        run_file(&f).await;
    }
}
