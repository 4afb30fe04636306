//! Statements and plans reused across executions, and the schema generation that keeps the
//! plans honest.
//!
//! Planning reads the descriptor of every table a statement names from the catalog, in the
//! statement's transaction, then binds the statement against them. A [`crate::Statement`] keeps
//! its last plan instead ([`PlanSlot`]), tagged with the schema generation it was built at; an
//! execution whose transaction sees that same generation reuses it (parameters are still bound
//! per execution), any other plans afresh. A session also keeps the statements of the SQL texts
//! it parsed last ([`ParseCache`]), so a text sent again through the simple protocol, or
//! prepared again, shares the plan of the first.
//!
//! The generation is node-wide ([`Schema`], one per [`crate::Engine`]): the commit of every
//! transaction that may have changed the schema ([`changes_schema`]) bumps it when it ends,
//! whatever its outcome. A transaction sees generation `g` only if `g` was current, with no such
//! commit under way, both just before and just after it took its snapshot
//! ([`crate::Engine::begin`]). Then every schema change counted in `g` committed before the
//! snapshot was taken, so the snapshot sees it, and every later one asks the oracle for its
//! commit timestamp after the snapshot was taken, so the snapshot does not see it: every
//! transaction that sees `g` sees the same descriptors. A transaction that sees no generation
//! (a schema change was committing), one that changed the schema itself, one whose read
//! timestamp moved forward, and AS OF SYSTEM TIME reads plan from the catalog as before.
//!
//! Caveats: the generation counts this node's schema changes only. On a node of a cluster
//! (`Engine::set_schema_shared`) no plan is reused at all, so every statement reads its
//! descriptors; reusing plans across nodes needs the descriptor leases of DESIGN.md (each node
//! caches a descriptor version under a lease, and a schema change waits until no lease on the
//! previous version remains). A reused
//! plan does not read the descriptors, so they are not in the transaction's read set (DESIGN.md
//! wants catalog reads out of it anyway); until leases exist, an INSERT through a plan of a
//! table that a concurrent DROP TABLE commits first can leave rows under the dropped table's id,
//! where nothing reads them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use sqlparser::ast;
use txn::TxnOptions;

use crate::plan::Plan;
use crate::store::KvTxn;
use crate::{DataType, Result, Statement};

/// How many SQL texts a session keeps the parsed statements of.
const PARSE_CACHE_ENTRIES: usize = 256;
/// Longer SQL texts (bulk INSERTs, typically) are not kept.
const PARSE_CACHE_MAX_SQL: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a plain assignment or clone: a panic cannot leave it
    // half-done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a statement may change the schema: anything but queries, DML, EXPLAIN, and session
/// and transaction control (so statements supported later are covered by default).
pub(crate) fn changes_schema(stmt: &ast::Statement) -> bool {
    !matches!(
        stmt,
        ast::Statement::Query(_)
            | ast::Statement::Insert(_)
            | ast::Statement::Update(_)
            | ast::Statement::Delete(_)
            | ast::Statement::Explain { .. }
            | ast::Statement::Set(_)
            | ast::Statement::ShowVariable { .. }
            | ast::Statement::StartTransaction { .. }
            | ast::Statement::Commit { .. }
            | ast::Statement::Rollback { .. }
            | ast::Statement::Savepoint { .. }
            | ast::Statement::ReleaseSavepoint { .. }
            | ast::Statement::Prepare { .. }
            | ast::Statement::Execute { .. }
            | ast::Statement::Deallocate { .. }
            | ast::Statement::Discard { .. }
    )
}

/// The node-wide schema generation.
#[derive(Default)]
pub(crate) struct Schema(Mutex<SchemaState>);

#[derive(Default)]
struct SchemaState {
    /// How many commits of schema changes have ended.
    generation: u64,
    /// How many are under way.
    committing: usize,
    /// Other nodes may change the schema: this node's generation does not count their
    /// changes, so no generation is ever known and every statement plans from the catalog.
    shared: bool,
}

impl Schema {
    /// The current generation; `None` while a schema change is committing, and always when
    /// other nodes share the schema.
    pub(crate) fn stable(&self) -> Option<u64> {
        let state = lock(&self.0);
        (state.committing == 0 && !state.shared).then_some(state.generation)
    }

    /// Marks the commit of a schema change as under way until the returned guard is dropped,
    /// which bumps the generation (after the commit, whether it succeeded or not).
    pub(crate) fn committing(&self) -> SchemaCommit<'_> {
        lock(&self.0).committing += 1;
        SchemaCommit(self)
    }
}

/// A schema change's commit under way (see [`Schema::committing`]).
pub(crate) struct SchemaCommit<'a>(&'a Schema);

impl Drop for SchemaCommit<'_> {
    fn drop(&mut self) {
        let mut state = lock(&(self.0).0);
        state.committing -= 1;
        state.generation += 1;
    }
}

