//! Binding expressions: names resolved through a [`Scope`] (then the scopes of enclosing
//! queries, as outer references), types checked and inferred (parameters and untyped literals
//! take their type from context), constants folded where errors must surface at plan time
//! (`'abc'::int4`).

use sqlparser::ast;

use super::Planner;
use super::jsonb::Binding;
use crate::plan::{CmpOp, Expr, Function, Node, Subquery, SubqueryKind};
use crate::types::ArithOp;
use crate::{DataType, Error, Result, Value};

/// A column visible to expressions: its relation (table or alias), name and type. A `hidden`
/// column (the implicit rowid) is left out of `*`; a `merged` one (the right side's copy of a
/// `USING` column) is reachable only by a qualified name and left out of `*` too.
#[derive(Clone, Debug)]
pub(crate) struct ScopeColumn {
    pub relation: Option<String>,
    pub name: String,
    pub data_type: DataType,
    pub hidden: bool,
    pub merged: bool,
}

/// The columns an expression can refer to, in input-row order. After aggregation, `grouped`
/// maps group-by expressions and aggregate calls (by AST) to the aggregate node's columns,
/// `ungrouped` is the scope before aggregation (names are resolved there), and
/// `group_columns` maps its columns that are grouped by to the aggregate node's columns.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scope {
    pub columns: Vec<ScopeColumn>,
    pub grouped: Option<Vec<(ast::Expr, usize)>>,
    pub ungrouped: Option<Box<Scope>>,
    pub group_columns: Vec<(usize, usize)>,
}

impl Scope {
    /// The aggregate node's column of the ungrouped column `i`, if it is grouped by.
    pub(crate) fn group_column(&self, i: usize) -> Option<usize> {
        self.group_columns
            .iter()
            .find(|(c, _)| *c == i)
            .map(|(_, g)| *g)
    }
}

/// The error for a column that is neither grouped by nor inside an aggregate.
pub(crate) fn not_grouped(name: &str) -> Error {
    Error::Grouping(format!(
        "column \"{name}\" must appear in the GROUP BY clause or be used in an aggregate function"
    ))
}

impl Scope {
    /// Resolves a possibly qualified column name: `None` if no column matches, 42702 if
    /// several do.
    pub(crate) fn resolve(&self, relation: Option<&str>, name: &str) -> Result<Option<usize>> {
        let mut found = None;
        for (i, c) in self.columns.iter().enumerate() {
            let rel_ok = match relation {
                Some(r) => c.relation.as_deref() == Some(r),
                None => !c.merged,
            };
            if rel_ok && c.name == name {
                if found.is_some() {
                    return Err(Error::AmbiguousColumn(format!(
                        "column reference \"{name}\" is ambiguous"
                    )));
                }
                found = Some(i);
            }
        }
        Ok(found)
    }

    /// Whether a FROM item of this scope is named `relation`.
    pub(crate) fn has_relation(&self, relation: &str) -> bool {
        let pre = self
            .ungrouped
            .as_ref()
            .is_some_and(|s| s.has_relation(relation));
        pre || self
            .columns
            .iter()
            .any(|c| c.relation.as_deref() == Some(relation))
    }

    /// The columns of `self` followed by those of `other` (a join's scope).
    pub(crate) fn concat(mut self, other: Scope) -> Scope {
        self.columns.extend(other.columns);
        self
    }
}

/// Calls `f` on each direct child of an AST expression (for the variants the binder knows).
pub(crate) fn for_each_child<'a>(e: &'a ast::Expr, f: &mut impl FnMut(&'a ast::Expr)) {
    use ast::Expr as A;
    match e {
        A::BinaryOp { left, right, .. }
        | A::IsDistinctFrom(left, right)
        | A::IsNotDistinctFrom(left, right) => {
            f(left);
            f(right);
        }
        A::UnaryOp { expr, .. }
        | A::Nested(expr)
        | A::IsNull(expr)
        | A::IsNotNull(expr)
        | A::IsTrue(expr)
        | A::IsFalse(expr)
        | A::IsNotTrue(expr)
        | A::IsNotFalse(expr)
        | A::Cast { expr, .. } => f(expr),
        A::Between {
            expr, low, high, ..
        } => {
            f(expr);
            f(low);
            f(high);
        }
        A::In { expr, target, .. } => {
            f(expr);
            if let ast::InTarget::List(list) = target {
                list.iter().for_each(f);
            }
        }
        A::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.iter().for_each(|e| f(e));
            for c in conditions {
                f(&c.condition);
                f(&c.result);
            }
            else_result.iter().for_each(|e| f(e));
        }
        A::Array(a) => a.elem.iter().for_each(f),
        A::AnyOp { left, right, .. } | A::AllOp { left, right, .. } => {
            f(left);
            f(right);
        }
        A::CompoundFieldAccess { root, access_chain } => {
            f(root);
            for a in access_chain {
                match a {
                    ast::AccessExpr::Subscript(ast::Subscript::Index { index }) => f(index),
                    ast::AccessExpr::Subscript(ast::Subscript::Slice {
                        lower_bound,
                        upper_bound,
                        ..
                    }) => lower_bound.iter().chain(upper_bound).for_each(&mut *f),
                    ast::AccessExpr::Dot(e) => f(e),
                }
            }
        }
        A::Function(func) => {
            if let ast::FunctionArguments::List(l) = &func.args {
                for a in &l.args {
                    if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = a {
                        f(e);
                    }
                }
            }
        }
        _ => {}
    }
}

