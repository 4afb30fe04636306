//! Binding expressions: names resolved through a [`Scope`], types checked and inferred
//! (parameters take their type from context), constants folded where errors must surface at
//! plan time (`'abc'::int4`).

use sqlparser::ast;

use crate::plan::{CmpOp, Expr};
use crate::types::ArithOp;
use crate::{DataType, Error, Result, Value};

/// A column visible to expressions: its relation (table or alias), name and type.
#[derive(Clone, Debug)]
pub(crate) struct ScopeColumn {
    pub relation: Option<String>,
    pub name: String,
    pub data_type: DataType,
    pub hidden: bool,
}

/// The columns an expression can refer to, in input-row order. After aggregation, `grouped`
/// maps group-by expressions and aggregate calls (by AST) to the aggregate node's columns.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scope {
    pub columns: Vec<ScopeColumn>,
    pub grouped: Option<Vec<(ast::Expr, usize)>>,
}

impl Scope {
    /// Resolves a possibly qualified column name to its index.
    fn resolve(&self, relation: Option<&str>, name: &str) -> Result<usize> {
        let mut found = None;
        for (i, c) in self.columns.iter().enumerate() {
            let rel_ok = match relation {
                Some(r) => c.relation.as_deref() == Some(r),
                None => true,
            };
            if rel_ok && c.name == name {
                if found.is_some() {
                    return Err(Error::InvalidParameter(format!(
                        "column reference \"{name}\" is ambiguous"
                    )));
                }
                found = Some(i);
            }
        }
        let qualified = match relation {
            Some(r) => format!("{r}.{name}"),
            None => name.to_string(),
        };
        found
            .ok_or_else(|| Error::UndefinedColumn(format!("column \"{qualified}\" does not exist")))
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

/// Binds expressions; owns the statement's parameter types.
pub(crate) struct Binder {
    /// Types of `$1..$n` known so far (declared by the client or inferred).
    pub params: Vec<Option<DataType>>,
}

/// Whether an AST expression takes its type from context (a parameter, NULL, a string literal).
fn is_flexible(e: &ast::Expr) -> bool {
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

impl Binder {
    /// Binds `e` in `scope`; `hint` is the type the context expects (used by parameters and
    /// untyped literals). Returns the expression and its type.
    pub fn bind(
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
                let (inner, _) = self.bind(expr, scope, Some(ty))?;
                Ok((fold_cast(inner, ty)?, ty))
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
            A::Function(f) => Err(match scope.grouped {
                _ if aggregate_name(f).is_some() => Error::InvalidParameter(format!(
                    "aggregate functions are not allowed here: {e}"
                )),
                _ => Error::NotSupported(format!("function {} is not supported yet", f.name)),
            }),
            _ => Err(not_supported(format!("expression {e}"))),
        }
    }

    fn column(
        &self,
        scope: &Scope,
        relation: Option<&str>,
        name: &str,
    ) -> Result<(Expr, DataType)> {
        let i = scope.resolve(relation, name)?;
        if scope.grouped.is_some() {
            return Err(Error::InvalidParameter(format!(
                "column \"{name}\" must appear in the GROUP BY clause or be used in an aggregate function"
            )));
        }
        Ok((Expr::Column(i), scope.columns[i].data_type))
    }

    /// Binds a literal or parameter.
    fn value(&mut self, v: &ast::Value, hint: Option<DataType>) -> Result<(Expr, DataType)> {
        use ast::Value as V;
        match v {
            V::Number(n, _) => number(n),
            V::SingleQuotedString(s)
            | V::EscapedStringLiteral(s)
            | V::DollarQuotedString(ast::DollarQuotedString { value: s, .. }) => {
                let ty = hint.unwrap_or(DataType::Text);
                let value = Value::Text(s.clone()).cast(ty)?;
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
                if !t.is_numeric() {
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
            return Ok((Expr::Compare(cmp, Box::new(a), Box::new(b)), DataType::Bool));
        }
        let arith = match op {
            B::Plus => Some(ArithOp::Add),
            B::Minus => Some(ArithOp::Sub),
            B::Multiply => Some(ArithOp::Mul),
            B::Divide => Some(ArithOp::Div),
            B::Modulo => Some(ArithOp::Rem),
            _ => None,
        };
        if let Some(arith) = arith {
            let ((a, ta), (b, tb)) = self.operands(l, r, scope, None)?;
            if !ta.is_numeric() || !tb.is_numeric() {
                return Err(mismatch(&op.to_string(), ta, tb));
            }
            let ty = DataType::arith_result(ta, tb);
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
                let (a, _) = self.bind(l, scope, Some(DataType::Text))?;
                let (b, _) = self.bind(r, scope, Some(DataType::Text))?;
                Ok((Expr::Concat(Box::new(a), Box::new(b)), DataType::Text))
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

/// The aggregate function a call names, if any.
pub(crate) fn aggregate_name(f: &ast::Function) -> Option<String> {
    let name = f.name.to_string().to_lowercase();
    matches!(name.as_str(), "count" | "sum" | "min" | "max").then_some(name)
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
    if a == b || (a.is_numeric() && b.is_numeric()) {
        return Ok(());
    }
    Err(mismatch(&op.to_string(), a, b))
}

/// Types a numeric literal as PostgreSQL does: int4 if it fits, else int8, else (for us)
/// float8 where PostgreSQL would use numeric.
fn number(n: &str) -> Result<(Expr, DataType)> {
    if let Ok(i) = n.parse::<i64>() {
        let ty = if i32::try_from(i).is_ok() {
            DataType::Int4
        } else {
            DataType::Int8
        };
        return Ok((Expr::Constant(Value::Int(i)), ty));
    }
    let f: f64 = n
        .parse()
        .map_err(|_| Error::InvalidInput(format!("invalid number {n}")))?;
    Ok((Expr::Constant(Value::Float(f)), DataType::Float8))
}

/// A cast, evaluated now when its operand is a constant (so invalid literals fail at plan time).
fn fold_cast(e: Expr, ty: DataType) -> Result<Expr> {
    match e {
        Expr::Constant(v) => Ok(Expr::Constant(v.cast(ty)?)),
        e => Ok(Expr::Cast(Box::new(e), ty)),
    }
}
