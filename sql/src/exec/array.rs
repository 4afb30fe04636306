//! Evaluation of the array functions and operators (`types::array::ArrayFunc`), with
//! PostgreSQL's results for one-dimensional arrays with a lower bound of 1. Element
//! equality is `IS NOT DISTINCT FROM` where PostgreSQL's functions use it (array_position,
//! array_remove) and `=` elsewhere (`@>`, `&&`, ANY, ALL).

use std::cmp::Ordering;

use super::eval::compare;
use crate::types::array::ArrayFunc;
use crate::{Error, Result, Value};

/// Calls `f` on `args`.
pub(crate) fn call(f: ArrayFunc, args: Vec<Value>) -> Result<Value> {
    if f.is_strict() && args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let mut it = args.into_iter();
    let mut next = || it.next().unwrap_or(Value::Null);
    Ok(match f {
        ArrayFunc::Make => {
            let mut items = vec![next()];
            items.extend(it);
            Value::Array(items)
        }
        ArrayFunc::Subscript => {
            let (a, i) = (array(next())?, int(&next())?);
            usize::try_from(i)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| a.into_iter().nth(i))
                .unwrap_or(Value::Null)
        }
        ArrayFunc::Slice { lower, upper } => {
            let a = array(next())?;
            let len = a.len() as i64;
            let lo = if lower { int(&next())?.max(1) } else { 1 };
            let hi = if upper { int(&next())?.min(len) } else { len };
            if lo > hi {
                return Ok(Value::Array(vec![]));
            }
            let skip = usize::try_from(lo - 1).unwrap_or(0);
            let take = usize::try_from(hi - lo + 1).unwrap_or(0);
            Value::Array(a.into_iter().skip(skip).take(take).collect())
        }
        ArrayFunc::Length | ArrayFunc::Upper => {
            let (a, dim) = (array(next())?, int(&next())?);
            match (a.is_empty(), dim) {
                (false, 1) => Value::Int(a.len() as i64),
                _ => Value::Null,
            }
        }
        ArrayFunc::Lower => {
            let (a, dim) = (array(next())?, int(&next())?);
            match (a.is_empty(), dim) {
                (false, 1) => Value::Int(1),
                _ => Value::Null,
            }
        }
        ArrayFunc::Ndims => match array(next())?.is_empty() {
            true => Value::Null,
            false => Value::Int(1),
        },
        ArrayFunc::Cardinality => Value::Int(array(next())?.len() as i64),
        ArrayFunc::Append => {
            let (a, x) = (next(), next());
            let mut items = nullable_array(a)?;
            items.push(x);
            Value::Array(items)
        }
        ArrayFunc::Prepend => {
            let (x, a) = (next(), next());
            let mut items = vec![x];
            items.extend(nullable_array(a)?);
            Value::Array(items)
        }
        ArrayFunc::Cat => match (next(), next()) {
            (Value::Null, Value::Null) => Value::Null,
            (a, b) => {
                let mut items = nullable_array(a)?;
                items.extend(nullable_array(b)?);
                Value::Array(items)
            }
        },
        ArrayFunc::Position => {
            let (a, x, start) = (next(), next(), it.next());
            position(a, &x, start)?
        }
        ArrayFunc::Remove => match next() {
            Value::Null => Value::Null,
            a => {
                let x = next();
                let mut kept = Vec::new();
                for v in array(a)? {
                    if !not_distinct(&v, &x)? {
                        kept.push(v);
                    }
                }
                Value::Array(kept)
            }
        },
        ArrayFunc::ToString => {
            let (a, delim, null) = (next(), next(), next());
            match (a, delim) {
                (Value::Null, _) | (_, Value::Null) => Value::Null,
                (a, Value::Text(d)) => Value::Text(to_string(array(a)?, &d, null)),
                (_, d) => return Err(mismatch(f, &d)),
            }
        }
        ArrayFunc::StringToArray => {
            let (s, delim, null) = (next(), next(), next());
            match s {
                Value::Null => Value::Null,
                Value::Text(s) => string_to_array(&s, delim, null),
                s => return Err(mismatch(f, &s)),
            }
        }
        ArrayFunc::Contains => contains(array(next())?, array(next())?)?,
        ArrayFunc::ContainedBy => {
            let (a, b) = (array(next())?, array(next())?);
            contains(b, a)?
        }
        ArrayFunc::Overlap => {
            let (a, b) = (array(next())?, array(next())?);
            let mut found = false;
            for x in &a {
                for y in &b {
                    found |= x.compare(y)? == Some(Ordering::Equal);
                }
            }
            Value::Bool(found)
        }
        ArrayFunc::Any(op) => quantified(op, next(), next(), true)?,
        ArrayFunc::All(op) => quantified(op, next(), next(), false)?,
    })
}

fn mismatch(f: ArrayFunc, v: &Value) -> Error {
    Error::DatatypeMismatch(format!("{} does not take {v}", f.name()))
}

/// The elements of an array value.
fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(items) => Ok(items),
        v => Err(Error::DatatypeMismatch(format!("{v} is not an array"))),
    }
}

/// The elements of an array, none for NULL.
fn nullable_array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Null => Ok(vec![]),
        v => array(v),
    }
}

fn int(v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        v => Err(Error::DatatypeMismatch(format!("{v} is not an integer"))),
    }
}

fn not_distinct(a: &Value, b: &Value) -> Result<bool> {
    Ok(match (a.is_null(), b.is_null()) {
        (true, true) => true,
        (false, false) => a.compare(b)? == Some(Ordering::Equal),
        _ => false,
    })
}