impl crate::Engine {
    /// Says whether other nodes may change the schema (a node of a cluster). Then no plan is
    /// reused across transactions: each statement reads the descriptors it uses in its own
    /// transaction, so a schema change committed through another node is seen by the next
    /// statement here.
    pub fn set_schema_shared(&self, shared: bool) {
        lock(&self.schema.0).shared = shared;
    }

    /// Begins a transaction; also returns the schema generation its snapshot sees, if known.
    pub(crate) async fn begin(
        &self,
        opts: TxnOptions,
    ) -> txn::Result<(Box<dyn KvTxn>, Option<u64>)> {
        let before = self.schema.stable();
        let txn = self.store.begin(opts).await?;
        let seen = before.filter(|&g| self.schema.stable() == Some(g));
        Ok((txn, seen))
    }
}

/// A plan with its parameter types, as the planner returns them.
pub(crate) type Planned = (Plan, Vec<DataType>);

/// A kept plan: the schema generation it was built at, the plan, and its result types.
type Kept = (u64, Planned, Arc<[DataType]>);

/// The last plan of a statement and the schema generation it was built at. Clones share it.
#[derive(Clone, Debug, Default)]
pub(crate) struct PlanSlot(Arc<Mutex<Option<Kept>>>);

impl PlanSlot {
    /// The plan built at `generation`, if that is the one kept.
    #[cfg(test)]
    pub(crate) fn get(&self, generation: u64) -> Option<Planned> {
        self.get_with_shape(generation).map(|(planned, _)| planned)
    }

    /// The plan built at `generation` and its result types, if that is the one kept.
    fn get_with_shape(&self, generation: u64) -> Option<(Planned, Arc<[DataType]>)> {
        match &*lock(&self.0) {
            Some((g, planned, shape)) if *g == generation => Some((planned.clone(), shape.clone())),
            _ => None,
        }
    }

    /// Keeps a plan built at `generation`.
    #[cfg(test)]
    pub(crate) fn put(&self, generation: u64, planned: &Planned) {
        let shape = crate::prepared::shape(&planned.0.columns());
        self.put_with_shape(generation, planned, shape);
    }

    fn put_with_shape(&self, generation: u64, planned: &Planned, shape: Arc<[DataType]>) {
        *lock(&self.0) = Some((generation, planned.clone(), shape));
    }

    /// Forgets the plan kept (DISCARD PLANS).
    pub(crate) fn clear(&self) {
        *lock(&self.0) = None;
    }

    /// The generation of the plan kept, if any (for tests).
    #[cfg(test)]
    pub(crate) fn generation(&self) -> Option<u64> {
        lock(&self.0).as_ref().map(|(g, _, _)| *g)
    }
}

impl crate::Session {
    /// The plan of a statement: the one cached at `generation` (the schema generation the
    /// transaction sees, if known), or a new one, then cached. A prepared statement's plan must
    /// return the column types it was described with (0A000 otherwise).
    pub(crate) async fn plan_cached(
        txn: &mut dyn KvTxn,
        stmt: &Statement,
        generation: Option<u64>,
    ) -> Result<Planned> {
        let (planned, shape) = match generation.and_then(|g| stmt.plan.get_with_shape(g)) {
            Some(kept) => kept,
            None => {
                let planned = Self::plan(txn, &stmt.ast, &[]).await?;
                let shape = crate::prepared::shape(&planned.0.columns());
                if let Some(g) = generation {
                    stmt.plan.put_with_shape(g, &planned, shape.clone());
                }
                (planned, shape)
            }
        };
        match &stmt.shape {
            Some(expected) if **expected != *shape => Err(crate::prepared::changed_result_type()),
            _ => Ok(planned),
        }
    }
}

/// The statements of the SQL texts a session parsed last (at most [`PARSE_CACHE_ENTRIES`]).
#[derive(Default)]
pub(crate) struct ParseCache(HashMap<String, Vec<Statement>>);

impl ParseCache {
    /// The statements of `sql`, if it was parsed before.
    pub(crate) fn get(&self, sql: &str) -> Option<Vec<Statement>> {
        self.0.get(sql).cloned()
    }

