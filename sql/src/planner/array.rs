//! Binding of array expressions: `ARRAY[...]` and `ARRAY(SELECT ...)`, subscripts and
//! slices, `op ANY/ALL (array)`, the array operators (`||`, `@>`, `<@`, `&&`) and the array
//! functions, with PostgreSQL's polymorphic typing: an element argument takes the array's
//! element type (an untyped literal or parameter is read as it), an untyped array argument
//! takes the array type of its element argument. Evaluation is in `exec::array`.

use sqlparser::ast;

use super::Planner;
use super::expr::{Scope, cast_expr, is_flexible, single_column, subquery_expr};
use crate::plan::{CmpOp, Expr, Function, SubqueryKind};
use crate::types::array::{ArrayFunc, ElemType};
use crate::{DataType, Error, Result, Value};

/// Whether a call is `ARRAY(SELECT ...)`.
pub(super) fn is_array_subquery(f: &ast::Function) -> bool {
    matches!(f.args, ast::FunctionArguments::Subquery(_))
        && f.name.to_string().eq_ignore_ascii_case("array")
}

fn call(f: ArrayFunc, args: Vec<Expr>) -> Expr {
    Expr::Function(Function::Array(f), args)
}

/// The comparison a quantified (ANY/ALL) operator names.
fn cmp_op(op: &ast::BinaryOperator) -> Result<CmpOp> {
    use ast::BinaryOperator as B;
    Ok(match op {
        B::Eq => CmpOp::Eq,
        B::NotEq => CmpOp::NotEq,
        B::Lt => CmpOp::Lt,
        B::LtEq => CmpOp::LtEq,
        B::Gt => CmpOp::Gt,
        B::GtEq => CmpOp::GtEq,
        op => {
            return Err(Error::NotSupported(format!(
                "operator {op} with ANY or ALL is not supported"
            )));
        }
    })
}

fn operator_mismatch(op: &str, a: DataType, b: DataType) -> Error {
    Error::UndefinedFunction(format!("operator does not exist: {a} {op} {b}"))
}

/// `e` (of type `t`) as a value of `to`: cast unless it already is one.
fn convert(e: Expr, t: DataType, to: DataType) -> Result<Expr> {
    if t.without_typmod() == to.without_typmod() || (t.is_integer() && to == DataType::Int8) {
        return Ok(e);
    }
    if !DataType::assignable(t, to) && DataType::common_type(t, to) != Some(to) {
        return Err(Error::DatatypeMismatch(format!(
            "cannot convert {t} to {to} here"
        )));
    }
    cast_expr(e, t, to)
}

