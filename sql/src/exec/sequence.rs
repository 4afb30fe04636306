//! Sequence values: `nextval`, `currval`, `setval` and `lastval`, and sequence DDL.
//!
//! Sequences are not transactional, as in PostgreSQL: a session takes values in a small
//! transaction of its own that reads and advances the sequence's counter (`catalog::sequence`)
//! and commits at once (retried on conflict), so concurrent sessions never get the same value
//! and a rolled-back statement leaves a gap. Each round trip takes a block of at least
//! [`BLOCK`] values (or the sequence's CACHE, if larger) that the session hands out in order; a
//! session that ends or whose block is dropped leaves the rest unused (gaps, never
//! duplicates). A block is dropped when the node's schema generation changes (the sequence
//! may have been dropped, created again or changed) and when the session calls `setval`.
//!
//! Sequence calls are evaluated row by row where an operator evaluates expressions with the
//! transaction at hand (`Expr::has_subquery` counts them, so projections and filters resolve
//! them per row through [`resolve`]); the session's state reaches them through the statement's
//! transaction ([`WithSequences`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use txn::IsolationLevel;

use super::eval::eval;
use crate::catalog::{self, Sequence};
use crate::plan::{Expr, Function};
use crate::store::{KvResult, KvTxn, Savepoint};
use crate::{Engine, Error, Result, Value};

/// The fewest values one round trip to a sequence's counter takes.
pub(crate) const BLOCK: i64 = 32;

/// How often a conflicting counter update is retried.
const RETRIES: usize = 20;

/// Values taken from one sequence and not yet handed out.
struct Block {
    generation: Option<u64>,
    values: VecDeque<i64>,
}

#[derive(Default)]
struct State {
    blocks: HashMap<String, Block>,
    current: HashMap<String, i64>,
    last: Option<i64>,
}