/// The name an identifier stands for: unquoted identifiers fold to lower case.
pub(crate) fn ident_name(ident: &ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The last part of an object name (schema qualifiers are ignored).
pub(crate) fn object_name(name: &ast::ObjectName) -> Result<String> {
    match name.0.last() {
        Some(ast::ObjectNamePart::Identifier(i)) => Ok(ident_name(i)),
        _ => Err(Error::NotSupported(format!("name {name} is not supported"))),
    }
}

/// Whether an AST expression takes its type from context (a parameter, NULL, a string literal).
pub(crate) fn is_flexible(e: &ast::Expr) -> bool {
    match e {
        ast::Expr::Value(v) => matches!(
            v.value,
            ast::Value::Placeholder(_) | ast::Value::Null | ast::Value::SingleQuotedString(_)
        ),
        ast::Expr::Nested(e) => is_flexible(e),
        _ => false,
    }
}

fn mismatch(op: &str, a: DataType, b: DataType) -> Error {
    Error::DatatypeMismatch(format!("operator does not exist: {a} {op} {b}"))
}

fn not_supported(what: impl std::fmt::Display) -> Error {
    Error::NotSupported(format!("{what} is not supported yet"))
}

impl Planner<'_> {
    /// Binds `e` in `scope`; `hint` is the type the context expects (used by parameters and
    /// untyped literals). Returns the expression and its type. Deeply nested expressions
    /// recurse here; the stack grows on demand rather than overflowing.
    #[recursive::recursive]
    pub(crate) fn bind(
        &mut self,
        e: &ast::Expr,
        scope: &Scope,
        hint: Option<DataType>,
    ) -> Result<(Expr, DataType)> {
        if let Some(grouped) = &scope.grouped
            && let Some((_, i)) = grouped.iter().find(|(g, _)| g == e)
        {
            return Ok((Expr::Column(*i), scope.columns[*i].data_type));
        }
        use ast::Expr as A;
        match e {
            A::Identifier(id) => self.column(scope, None, &ident_name(id)),
            A::CompoundIdentifier(parts) => match parts.as_slice() {
                [t, c] => self.column(scope, Some(&ident_name(t)), &ident_name(c)),
                [_, t, c] => self.column(scope, Some(&ident_name(t)), &ident_name(c)),
                _ => Err(not_supported(format!("name {e}"))),
            },
            A::Value(v) => self.value(&v.value, hint),
            A::Nested(inner) => self.bind(inner, scope, hint),
            A::IsNull(inner) => Ok((
                Expr::IsNull(Box::new(self.bind(inner, scope, None)?.0)),
                DataType::Bool,
            )),
            A::IsNotNull(inner) => {
                let inner = Expr::IsNull(Box::new(self.bind(inner, scope, None)?.0));
                Ok((Expr::Not(Box::new(inner)), DataType::Bool))
            }
            A::UnaryOp { op, expr } => self.unary(*op, expr, scope, hint),
            A::BinaryOp { left, op, right } => self.binary(left, op, right, scope),
            A::Cast {
                kind: ast::CastKind::Cast | ast::CastKind::DoubleColon,
                expr,
                data_type,
                format: None,
            } => {
                let ty = DataType::from_ast(data_type)?;
                let (inner, from) = self.bind(expr, scope, Some(ty))?;
                Ok((cast_expr(inner, from, ty)?, ty))
            }
            A::Interval(iv)
                if iv.leading_field.is_none()
                    && iv.last_field.is_none()
                    && iv.leading_precision.is_none()
                    && iv.fractional_seconds_precision.is_none() =>
            {
                let (inner, _) = self.bind(&iv.value, scope, Some(DataType::Text))?;
                Ok((fold_cast(inner, DataType::Interval)?, DataType::Interval))
            }
            A::TypedString(ts) => {
                let ty = DataType::from_ast(&ts.data_type)?;
                let (inner, _) = self.value(&ts.value.value, Some(DataType::Text))?;
                Ok((fold_cast(inner, ty)?, ty))
            }
            A::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let ge = A::BinaryOp {
                    left: expr.clone(),
                    op: ast::BinaryOperator::GtEq,
                    right: low.clone(),
                };
                let le = A::BinaryOp {
                    left: expr.clone(),
                    op: ast::BinaryOperator::LtEq,
                    right: high.clone(),
                };
                let (a, _) = self.bind(&ge, scope, None)?;
                let (b, _) = self.bind(&le, scope, None)?;
                let both = Expr::And(Box::new(a), Box::new(b));
                Ok((
                    if *negated {
                        Expr::Not(Box::new(both))
                    } else {
                        both
                    },
                    DataType::Bool,
                ))
            }
            A::In {
                expr,
                target: ast::InTarget::List(list),
                negated,
                global: false,
            } => self.in_list(expr, list, *negated, scope),
            A::In {
                expr,
                target: ast::InTarget::Subquery(q),
                negated,
                global: false,
            } => self.in_subquery(expr, q, *negated, scope),
            A::Exists { subquery, negated } => {
                let plan = self.bind_subquery(subquery, scope)?;
                let e = subquery_expr(SubqueryKind::Exists, plan);
                Ok((maybe_not(e, *negated), DataType::Bool))
            }
            A::Subquery(q) => {
                let plan = self.bind_subquery(q, scope)?;
                let ty = single_column(&plan)?;
                Ok((subquery_expr(SubqueryKind::Scalar, plan), ty))
            }
            A::IsDistinctFrom(a, b) => self.is_distinct(a, b, false, scope),
            A::IsNotDistinctFrom(a, b) => self.is_distinct(a, b, true, scope),
            A::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(
                operand.as_deref(),
                conditions,
                else_result.as_deref(),
                scope,
                hint,
            ),
            A::Array(_) | A::CompoundFieldAccess { .. } | A::AnyOp { .. } | A::AllOp { .. } => {
                self.bind_array(e, scope, hint)
            }
            A::Function(f) if super::array::is_array_subquery(f) => self.bind_array(e, scope, hint),
            A::Function(f) if f.over.is_some() => Err(Error::Windowing(format!(
                "window functions are not allowed here: {e}"
            ))),
            A::Function(f) if aggregate_name(f).is_some() => Err(Error::Grouping(format!(
                "aggregate functions are not allowed here: {e}"
            ))),
            A::Function(f) => self.function(f, scope, hint),
            A::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char,
            }
            | A::ILike {
                negated,
                any: false,
                expr,
                pattern,
                escape_char,
            } => {
                let (f, name) = match e {
                    A::Like { .. } => (Function::Like, "like"),
                    _ => (Function::ILike, "ilike"),
                };
                let mut args = vec![expr.as_ref(), pattern.as_ref()];
                args.extend(escape_char.as_deref());
                self.pattern(f, name, &args, *negated, scope)
            }
            A::SimilarTo {
                negated,
                expr,
                pattern,
                escape_char,
            } => {
                let mut args = vec![expr.as_ref(), pattern.as_ref()];
                args.extend(escape_char.as_deref());
                self.pattern(Function::SimilarTo, "similar_to", &args, *negated, scope)
            }
            A::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let one = A::Value(ast::Value::Number("1".into(), false).into());
                let from = substring_from.as_deref().unwrap_or(&one);
                let mut args = vec![expr.as_ref(), from];
                args.extend(substring_for.as_deref());
                self.scalar_function("substr", &args, scope, hint)
                    .unwrap_or_else(|| Err(not_supported("substring")))
            }
            A::Position { expr, r#in } => self
                .scalar_function("strpos", &[r#in.as_ref(), expr.as_ref()], scope, hint)
                .unwrap_or_else(|| Err(not_supported("position"))),
            A::Trim {
                trim_where,
                trim_what,
                expr,
                trim_characters,
            } => {
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "btrim",
                };
                let mut args = vec![expr.as_ref()];
                args.extend(trim_what.as_deref());
                args.extend(trim_characters.iter().flatten());
                if name == "rtrim" && args.len() == 1 {
                    let (e, t) = self.bind(expr, scope, Some(DataType::Text))?;
                    if !t.is_string() {
                        return Err(self.undefined(name, &args, scope));
                    }
                    return Ok((
                        Expr::Function(Function::Rtrim, vec![char_as_text(e, t)]),
                        DataType::Text,
                    ));
                }
                self.scalar_function(name, &args, scope, hint)
                    .unwrap_or_else(|| Err(not_supported("trim")))
            }
            A::Ceil {
                expr,
                field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime),
            }
            | A::Floor {
                expr,
                field: ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime),
            } => {
                let name = if matches!(e, A::Ceil { .. }) {
                    "ceil"
                } else {
                    "floor"
                };
                self.scalar_function(name, &[expr.as_ref()], scope, hint)
                    .unwrap_or_else(|| Err(not_supported(name)))
            }
            A::Extract { field, expr, .. } => {
                let word = match field {
                    ast::DateTimeField::Custom(id) => id.value.clone(),
                    f => f.to_string(),
                };
                let word = A::Value(ast::Value::SingleQuotedString(word).into());
                self.scalar_function("extract", &[&word, expr.as_ref()], scope, hint)
                    .unwrap_or_else(|| Err(not_supported("extract")))
            }
            _ => Err(not_supported(format!("expression {e}"))),
        }
    }

    /// Resolves a column name in `scope`, then in the enclosing queries' scopes (innermost
    /// first) as an outer reference.
    fn column(
        &self,
        scope: &Scope,
        relation: Option<&str>,
        name: &str,
    ) -> Result<(Expr, DataType)> {
        let scopes = std::iter::once(scope).chain(self.outer.iter().rev());
        for (depth, s) in scopes.enumerate() {
            let found = match &s.ungrouped {
                // After aggregation, names resolve before it and must be grouped by.
                Some(pre) => match pre.resolve(relation, name)? {
                    Some(j) => Some(s.group_column(j).ok_or_else(|| not_grouped(name))?),
                    None => None,
                },
                None => s.resolve(relation, name)?,
            };
            let Some(i) = found else {
                continue;
            };
            let e = match depth {
                0 => Expr::Column(i),
                depth => Expr::Outer { depth, index: i },
            };
            return Ok((e, s.columns[i].data_type));
        }
        match relation {
            Some(r) if !scope.has_relation(r) && !self.outer.iter().any(|s| s.has_relation(r)) => {
                Err(Error::UndefinedTable(format!(
                    "missing FROM-clause entry for table \"{r}\""
                )))
            }
            Some(r) => Err(Error::UndefinedColumn(format!(
                "column {r}.{name} does not exist"
            ))),
            None => Err(Error::UndefinedColumn(format!(
                "column \"{name}\" does not exist"
            ))),
        }
    }

    /// Binds a literal or parameter.
    fn value(&mut self, v: &ast::Value, hint: Option<DataType>) -> Result<(Expr, DataType)> {
        use ast::Value as V;
        match v {
            V::Number(n, _) => number(n),
            V::SingleQuotedString(s)
            | V::EscapedStringLiteral(s)
            | V::DollarQuotedString(ast::DollarQuotedString { value: s, .. }) => {
                // A string literal takes a string type from its context without its length
                // being applied (`v = 'abcdef'` compares the whole text, and an INSERT checks
                // the length when it stores the value).
                let ty = hint.unwrap_or(DataType::Text);
                let value = Value::Text(s.clone());
                let value = if ty.is_string() {
                    value
                } else {
                    value.cast(ty)?
                };
                Ok((Expr::Constant(value), ty))
            }
            V::Boolean(b) => Ok((Expr::Constant(Value::Bool(*b)), DataType::Bool)),
            V::Null => Ok((Expr::Constant(Value::Null), hint.unwrap_or(DataType::Text))),
            V::Placeholder(p) => self.param(p, hint),
            other => Err(not_supported(format!("literal {other}"))),
        }
    }

    fn param(&mut self, p: &str, hint: Option<DataType>) -> Result<(Expr, DataType)> {
        let n: usize = p
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| Error::Syntax(format!("invalid parameter {p}")))?;
        if self.params.len() < n {
            self.params.resize(n, None);
        }
        let ty = match self.params[n - 1] {
            Some(t) => t,
            None => {
                let t = hint.unwrap_or(DataType::Text);
                self.params[n - 1] = Some(t);
                t
            }
        };
        Ok((Expr::Param(n - 1), ty))
    }

    fn unary(
        &mut self,
        op: ast::UnaryOperator,
        e: &ast::Expr,
        scope: &Scope,
        hint: Option<DataType>,
    ) -> Result<(Expr, DataType)> {
        match op {
            ast::UnaryOperator::Not => {
                let (e, t) = self.bind(e, scope, Some(DataType::Bool))?;
                expect_bool(t, "NOT")?;
                Ok((Expr::Not(Box::new(e)), DataType::Bool))
            }
            ast::UnaryOperator::Minus | ast::UnaryOperator::Plus => {
                // Fold "-<number>" so that -9223372036854775808 is a valid int8 literal.
                if let (ast::UnaryOperator::Minus, ast::Expr::Value(v)) = (op, e)
                    && let ast::Value::Number(n, _) = &v.value
                {
                    return number(&format!("-{n}"));
                }
                let (inner, t) = self.bind(e, scope, hint.filter(|h| h.is_numeric()))?;
                if !t.is_numeric() && t != DataType::Interval {
                    return Err(Error::DatatypeMismatch(format!(
                        "operator does not exist: {op} {t}"
                    )));
                }
                Ok(if op == ast::UnaryOperator::Minus {
                    (Expr::Neg(Box::new(inner), t), t)
                } else {
                    (inner, t)
                })
            }
            op => Err(not_supported(format!("operator {op}"))),
        }
    }

    /// Binds both operands of a binary operator, typing a flexible operand from the other.
    fn operands(
        &mut self,
        l: &ast::Expr,
        r: &ast::Expr,
        scope: &Scope,
        hint: Option<DataType>,
    ) -> Result<((Expr, DataType), (Expr, DataType))> {
        if is_flexible(l) && !is_flexible(r) {
            let right = self.bind(r, scope, hint)?;
            let left = self.bind(l, scope, Some(right.1))?;
            Ok((left, right))
        } else {
            let left = self.bind(l, scope, hint)?;
            let right = self.bind(r, scope, Some(left.1))?;
            Ok((left, right))
        }
    }

    fn binary(
        &mut self,
        l: &ast::Expr,
        op: &ast::BinaryOperator,
        r: &ast::Expr,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        if let Some(bound) = self.array_binary(l, op, r, scope) {
            return bound;
        }
        use ast::BinaryOperator as B;
        let cmp = match op {
            B::Eq => Some(CmpOp::Eq),
            B::NotEq => Some(CmpOp::NotEq),
            B::Lt => Some(CmpOp::Lt),
            B::LtEq => Some(CmpOp::LtEq),
            B::Gt => Some(CmpOp::Gt),
            B::GtEq => Some(CmpOp::GtEq),
            _ => None,
        };
        if let Some(cmp) = cmp {
            let ((a, ta), (b, tb)) = self.operands(l, r, scope, None)?;
            comparable(op, ta, tb)?;
            let (a, b) = comparison_operands(a, ta, b, tb);
            return Ok((Expr::Compare(cmp, Box::new(a), Box::new(b)), DataType::Bool));
        }
        let (mut left, mut right) = match self.jsonb_operator(l, op, r, scope)? {
            Binding::Jsonb(e, t) => return Ok((e, t)),
            Binding::Left(e, t) => (Some((e, t)), None),
            Binding::Right(e, t) => (None, Some((e, t))),
            Binding::None => (None, None),
        };
        let arith = match op {
            B::Plus => Some(ArithOp::Add),
            B::Minus => Some(ArithOp::Sub),
            B::Multiply => Some(ArithOp::Mul),
            B::Divide => Some(ArithOp::Div),
            B::Modulo => Some(ArithOp::Rem),
            _ => None,
        };
        if let Some(arith) = arith {
            let ((a, ta), (b, tb)) = match left {
                // As `operands` binds a typed left operand: first, without a hint.
                Some(left) => {
                    let right = self.bind(r, scope, Some(left.1))?;
                    (left, right)
                }
                None => self.operands(l, r, scope, None)?,
            };
            let ty = DataType::arith_type(arith, ta, tb)
                .ok_or_else(|| mismatch(&op.to_string(), ta, tb))?;
            return Ok((Expr::Arith(arith, Box::new(a), Box::new(b), ty), ty));
        }
        match op {
            B::And | B::Or => {
                let (a, ta) = self.bind(l, scope, Some(DataType::Bool))?;
                let (b, tb) = self.bind(r, scope, Some(DataType::Bool))?;
                expect_bool(ta, &op.to_string())?;
                expect_bool(tb, &op.to_string())?;
                let (a, b) = (Box::new(a), Box::new(b));
                Ok((
                    if *op == B::And {
                        Expr::And(a, b)
                    } else {
                        Expr::Or(a, b)
                    },
                    DataType::Bool,
                ))
            }
            B::StringConcat => {
                let (a, ta) = match left.take() {
                    Some(left) => left,
                    None => self.bind(l, scope, Some(DataType::Text))?,
                };
                let (b, tb) = match right.take() {
                    Some(right) => right,
                    None => self.bind(r, scope, Some(DataType::Text))?,
                };
                let (a, b) = (char_as_text(a, ta), char_as_text(b, tb));
                // bytea || bytea is bytea; anything else concatenates text forms.
                let ty = if (ta, tb) == (DataType::Bytea, DataType::Bytea) {
                    DataType::Bytea
                } else {
                    DataType::Text
                };
                Ok((Expr::Concat(Box::new(a), Box::new(b)), ty))
            }
            B::PGRegexMatch | B::PGRegexIMatch | B::PGRegexNotMatch | B::PGRegexNotIMatch => {
                let f = match op {
                    B::PGRegexMatch | B::PGRegexNotMatch => Function::Regex,
                    _ => Function::RegexI,
                };
                let negated = matches!(op, B::PGRegexNotMatch | B::PGRegexNotIMatch);
                self.pattern(f, &op.to_string(), &[l, r], negated, scope)
            }
            op => Err(not_supported(format!("operator {op}"))),
        }
    }

    fn in_list(
        &mut self,
        e: &ast::Expr,
        list: &[ast::Expr],
        negated: bool,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        let mut any: Option<Expr> = None;
        for item in list {
            let eq = ast::Expr::BinaryOp {
                left: Box::new(e.clone()),
                op: ast::BinaryOperator::Eq,
                right: Box::new(item.clone()),
            };
            let (b, _) = self.bind(&eq, scope, None)?;
            any = Some(match any {
                None => b,
                Some(a) => Expr::Or(Box::new(a), Box::new(b)),
            });
        }
        let any = any.ok_or_else(|| Error::Syntax("empty IN list".into()))?;
        Ok((
            if negated {
                Expr::Not(Box::new(any))
            } else {
                any
            },
            DataType::Bool,
        ))
    }
}