/// array_position: the first index at or after `start` whose element is not distinct from
/// `x`; NULL when there is none.
fn position(a: Value, x: &Value, start: Option<Value>) -> Result<Value> {
    let start = match start {
        None => 1,
        Some(Value::Null) => {
            return Err(Error::NullValueNotAllowed(
                "initial position must not be null".into(),
            ));
        }
        Some(v) => int(&v)?,
    };
    if a.is_null() {
        return Ok(Value::Null);
    }
    for (i, v) in array(a)?.iter().enumerate() {
        let n = i as i64 + 1;
        if n >= start && not_distinct(v, x)? {
            return Ok(Value::Int(n));
        }
    }
    Ok(Value::Null)
}

/// array_to_string: elements in their text form joined by `delim`; NULL elements are left
/// out, or shown as `null` when it is given.
fn to_string(items: Vec<Value>, delim: &str, null: Value) -> String {
    let null = match null {
        Value::Text(s) => Some(s),
        _ => None,
    };
    let mut parts = Vec::with_capacity(items.len());
    for v in items {
        match (v, &null) {
            (Value::Null, Some(n)) => parts.push(n.clone()),
            (Value::Null, None) => {}
            (v, _) => parts.push(v.to_string()),
        }
    }
    parts.join(delim)
}

/// string_to_array: `s` split at each `delim` (into characters for a NULL delimiter, not at
/// all for an empty one); parts equal to `null` become NULL.
fn string_to_array(s: &str, delim: Value, null: Value) -> Value {
    if s.is_empty() {
        return Value::Array(vec![]);
    }
    let parts: Vec<String> = match &delim {
        Value::Text(d) if d.is_empty() => vec![s.to_string()],
        Value::Text(d) => s.split(d.as_str()).map(str::to_string).collect(),
        _ => s.chars().map(String::from).collect(),
    };
    let null = match null {
        Value::Text(n) => Some(n),
        _ => None,
    };
    Value::Array(
        parts
            .into_iter()
            .map(|p| match &null {
                Some(n) if *n == p => Value::Null,
                _ => Value::Text(p),
            })
            .collect(),
    )
}

/// `a @> b`: every element of `b` equals one of `a` (a NULL element equals nothing).
fn contains(a: Vec<Value>, b: Vec<Value>) -> Result<Value> {
    for y in &b {
        let mut found = false;
        for x in &a {
            if x.compare(y)? == Some(Ordering::Equal) {
                found = true;
                break;
            }
        }
        if !found {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

/// `x op ANY (a)` (`any`) or `x op ALL (a)`: NULL for a NULL array; else decided by the
/// first element that settles it, NULL if only unknown comparisons remain.
fn quantified(op: crate::plan::CmpOp, x: Value, a: Value, any: bool) -> Result<Value> {
    if a.is_null() {
        return Ok(Value::Null);
    }
    let mut unknown = false;
    for v in array(a)? {
        match x.compare(&v)? {
            None => unknown = true,
            Some(o) if compare(op, o) == any => return Ok(Value::Bool(any)),
            Some(_) => {}
        }
    }
    Ok(if unknown {
        Value::Null
    } else {
        Value::Bool(!any)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::CmpOp;

    fn ints(v: &[Option<i64>]) -> Value {
        Value::Array(
            v.iter()
                .map(|i| i.map_or(Value::Null, Value::Int))
                .collect(),
        )
    }

    #[test]
    fn any_and_all_follow_three_valued_logic() {
        let any = |x: Value, a: Value| call(ArrayFunc::Any(CmpOp::Eq), vec![x, a]).unwrap();
        let all = |x: Value, a: Value| call(ArrayFunc::All(CmpOp::NotEq), vec![x, a]).unwrap();
        assert_eq!(
            any(Value::Int(2), ints(&[Some(1), Some(2)])),
            Value::Bool(true)
        );
        assert_eq!(any(Value::Int(3), ints(&[Some(1), None])), Value::Null);
        assert_eq!(any(Value::Int(3), ints(&[Some(1)])), Value::Bool(false));
        assert_eq!(any(Value::Null, ints(&[])), Value::Bool(false));
        assert_eq!(any(Value::Int(1), Value::Null), Value::Null);
        assert_eq!(
            all(Value::Int(3), ints(&[Some(1), Some(2)])),
            Value::Bool(true)
        );
        assert_eq!(
            all(Value::Int(1), ints(&[Some(1), None])),
            Value::Bool(false)
        );
        assert_eq!(all(Value::Int(3), ints(&[Some(1), None])), Value::Null);
        assert_eq!(all(Value::Null, ints(&[])), Value::Bool(true));
    }

    #[test]
    fn subscripts_and_slices() {
        let a = ints(&[Some(1), Some(2), Some(3)]);
        let sub = |i| call(ArrayFunc::Subscript, vec![a.clone(), Value::Int(i)]).unwrap();
        assert_eq!(sub(1), Value::Int(1));
        assert_eq!(sub(0), Value::Null);
        assert_eq!(sub(4), Value::Null);
        let slice = |lo, hi| {
            let f = ArrayFunc::Slice {
                lower: true,
                upper: true,
            };
            call(f, vec![a.clone(), Value::Int(lo), Value::Int(hi)]).unwrap()
        };
        assert_eq!(slice(2, 9), ints(&[Some(2), Some(3)]));
        assert_eq!(slice(0, 1), ints(&[Some(1)]));
        assert_eq!(slice(3, 2), ints(&[]));
    }
}