/// A session's sequence state: its blocks of values, `currval` per sequence and `lastval`.
pub(crate) struct SessionSequences {
    engine: Arc<Engine>,
    state: Mutex<State>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SessionSequences {
    pub(crate) fn new(engine: Arc<Engine>) -> SessionSequences {
        SessionSequences {
            engine,
            state: Mutex::default(),
        }
    }

    fn take_cached(&self, name: &str) -> Option<i64> {
        let generation = self.engine.schema.stable();
        let mut state = lock(&self.state);
        let block = state.blocks.get_mut(name)?;
        if generation.is_none() || block.generation != generation {
            state.blocks.remove(name);
            return None;
        }
        block.values.pop_front()
    }

    fn handed_out(&self, name: &str, value: i64) -> i64 {
        let mut state = lock(&self.state);
        state.current.insert(name.to_string(), value);
        state.last = Some(value);
        value
    }

    /// Runs `op` in a transaction of its own, retrying conflicts.
    async fn own_txn(&self, op: Op<'_>) -> Result<(u32, VecDeque<i64>)> {
        let mut attempt = 0;
        loop {
            let mut txn = self.engine.store.begin(txn::TxnOptions::default()).await?;
            let result = match op.run(txn.as_mut()).await {
                Ok(v) => txn.commit().await.map(|()| v).map_err(Error::from),
                Err(e) => {
                    let _ = txn.rollback().await;
                    Err(e)
                }
            };
            match result {
                Err(Error::Serialization(_)) if attempt < RETRIES => attempt += 1,
                r => return r,
            }
        }
    }

    /// nextval(name).
    pub(crate) async fn nextval(&self, name: &str) -> Result<i64> {
        if let Some(v) = self.take_cached(name) {
            return Ok(self.handed_out(name, v));
        }
        let generation = self.engine.schema.stable();
        let (_, mut values) = self.own_txn(Op::Reserve(name)).await?;
        let first = values
            .pop_front()
            .expect("a reservation holds at least one value");
        lock(&self.state)
            .blocks
            .insert(name.to_string(), Block { generation, values });
        Ok(self.handed_out(name, first))
    }

    /// currval(name): 55000 before this session's first nextval of the sequence.
    pub(crate) async fn currval(&self, name: &str) -> Result<i64> {
        if let Some(v) = lock(&self.state).current.get(name) {
            return Ok(*v);
        }
        self.own_txn(Op::Check(name)).await?;
        Err(Error::PrerequisiteState(format!(
            "currval of sequence \"{name}\" is not yet defined in this session"
        )))
    }

    /// lastval(): the value this session's last nextval returned.
    pub(crate) fn lastval(&self) -> Result<i64> {
        lock(&self.state).last.ok_or_else(|| {
            Error::PrerequisiteState("lastval is not yet defined in this session".into())
        })
    }

    /// setval(name, value, called): the next nextval returns the value after `value` (or
    /// `value` itself when not `called`).
    pub(crate) async fn setval(&self, name: &str, value: i64, called: bool) -> Result<i64> {
        self.own_txn(Op::Set(name, value, called)).await?;
        let mut state = lock(&self.state);
        state.blocks.remove(name);
        if called {
            state.current.insert(name.to_string(), value);
        }
        Ok(value)
    }

    /// Forgets the block of a sequence this session dropped or changed.
    pub(crate) fn forget(&self, name: &str) {
        lock(&self.state).blocks.remove(name);
    }
}

/// What a sequence function does in its own transaction.
#[derive(Clone, Copy)]
enum Op<'a> {
    /// Takes a block of values.
    Reserve(&'a str),
    /// Checks that the sequence exists.
    Check(&'a str),
    /// setval.
    Set(&'a str, i64, bool),
}

impl Op<'_> {
    /// Runs in `txn`: the sequence's id and the values taken (none but for `Reserve`).
    async fn run(self, txn: &mut dyn KvTxn) -> Result<(u32, VecDeque<i64>)> {
        let name = match self {
            Op::Reserve(n) | Op::Check(n) | Op::Set(n, ..) => n,
        };
        let seq = catalog::sequence::must_get_sequence(txn, name).await?;
        match self {
            Op::Reserve(_) => return Ok((seq.id, reserve(txn, &seq).await?)),
            Op::Check(_) => {}
            Op::Set(_, value, called) => {
                if value < seq.min || value > seq.max {
                    return Err(Error::OutOfRange(format!(
                        "setval: value {value} is out of bounds for sequence \"{name}\" ({}..{})",
                        seq.min, seq.max
                    )));
                }
                catalog::sequence::write_counter(txn, &seq, value, called)?;
            }
        }
        Ok((seq.id, VecDeque::new()))
    }
}

/// Takes the next values of `seq` (at least one; 2200H at a bound of a sequence that does not
/// cycle) and advances its counter past them.
async fn reserve(txn: &mut dyn KvTxn, seq: &Sequence) -> Result<VecDeque<i64>> {
    let (last, called) = catalog::sequence::read_counter(txn, seq).await?;
    let mut next = if called { seq.step(last) } else { Some(last) };
    let mut values = VecDeque::new();
    while let Some(v) = next {
        values.push_back(v);
        if values.len() as i64 >= seq.cache.max(BLOCK) {
            break;
        }
        next = seq.step(v);
    }
    let Some(&end) = values.back() else {
        return Err(seq.exhausted());
    };
    catalog::sequence::write_counter(txn, seq, end, true)?;
    Ok(values)
}

/// The statement's transaction with the session's sequence state.
pub(crate) struct WithSequences<'a> {
    txn: &'a mut dyn KvTxn,
    sequences: &'a SessionSequences,
}

impl<'a> WithSequences<'a> {
    pub(crate) fn new(txn: &'a mut dyn KvTxn, sequences: &'a SessionSequences) -> Self {
        WithSequences { txn, sequences }
    }
}

#[async_trait]
impl KvTxn for WithSequences<'_> {
    fn isolation(&self) -> IsolationLevel {
        self.txn.isolation()
    }
    fn read_ts(&self) -> txn::Timestamp {
        self.txn.read_ts()
    }
    async fn get(&mut self, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        self.txn.get(key).await
    }
    async fn get_many(&mut self, keys: &[Vec<u8>]) -> KvResult<Vec<Option<Vec<u8>>>> {
        self.txn.get_many(keys).await
    }
    async fn scan(
        &mut self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> KvResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.txn.scan(start, end, limit).await
    }
    fn statement_start(&mut self) {
        self.txn.statement_start()
    }
    async fn lock_keys(&mut self, keys: Vec<Vec<u8>>) -> KvResult<bool> {
        self.txn.lock_keys(keys).await
    }
    fn set_isolation(&mut self, isolation: IsolationLevel) -> bool {
        self.txn.set_isolation(isolation)
    }
    fn set_lock_timeout(&mut self, timeout: Option<std::time::Duration>) {
        self.txn.set_lock_timeout(timeout)
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()> {
        self.txn.put(key, value)
    }
    async fn put_new(&mut self, key: Vec<u8>, value: Vec<u8>) -> KvResult<()> {
        self.txn.put_new(key, value).await
    }
    fn delete(&mut self, key: Vec<u8>) -> KvResult<()> {
        self.txn.delete(key)
    }
    fn savepoint(&self) -> Savepoint {
        self.txn.savepoint()
    }
    async fn rollback_to(&mut self, savepoint: &Savepoint) -> KvResult<()> {
        self.txn.rollback_to(savepoint).await
    }
    async fn commit(self: Box<Self>) -> KvResult<()> {
        unreachable!("a statement's transaction is committed by its session")
    }
    async fn rollback(self: Box<Self>) -> KvResult<()> {
        unreachable!("a statement's transaction is rolled back by its session")
    }
    fn sequences(&self) -> Option<&SessionSequences> {
        Some(self.sequences)
    }
}

/// Whether `e` calls a sequence function outside of subquery plans.
pub(crate) fn has_sequence_call(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |e| found |= matches!(e, Expr::Function(f, _) if f.is_sequence()));
    found
}