impl Planner<'_> {
    /// Binds an array constructor, subscript, quantified comparison or `ARRAY(SELECT ...)`.
    pub(super) fn bind_array(
        &mut self,
        e: &ast::Expr,
        scope: &Scope,
        hint: Option<DataType>,
    ) -> Result<(Expr, DataType)> {
        use ast::Expr as A;
        match e {
            A::Array(a) => self.array_constructor(&a.elem, scope, hint),
            A::CompoundFieldAccess { root, access_chain } => {
                self.subscript(root, access_chain, scope)
            }
            A::AnyOp {
                left,
                compare_op,
                right,
                ..
            } => self.quantified(left, compare_op, right, true, scope),
            A::AllOp {
                left,
                compare_op,
                right,
            } => self.quantified(left, compare_op, right, false, scope),
            A::Function(f) => match &f.args {
                ast::FunctionArguments::Subquery(q) => {
                    let plan = self.bind_subquery(q, scope)?;
                    let ty = single_column(&plan)?;
                    let elem =
                        ElemType::of(ty).ok_or_else(|| crate::types::array::no_array_of(ty))?;
                    Ok((
                        subquery_expr(SubqueryKind::Array, plan),
                        DataType::Array(elem),
                    ))
                }
                _ => Err(Error::Internal(format!("{e} is not an array expression"))),
            },
            _ => Err(Error::Internal(format!("{e} is not an array expression"))),
        }
    }

    fn array_constructor(
        &mut self,
        elems: &[ast::Expr],
        scope: &Scope,
        hint: Option<DataType>,
    ) -> Result<(Expr, DataType)> {
        let elem_hint = match hint {
            Some(DataType::Array(e)) => Some(e.data_type()),
            _ => None,
        };
        if elems.is_empty() {
            return match hint {
                Some(t @ DataType::Array(_)) => Ok((Expr::Constant(Value::Array(vec![])), t)),
                _ => Err(Error::DatatypeMismatch(
                    "cannot determine type of empty array".into(),
                )),
            };
        }
        let exprs: Vec<&ast::Expr> = elems.iter().collect();
        let (args, ty) = self.bind_common(&exprs, scope, elem_hint, "ARRAY")?;
        let elem = ElemType::of(ty).ok_or_else(|| crate::types::array::no_array_of(ty))?;
        Ok((call(ArrayFunc::Make, args), DataType::Array(elem)))
    }

    /// Binds an array expression; None for its type when it is not an array.
    fn bind_array_operand(
        &mut self,
        e: &ast::Expr,
        scope: &Scope,
        hint: Option<DataType>,
    ) -> Result<(Expr, Option<ElemType>)> {
        let (e, t) = self.bind(e, scope, hint)?;
        Ok(match t {
            DataType::Array(elem) => (e, Some(elem)),
            _ => (e, None),
        })
    }

    fn subscript(
        &mut self,
        root: &ast::Expr,
        chain: &[ast::AccessExpr],
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        let [ast::AccessExpr::Subscript(sub)] = chain else {
            return Err(Error::NotSupported(
                "only one subscript of a one-dimensional array is supported".into(),
            ));
        };
        let (a, t) = self.bind(root, scope, None)?;
        let DataType::Array(elem) = t else {
            return Err(Error::DatatypeMismatch(format!(
                "cannot subscript type {t} because it does not support subscripting"
            )));
        };
        let mut index = |e: &ast::Expr| -> Result<Expr> {
            let (i, it) = self.bind(e, scope, Some(DataType::Int4))?;
            if !it.is_integer() {
                return Err(Error::DatatypeMismatch(format!(
                    "array subscript must have type integer, not {it}"
                )));
            }
            Ok(i)
        };
        match sub {
            ast::Subscript::Index { index: i } => {
                let i = index(i)?;
                Ok((call(ArrayFunc::Subscript, vec![a, i]), elem.data_type()))
            }
            ast::Subscript::Slice {
                lower_bound,
                upper_bound,
                stride: None,
            } => {
                let mut args = vec![a];
                for b in lower_bound.iter().chain(upper_bound) {
                    args.push(index(b)?);
                }
                let f = ArrayFunc::Slice {
                    lower: lower_bound.is_some(),
                    upper: upper_bound.is_some(),
                };
                Ok((call(f, args), t))
            }
            ast::Subscript::Slice { .. } => Err(Error::Syntax(
                "syntax error at or near \":\" (a slice takes no step)".into(),
            )),
        }
    }

    fn quantified(
        &mut self,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
        any: bool,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        let cmp = cmp_op(op)?;
        if let ast::Expr::Subquery(q) = right {
            return match (cmp, any) {
                (CmpOp::Eq, true) => self.in_subquery(left, q, false, scope),
                (CmpOp::NotEq, false) => self.in_subquery(left, q, true, scope),
                _ => Err(Error::NotSupported(format!(
                    "{op} {} with a subquery is not supported",
                    if any { "ANY" } else { "ALL" }
                ))),
            };
        }
        let ((x, tx), (a, elem)) = if is_flexible(left) && !is_flexible(right) {
            let (a, elem) = self.bind_array_operand(right, scope, None)?;
            let x = self.bind(left, scope, elem.map(ElemType::data_type))?;
            (x, (a, elem))
        } else {
            let x = self.bind(left, scope, None)?;
            let hint = ElemType::of(x.1).map(DataType::Array);
            (x, self.bind_array_operand(right, scope, hint)?)
        };
        let Some(elem) = elem else {
            return Err(Error::DatatypeMismatch(format!(
                "op {} requires array on right side",
                if any { "ANY/SOME" } else { "ALL" }
            )));
        };
        if !DataType::comparable(tx, elem.data_type()) {
            return Err(operator_mismatch(&op.to_string(), tx, elem.data_type()));
        }
        let f = if any {
            ArrayFunc::Any(cmp)
        } else {
            ArrayFunc::All(cmp)
        };
        Ok((call(f, vec![x, a]), DataType::Bool))
    }

    /// Binds `||`, `@>`, `<@` or `&&` when an operand is an array; None when neither is (the
    /// operator is then bound as it is for scalars).
    pub(super) fn array_binary(
        &mut self,
        l: &ast::Expr,
        op: &ast::BinaryOperator,
        r: &ast::Expr,
        scope: &Scope,
    ) -> Option<Result<(Expr, DataType)>> {
        use ast::BinaryOperator as B;
        if !matches!(op, B::StringConcat | B::AtArrow | B::ArrowAt | B::PGOverlap) {
            return None;
        }
        let mut peek = |e: &ast::Expr| -> Result<Option<DataType>> {
            if is_flexible(e) {
                return Ok(None);
            }
            let key = (
                e as *const ast::Expr as usize,
                scope as *const Scope as usize,
                self.outer.len(),
            );
            if let Some(&t) = self.operand_types.get(&key) {
                return Ok(Some(t));
            }
            let t = self.bind(e, scope, None)?.1;
            self.operand_types.insert(key, t);
            Ok(Some(t))
        };
        let types = peek(l).and_then(|lt| Ok((lt, peek(r)?)));
        let (lt, rt) = match types {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        let is_array = |t: Option<DataType>| matches!(t, Some(DataType::Array(_)));
        if !is_array(lt) && !is_array(rt) {
            return None;
        }
        Some(self.bind_array_binary(l, op, r, lt, rt, scope))
    }

    fn bind_array_binary(
        &mut self,
        l: &ast::Expr,
        op: &ast::BinaryOperator,
        r: &ast::Expr,
        lt: Option<DataType>,
        rt: Option<DataType>,
        scope: &Scope,
    ) -> Result<(Expr, DataType)> {
        let symbol = op.to_string();
        let elem_of = |t: Option<DataType>| match t {
            Some(DataType::Array(e)) => Some(e),
            _ => None,
        };
        let (le, re) = (elem_of(lt), elem_of(rt));
        // A side that is not an array: an element when the other is one and it is typed.
        if *op == ast::BinaryOperator::StringConcat {
            if let (Some(e), Some(t)) = (le, rt)
                && re.is_none()
            {
                let (a, _) = self.bind(l, scope, None)?;
                let (x, _) = self.bind(r, scope, None)?;
                let x = convert(x, t, e.data_type())?;
                return Ok((call(ArrayFunc::Append, vec![a, x]), DataType::Array(e)));
            }
            if let (Some(t), Some(e)) = (lt, re)
                && le.is_none()
            {
                let (x, _) = self.bind(l, scope, None)?;
                let (a, _) = self.bind(r, scope, None)?;
                let x = convert(x, t, e.data_type())?;
                return Ok((call(ArrayFunc::Prepend, vec![x, a]), DataType::Array(e)));
            }
        }
        let known = le.or(re).map(DataType::Array);
        let (a, ta) = self.bind(l, scope, known)?;
        let (b, tb) = self.bind(r, scope, known)?;
        let ty = match (ta, tb) {
            (DataType::Array(_), DataType::Array(_)) => DataType::common_type(ta, tb),
            _ => None,
        }
        .ok_or_else(|| operator_mismatch(&symbol, ta, tb))?;
        let (a, b) = (convert(a, ta, ty)?, convert(b, tb, ty)?);
        use ast::BinaryOperator as B;
        Ok(match op {
            B::StringConcat => (call(ArrayFunc::Cat, vec![a, b]), ty),
            B::AtArrow => (call(ArrayFunc::Contains, vec![a, b]), DataType::Bool),
            B::ArrowAt => (call(ArrayFunc::ContainedBy, vec![a, b]), DataType::Bool),
            _ => (call(ArrayFunc::Overlap, vec![a, b]), DataType::Bool),
        })
    }

    /// Binds a call of an array function; None when `name` is not one of them.
    pub(super) fn array_function(
        &mut self,
        name: &str,
        args: &[&ast::Expr],
        scope: &Scope,
    ) -> Option<Result<(Expr, DataType)>> {
        let f = match name {
            "array_length" => ArrayFunc::Length,
            "array_upper" => ArrayFunc::Upper,
            "array_lower" => ArrayFunc::Lower,
            "array_ndims" => ArrayFunc::Ndims,
            "cardinality" => ArrayFunc::Cardinality,
            "array_append" => ArrayFunc::Append,
            "array_prepend" => ArrayFunc::Prepend,
            "array_cat" => ArrayFunc::Cat,
            "array_position" => ArrayFunc::Position,
            "array_remove" => ArrayFunc::Remove,
            "array_to_string" => ArrayFunc::ToString,
            "string_to_array" => ArrayFunc::StringToArray,
            _ => return None,
        };
        Some(match self.bind_array_function(f, args, scope) {
            Ok(Some(bound)) => Ok(bound),
            Ok(None) => Err(self.undefined(name, args, scope)),
            Err(e) => Err(e),
        })
    }

    /// The bound call; None when no form of the function takes these arguments.
    fn bind_array_function(
        &mut self,
        f: ArrayFunc,
        args: &[&ast::Expr],
        scope: &Scope,
    ) -> Result<Option<(Expr, DataType)>> {
        use ArrayFunc as F;
        Ok(Some(match (f, args) {
            (F::Length | F::Upper | F::Lower, [a, dim]) => {
                let (a, Some(_)) = self.bind_array_operand(a, scope, None)? else {
                    return Ok(None);
                };
                let (dim, t) = self.bind(dim, scope, Some(DataType::Int4))?;
                if !t.is_integer() {
                    return Ok(None);
                }
                (call(f, vec![a, dim]), DataType::Int4)
            }
            (F::Ndims | F::Cardinality, [a]) => {
                let (a, Some(_)) = self.bind_array_operand(a, scope, None)? else {
                    return Ok(None);
                };
                (call(f, vec![a]), DataType::Int4)
            }
            (F::Append | F::Position | F::Remove, [a, x, rest @ ..])
                if rest.is_empty() || (f == F::Position && rest.len() == 1) =>
            {
                let Some((a, x, elem)) = self.array_and_element(a, x, scope)? else {
                    return Ok(None);
                };
                let mut bound = vec![a, x];
                if let [start] = rest {
                    let (s, t) = self.bind(start, scope, Some(DataType::Int4))?;
                    if !t.is_integer() {
                        return Ok(None);
                    }
                    bound.push(s);
                }
                let ty = match f {
                    F::Position => DataType::Int4,
                    _ => DataType::Array(elem),
                };
                (call(f, bound), ty)
            }
            (F::Prepend, [x, a]) => {
                let Some((a, x, elem)) = self.array_and_element(a, x, scope)? else {
                    return Ok(None);
                };
                (call(f, vec![x, a]), DataType::Array(elem))
            }
            (F::Cat, [a, b]) => {
                let (ea, ta) = self.bind(a, scope, None)?;
                let (eb, tb) = self.bind(b, scope, Some(ta))?;
                let Some(ty @ DataType::Array(_)) = DataType::common_type(ta, tb) else {
                    return Ok(None);
                };
                (
                    call(f, vec![convert(ea, ta, ty)?, convert(eb, tb, ty)?]),
                    ty,
                )
            }
            (F::ToString, [a, rest @ ..]) if (1..=2).contains(&rest.len()) => {
                let (a, Some(_)) = self.bind_array_operand(a, scope, None)? else {
                    return Ok(None);
                };
                let mut bound = vec![a];
                for e in rest {
                    let Some(e) = self.text_argument(e, scope)? else {
                        return Ok(None);
                    };
                    bound.push(e);
                }
                (call(f, bound), DataType::Text)
            }
            (F::StringToArray, [_, rest @ ..]) if (1..=2).contains(&rest.len()) => {
                let mut bound = Vec::new();
                for e in args {
                    let Some(e) = self.text_argument(e, scope)? else {
                        return Ok(None);
                    };
                    bound.push(e);
                }
                (call(f, bound), DataType::Array(ElemType::Text))
            }
            _ => return Ok(None),
        }))
    }

    /// A string argument as text; None for another type.
    fn text_argument(&mut self, e: &ast::Expr, scope: &Scope) -> Result<Option<Expr>> {
        let (e, t) = self.bind(e, scope, Some(DataType::Text))?;
        Ok(t.is_string().then(|| super::expr::char_as_text(e, t)))
    }

    /// An array argument and an element argument of its element type (an untyped array takes
    /// the element's array type); None when the first is not an array.
    fn array_and_element(
        &mut self,
        a: &ast::Expr,
        x: &ast::Expr,
        scope: &Scope,
    ) -> Result<Option<(Expr, Expr, ElemType)>> {
        let (a, elem, x, tx) = if is_flexible(a) && !is_flexible(x) {
            let (x, tx) = self.bind(x, scope, None)?;
            let hint = ElemType::of(tx).map(DataType::Array);
            let (a, elem) = self.bind_array_operand(a, scope, hint)?;
            (a, elem, x, tx)
        } else {
            let (a, elem) = self.bind_array_operand(a, scope, None)?;
            let (x, tx) = self.bind(x, scope, elem.map(ElemType::data_type))?;
            (a, elem, x, tx)
        };
        let Some(elem) = elem else {
            return Ok(None);
        };
        Ok(Some((a, convert(x, tx, elem.data_type())?, elem)))
    }
}
