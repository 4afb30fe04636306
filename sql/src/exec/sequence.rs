//! Sequence values: `nextval`, `currval`, `setval` and `lastval`, and sequence DDL.
//!
//! Sequences are not transactional, as in PostgreSQL: a session takes values in a small
//! transaction of its own that reads and advances the sequence's counter (`catalog::sequence`)
//! and commits at once (retried on conflict), so concurrent sessions never get the same value
//! and a rolled-back statement leaves a gap. Each round trip takes a block of at least
//! [`BLOCK`] values (or the sequence's CACHE, if larger) that the session hands out in order; a
//! session that ends or whose block is dropped leaves the rest unused (gaps, never
//! duplicates). When the node's schema generation has changed since a block was taken (the
//! sequence may have been dropped, created again, changed or restarted), the block is checked
//! once against the descriptor and counter before it is used again, and dropped unless both
//! show it is still unused by anyone else; `setval` drops the session's block too.
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
    /// The descriptor the block was taken under and the block's last value.
    seq: Sequence,
    end: i64,
}

/// What a session's block has for a nextval.
enum Cached {
    Value(i64),
    /// The schema generation changed since the block was taken: it is still good if the
    /// sequence is unchanged and its counter has not moved back before the block's end.
    Stale(Sequence, i64),
    Miss,
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

    fn take_cached(&self, name: &str) -> Cached {
        let generation = self.engine.schema.stable();
        let mut state = lock(&self.state);
        let Some(block) = state.blocks.get_mut(name) else {
            return Cached::Miss;
        };
        if block.values.is_empty() {
            state.blocks.remove(name);
            return Cached::Miss;
        }
        if generation.is_none() || block.generation != generation {
            return Cached::Stale(block.seq.clone(), block.end);
        }
        match block.values.pop_front() {
            Some(v) => Cached::Value(v),
            None => Cached::Miss,
        }
    }

    /// Keeps a stale block (see [`Cached::Stale`]) if it is still good, else drops it.
    async fn revalidate(&self, name: &str, seq: Sequence, end: i64) -> Result<()> {
        let generation = self.engine.schema.stable();
        let (current, (last, called), _) = self.own_txn(Op::Check(name)).await?;
        let ahead = if seq.increment > 0 {
            last >= end
        } else {
            last <= end
        };
        let mut state = lock(&self.state);
        if current == seq && !seq.cycle && called && ahead && generation.is_some() {
            if let Some(block) = state.blocks.get_mut(name) {
                block.generation = generation;
            }
        } else {
            state.blocks.remove(name);
        }
        Ok(())
    }

    fn handed_out(&self, name: &str, value: i64) -> i64 {
        let mut state = lock(&self.state);
        state.current.insert(name.to_string(), value);
        state.last = Some(value);
        value
    }

    /// Runs `op` in a transaction of its own, retrying conflicts.
    async fn own_txn(&self, op: Op<'_>) -> Result<Outcome> {
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
        let mut cached = self.take_cached(name);
        if let Cached::Stale(seq, end) = cached {
            self.revalidate(name, seq, end).await?;
            cached = self.take_cached(name);
        }
        if let Cached::Value(v) = cached {
            return Ok(self.handed_out(name, v));
        }
        let generation = self.engine.schema.stable();
        let (seq, _, mut values) = self.own_txn(Op::Reserve(name)).await?;
        let end = *values
            .back()
            .expect("a reservation holds at least one value");
        let first = values
            .pop_front()
            .expect("a reservation holds at least one value");
        lock(&self.state).blocks.insert(
            name.to_string(),
            Block {
                generation,
                values,
                seq,
                end,
            },
        );
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

/// The descriptor, the counter as read, and the values taken (none but for `Reserve`).
type Outcome = (Sequence, (i64, bool), VecDeque<i64>);

impl Op<'_> {
    /// Runs in `txn`.
    async fn run(self, txn: &mut dyn KvTxn) -> Result<Outcome> {
        let name = match self {
            Op::Reserve(n) | Op::Check(n) | Op::Set(n, ..) => n,
        };
        let seq = catalog::sequence::must_get_sequence(txn, name).await?;
        let counter = catalog::sequence::read_counter(txn, &seq).await?;
        match self {
            Op::Reserve(_) => {
                let values = reserve(txn, &seq, counter)?;
                return Ok((seq, counter, values));
            }
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
        Ok((seq, counter, VecDeque::new()))
    }
}

/// Takes the next values of `seq` (at least one; 2200H at a bound of a sequence that does not
/// cycle) and advances its counter past them.
fn reserve(
    txn: &mut dyn KvTxn,
    seq: &Sequence,
    (last, called): (i64, bool),
) -> Result<VecDeque<i64>> {
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
    e.walk(&mut |e| found |= matches!(e, Expr::Function(f, _) if f.runs_async()));
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
        Expr::Function(f, args) if f.runs_async() && !args.iter().any(has_sequence_call) => {
            out.push((*f, args.clone()))
        }
        e => e.children().into_iter().for_each(|c| collect(c, out)),
    }
}

fn replace(e: Expr, values: &mut impl Iterator<Item = Expr>) -> Expr {
    match e {
        Expr::Function(f, args) if f.runs_async() && !args.iter().any(has_sequence_call) => values
            .next()
            .expect("one value was computed for each call collected"),
        e => e.map_children(&mut |c| replace(c, values)),
    }
}

/// Calls one sequence function.
async fn call(txn: &mut dyn KvTxn, f: Function, args: Vec<Value>) -> Result<Value> {
    if f == Function::PgSleep {
        if let Some(Value::Float(seconds)) = args.first() {
            super::interrupt::sleep(*seconds).await?;
        }
        return Ok(Value::Text(String::new()));
    }
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
