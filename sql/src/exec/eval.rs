//! Expression evaluation with SQL's three-valued logic.

use std::cmp::Ordering;

use crate::plan::{CmpOp, Expr, Function};
use crate::types::negate;
use crate::{DataType, Error, Result, Value};

/// Evaluates `e` over `row`.
pub(crate) fn eval(e: &Expr, row: &[Value]) -> Result<Value> {
    Ok(match e {
        Expr::Constant(v) => v.clone(),
        Expr::Column(i) => row
            .get(*i)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("column #{i} out of bounds")))?,
        Expr::Param(i) => {
            return Err(Error::InvalidParameter(format!(
                "no value for parameter ${}",
                i + 1
            )));
        }
        Expr::Not(a) => match eval(a, row)? {
            Value::Bool(b) => Value::Bool(!b),
            Value::Null => Value::Null,
            v => return Err(not_bool(&v)),
        },
        Expr::And(a, b) => match (truth(eval(a, row)?)?, truth(eval(b, row)?)?) {
            (Some(false), _) | (_, Some(false)) => Value::Bool(false),
            (Some(true), Some(true)) => Value::Bool(true),
            _ => Value::Null,
        },
        Expr::Or(a, b) => match (truth(eval(a, row)?)?, truth(eval(b, row)?)?) {
            (Some(true), _) | (_, Some(true)) => Value::Bool(true),
            (Some(false), Some(false)) => Value::Bool(false),
            _ => Value::Null,
        },
        Expr::Compare(op, a, b) => match eval(a, row)?.compare(&eval(b, row)?)? {
            None => Value::Null,
            Some(o) => Value::Bool(compare(*op, o)),
        },
        Expr::Arith(op, a, b, ty) => op.apply(eval(a, row)?, eval(b, row)?, *ty)?,
        Expr::Neg(a, ty) => negate(eval(a, row)?, *ty)?,
        Expr::Concat(a, b) => match (eval(a, row)?, eval(b, row)?) {
            (Value::Null, _) | (_, Value::Null) => Value::Null,
            (Value::Bytes(mut a), Value::Bytes(b)) => {
                a.extend_from_slice(&b);
                Value::Bytes(a)
            }
            // Operands become text as casts make them (a boolean is spelt out).
            (a, b) => Value::Text(format!("{}{}", concat_text(a), concat_text(b))),
        },
        Expr::IsNull(a) => Value::Bool(eval(a, row)?.is_null()),
        Expr::IsDistinct(a, b) => {
            let (a, b) = (eval(a, row)?, eval(b, row)?);
            Value::Bool(match (a.is_null(), b.is_null()) {
                (true, true) => false,
                (true, false) | (false, true) => true,
                (false, false) => a.compare(&b)? != Some(Ordering::Equal),
            })
        }
        Expr::InList(a, list) => in_list(eval(a, row)?, list, row)?,
        Expr::Case { whens, otherwise } => {
            for (cond, result) in whens {
                if truth(eval(cond, row)?)? == Some(true) {
                    return eval(result, row);
                }
            }
            match otherwise {
                Some(e) => eval(e, row)?,
                None => Value::Null,
            }
        }
        Expr::Coalesce(args) => {
            for a in args {
                let v = eval(a, row)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            Value::Null
        }
        Expr::Function(f, args) => {
            let args = args
                .iter()
                .map(|a| eval(a, row))
                .collect::<Result<Vec<_>>>()?;
            function(*f, args)?
        }
        Expr::Cast(a, ty) => eval(a, row)?.cast(*ty)?,
        Expr::Outer { .. } => {
            return Err(Error::Internal("outer reference evaluated unbound".into()));
        }
        Expr::Subquery(_) => {
            return Err(Error::NotSupported(
                "subqueries are not supported in this clause yet".into(),
            ));
        }
    })
}

/// `v IN (list)`: true on a match; else NULL if `v` or an item is NULL; false for no items.
fn in_list(v: Value, list: &[Expr], row: &[Value]) -> Result<Value> {
    if list.is_empty() {
        return Ok(Value::Bool(false));
    }
    if v.is_null() {
        return Ok(Value::Null);
    }
    let mut unknown = false;
    for item in list {
        match v.compare(&eval(item, row)?)? {
            Some(Ordering::Equal) => return Ok(Value::Bool(true)),
            Some(_) => {}
            None => unknown = true,
        }
    }
    Ok(if unknown {
        Value::Null
    } else {
        Value::Bool(false)
    })
}

/// A `||` operand as text.
fn concat_text(v: Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::Text(s) => s,
        v => v.to_string(),
    }
}

/// Applies a scalar function (NULL in, NULL out).
fn function(f: Function, args: Vec<Value>) -> Result<Value> {
    if !matches!(
        f,
        Function::Abs | Function::Lower | Function::Upper | Function::Length | Function::Rtrim
    ) {
        return super::functions::call(f, args);
    }
    let Some(arg) = args.into_iter().next() else {
        return Err(Error::Internal(format!("{} without arguments", f.name())));
    };
    Ok(match (f, arg) {
        (_, Value::Null) => Value::Null,
        (Function::Abs, Value::Int(i)) => Value::Int(
            i.checked_abs()
                .ok_or_else(|| Error::OutOfRange("bigint out of range".into()))?,
        ),
        (Function::Abs, Value::Float(x)) => Value::Float(x.abs()),
        (Function::Lower, Value::Text(s)) => Value::Text(s.to_lowercase()),
        (Function::Upper, Value::Text(s)) => Value::Text(s.to_uppercase()),
        (Function::Length, Value::Text(s)) => Value::Int(s.chars().count() as i64),
        (Function::Length, Value::Bytes(b)) => Value::Int(b.len() as i64),
        (Function::Rtrim, Value::Text(s)) => Value::Text(s.trim_end_matches(' ').to_string()),
        (Function::Abs, Value::Float4(x)) => Value::Float4(x.abs()),
        (Function::Abs, Value::Numeric(d)) => Value::Numeric(d.abs()),
        (f, v) => {
            return Err(Error::DatatypeMismatch(format!(
                "function {}({v}) does not exist",
                f.name()
            )));
        }
    })
}

