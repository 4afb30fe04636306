//! Binding of the jsonb operators and functions: the operand types PostgreSQL resolves for
//! each (`->` takes a text key or an integer index, `@>` another jsonb, `#>` a text
//! array...). Paths and key lists are `text[]` values, or text (an unknown literal such as
//! `'{a,0}'`) parsed as an array literal when it is evaluated (`exec::jsonb`). sqlparser's PostgreSQL
//! dialect gives every one of these operators PostgreSQL's precedence for "any other
//! operator" (that of `||`, left-associative), so `j -> 'a' || j` groups as PostgreSQL does.

use sqlparser::ast;

use super::Planner;
use super::expr::{Scope, ScopeColumn, char_as_text, ident_name, is_flexible};
use crate::plan::{Expr, Function, JsonbFn, JsonbTable, Node};
use crate::{Column, DataType, Error, Result};

/// The jsonb operator a binary operator names, if it is one only jsonb has.
fn operator(op: &ast::BinaryOperator) -> Option<JsonbFn> {
    use ast::BinaryOperator as B;
    Some(match op {
        B::Arrow => JsonbFn::Get,
        B::LongArrow => JsonbFn::GetText,
        B::HashArrow => JsonbFn::Path,
        B::HashLongArrow => JsonbFn::PathText,
        B::AtArrow => JsonbFn::Contains,
        B::ArrowAt => JsonbFn::ContainedBy,
        B::Question => JsonbFn::Exists,
        B::QuestionPipe => JsonbFn::ExistsAny,
        B::QuestionAnd => JsonbFn::ExistsAll,
        B::HashMinus => JsonbFn::DeletePath,
        _ => return None,
    })
}

fn mismatch(op: &ast::BinaryOperator, a: DataType, b: DataType) -> Error {
    Error::DatatypeMismatch(format!("operator does not exist: {a} {op} {b}"))
}

fn call(f: JsonbFn, args: Vec<Expr>) -> Expr {
    Expr::Function(Function::Jsonb(f), args)
}

/// What [`Planner::jsonb_operator`] found.
pub(super) enum Binding {
    /// A jsonb operator, bound.
    Jsonb(Expr, DataType),
    /// Not a jsonb operator: the left operand, bound (with no type hint) to find that out.
    Left(Expr, DataType),
    /// Not a jsonb operator: the right operand, bound (with no type hint) to find that out.
    Right(Expr, DataType),
    /// Not a jsonb operator, and nothing bound.
    None,
}

