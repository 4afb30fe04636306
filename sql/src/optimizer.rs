//! Plan rewrites: a list of small rules, each built on [`Node::transform`].
//!
//! Access-path selection (point gets and key spans) happens in the planner, which sees the
//! predicate before it becomes a Filter; the rules here clean up what remains.

use crate::Value;
use crate::exec::eval::eval;
use crate::plan::{Expr, Node, Plan};

/// A rewrite of a plan tree.
pub trait Rule {
    /// The rule's name, for tracing.
    fn name(&self) -> &'static str;
    /// Rewrites a whole tree.
    fn apply(&self, node: Node) -> Node;
}

/// Evaluates sub-expressions that read no column and no parameter. An expression whose
/// evaluation fails (e.g. `1/0`) is left in place so the error surfaces when it runs.
pub struct FoldConstants;

impl Rule for FoldConstants {
    fn name(&self) -> &'static str {
        "fold_constants"
    }

    fn apply(&self, node: Node) -> Node {
        node.map_exprs(&mut |e| e.transform(&mut fold))
    }
}

fn fold(e: Expr) -> Expr {
    if matches!(e, Expr::Constant(_) | Expr::Column(_) | Expr::Param(_)) {
        return e;
    }
    let mut foldable = true;
    e.walk(&mut |n| foldable &= !matches!(n, Expr::Column(_) | Expr::Param(_)));
    if !foldable {
        return e;
    }
    match eval(&e, &[]) {
        Ok(v) => Expr::Constant(v),
        Err(_) => e,
    }
}

/// Removes filters whose predicate is the constant TRUE.
pub struct RemoveTrueFilters;

impl Rule for RemoveTrueFilters {
    fn name(&self) -> &'static str {
        "remove_true_filters"
    }

    fn apply(&self, node: Node) -> Node {
        let r: Result<Node, std::convert::Infallible> = node.transform(&mut |n| {
            Ok(match n {
                Node::Filter {
                    source,
                    predicate: Expr::Constant(Value::Bool(true)),
                } => *source,
                n => n,
            })
        });
        match r {
            Ok(n) => n,
            Err(never) => match never {},
        }
    }
}

/// Removes projections that emit their input unchanged (`SELECT *`).
pub struct RemoveIdentityProjections;

impl Rule for RemoveIdentityProjections {
    fn name(&self) -> &'static str {
        "remove_identity_projections"
    }

    fn apply(&self, node: Node) -> Node {
        let r: Result<Node, std::convert::Infallible> = node.transform(&mut |n| {
            Ok(match n {
                Node::Projection {
                    source,
                    exprs,
                    columns,
                } if exprs.iter().enumerate().all(|(i, e)| *e == Expr::Column(i))
                    && source.columns() == columns =>
                {
                    *source
                }
                n => n,
            })
        });
        match r {
            Ok(n) => n,
            Err(never) => match never {},
        }
    }
}

/// The rules, in the order they run.
pub fn rules() -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(FoldConstants),
        Box::new(RemoveTrueFilters),
        Box::new(RemoveIdentityProjections),
    ]
}

fn optimize_node(node: Node) -> Node {
    rules().iter().fold(node, |node, rule| rule.apply(node))
}

/// Optimizes every query tree of a plan.
pub fn optimize(plan: Plan) -> Plan {
    match plan {
        Plan::Select(n) => Plan::Select(optimize_node(n)),
        Plan::LockingSelect { table, node } => Plan::LockingSelect {
            table,
            node: optimize_node(node),
        },
        Plan::Update { table, source, set } => Plan::Update {
            table,
            source: optimize_node(source),
            set,
        },
        Plan::Delete { table, source } => Plan::Delete {
            table,
            source: optimize_node(source),
        },
        Plan::Insert {
            table,
            columns,
            source,
        } => Plan::Insert {
            table,
            columns,
            source: optimize_node(source),
        },
        p @ (Plan::CreateTable { .. } | Plan::DropTable { .. }) => p,
    }
}