pub(crate) fn compare(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Eq => o.is_eq(),
        CmpOp::NotEq => o.is_ne(),
        CmpOp::Lt => o.is_lt(),
        CmpOp::LtEq => o.is_le(),
        CmpOp::Gt => o.is_gt(),
        CmpOp::GtEq => o.is_ge(),
    }
}

fn not_bool(v: &Value) -> Error {
    Error::DatatypeMismatch(format!("expected a boolean, got {v}"))
}

/// The truth of a boolean value: `None` for NULL.
pub(crate) fn truth(v: Value) -> Result<Option<bool>> {
    match v {
        Value::Bool(b) => Ok(Some(b)),
        Value::Null => Ok(None),
        v => Err(not_bool(&v)),
    }
}

/// Evaluates a constant expression to a non-negative count (LIMIT, OFFSET); NULL is "none".
pub(crate) fn eval_count(e: &Expr, what: &str) -> Result<Option<u64>> {
    match eval(e, &[])?.cast(DataType::Int8)? {
        Value::Null => Ok(None),
        Value::Int(i) => u64::try_from(i)
            .map(Some)
            .map_err(|_| Error::InvalidParameter(format!("{what} must not be negative"))),
        v => Err(Error::DatatypeMismatch(format!(
            "{what} must be an integer, got {v}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ArithOp;

    fn c(v: Value) -> Box<Expr> {
        Box::new(Expr::Constant(v))
    }

    #[test]
    fn three_valued_logic() {
        let null_and_false = Expr::And(c(Value::Null), c(Value::Bool(false)));
        assert_eq!(eval(&null_and_false, &[]), Ok(Value::Bool(false)));
        let null_or_true = Expr::Or(c(Value::Null), c(Value::Bool(true)));
        assert_eq!(eval(&null_or_true, &[]), Ok(Value::Bool(true)));
        let null_cmp = Expr::Compare(CmpOp::Eq, c(Value::Null), c(Value::Int(1)));
        assert_eq!(eval(&null_cmp, &[]), Ok(Value::Null));
        assert_eq!(eval(&Expr::Not(Box::new(null_cmp)), &[]), Ok(Value::Null));
    }

    #[test]
    fn in_list_distinct_case_coalesce() {
        let (one, two, null) = (Value::Int(1), Value::Int(2), Value::Null);
        let list = |v: Value, items: Vec<Value>| {
            Expr::InList(
                c(v),
                items.into_iter().map(Expr::Constant).collect::<Vec<_>>(),
            )
        };
        let cases = [
            (
                list(one.clone(), vec![two.clone(), one.clone()]),
                Value::Bool(true),
            ),
            (list(one.clone(), vec![two.clone()]), Value::Bool(false)),
            (
                list(one.clone(), vec![two.clone(), null.clone()]),
                Value::Null,
            ),
            (list(null.clone(), vec![]), Value::Bool(false)),
            (list(null.clone(), vec![one.clone()]), Value::Null),
            (
                Expr::IsDistinct(c(null.clone()), c(null.clone())),
                Value::Bool(false),
            ),
            (
                Expr::IsDistinct(c(null.clone()), c(one.clone())),
                Value::Bool(true),
            ),
            (
                Expr::Case {
                    whens: vec![
                        (Expr::Constant(null.clone()), Expr::Constant(one.clone())),
                        (
                            Expr::Constant(Value::Bool(true)),
                            Expr::Constant(two.clone()),
                        ),
                    ],
                    otherwise: None,
                },
                two.clone(),
            ),
            (
                Expr::Case {
                    whens: vec![(
                        Expr::Constant(Value::Bool(false)),
                        Expr::Constant(one.clone()),
                    )],
                    otherwise: None,
                },
                Value::Null,
            ),
            (
                Expr::Coalesce(vec![
                    Expr::Constant(null.clone()),
                    Expr::Constant(two.clone()),
                ]),
                two.clone(),
            ),
        ];
        for (e, want) in cases {
            assert_eq!(eval(&e, &[]), Ok(want), "{e:?}");
        }
    }

    #[test]
    fn arithmetic_and_concat() {
        let row = [Value::Int(7), Value::Text("x".into())];
        let div = Expr::Arith(
            ArithOp::Div,
            Box::new(Expr::Column(0)),
            c(Value::Int(0)),
            DataType::Int4,
        );
        assert_eq!(eval(&div, &row), Err(Error::DivisionByZero));
        let cat = Expr::Concat(Box::new(Expr::Column(1)), Box::new(Expr::Column(0)));
        assert_eq!(eval(&cat, &row), Ok(Value::Text("x7".into())));
        let cat_null = Expr::Concat(Box::new(Expr::Column(1)), c(Value::Null));
        assert_eq!(eval(&cat_null, &row), Ok(Value::Null));
    }
}