impl Planner<'_> {
    /// Binds `l op r` when it is a jsonb operator: one of jsonb's own, or `||` / `-` with a
    /// jsonb operand. Otherwise returns the operand it had to bind to tell, so that the
    /// caller binds every operand once (nested chains stay linear).
    pub(super) fn jsonb_operator(
        &mut self,
        l: &ast::Expr,
        op: &ast::BinaryOperator,
        r: &ast::Expr,
        scope: &Scope,
    ) -> Result<Binding> {
        if let Some(f) = operator(op) {
            let (e, t) = self.bind_operator(f, None, l, op, r, scope)?;
            return Ok(Binding::Jsonb(e, t));
        }
        let f = match op {
            ast::BinaryOperator::StringConcat => JsonbFn::Concat,
            ast::BinaryOperator::Minus => JsonbFn::Delete,
            _ => return Ok(Binding::None),
        };
        // Only a typed operand can make `||` or `-` a jsonb operator.
        if !is_flexible(l) {
            let left = self.bind(l, scope, None)?;
            if left.1 != DataType::Jsonb {
                return Ok(Binding::Left(left.0, left.1));
            }
            let (e, t) = self.bind_operator(f, Some(left), l, op, r, scope)?;
            return Ok(Binding::Jsonb(e, t));
        }
        if f == JsonbFn::Concat && !is_flexible(r) {
            let (b, tb) = self.bind(r, scope, None)?;
            if tb != DataType::Jsonb {
                return Ok(Binding::Right(b, tb));
            }
            let (a, ta) = self.bind(l, scope, Some(DataType::Jsonb))?;
            if ta != DataType::Jsonb {
                return Err(mismatch(op, ta, tb));
            }
            return Ok(Binding::Jsonb(call(f, vec![a, b]), DataType::Jsonb));
        }
        Ok(Binding::None)
    }

    /// Binds a jsonb operator; `left` is the left operand if it is already bound.
    fn bind_operator(
        &mut self,
        f: JsonbFn,
        left: Option<(Expr, DataType)>,
        l: &ast::Expr,
        op: &ast::BinaryOperator,
        r: &ast::Expr,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        use JsonbFn as J;
        let (a, ta) = match left {
            Some(left) => left,
            None => self.bind(l, scope, Some(DataType::Jsonb))?,
        };
        let right_hint = match f {
            J::Contains | J::ContainedBy | J::Concat => Some(DataType::Jsonb),
            J::Get | J::GetText | J::Delete => None,
            _ => Some(DataType::Text),
        };
        let (b, tb) = self.bind(r, scope, right_hint)?;
        if f == J::Concat && ta == DataType::Jsonb && tb.is_string() {
            // jsonb || text is PostgreSQL's `anynonarray || text`: text concatenation.
            let concat = Expr::Concat(Box::new(a), Box::new(char_as_text(b, tb)));
            return Ok((concat, DataType::Text));
        }
        let right_ok = match f {
            J::Contains | J::ContainedBy | J::Concat => tb == DataType::Jsonb,
            J::Get | J::GetText | J::Delete => tb.is_string() || tb.is_integer(),
            J::Path | J::PathText | J::DeletePath | J::ExistsAny | J::ExistsAll => is_path(tb),
            _ => tb.is_string(),
        };
        if ta != DataType::Jsonb || !right_ok {
            return Err(mismatch(op, ta, tb));
        }
        let b = match tb {
            DataType::Int2 | DataType::Int4 | DataType::Int8 => b,
            t => char_as_text(b, t),
        };
        let ty = match f {
            J::GetText | J::PathText => DataType::Text,
            J::Contains | J::ContainedBy | J::Exists | J::ExistsAny | J::ExistsAll => {
                DataType::Bool
            }
            _ => DataType::Jsonb,
        };
        Ok((call(f, vec![a, b]), ty))
    }

    /// Plans a jsonb table function in FROM. An alias names the relation and its columns; a
    /// function of one unnamed column (`jsonb_object_keys`) takes the alias as its column's
    /// name, as in PostgreSQL.
    pub(super) fn plan_jsonb_table(
        &mut self,
        name: &str,
        args: &ast::TableFunctionArgs,
        alias: Option<&ast::TableAlias>,
    ) -> Result<(Node, Scope)> {
        let func = match name {
            "jsonb_each" => JsonbTable::Each,
            "jsonb_each_text" => JsonbTable::EachText,
            "jsonb_object_keys" => JsonbTable::ObjectKeys,
            "jsonb_array_elements" => JsonbTable::ArrayElements,
            _ => JsonbTable::ArrayElementsText,
        };
        let scope = Scope::default();
        let exprs = args
            .args
            .iter()
            .map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
                a => Err(Error::NotSupported(format!(
                    "argument {a} of {name} is not supported yet"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        let [arg] = exprs.as_slice() else {
            return Err(self.undefined(name, &exprs, &scope));
        };
        // The argument sees no FROM item: PostgreSQL's implicit LATERAL is not there yet.
        let (arg, t) = self
            .bind(arg, &scope, Some(DataType::Jsonb))
            .map_err(|e| match e {
                Error::UndefinedColumn(_) | Error::UndefinedTable(_) => Error::NotSupported(
                    format!("{name} cannot refer to columns of other FROM items yet (no LATERAL)"),
                ),
                e => e,
            })?;
        if t != DataType::Jsonb {
            return Err(self.undefined(name, &exprs, &scope));
        }
        let value = match func {
            JsonbTable::Each | JsonbTable::ArrayElements => DataType::Jsonb,
            _ => DataType::Text,
        };
        let mut columns = match func {
            JsonbTable::Each | JsonbTable::EachText => vec![
                Column {
                    name: "key".into(),
                    data_type: DataType::Text,
                },
                Column {
                    name: "value".into(),
                    data_type: value,
                },
            ],
            JsonbTable::ObjectKeys => vec![Column {
                name: alias.map_or_else(|| name.to_string(), |a| ident_name(&a.name)),
                data_type: DataType::Text,
            }],
            _ => vec![Column {
                name: "value".into(),
                data_type: value,
            }],
        };
        let relation = alias.map_or_else(|| name.to_string(), |a| ident_name(&a.name));
        if let Some(a) = alias {
            if a.columns.len() > columns.len() {
                return Err(Error::Syntax(format!(
                    "too many column aliases specified for function {name}"
                )));
            }
            for (c, alias) in columns.iter_mut().zip(&a.columns) {
                c.name = ident_name(&alias.name);
            }
        }
        let scope = Scope {
            columns: columns
                .iter()
                .map(|c| ScopeColumn {
                    relation: Some(relation.clone()),
                    name: c.name.clone(),
                    data_type: c.data_type,
                    hidden: false,
                    merged: false,
                })
                .collect(),
            ..Scope::default()
        };
        Ok((Node::JsonbTable { func, arg, columns }, scope))
    }

    /// Binds a call of a jsonb function; None when `name` is not one of them.
    pub(super) fn jsonb_function(
        &mut self,
        name: &str,
        args: &[&ast::Expr],
        scope: &Scope,
    ) -> Option<Result<(Expr, DataType)>> {
        use JsonbFn as J;
        let f = match name {
            "jsonb_typeof" | "json_typeof" => J::Typeof,
            "jsonb_array_length" | "json_array_length" => J::ArrayLength,
            "jsonb_build_object" | "json_build_object" => J::BuildObject,
            "jsonb_build_array" | "json_build_array" => J::BuildArray,
            "to_jsonb" | "to_json" => J::ToJsonb,
            "jsonb_set" => J::Set,
            "jsonb_strip_nulls" | "json_strip_nulls" => J::StripNulls,
            "jsonb_pretty" => J::Pretty,
            "jsonb_each"
            | "jsonb_each_text"
            | "jsonb_object_keys"
            | "jsonb_array_elements"
            | "jsonb_array_elements_text" => {
                return Some(Err(Error::NotSupported(format!(
                    "{name} in the select list is not supported yet (use it in FROM)"
                ))));
            }
            _ => return None,
        };
        Some(self.bind_jsonb_call(f, name, args, scope))
    }

    fn bind_jsonb_call(
        &mut self,
        f: JsonbFn,
        name: &str,
        args: &[&ast::Expr],
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        use JsonbFn as J;
        if matches!(f, J::BuildObject | J::BuildArray) {
            let mut bound = Vec::with_capacity(args.len());
            for a in args {
                let (e, t) = self.bind(a, scope, None)?;
                bound.push(char_as_text(e, t));
            }
            return Ok((call(f, bound), DataType::Jsonb));
        }
        let (params, ty): (&[DataType], DataType) = match (f, args.len()) {
            (J::ToJsonb, 1) => (&[], DataType::Jsonb),
            (J::Typeof, 1) => (&[DataType::Jsonb], DataType::Text),
            (J::ArrayLength, 1) => (&[DataType::Jsonb], DataType::Int4),
            (J::StripNulls, 1) => (&[DataType::Jsonb], DataType::Jsonb),
            (J::Pretty, 1) => (&[DataType::Jsonb], DataType::Text),
            (J::Set, 3) => (
                &[DataType::Jsonb, DataType::Text, DataType::Jsonb],
                DataType::Jsonb,
            ),
            (J::Set, 4) => (
                &[
                    DataType::Jsonb,
                    DataType::Text,
                    DataType::Jsonb,
                    DataType::Bool,
                ],
                DataType::Jsonb,
            ),
            _ => return Err(self.undefined(name, args, scope)),
        };
        if f == J::ToJsonb {
            let (e, t) = self.bind(args[0], scope, Some(DataType::Text))?;
            return Ok((call(f, vec![char_as_text(e, t)]), ty));
        }
        let mut bound = Vec::with_capacity(args.len());
        for (a, want) in args.iter().zip(params) {
            let (e, t) = self.bind(a, scope, Some(*want))?;
            let fits = t == *want
                || (want.is_string() && t.is_string())
                || (bound.len() == 1 && is_path(t));
            if !fits {
                return Err(self.undefined(name, args, scope));
            }
            bound.push(char_as_text(e, t));
        }
        Ok((call(f, bound), ty))
    }
}

/// Whether a value of type `t` can be a path or key list: text (an array literal) or an
/// array of a string type.
fn is_path(t: DataType) -> bool {
    match t {
        DataType::Array(e) => e.data_type().is_string(),
        t => t.is_string(),
    }
}
