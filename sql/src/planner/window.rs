//! Planning window functions: a [`Node::Window`] between HAVING and the select list, whose
//! columns the calls in the select list, ORDER BY and DISTINCT ON then read.

use sqlparser::ast;

use super::Planner;
use super::expr::is_aggregate_name;
use super::expr::{Scope, ScopeColumn, cast_expr, common_type, for_each_child, ident_name};
use super::output::sort_key;
use crate::plan::{AggregateOrder, Expr, Frame, FrameBound, Node, Window, WindowFunc};
use crate::{Column, DataType, Error, Result, Value};

fn not_supported(what: impl std::fmt::Display) -> Error {
    Error::NotSupported(format!("{what} is not supported yet"))
}

/// Collects window function calls (`f(...) OVER (...)`, not inside subqueries), without
/// duplicates.
pub(crate) fn collect_windows(e: &ast::Expr, out: &mut Vec<ast::Function>) {
    match e {
        ast::Expr::Function(f) if f.over.is_some() => {
            if !out.contains(f) {
                out.push(f.clone());
            }
        }
        e => for_each_child(e, &mut |c| collect_windows(c, out)),
    }
}

/// The expressions of a window call's OVER clause (where aggregates may appear).
pub(crate) fn over_exprs(f: &ast::Function) -> Vec<&ast::Expr> {
    match &f.over {
        Some(ast::WindowType::WindowSpec(spec)) => spec
            .partition_by
            .iter()
            .chain(spec.order_by.iter().map(|o| &o.expr))
            .collect(),
        _ => vec![],
    }
}

/// How many named windows may refer to one another in a chain (PostgreSQL refers only to
/// earlier ones, so a longer chain is a cycle).
const MAX_WINDOW_REFERENCES: usize = 64;

/// The window `name` of the query's WINDOW clause, with the windows it refers to resolved.
fn named_window(
    name: &ast::Ident,
    named: &[ast::NamedWindowDefinition],
    depth: usize,
) -> Result<ast::WindowSpec> {
    let wanted = ident_name(name);
    let found = named.iter().find(|d| ident_name(&d.0) == wanted);
    let Some(ast::NamedWindowDefinition(_, def)) = found else {
        return Err(Error::UndefinedObject(format!(
            "window \"{wanted}\" does not exist"
        )));
    };
    if depth >= MAX_WINDOW_REFERENCES {
        return Err(Error::Windowing(format!(
            "window \"{wanted}\" refers to itself"
        )));
    }
    match def {
        ast::NamedWindowExpr::WindowSpec(spec) => resolve_spec(spec, named, depth + 1),
        ast::NamedWindowExpr::NamedWindow(other) => named_window(other, named, depth + 1),
    }
}

/// A window specification with the named window it starts from (`OVER (w ORDER BY x)`)
/// merged in as PostgreSQL does: the new one may add ORDER BY and a frame, nothing else.
fn resolve_spec(
    spec: &ast::WindowSpec,
    named: &[ast::NamedWindowDefinition],
    depth: usize,
) -> Result<ast::WindowSpec> {
    let Some(base_name) = &spec.window_name else {
        return Ok(spec.clone());
    };
    let base = named_window(base_name, named, depth)?;
    let name = ident_name(base_name);
    if !spec.partition_by.is_empty() {
        return Err(Error::Windowing(format!(
            "cannot override PARTITION BY clause of window \"{name}\""
        )));
    }
    if !spec.order_by.is_empty() && !base.order_by.is_empty() {
        return Err(Error::Windowing(format!(
            "cannot override ORDER BY clause of window \"{name}\""
        )));
    }
    if base.window_frame.is_some() {
        return Err(Error::Windowing(format!(
            "cannot copy window \"{name}\" because it has a frame clause"
        )));
    }
    Ok(ast::WindowSpec {
        window_name: None,
        partition_by: base.partition_by,
        order_by: if spec.order_by.is_empty() {
            base.order_by
        } else {
            spec.order_by.clone()
        },
        window_frame: spec.window_frame.clone(),
    })
}

