//! `tinkerdb debug unsafe-recover`: the operator's last resort when ranges lost their quorum.
//!
//! Run on a stopped node's data directory, it removes the given dead nodes from the Raft
//! membership of every range on the node (`kv::Recovery`), so that the survivors elect a leader
//! on restart. What only the dead nodes held is lost; README's cluster section says when to use
//! it.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Parses `--dead-nodes 2,3`.
pub fn parse_nodes(list: &str) -> Result<BTreeSet<u64>> {
    let mut nodes = BTreeSet::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id: u64 = part
            .parse()
            .with_context(|| format!("--dead-nodes: {part:?} is not a node id"))?;
        nodes.insert(id);
    }
    if nodes.is_empty() {
        bail!("--dead-nodes names no node");
    }
    Ok(nodes)
}

/// Lists the ranges of the node in `dir` whose membership includes a `dead` node, asks for
/// confirmation on `input` unless `yes`, and rewrites them. Writes what it does to `out`.
pub fn unsafe_recover(
    dir: &Path,
    dead: &BTreeSet<u64>,
    yes: bool,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<()> {
    let recovery = kv::Recovery::open(dir).map_err(|e| match e {
        kv::Error::DirectoryLocked(_) => anyhow::anyhow!(
            "the data directory {} is in use by a running tinkerdb process: stop the node first",
            dir.display()
        ),
        e => anyhow::anyhow!("opening the data directory {}: {e}", dir.display()),
    })?;
    let plan = recovery.plan(dead)?;
    if plan.is_empty() {
        writeln!(
            out,
            "node {}: no range has a replica of {dead:?} in its membership; nothing to change",
            recovery.node_id()
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "node {}: removing nodes {dead:?} from the membership of {} ranges:",
        recovery.node_id(),
        plan.len()
    )?;
    let print = |out: &mut dyn Write, changed: &[kv::RecoveredRange]| -> Result<()> {
        for r in changed {
            writeln!(
                out,
                "range {} [{}, {}): voters {:?} -> {:?}",
                r.desc.range_id,
                kv::keys::Pretty(&r.desc.start),
                kv::keys::Pretty(&r.desc.end),
                r.old_voters,
                r.new_voters
            )?;
        }
        Ok(())
    };
    print(out, &plan)?;
    if !yes {
        write!(
            out,
            "Writes acknowledged only by the dead nodes are lost, and the dead nodes must never \
             restart on their data. Type \"yes\" to go on: "
        )?;
        out.flush()?;
        let mut answer = String::new();
        input.read_line(&mut answer)?;
        if answer.trim() != "yes" {
            writeln!(out)?;
            bail!("not confirmed: nothing changed");
        }
    }
    let done = recovery.apply(dead)?;
    writeln!(out, "changed:")?;
    print(out, &done)?;
    writeln!(
        out,
        "restart the node: its ranges elect a leader among the surviving voters"
    )?;
    Ok(())
}