    /// Keeps the statements of `sql`, evicting some other text when full.
    pub(crate) fn put(&mut self, sql: &str, stmts: &[Statement]) {
        if sql.len() > PARSE_CACHE_MAX_SQL {
            return;
        }
        if self.0.len() >= PARSE_CACHE_ENTRIES
            && let Some(victim) = self.0.keys().next().cloned()
        {
            self.0.remove(&victim);
        }
        self.0.insert(sql.to_string(), stmts.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_generation_is_unstable_while_committing() {
        let schema = Schema::default();
        assert_eq!(schema.stable(), Some(0));
        let a = schema.committing();
        assert_eq!(schema.stable(), None);
        let b = schema.committing();
        drop(a);
        assert_eq!(schema.stable(), None, "b is still committing");
        drop(b);
        assert_eq!(schema.stable(), Some(2));
    }

    #[test]
    fn schema_changes_are_every_statement_but_queries_dml_and_control() {
        let changes = |sql: &str| {
            let stmt = crate::parser::parse(sql).expect(sql).remove(0);
            changes_schema(&stmt)
        };
        for sql in [
            "CREATE TABLE t (id INT PRIMARY KEY)",
            "DROP TABLE t",
            "ALTER TABLE t ADD COLUMN v TEXT",
            "ALTER TABLE t RENAME TO u",
            "CREATE INDEX i ON t (v)",
            "DROP INDEX i",
            "TRUNCATE t",
        ] {
            assert!(changes(sql), "{sql}");
        }
        for sql in [
            "SELECT * FROM t",
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET v = 'a'",
            "DELETE FROM t",
            "EXPLAIN SELECT 1",
            "BEGIN",
            "COMMIT",
            "ROLLBACK TO SAVEPOINT s",
            "SET x = 1",
            "SHOW x",
        ] {
            assert!(!changes(sql), "{sql}");
        }
    }

    #[test]
    fn plan_slot_serves_only_its_generation() {
        let slot = PlanSlot::default();
        assert!(slot.get(0).is_none());
        let planned = (
            Plan::DropTable {
                names: vec!["t".into()],
                if_exists: false,
            },
            vec![DataType::Int8],
        );
        slot.put(3, &planned);
        assert!(slot.get(2).is_none());
        assert_eq!(slot.get(3), Some(planned.clone()));
        assert!(slot.clone().get(4).is_none());
        slot.clone().put(4, &planned);
        assert_eq!(slot.generation(), Some(4), "clones share the slot");
    }

    #[test]
    fn parse_cache_is_bounded() {
        let mut cache = ParseCache::default();
        for i in 0..PARSE_CACHE_ENTRIES + 10 {
            cache.put(&format!("SELECT {i}"), &[]);
        }
        assert_eq!(cache.0.len(), PARSE_CACHE_ENTRIES);
        cache.put(&"x".repeat(PARSE_CACHE_MAX_SQL + 1), &[]);
        assert!(cache.get(&"x".repeat(PARSE_CACHE_MAX_SQL + 1)).is_none());
        assert!(
            cache
                .get(&format!("SELECT {}", PARSE_CACHE_ENTRIES + 9))
                .is_some()
        );
    }
}

#[cfg(test)]
mod session_tests {
    use crate::{Engine, ExecResult, Session, Value};

    async fn run(s: &mut Session, stmt: &crate::Statement) -> Vec<Vec<Value>> {
        match s.execute(stmt, &[]).await {
            Ok(ExecResult::Rows { rows, .. }) => rows,
            other => panic!("{other:?}"),
        }
    }

    /// An execution at the generation a plan was cached at runs that plan without planning
    /// again; after a schema change it plans afresh.
    #[tokio::test]
    async fn executions_run_the_cached_plan_until_the_schema_changes() {
        let engine = Engine::memory();
        let mut s = Session::new(engine.clone(), "root", "tinkerdb").expect("session");
        for sql in [
            "CREATE TABLE t (id INT PRIMARY KEY)",
            "INSERT INTO t VALUES (1)",
        ] {
            let stmt = s.parse(sql).expect("parse").remove(0);
            s.execute(&stmt, &[]).await.expect(sql);
        }
        let select = s.parse("SELECT id FROM t").expect("parse").remove(0);
        let other = s.parse("SELECT 42").expect("parse").remove(0);
        assert_eq!(run(&mut s, &select).await, vec![vec![Value::Int(1)]]);
        assert_eq!(run(&mut s, &other).await, vec![vec![Value::Int(42)]]);
        let g = engine.schema.stable().expect("no schema change under way");
        assert_eq!(select.plan.generation(), Some(g));

        // Swap in another plan: the next execution runs it, so it really is reused.
        select.plan.put(g, &other.plan.get(g).expect("cached"));
        assert_eq!(run(&mut s, &select).await, vec![vec![Value::Int(42)]]);
        let again = s.parse("SELECT id FROM t").expect("parse").remove(0);
        assert_eq!(run(&mut s, &again).await, vec![vec![Value::Int(42)]]);

        let create = s
            .parse("CREATE TABLE u (id INT PRIMARY KEY)")
            .expect("parse");
        s.execute(&create[0], &[]).await.expect("create");
        assert_eq!(engine.schema.stable(), Some(g + 1));
        assert_eq!(run(&mut s, &select).await, vec![vec![Value::Int(1)]]);
        assert_eq!(select.plan.generation(), Some(g + 1));
    }
}
