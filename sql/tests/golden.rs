//! Data-driven golden tests over an in-memory engine.
//!
//! Each file under `testdata/<suite>/` is a sequence of blocks: input lines, a `----` line, then
//! the expected output up to a blank line. Every input line is SQL run in one session (a line
//! with several `;`-separated statements runs as one batch, like a simple-protocol Query); a
//! `name: ` prefix runs it in the session of that name (sessions are created on first use, the
//! unprefixed one is `default`). Lines starting with `#` are comments. Run with
//! `UPDATE_GOLDEN=1` to rewrite the expected outputs, then review the diff.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use sql::{Engine, ExecResult, Session};

fn render(result: sql::Result<ExecResult>, out: &mut String) {
    match result {
        Ok(ExecResult::Rows { columns, rows }) => {
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            let _ = writeln!(out, "{}", names.join(" | "));
            for row in rows {
                let vals: Vec<String> = row.iter().map(|v| v.to_string()).collect();
                let _ = writeln!(out, "{}", vals.join(" | "));
            }
        }
        Ok(ExecResult::Command { tag, rows: Some(n) }) => {
            let _ = writeln!(out, "{tag} {n}");
        }
        Ok(ExecResult::Command { tag, rows: None }) => {
            let _ = writeln!(out, "{tag}");
        }
        Ok(ExecResult::Empty) => out.push_str("EMPTY\n"),
        Err(e) => {
            let kind = format!("{e:?}");
            let kind = kind
                .split(['(', ' '])
                .next()
                .unwrap_or_default()
                .to_string();
            // The messages of these come from the store, which differs between engines.
            if matches!(
                e,
                sql::Error::Serialization(_)
                    | sql::Error::CompletionUnknown(_)
                    | sql::Error::Internal(_)
            ) {
                let _ = writeln!(out, "error {kind}");
            } else {
                let _ = writeln!(out, "error {kind}: {e}");
            }
        }
    }
}

/// Splits `a: SELECT 1` into the session name and the SQL.
fn split_session(line: &str) -> (&str, &str) {
    if let Some((name, rest)) = line.split_once(": ")
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return (name, rest);
    }
    ("default", line)
}

async fn run_file(path: &Path, engine: Arc<Engine>) -> String {
    let text = std::fs::read_to_string(path).expect("read test file");
    let mut sessions: BTreeMap<String, Session> = BTreeMap::new();
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with('#') || line.trim().is_empty() {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut inputs = vec![line];
        for l in lines.by_ref() {
            if l == "----" {
                break;
            }
            inputs.push(l);
        }
        // Skip the old expected output.
        for l in lines.by_ref() {
            if l.is_empty() {
                break;
            }
        }
        let mut result = String::new();
        for input in &inputs {
            out.push_str(input);
            out.push('\n');
            let (name, sql) = split_session(input);
            let session = sessions.entry(name.to_string()).or_insert_with(|| {
                Session::new(engine.clone(), "root", "tinkerdb").expect("session")
            });
            match session.parse(sql) {
                Ok(stmts) => {
                    for r in session.execute_batch(&stmts).await {
                        render(r, &mut result);
                    }
                }
                Err(e) => render(Err(e), &mut result),
            }
        }
        out.push_str("----\n");
        out.push_str(&result);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// The engines a suite runs against.
#[derive(Clone, Copy)]
enum Store {
    /// The in-memory store of the sql crate.
    Memory,
    /// A single-node transactional store (kv + Raft on fjall) in a temporary directory.
    Txn,
}

/// Runs one file against a fresh engine of the given kind.
async fn run_with(path: &Path, store: Store) -> String {
    match store {
        Store::Memory => run_file(path, Engine::memory()).await,
        Store::Txn => {
            let dir = tempfile::tempdir().expect("tempdir");
            let db = txn::Db::open_local(dir.path())
                .await
                .expect("open local store");
            let out = run_file(path, Engine::new(db.clone())).await;
            db.shutdown().await.expect("shutdown");
            out
        }
    }
}

async fn run_suite(suite: &str, store: Store) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(suite);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata dir")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    // Expected outputs are written from the memory store; every store must match them.
    let update =
        std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") && matches!(store, Store::Memory);
    let mut failed = Vec::new();
    for path in paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
    {
        let want = std::fs::read_to_string(&path).expect("read");
        let got = run_with(&path, store).await;
        if update {
            std::fs::write(&path, &got).expect("write golden");
        } else if got.trim_end() != want.trim_end() {
            eprintln!("--- {} differs; got:\n{got}", path.display());
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "golden files differ (UPDATE_GOLDEN=1 to rewrite): {failed:?}"
    );
}

#[tokio::test]
async fn plan_golden() {
    run_suite("plan", Store::Memory).await;
}

#[tokio::test]
async fn exec_golden() {
    run_suite("exec", Store::Memory).await;
}

/// The same plans and results over the real transactional store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_golden_txn() {
    run_suite("plan", Store::Txn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_golden_txn() {
    run_suite("exec", Store::Txn).await;
}