/// A window's frame: ROWS with any bounds, GROUPS with any bounds, RANGE with CURRENT ROW
/// or UNBOUNDED bounds (RANGE offsets and EXCLUDE are 0A000). Offsets are constants.
fn frame(f: &ast::WindowFrame, ordered: bool) -> Result<Frame> {
    use ast::WindowFrameBound as B;
    use ast::WindowFrameUnits as U;
    if f.units == U::Groups && !ordered {
        return Err(Error::Windowing(
            "GROUPS mode requires an ORDER BY clause".into(),
        ));
    }
    let end = f.end_bound.clone().unwrap_or(B::CurrentRow);
    match (&f.start_bound, &end, f.units) {
        (B::Preceding(None), B::CurrentRow, U::Rows) => return Ok(Frame::ToRow),
        (B::Preceding(None), B::CurrentRow, _) => return Ok(Frame::ToPeers),
        (B::Preceding(None), B::Following(None), _) => return Ok(Frame::Partition),
        _ => {}
    }
    let bound = |b: &B, which: &str| -> Result<FrameBound> {
        let offset = |e: &ast::Expr| -> Result<u64> {
            if f.units == U::Range {
                return Err(not_supported("RANGE with an offset"));
            }
            let n = match e {
                ast::Expr::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => n.parse::<i64>().ok(),
                    _ => None,
                },
                ast::Expr::UnaryOp {
                    op: ast::UnaryOperator::Minus,
                    expr,
                } => match expr.as_ref() {
                    ast::Expr::Value(v) => match &v.value {
                        ast::Value::Number(n, _) => n.parse::<i64>().ok().map(|n| -n),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            };
            match n {
                Some(n) if n >= 0 => Ok(n as u64),
                Some(_) => Err(Error::InvalidPrecedingOrFollowingSize(format!(
                    "frame {which} offset must not be negative"
                ))),
                None => Err(not_supported(format!("a frame offset of {e}"))),
            }
        };
        Ok(match b {
            B::Preceding(None) => FrameBound::UnboundedPreceding,
            B::Preceding(Some(e)) => FrameBound::Preceding(offset(e)?),
            B::CurrentRow => FrameBound::CurrentRow,
            B::Following(Some(e)) => FrameBound::Following(offset(e)?),
            B::Following(None) => FrameBound::UnboundedFollowing,
        })
    };
    let (start, end) = (bound(&f.start_bound, "starting")?, bound(&end, "ending")?);
    let refused = match (start, end) {
        (FrameBound::UnboundedFollowing, _) => Some("frame start cannot be UNBOUNDED FOLLOWING"),
        (_, FrameBound::UnboundedPreceding) => Some("frame end cannot be UNBOUNDED PRECEDING"),
        (FrameBound::CurrentRow, FrameBound::Preceding(_)) => {
            Some("frame starting from current row cannot have preceding rows")
        }
        (FrameBound::Following(_), FrameBound::Preceding(_) | FrameBound::CurrentRow) => {
            Some("frame starting from following row cannot have preceding rows")
        }
        _ => None,
    };
    if let Some(m) = refused {
        return Err(Error::Windowing(m.into()));
    }
    Ok(Frame::Bounded {
        groups: f.units != U::Rows,
        start,
        end,
    })
}

impl Planner<'_> {
    /// Plans the window calls over `source` (bound in `scope`): the node emits the source's
    /// columns then one per call, and the returned scope maps each call to its column.
    pub(crate) fn plan_window(
        &mut self,
        source: Node,
        scope: &Scope,
        calls: &[ast::Function],
        named: &[ast::NamedWindowDefinition],
    ) -> Result<(Node, Scope)> {
        let mut columns = source.columns();
        let mut new_scope = scope.clone();
        let mut mapped = scope.grouped.clone().unwrap_or_default();
        let mut windows = Vec::with_capacity(calls.len());
        for f in calls {
            let (w, t) = self.bind_window(f, scope, named)?;
            mapped.push((ast::Expr::Function(f.clone()), columns.len()));
            columns.push(Column {
                name: w.func.name().into(),
                data_type: t,
            });
            new_scope.columns.push(ScopeColumn {
                relation: None,
                name: format!("?{}?", w.func.name()),
                data_type: t,
                hidden: true,
                merged: false,
            });
            windows.push(w);
        }
        new_scope.grouped = Some(mapped);
        let node = Node::Window {
            source: Box::new(source),
            windows,
            columns,
        };
        Ok((node, new_scope))
    }

    fn bind_window(
        &mut self,
        f: &ast::Function,
        scope: &Scope,
        named: &[ast::NamedWindowDefinition],
    ) -> Result<(Window, DataType)> {
        let spec = match &f.over {
            Some(ast::WindowType::WindowSpec(spec)) => resolve_spec(spec, named, 0)?,
            Some(ast::WindowType::NamedWindow(name)) => named_window(name, named, 0)?,
            None => return Err(Error::Internal("a window call without OVER".into())),
        };
        let spec = &spec;
        let frame = match &spec.window_frame {
            None => Frame::ToPeers,
            Some(f) => frame(f, !spec.order_by.is_empty())?,
        };
        let mut partition_by = Vec::with_capacity(spec.partition_by.len());
        for e in &spec.partition_by {
            partition_by.push(self.bind(e, scope, None)?.0);
        }
        let mut order_by = Vec::with_capacity(spec.order_by.len());
        for o in &spec.order_by {
            let key = sort_key(o, 0)?;
            order_by.push(AggregateOrder {
                expr: self.bind(&o.expr, scope, None)?.0,
                descending: key.descending,
                nulls_first: key.nulls_first,
            });
        }
        let (func, t) = self.bind_window_func(f, scope)?;
        let window = Window {
            func,
            partition_by,
            order_by,
            frame,
        };
        Ok((window, t))
    }

    fn bind_window_func(
        &mut self,
        f: &ast::Function,
        scope: &Scope,
    ) -> Result<(WindowFunc, DataType)> {
        let name = f.name.to_string().to_lowercase();
        if is_aggregate_name(&name) {
            if let ast::FunctionArguments::List(l) = &f.args {
                if l.duplicate_treatment == Some(ast::DuplicateTreatment::Distinct) {
                    return Err(Error::NotSupported(
                        "DISTINCT is not implemented for window functions".into(),
                    ));
                }
                if !l.clauses.is_empty() {
                    return Err(Error::NotSupported(
                        "aggregate ORDER BY is not implemented for window functions".into(),
                    ));
                }
            }
            let mut call = f.clone();
            call.over = None;
            let (agg, t) = self.bind_aggregate(&call, scope)?;
            return Ok((WindowFunc::Aggregate(agg), t));
        }
        if f.filter.is_some() {
            return Err(Error::NotSupported(
                "FILTER is not implemented for non-aggregate window functions".into(),
            ));
        }
        let args: Vec<&ast::Expr> = match &f.args {
            ast::FunctionArguments::None => vec![],
            ast::FunctionArguments::List(l)
                if l.duplicate_treatment.is_none() && l.clauses.is_empty() =>
            {
                l.args
                    .iter()
                    .map(|a| match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
                        _ => Err(not_supported(format!("argument {a} of {name}"))),
                    })
                    .collect::<Result<_>>()?
            }
            _ => return Err(not_supported(format!("window call {f}"))),
        };
        let mut bound = Vec::with_capacity(args.len());
        for (i, a) in args.iter().enumerate() {
            let hint = match (name.as_str(), i) {
                ("ntile", 0) | ("lag" | "lead", 1) => Some(DataType::Int4),
                ("lag" | "lead", 2) => bound.first().map(|(_, t): &(Expr, DataType)| *t),
                _ => None,
            };
            bound.push(self.bind(a, scope, hint)?);
        }
        let types: Vec<DataType> = bound.iter().map(|(_, t)| *t).collect();
        let undefined = || {
            let t: Vec<String> = types.iter().map(|t| t.to_string()).collect();
            Error::UndefinedFunction(format!("function {name}({}) does not exist", t.join(", ")))
        };
        let mut bound = bound.into_iter();
        Ok(match (name.as_str(), types.as_slice()) {
            ("row_number", []) => (WindowFunc::RowNumber, DataType::Int8),
            ("rank", []) => (WindowFunc::Rank, DataType::Int8),
            ("dense_rank", []) => (WindowFunc::DenseRank, DataType::Int8),
            ("ntile", [t]) if t.is_integer() => {
                let (e, _) = bound.next().ok_or_else(undefined)?;
                (WindowFunc::Ntile(e), DataType::Int4)
            }
            ("first_value" | "last_value", [t]) => {
                let (e, _) = bound.next().ok_or_else(undefined)?;
                let func = if name == "first_value" {
                    WindowFunc::FirstValue(e)
                } else {
                    WindowFunc::LastValue(e)
                };
                (func, *t)
            }
            ("lag" | "lead", [_, rest @ ..]) if rest.len() <= 2 => {
                let (value, t) = bound.next().ok_or_else(undefined)?;
                let offset = match bound.next() {
                    Some((e, ot)) if ot.is_integer() => e,
                    Some(_) => return Err(undefined()),
                    None => Expr::Constant(Value::Int(1)),
                };
                let (default, dt) = bound.next().unwrap_or((Expr::Constant(Value::Null), t));
                // lag(anycompatible, integer, anycompatible): the common type of both.
                let common = common_type(t, dt).ok_or_else(undefined)?;
                let value = if t == common {
                    value
                } else {
                    cast_expr(value, t, common)?
                };
                let default = if dt == common {
                    default
                } else {
                    cast_expr(default, dt, common)?
                };
                let func = WindowFunc::Lag {
                    value,
                    offset,
                    default,
                    lead: name == "lead",
                };
                (func, common)
            }
            _ => return Err(undefined()),
        })
    }
}