impl Planner<'_> {
    /// Plans a subquery of an expression bound in `scope`, which becomes its outer scope.
    pub(crate) fn bind_subquery(&mut self, q: &ast::Query, scope: &Scope) -> Result<Node> {
        self.outer.push(scope.clone());
        let plan = self.plan_query(q);
        self.outer.pop();
        plan
    }

    pub(super) fn in_subquery(
        &mut self,
        e: &ast::Expr,
        q: &ast::Query,
        negated: bool,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        let plan = self.bind_subquery(q, scope)?;
        let ty = single_column(&plan)?;
        let (operand, t) = self.bind(e, scope, Some(ty))?;
        comparable(&ast::BinaryOperator::Eq, t, ty)?;
        let e = subquery_expr(SubqueryKind::In(operand), plan);
        Ok((maybe_not(e, negated), DataType::Bool))
    }

    fn is_distinct(
        &mut self,
        a: &ast::Expr,
        b: &ast::Expr,
        negated: bool,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        let ((a, ta), (b, tb)) = self.operands(a, b, scope, None)?;
        comparable(&ast::BinaryOperator::Eq, ta, tb)?;
        let e = Expr::IsDistinct(Box::new(a), Box::new(b));
        Ok((maybe_not(e, negated), DataType::Bool))
    }

    /// Binds expressions that must share one type (CASE results, COALESCE arguments): typed
    /// ones first, then untyped literals and parameters as that type (TEXT if all are untyped);
    /// numeric types are promoted by casts.
    pub(crate) fn bind_common(
        &mut self,
        exprs: &[&ast::Expr],
        scope: &Scope,
        hint: Option<DataType>,
        what: &str,
    ) -> Result<(Vec<Expr>, DataType)> {
        let mut bound: Vec<Option<(Expr, DataType)>> = vec![None; exprs.len()];
        let mut common: Option<DataType> = None;
        for (i, e) in exprs.iter().enumerate() {
            if is_flexible(e) {
                continue;
            }
            let (b, t) = self.bind(e, scope, None)?;
            common = Some(match common {
                None => t,
                Some(c) => common_type(c, t).ok_or_else(|| {
                    Error::DatatypeMismatch(format!("{what} types {c} and {t} cannot be matched"))
                })?,
            });
            bound[i] = Some((b, t));
        }
        let ty = common.or(hint).unwrap_or(DataType::Text);
        let mut out = Vec::with_capacity(exprs.len());
        for (i, b) in bound.into_iter().enumerate() {
            let (e, t) = match b {
                Some(b) => b,
                None => self.bind(exprs[i], scope, Some(ty))?,
            };
            out.push(if t == ty || t.is_integer() && ty.is_integer() {
                e
            } else {
                cast_expr(e, t, ty)?
            });
        }
        Ok((out, ty))
    }

    fn case(
        &mut self,
        operand: Option<&ast::Expr>,
        conditions: &[ast::CaseWhen],
        otherwise: Option<&ast::Expr>,
        scope: &Scope,
        hint: Option<DataType>,
    ) -> Result<(Expr, DataType)> {
        let mut whens = Vec::with_capacity(conditions.len());
        for c in conditions {
            // The simple form compares the operand with each WHEN value.
            let cond = match operand {
                Some(o) => ast::Expr::BinaryOp {
                    left: Box::new(o.clone()),
                    op: ast::BinaryOperator::Eq,
                    right: Box::new(c.condition.clone()),
                },
                None => c.condition.clone(),
            };
            let (b, t) = self.bind(&cond, scope, Some(DataType::Bool))?;
            expect_bool(t, "CASE/WHEN")?;
            whens.push(b);
        }
        let mut results: Vec<&ast::Expr> = conditions.iter().map(|c| &c.result).collect();
        results.extend(otherwise);
        let (mut results, ty) = self.bind_common(&results, scope, hint, "CASE")?;
        let otherwise = otherwise.and_then(|_| results.pop()).map(Box::new);
        let whens = whens.into_iter().zip(results).collect();
        Ok((Expr::Case { whens, otherwise }, ty))
    }

    /// Binds a call of a scalar function (COALESCE and NULLIF included).
    fn function(
        &mut self,
        f: &ast::Function,
        scope: &Scope,
        hint: Option<DataType>,
    ) -> Result<(Expr, DataType)> {
        let name = f.name.to_string().to_lowercase();
        if let ("make_interval", ast::FunctionArguments::List(l)) = (name.as_str(), &f.args)
            && l.duplicate_treatment.is_none()
            && l.clauses.is_empty()
        {
            return self.make_interval_named(&l.args, scope);
        }
        let args = match &f.args {
            ast::FunctionArguments::List(l)
                if l.duplicate_treatment.is_none()
                    && l.clauses.is_empty()
                    && f.filter.is_none()
                    && f.over.is_none()
                    && f.within_group.is_empty() =>
            {
                l.args
                    .iter()
                    .map(|a| match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
                        _ => Err(not_supported(format!("argument {a} of {name}"))),
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            ast::FunctionArguments::None => vec![],
            _ => return Err(not_supported(format!("function call {f}"))),
        };
        let no_function = |types: &[DataType]| {
            let t: Vec<String> = types.iter().map(|t| t.to_string()).collect();
            Error::DatatypeMismatch(format!("function {name}({}) does not exist", t.join(", ")))
        };
        let bound_below = matches!(
            (name.as_str(), args.len()),
            ("lower" | "upper" | "length" | "rtrim" | "abs", 1)
                | ("coalesce" | "nullif", _)
                | (
                    "now" | "current_timestamp" | "current_date" | "localtimestamp",
                    0
                )
        );
        if !bound_below && let Some(bound) = self.scalar_function(&name, &args, scope, hint) {
            return bound;
        }
        match (name.as_str(), args.as_slice()) {
            ("coalesce", args) if !args.is_empty() => {
                let (args, ty) = self.bind_common(args, scope, hint, "COALESCE")?;
                Ok((Expr::Coalesce(args), ty))
            }
            ("nullif", [a, b]) => {
                // NULLIF(a, b) is CASE WHEN a = b THEN NULL ELSE a END, of a's type.
                let ((ea, ta), (eb, tb)) = self.operands(a, b, scope, hint)?;
                comparable(&ast::BinaryOperator::Eq, ta, tb)?;
                let eq = Expr::Compare(CmpOp::Eq, Box::new(ea.clone()), Box::new(eb));
                let whens = vec![(eq, Expr::Constant(Value::Null))];
                let otherwise = Some(Box::new(ea));
                Ok((Expr::Case { whens, otherwise }, ta))
            }
            ("abs", [a]) => {
                let (e, t) = self.bind(a, scope, hint.filter(|h| h.is_numeric()))?;
                if !t.is_numeric() {
                    return Err(no_function(&[t]));
                }
                let abs = Expr::Function(Function::Abs, vec![e]);
                // The cast checks the result against the argument's range (abs of int4's
                // minimum is out of range, as in PostgreSQL).
                Ok((Expr::Cast(Box::new(abs), t), t))
            }
            ("now" | "current_timestamp", []) => {
                Ok((Expr::Function(Function::Now, vec![]), DataType::Timestamptz))
            }
            ("current_date", []) => Ok((
                Expr::Cast(
                    Box::new(Expr::Function(Function::Now, vec![])),
                    DataType::Date,
                ),
                DataType::Date,
            )),
            ("localtimestamp", []) => Ok((
                Expr::Cast(
                    Box::new(Expr::Function(Function::Now, vec![])),
                    DataType::Timestamp,
                ),
                DataType::Timestamp,
            )),
            ("length", [a]) if self.bind(a, scope, None)?.1 == DataType::Bytea => {
                let (e, _) = self.bind(a, scope, None)?;
                Ok((Expr::Function(Function::Length, vec![e]), DataType::Int4))
            }
            ("lower" | "upper" | "length" | "rtrim", [a]) => {
                let (e, t) = self.bind(a, scope, Some(DataType::Text))?;
                if !t.is_string() {
                    return Err(no_function(&[t]));
                }
                let e = char_as_text(e, t);
                Ok(match name.as_str() {
                    "lower" => (Expr::Function(Function::Lower, vec![e]), DataType::Text),
                    "upper" => (Expr::Function(Function::Upper, vec![e]), DataType::Text),
                    "rtrim" => (Expr::Function(Function::Rtrim, vec![e]), DataType::Text),
                    _ => (Expr::Function(Function::Length, vec![e]), DataType::Int4),
                })
            }
            ("coalesce" | "nullif" | "abs" | "lower" | "upper" | "length" | "rtrim", args) => {
                let mut types = Vec::new();
                for a in args {
                    types.push(self.bind(a, scope, None)?.1);
                }
                Err(no_function(&types))
            }
            _ => Err(self.undefined(&name, &args, scope)),
        }
    }
}

/// The type two values of types `a` and `b` are both converted to (see
/// [`DataType::common_type`]).
pub(crate) fn common_type(a: DataType, b: DataType) -> Option<DataType> {
    DataType::common_type(a, b)
}

/// A CHAR value as text: without its trailing spaces, as PostgreSQL's cast from `bpchar`
/// to `text` does (other expressions are returned as they are).
pub(crate) fn char_as_text(e: Expr, t: DataType) -> Expr {
    match t {
        DataType::Char(_) => Expr::Function(Function::Rtrim, vec![e]),
        _ => e,
    }
}

/// The operands of a comparison as they are compared: a CHAR compared with a CHAR ignores
/// trailing spaces on both sides; a CHAR compared with another string type is text.
fn comparison_operands(a: Expr, ta: DataType, b: Expr, tb: DataType) -> (Expr, Expr) {
    match (ta, tb) {
        (DataType::Char(_), t) | (t, DataType::Char(_)) if t.is_string() => {
            (char_as_text(a, ta), char_as_text(b, tb))
        }
        _ => (a, b),
    }
}

fn maybe_not(e: Expr, negated: bool) -> Expr {
    if negated { Expr::Not(Box::new(e)) } else { e }
}

pub(super) fn subquery_expr(kind: SubqueryKind, plan: Node) -> Expr {
    Expr::Subquery(Box::new(Subquery { kind, plan }))
}

/// The type of a subquery's only column; 42601 if it has several.
pub(super) fn single_column(plan: &Node) -> Result<DataType> {
    match plan.columns().as_slice() {
        [c] => Ok(c.data_type),
        _ => Err(Error::Syntax("subquery must return only one column".into())),
    }
}

/// The aggregate functions' names.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "bool_and",
    "bool_or",
    "every",
    "string_agg",
    "array_agg",
    "stddev",
    "stddev_samp",
    "stddev_pop",
    "variance",
    "var_samp",
    "var_pop",
    "jsonb_agg",
    "json_agg",
    "jsonb_object_agg",
    "json_object_agg",
];

