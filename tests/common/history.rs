//! A list-append history and its checker, for workloads run over pgwire against a cluster.
//!
//! Each key holds a list of unique elements; a transaction reads lists and appends elements.
//! Because every element is unique and lists only grow, the final lists order every append to
//! a key, and each read says which appends it saw, so the dependencies between committed
//! transactions can be inferred as Elle does for list-append histories:
//! - write-write: the writer of an element precedes the writer of the next one in the list;
//! - write-read: the writer of the last element a read saw precedes the reader;
//! - read-write: a reader precedes the writer of the first element it did not see.
//!
//! A serializable history has no cycle in that graph. The checker also demands that every
//! acknowledged append is in its final list exactly once, that no append of a transaction known
//! to have failed is, and that every committed read is a prefix of its key's final list.

use std::collections::{BTreeMap, HashMap};

/// What is known of a transaction's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// COMMIT was acknowledged.
    Committed,
    /// It certainly did not commit (an error before COMMIT, or 40001 at it).
    Failed,
    /// COMMIT was sent and no definite answer came back (40003, a lost connection, a timeout).
    Unknown,
}

/// One operation of a transaction, with what it observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read key `key` and saw `list`.
    Read { key: u32, list: Vec<u64> },
    /// Appended `element` to key `key`.
    Append { key: u32, element: u64 },
}

/// One transaction of the history.
#[derive(Clone, Debug)]
pub struct Txn {
    /// Unique id (also the prefix of its elements, so failures are easy to trace).
    pub id: u64,
    /// Its operations in order.
    pub ops: Vec<Op>,
    /// What became of it.
    pub outcome: Outcome,
}

/// Checks `history` against the final lists `finals` (read after the workload, in one
/// committed transaction). Returns the number of transactions taken as committed.
pub fn check(history: &[Txn], finals: &BTreeMap<u32, Vec<u64>>) -> Result<usize, String> {
    let mut writer: HashMap<u64, usize> = HashMap::new();
    for (i, t) in history.iter().enumerate() {
        for op in &t.ops {
            if let Op::Append { element, .. } = op
                && writer.insert(*element, i).is_some()
            {
                return Err(format!("element {element} appended twice"));
            }
        }
    }
    // Where each element sits in its final list.
    let mut position: HashMap<u64, (u32, usize)> = HashMap::new();
    for (&key, list) in finals {
        for (at, &e) in list.iter().enumerate() {
            if position.insert(e, (key, at)).is_some() {
                return Err(format!("element {e} appears twice in the final lists"));
            }
            let Some(&w) = writer.get(&e) else {
                return Err(format!("element {e} of key {key} was never appended"));
            };
            if history[w].outcome == Outcome::Failed {
                return Err(format!(
                    "element {e} of key {key} was written by txn {}, which failed",
                    history[w].id
                ));
            }
        }
    }
    // A transaction counts as committed if acknowledged, or if unknown and any of its appends
    // took effect.
    let committed: Vec<bool> = history
        .iter()
        .map(|t| match t.outcome {
            Outcome::Committed => true,
            Outcome::Failed => false,
            Outcome::Unknown => t.ops.iter().any(|op| match op {
                Op::Append { element, .. } => position.contains_key(element),
                Op::Read { .. } => false,
            }),
        })
        .collect();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); history.len()];
    for (i, t) in history.iter().enumerate() {
        if !committed[i] {
            continue;
        }
        for op in &t.ops {
            match op {
                Op::Append { key, element } => match position.get(element) {
                    Some((k, _)) if k == key => {}
                    _ if t.outcome == Outcome::Committed => {
                        return Err(format!(
                            "acknowledged append of {element} to key {key} by txn {} is lost",
                            t.id
                        ));
                    }
                    _ => {
                        return Err(format!(
                            "txn {} committed only some of its appends ({element} to key {key} missing)",
                            t.id
                        ));
                    }
                },
                Op::Read { key, list } => {
                    let empty = Vec::new();
                    let fin = finals.get(key).unwrap_or(&empty);
                    if !fin.starts_with(list) {
                        return Err(format!(
                            "txn {} read key {key} as {list:?}, not a prefix of its final list {fin:?}",
                            t.id
                        ));
                    }
                    if let Some(last) = list.last() {
                        edges[writer[last]].push(i);
                    }
                    if let Some(next) = fin.get(list.len()) {
                        edges[i].push(writer[next]);
                    }
                }
            }
        }
    }
    for list in finals.values() {
        for pair in list.windows(2) {
            edges[writer[&pair[0]]].push(writer[&pair[1]]);
        }
    }
    for (from, tos) in edges.iter_mut().enumerate() {
        tos.retain(|&to| to != from);
    }
    if let Some(cycle) = find_cycle(&edges) {
        let ids: Vec<u64> = cycle.iter().map(|&i| history[i].id).collect();
        let txns: Vec<&Txn> = cycle.iter().map(|&i| &history[i]).collect();
        return Err(format!("dependency cycle through txns {ids:?}: {txns:#?}"));
    }
    Ok(committed.iter().filter(|c| **c).count())
}

/// A cycle of the directed graph `edges` (node → successors), if it has one.
fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; edges.len()];
    for root in 0..edges.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // Iterative DFS: the path, and for each node on it the next successor to visit.
        let mut path = vec![(root, 0usize)];
        mark[root] = Mark::OnPath;
        while let Some((node, next)) = path.last_mut() {
            let node = *node;
            if let Some(&succ) = edges[node].get(*next) {
                *next += 1;
                match mark[succ] {
                    Mark::New => {
                        mark[succ] = Mark::OnPath;
                        path.push((succ, 0));
                    }
                    Mark::OnPath => {
                        let start = path.iter().position(|(n, _)| *n == succ).expect("on path");
                        return Some(path[start..].iter().map(|(n, _)| *n).collect());
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                path.pop();
            }
        }
    }
    None
}
