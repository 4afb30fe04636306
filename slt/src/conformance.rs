//! The harness settings the SQLite sqllogictest corpus needs (`../shared/conformance/`), and
//! a runner that keeps going past failed records and counts them per file.
//!
//! Settings, as the corpus README lists them and PostgreSQL 15's baseline was measured with:
//!
//! 1. `skipif X # comment` / `onlyif X # comment` are reduced to their first two words;
//! 2. `onlyif`/`skipif` + `halt` pairs are resolved before parsing: the file stops there if
//!    the condition holds for our labels, else both lines go;
//! 3. `control resultmode valuewise` is run first (expected results are one value per line);
//! 4. the hash threshold is 8 (results of more values are compared by their MD5 hash);
//! 5. the label `postgresql` is added to the engine's own name.
//!
//! Values are compared in the server's own text output (the baseline's "M1" mode).

use std::path::Path;
use std::time::Duration;

use sqllogictest::{DefaultColumnType, Record, Runner};

use crate::{POSTGRESQL, Postgres};

/// How long one record may run before it counts as failed.
const RECORD_TIMEOUT: Duration = Duration::from_secs(60);

/// Per-file counts, in the columns of PG15-BASELINE.md.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Statements and queries in the file.
    pub records: usize,
    /// Records executed.
    pub run: usize,
    pub passed: usize,
    pub failed: usize,
    /// Records excluded by `skipif`/`onlyif`.
    pub skipped: usize,
    /// Records after a `halt` that applies.
    pub not_run: usize,
}

fn is_record(line: &str) -> bool {
    line.starts_with("statement ") || line.starts_with("query ")
}

/// Reduces a condition line to its first two words (setting 1); other lines are unchanged.
fn strip_condition(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [w @ ("skipif" | "onlyif"), label, ..] => format!("{w} {label}"),
        _ => line.to_string(),
    }
}

/// Whether a condition line excludes records for an engine with `labels`.
fn condition_skips(line: &str, labels: &[&str]) -> Option<bool> {
    match line.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["onlyif", label] => Some(!labels.contains(label)),
        ["skipif", label] => Some(labels.contains(label)),
        _ => None,
    }
}

/// Applies settings 1–3 to a file's text: returns the script to parse and how many records a
/// resolved halt cut off.
pub fn prepare(text: &str, labels: &[&str]) -> (String, usize) {
    let lines: Vec<String> = text.lines().map(strip_condition).collect();
    let mut out = String::from("control resultmode valuewise\n\n");
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        if let Some(skips) = condition_skips(line, labels)
            && lines.get(i + 1).is_some_and(|l| l.trim() == "halt")
        {
            if !skips {
                let not_run = lines[i + 2..].iter().filter(|l| is_record(l)).count();
                return (out, not_run);
            }
            i += 2;
            continue;
        }
        if line.trim() == "halt" {
            let not_run = lines[i + 1..].iter().filter(|l| is_record(l)).count();
            return (out, not_run);
        }
        out.push_str(line);
        out.push('\n');
        i += 1;
    }
    (out, 0)
}

/// The conditions of a statement or query record.
fn conditions(record: &Record<DefaultColumnType>) -> Option<&[sqllogictest::Condition]> {
    match record {
        Record::Statement { conditions, .. } | Record::Query { conditions, .. } => Some(conditions),
        _ => None,
    }
}

fn skipped(conds: &[sqllogictest::Condition], labels: &[&str]) -> bool {
    conds.iter().any(|c| match c {
        sqllogictest::Condition::OnlyIf { label } => !labels.contains(&label.as_str()),
        sqllogictest::Condition::SkipIf { label } => labels.contains(&label.as_str()),
    })
}

/// Runs one corpus file against `url` with the corpus settings, on one connection, counting
/// each record. `verbose` prints each failure.
pub async fn run_file(url: &str, path: &Path, verbose: bool) -> Result<Counts, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let engine = {
        let mut db = Postgres::connect(url).await.map_err(|e| e.to_string())?;
        let name = db.engine;
        sqllogictest::AsyncDB::shutdown(&mut db).await;
        name
    };
    let labels = [POSTGRESQL, engine];
    let (script, not_run) = prepare(&text, &labels);
    let records =
        sqllogictest::parse_with_name::<DefaultColumnType>(&script, path.display().to_string())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    let url = url.to_string();
    let mut runner = Runner::new(move || {
        let url = url.clone();
        async move { Postgres::connect(&url).await }
    });
    runner.with_hash_threshold(8);
    runner.add_label(POSTGRESQL);
    let mut counts = Counts {
        not_run,
        ..Counts::default()
    };
    for record in records {
        let Some(conds) = conditions(&record) else {
            // Control records, hash-threshold lines: run, not counted.
            let _ = runner.run_async(record).await;
            continue;
        };
        counts.records += 1;
        if skipped(conds, &labels) {
            counts.skipped += 1;
            continue;
        }
        counts.run += 1;
        match tokio::time::timeout(RECORD_TIMEOUT, runner.run_async(record)).await {
            Ok(Ok(_)) => counts.passed += 1,
            Ok(Err(e)) => {
                counts.failed += 1;
                if verbose {
                    eprintln!("{}", e.display(false));
                }
            }
            Err(_) => {
                counts.failed += 1;
                if verbose {
                    eprintln!("{}: a record timed out", path.display());
                }
            }
        }
    }
    counts.records += counts.not_run;
    runner.shutdown_async().await;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_lose_their_comments() {
        assert_eq!(
            strip_condition("skipif mysql # not compatible"),
            "skipif mysql"
        );
        assert_eq!(strip_condition("onlyif sqlite"), "onlyif sqlite");
        assert_eq!(strip_condition("query I rowsort"), "query I rowsort");
    }

    #[test]
    fn halts_are_resolved_for_our_labels() {
        let labels = [POSTGRESQL, "tinkerdb"];
        let text = "onlyif mssql # x\nhalt\n\nstatement ok\nSELECT 1\n\nskipif postgresql\nhalt\n\nquery I\nSELECT 1\n----\n1\n\nstatement ok\nSELECT 2\n";
        let (script, not_run) = prepare(text, &labels);
        assert!(script.starts_with("control resultmode valuewise"));
        assert!(script.contains("SELECT 1"));
        assert!(!script.contains("mssql"));
        assert!(!script.contains("halt"));
        assert_eq!(not_run, 0);
        let text = "statement ok\nSELECT 1\n\nonlyif postgresql\nhalt\n\nstatement ok\nSELECT 2\n\nquery I\nSELECT 3\n----\n3\n";
        let (script, not_run) = prepare(text, &labels);
        assert!(script.contains("SELECT 1") && !script.contains("SELECT 2"));
        assert_eq!(not_run, 2);
    }

    #[test]
    fn skipped_records_follow_the_labels() {
        let labels = [POSTGRESQL, "tinkerdb"];
        let skip = |label: &str| {
            vec![sqllogictest::Condition::SkipIf {
                label: label.into(),
            }]
        };
        let only = |label: &str| {
            vec![sqllogictest::Condition::OnlyIf {
                label: label.into(),
            }]
        };
        assert!(skipped(&skip("postgresql"), &labels));
        assert!(!skipped(&skip("mysql"), &labels));
        assert!(skipped(&only("mysql"), &labels));
        assert!(!skipped(&only("postgresql"), &labels));
    }
}