/// Replaces each sequence call of `e` (innermost first) by its value over `row`.
pub(crate) async fn resolve(mut e: Expr, row: &[Value], txn: &mut dyn KvTxn) -> Result<Expr> {
    while has_sequence_call(&e) {
        let mut calls = Vec::new();
        collect(&e, &mut calls);
        let mut values = Vec::with_capacity(calls.len());
        for (f, args) in calls {
            let args = args
                .iter()
                .map(|a| eval(a, row))
                .collect::<Result<Vec<_>>>()?;
            values.push(Expr::Constant(call(txn, f, args).await?));
        }
        let mut values = values.into_iter();
        e = replace(e, &mut values);
    }
    Ok(e)
}

/// The sequence calls of `e` whose arguments hold none, in the order [`replace`] meets them.
fn collect(e: &Expr, out: &mut Vec<(Function, Vec<Expr>)>) {
    match e {
        Expr::Function(f, args) if f.is_sequence() && !args.iter().any(has_sequence_call) => {
            out.push((*f, args.clone()))
        }
        e => e.children().into_iter().for_each(|c| collect(c, out)),
    }
}

fn replace(e: Expr, values: &mut impl Iterator<Item = Expr>) -> Expr {
    match e {
        Expr::Function(f, args) if f.is_sequence() && !args.iter().any(has_sequence_call) => values
            .next()
            .expect("one value was computed for each call collected"),
        e => e.map_children(&mut |c| replace(c, values)),
    }
}

/// Calls one sequence function.
async fn call(txn: &mut dyn KvTxn, f: Function, args: Vec<Value>) -> Result<Value> {
    let Some(seqs) = txn.sequences() else {
        return Err(Error::NotSupported(format!(
            "{} is not supported in this context",
            f.name()
        )));
    };
    let name = |v: &Value| match v {
        Value::Text(s) => Ok(s.clone()),
        _ => Err(Error::Internal("sequence name is not text".into())),
    };
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let v = match (f, args.as_slice()) {
        (Function::Nextval, [n]) => seqs.nextval(&name(n)?).await?,
        (Function::Currval, [n]) => seqs.currval(&name(n)?).await?,
        (Function::Lastval, []) => seqs.lastval()?,
        (Function::Setval, [n, Value::Int(v)]) => seqs.setval(&name(n)?, *v, true).await?,
        (Function::Setval, [n, Value::Int(v), Value::Bool(c)]) => {
            seqs.setval(&name(n)?, *v, *c).await?
        }
        _ => return Err(Error::Internal(format!("bad arguments to {}", f.name()))),
    };
    Ok(Value::Int(v))
}

/// Runs a sequence DDL statement in the statement's transaction.
pub(crate) async fn execute(
    plan: crate::plan::SchemaPlan,
    txn: &mut dyn KvTxn,
) -> Result<crate::ExecResult> {
    use crate::plan::SchemaPlan as S;
    let tag = match plan {
        S::CreateSequence { seq, if_not_exists } => {
            let exists = catalog::relation_exists(txn, &seq.name).await?;
            if !(if_not_exists && exists) {
                catalog::sequence::create_sequence(txn, seq).await?;
            }
            "CREATE SEQUENCE"
        }
        S::DropSequence { names, if_exists } => {
            for name in &names {
                match catalog::sequence::get_sequence(txn, name).await? {
                    Some(seq) => {
                        if let Some((table, _)) = &seq.owner
                            && catalog::get_table(txn, table).await?.is_some()
                        {
                            return Err(Error::DependentObjects(format!(
                                "cannot drop sequence {name} because other objects depend on it"
                            )));
                        }
                        catalog::sequence::drop_sequence(txn, &seq)?;
                        if let Some(seqs) = txn.sequences() {
                            seqs.forget(name);
                        }
                    }
                    None if if_exists => {}
                    None => {
                        return Err(Error::UndefinedTable(format!(
                            "sequence \"{name}\" does not exist"
                        )));
                    }
                }
            }
            "DROP SEQUENCE"
        }
    };
    Ok(crate::ExecResult::Command {
        tag: tag.into(),
        rows: None,
    })
}