/// The aggregate function a call names, if any (a call with OVER is a window function).
pub(crate) fn aggregate_name(f: &ast::Function) -> Option<String> {
    let name = f.name.to_string().to_lowercase();
    (f.over.is_none() && is_aggregate_name(&name)).then_some(name)
}

/// Whether `name` (lower case) is an aggregate function's.
pub(crate) fn is_aggregate_name(name: &str) -> bool {
    AGGREGATES.contains(&name)
}

fn expect_bool(t: DataType, op: &str) -> Result<()> {
    if t != DataType::Bool {
        return Err(Error::DatatypeMismatch(format!(
            "argument of {op} must be type boolean, not type {t}"
        )));
    }
    Ok(())
}

fn comparable(op: &ast::BinaryOperator, a: DataType, b: DataType) -> Result<()> {
    if DataType::comparable(a, b) {
        return Ok(());
    }
    Err(mismatch(&op.to_string(), a, b))
}

/// Types a numeric literal as PostgreSQL does: int4 if it fits, else int8, else numeric (as
/// is every literal with a point or an exponent). A literal beyond what a numeric holds here
/// (see `types::numeric`) is double precision instead.
fn number(n: &str) -> Result<(Expr, DataType)> {
    if let Ok(i) = n.parse::<i64>() {
        let ty = if i32::try_from(i).is_ok() {
            DataType::Int4
        } else {
            DataType::Int8
        };
        return Ok((Expr::Constant(Value::Int(i)), ty));
    }
    match crate::types::numeric::parse(n) {
        Ok(d) => Ok((
            Expr::Constant(crate::types::numeric::value(d)),
            DataType::Numeric(None),
        )),
        Err(Error::OutOfRange(_)) => {
            let f: f64 = n
                .parse()
                .map_err(|_| Error::InvalidInput(format!("invalid number {n}")))?;
            Ok((Expr::Constant(Value::Float(f)), DataType::Float8))
        }
        Err(e) => Err(e),
    }
}

/// A cast of `e` (of type `from`) to `ty`: a CHAR loses its trailing spaces first.
pub(crate) fn cast_expr(e: Expr, from: DataType, ty: DataType) -> Result<Expr> {
    match from {
        DataType::Char(_) if ty.is_string() => fold_cast(char_as_text(e, from), ty),
        _ => fold_cast(e, ty),
    }
}

/// A cast, evaluated now when its operand is a constant (so invalid literals fail at plan time).
fn fold_cast(e: Expr, ty: DataType) -> Result<Expr> {
    match e {
        Expr::Constant(v) => Ok(Expr::Constant(v.cast(ty)?)),
        e => Ok(Expr::Cast(Box::new(e), ty)),
    }
}
