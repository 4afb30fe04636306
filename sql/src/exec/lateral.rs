//! LATERAL joins: the right side is planned against the left row, so it is bound to each
//! left row's values and run once per row (a nested loop; PostgreSQL does the same).

use async_trait::async_trait;

use super::eval::eval;
use super::ops::{Operator, build};
use super::rows::Row;
use super::subquery::{bind_outer_node, eval_row};
use crate::plan::{Expr, JoinKind, Node};
use crate::store::KvTxn;
use crate::{Error, Result, Value};

/// The operator of [`Node::Lateral`].
pub(crate) struct LateralJoin {
    left: Box<dyn Operator>,
    /// The right side's plan, referring to the left row at depth 1.
    right: Node,
    right_width: usize,
    kind: JoinKind,
    on: Option<Expr>,
}

impl LateralJoin {
    /// The operator over `left`'s rows; `right` is the node's [`Expr::Subquery`].
    pub(crate) fn new(
        left: Box<dyn Operator>,
        right: Expr,
        kind: JoinKind,
        on: Option<Expr>,
    ) -> Result<LateralJoin> {
        let Expr::Subquery(s) = right else {
            return Err(Error::Internal("a LATERAL join without its plan".into()));
        };
        if !matches!(kind, JoinKind::Inner | JoinKind::Left) {
            return Err(Error::Internal(format!("a LATERAL join of kind {kind:?}")));
        }
        let right = s.plan;
        Ok(LateralJoin {
            left,
            right_width: right.columns().len(),
            right,
            kind,
            on,
        })
    }
}

#[async_trait]
impl Operator for LateralJoin {
    async fn next(&mut self, txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        while let Some(batch) = self.left.next(txn).await? {
            let mut out = Vec::new();
            for row in batch {
                let plan = bind_outer_node(self.right.clone(), &row, 1);
                let mut right = build(crate::optimizer::optimize_bound(plan))?;
                let mut matched = false;
                while let Some(rights) = right.next(txn).await? {
                    for r in rights {
                        let mut joined = Vec::with_capacity(row.len() + r.len());
                        joined.extend(row.iter().cloned());
                        joined.extend(r);
                        if passes(&self.on, &joined, txn).await? {
                            matched = true;
                            out.push(joined);
                        }
                    }
                }
                if !matched && self.kind == JoinKind::Left {
                    let mut joined = row;
                    joined.extend(std::iter::repeat_n(Value::Null, self.right_width));
                    out.push(joined);
                }
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }
}

/// Whether the joined row passes the join condition.
async fn passes(on: &Option<Expr>, row: &[Value], txn: &mut dyn KvTxn) -> Result<bool> {
    let Some(on) = on else {
        return Ok(true);
    };
    let v = match on.has_subquery() {
        true => eval_row(on, row, txn).await?,
        false => eval(on, row)?,
    };
    Ok(v == Value::Bool(true))
}
