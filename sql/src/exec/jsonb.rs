//! Evaluation of the jsonb operators and functions (`plan::JsonbFn`) with PostgreSQL's
//! results and errors. Arguments arrive as the binder typed them (`planner::jsonb`): jsonb as
//! `Value::Jsonb`, keys as `Value::Text`, paths and key lists as a `text[]` `Value::Array` or
//! as `Value::Text` (a text array literal such as `'{a,0}'`, parsed here), indexes as
//! `Value::Int`.

use super::aggregate::Acc;
use crate::plan::JsonbFn;
use crate::types::jsonb::{Json, resolve_index};
use crate::types::{datetime, format_float, numeric};
use crate::{Error, Result, Value};

/// Calls `f` on `args`.
pub(crate) fn call(f: JsonbFn, args: Vec<Value>) -> Result<Value> {
    use JsonbFn as J;
    match f {
        J::BuildObject => return build_object(args),
        J::BuildArray => return Ok(jsonb(Json::Array(args.into_iter().map(to_json).collect()))),
        _ => {}
    }
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let mut args = args.into_iter();
    let first = args.next().ok_or_else(|| internal(f))?;
    if f == J::ToJsonb {
        return Ok(jsonb(to_json(first)));
    }
    let Value::Jsonb(j) = first else {
        return Err(internal(f));
    };
    let mut rest: Vec<Value> = args.collect();
    // Operands are owned: take jsonb arguments out rather than copy them.
    let take = |b: &mut Box<Json>| std::mem::replace(&mut **b, Json::Null);
    Ok(match (f, rest.as_mut_slice()) {
        (J::Get, [Value::Text(k)]) => maybe(into_value(*j, k)),
        (J::Get, [Value::Int(i)]) => maybe(element(&j, *i)),
        (J::GetText, [Value::Text(k)]) => text(j.get(k).and_then(Json::to_text)),
        (J::GetText, [Value::Int(i)]) => text(element(&j, *i).and_then(|e| e.to_text())),
        (J::Path, [p]) => maybe(path(&j, &steps(p)?)),
        (J::PathText, [p]) => text(path(&j, &steps(p)?).and_then(|e| e.to_text())),
        (J::Contains, [Value::Jsonb(b)]) => Value::Bool(j.contains(b)),
        (J::ContainedBy, [Value::Jsonb(b)]) => Value::Bool(b.contains(&j)),
        (J::Exists, [Value::Text(k)]) => Value::Bool(j.exists(k)),
        (J::ExistsAny, [keys]) => {
            let keys = steps(keys)?;
            Value::Bool(keys.iter().flatten().any(|k| j.exists(k)))
        }
        (J::ExistsAll, [keys]) => {
            let keys = steps(keys)?;
            Value::Bool(keys.iter().flatten().all(|k| j.exists(k)))
        }
        (J::Concat, [Value::Jsonb(b)]) => jsonb(concat(*j, take(b))),
        (J::Delete, [Value::Text(k)]) => jsonb(delete_key(*j, k)?),
        (J::Delete, [Value::Int(i)]) => jsonb(delete_index(*j, *i)?),
        (J::DeletePath, [p]) => jsonb(delete_path(*j, &steps(p)?)?),
        (J::Typeof, []) => Value::Text(j.type_name().into()),
        (J::ArrayLength, []) => match &*j {
            Json::Array(items) => Value::Int(items.len() as i64),
            Json::Object(_) => return Err(invalid("cannot get array length of a non-array")),
            _ => return Err(invalid("cannot get array length of a scalar")),
        },
        (J::Set, [p, Value::Jsonb(v)]) => jsonb(set(*j, &steps(p)?, take(v), true)?),
        (J::Set, [p, Value::Jsonb(v), Value::Bool(create)]) => {
            jsonb(set(*j, &steps(p)?, take(v), *create)?)
        }
        (J::StripNulls, []) => jsonb(j.strip_nulls()),
        (J::Pretty, []) => Value::Text(j.pretty()),
        _ => return Err(internal(f)),
    })
}

/// `j -> key` of an owned value: the key's value, moved out.
fn into_value(j: Json, key: &str) -> Option<Json> {
    let i = j.position(key)?;
    match j {
        Json::Object(mut pairs) => Some(pairs.swap_remove(i).1),
        _ => None,
    }
}

fn internal(f: JsonbFn) -> Error {
    Error::Internal(format!("{} with unexpected arguments", f.name()))
}

/// 22023, PostgreSQL's code for a jsonb value of the wrong kind.
fn invalid(m: &str) -> Error {
    Error::InvalidParameter(m.into())
}

fn jsonb(j: Json) -> Value {
    Value::Jsonb(Box::new(j))
}

fn maybe(j: Option<Json>) -> Value {
    j.map_or(Value::Null, jsonb)
}

fn text(s: Option<String>) -> Value {
    s.map_or(Value::Null, Value::Text)
}

/// `j -> index`: an array's element; a scalar is its own element 0 (and -1).
fn element(j: &Json, i: i64) -> Option<Json> {
    match j {
        Json::Array(_) => j.index(i).cloned(),
        Json::Object(_) => None,
        scalar => resolve_index(i, 1).map(|_| scalar.clone()),
    }
}

/// The value at a path: object keys and array indexes; None where a step finds nothing.
fn path(j: &Json, steps: &[Option<String>]) -> Option<Json> {
    let mut cur = j;
    for step in steps {
        let step = step.as_deref()?;
        cur = match cur {
            Json::Object(_) => cur.get(step)?,
            Json::Array(_) => cur.index(step.trim().parse().ok()?)?,
            _ => return None,
        };
    }
    Some(cur.clone())
}

/// The steps of a path or the keys of a key list: a `text[]` value's elements, or a text
/// array literal parsed; NULL elements are None.
fn steps(v: &Value) -> Result<Vec<Option<String>>> {
    match v {
        Value::Text(s) => parse_path(s),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Null => Ok(None),
                Value::Text(s) => Ok(Some(s.clone())),
                _ => Err(Error::Internal(
                    "a jsonb path element that is not text".into(),
                )),
            })
            .collect(),
        _ => Err(Error::Internal("a jsonb path that is not text".into())),
    }
}

/// Parses a one-dimensional text array literal (`{a,"b c",NULL}`); NULL elements are None.
pub(crate) fn parse_path(s: &str) -> Result<Vec<Option<String>>> {
    let malformed = |detail: &str| Error::InvalidJson {
        message: format!("malformed array literal: \"{s}\""),
        detail: detail.into(),
    };
    let t = s.trim();
    let inner = t
        .strip_prefix('{')
        .ok_or_else(|| malformed("Array value must start with \"{\" or dimension information."))?
        .strip_suffix('}')
        .ok_or_else(|| malformed("Unexpected end of input."))?;
    let mut out = Vec::new();
    if inner.trim().is_empty() {
        return Ok(out);
    }
    let mut chars = inner.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut item = String::new();
        let mut quoted = false;
        if chars.next_if_eq(&'"').is_some() {
            quoted = true;
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => item.extend(chars.next()),
                    Some(c) => item.push(c),
                    None => return Err(malformed("Unexpected end of input.")),
                }
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                match c {
                    '\\' => item.extend(chars.next()),
                    '{' | '}' | '"' => return Err(malformed("Unexpected \"{\" character.")),
                    c => item.push(c),
                }
            }
            item = item.trim_end().to_string();
            if item.is_empty() {
                return Err(malformed("Unexpected \",\" character."));
            }
        }
        out.push((quoted || !item.eq_ignore_ascii_case("null")).then_some(item));
        match chars.next() {
            None => return Ok(out),
            Some(',') => {}
            Some(_) => return Err(malformed("Unexpected array element.")),
        }
    }
}

/// `a || b`: objects merge (b's keys win); otherwise both as arrays, concatenated.
fn concat(a: Json, b: Json) -> Json {
    match (a, b) {
        (Json::Object(mut x), Json::Object(y)) => {
            x.extend(y);
            Json::object(x)
        }
        (a, b) => {
            let items = |j: Json| match j {
                Json::Array(items) => items,
                j => vec![j],
            };
            let mut out = items(a);
            out.extend(items(b));
            Json::Array(out)
        }
    }
}

fn delete_key(j: Json, key: &str) -> Result<Json> {
    Ok(match j {
        Json::Object(pairs) => Json::Object(pairs.into_iter().filter(|(k, _)| k != key).collect()),
        Json::Array(items) => Json::Array(
            items
                .into_iter()
                .filter(|i| !matches!(i, Json::String(s) if s == key))
                .collect(),
        ),
        _ => return Err(invalid("cannot delete from scalar")),
    })
}

fn delete_index(j: Json, i: i64) -> Result<Json> {
    match j {
        Json::Array(mut items) => {
            if let Some(i) = resolve_index(i, items.len()) {
                items.remove(i);
            }
            Ok(Json::Array(items))
        }
        Json::Object(_) => Err(invalid("cannot delete from object using integer index")),
        _ => Err(invalid("cannot delete from scalar")),
    }
}

/// `j #- path`: without the value at the path (unchanged where the path finds nothing).
fn delete_path(j: Json, steps: &[Option<String>]) -> Result<Json> {
    if j.is_scalar() {
        return Err(invalid("cannot delete path in scalar"));
    }
    edit_path(j, steps, 1, &mut |container, step, position| {
        Ok(match container {
            Json::Object(pairs) => {
                Json::Object(pairs.into_iter().filter(|(k, _)| k != step).collect())
            }
            Json::Array(items) => {
                let i = path_index(step, position)?;
                delete_index(Json::Array(items), i)?
            }
            scalar => scalar,
        })
    })
}

/// An array index in a path: 22P02 when the step is not an integer.
fn path_index(step: &str, position: usize) -> Result<i64> {
    step.trim().parse().map_err(|_| {
        Error::InvalidInput(format!(
            "path element at position {position} is not an integer: \"{step}\""
        ))
    })
}

/// Rebuilds `j` with `last` applied to the container the path's last step is in; a path
/// that leaves the document (a missing key or index, a scalar) leaves it unchanged.
fn edit_path(
    j: Json,
    steps: &[Option<String>],
    position: usize,
    last: &mut impl FnMut(Json, &str, usize) -> Result<Json>,
) -> Result<Json> {
    let Some((step, rest)) = steps.split_first() else {
        return Ok(j);
    };
    let Some(step) = step.as_deref() else {
        return Err(Error::NullValueNotAllowed(format!(
            "path element at position {position} is null"
        )));
    };
    if rest.is_empty() {
        return last(j, step, position);
    }
    Ok(match j {
        Json::Object(mut pairs) => {
            if let Some(i) = pairs.iter().position(|(k, _)| k == step) {
                let child = std::mem::replace(&mut pairs[i].1, Json::Null);
                pairs[i].1 = edit_path(child, rest, position + 1, last)?;
            }
            Json::Object(pairs)
        }
        Json::Array(mut items) => {
            let i = path_index(step, position)?;
            if let Some(i) = resolve_index(i, items.len()) {
                let child = std::mem::replace(&mut items[i], Json::Null);
                items[i] = edit_path(child, rest, position + 1, last)?;
            }
            Json::Array(items)
        }
        scalar => scalar,
    })
}

/// `jsonb_set(target, path, value, create_if_missing)`.
fn set(j: Json, steps: &[Option<String>], value: Json, create: bool) -> Result<Json> {
    if j.is_scalar() {
        return Err(invalid("cannot set path in scalar"));
    }
    let mut value = Some(value);
    edit_path(j, steps, 1, &mut |container, step, position| {
        let v = value.take().unwrap_or(Json::Null);
        Ok(match container {
            Json::Object(mut pairs) => {
                if let Some(pair) = pairs.iter_mut().find(|(k, _)| k == step) {
                    pair.1 = v;
                } else if create {
                    pairs.push((step.to_string(), v));
                }
                Json::object(pairs)
            }
            Json::Array(mut items) => {
                let i = path_index(step, position)?;
                match resolve_index(i, items.len()) {
                    Some(i) => items[i] = v,
                    None if create && i < 0 => items.insert(0, v),
                    None if create => items.push(v),
                    None => {}
                }
                Json::Array(items)
            }
            scalar => scalar,
        })
    })
}

/// `jsonb_build_object(k1, v1, ...)`: keys as text (non-NULL), values as `to_jsonb`.
fn build_object(args: Vec<Value>) -> Result<Value> {
    if !args.len().is_multiple_of(2) {
        return Err(invalid("argument list must have even number of elements"));
    }
    let mut pairs = Vec::with_capacity(args.len() / 2);
    let mut args = args.into_iter().enumerate();
    while let (Some((i, k)), Some((_, v))) = (args.next(), args.next()) {
        let key = match k {
            Value::Null => {
                return Err(invalid(&format!(
                    "argument {}: key must not be null",
                    i + 1
                )));
            }
            Value::Jsonb(_) => {
                return Err(invalid(
                    "key value must be scalar, not array, composite, or json",
                ));
            }
            Value::Bool(b) => b.to_string(),
            Value::Text(s) => s,
            k => k.to_string(),
        };
        pairs.push((key, to_json(v)));
    }
    Ok(jsonb(Json::object(pairs)))
}

/// `to_jsonb(v)`: numbers as numbers (a non-finite float as a string), booleans, text as a
/// string, dates and timestamps in ISO 8601 form, other values as the string of their text.
pub(crate) fn to_json(v: Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(b),
        Value::Int(i) => Json::Number(i.into()),
        Value::Numeric(d) => Json::number(d),
        Value::Float(f) if f.is_finite() => float(format_float(f)),
        Value::Float4(f) if f.is_finite() => float(crate::types::format_float4(f)),
        Value::Text(s) => Json::String(s),
        Value::Jsonb(j) => *j,
        Value::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
        Value::Timestamp(t) => {
            Json::String(datetime::format_timestamp(t, false).replacen(' ', "T", 1))
        }
        Value::Timestamptz(t) => {
            let s = datetime::format_timestamp(t, true).replacen(' ', "T", 1);
            Json::String(format!("{s}:00"))
        }
        v => Json::String(v.to_string()),
    }
}

/// A finite float's text as a JSON number (as `to_jsonb` re-reads `float8out`).
fn float(text: String) -> Json {
    match numeric::parse(&text) {
        Ok(d) => Json::number(d),
        Err(_) => Json::String(text),
    }
}

/// Adds one row's arguments to a jsonb_agg or jsonb_object_agg state.
pub(super) fn add(acc: &mut Acc, args: Vec<Value>) -> Result<()> {
    let mut args = args.into_iter();
    let first = args.next().unwrap_or(Value::Null);
    match acc {
        Acc::JsonbArray(items) => items.get_or_insert_default().push(to_json(first)),
        Acc::JsonbObject(pairs) => {
            let key = match first {
                Value::Null => return Err(invalid("field name must not be null")),
                Value::Bool(b) => b.to_string(),
                Value::Text(s) => s,
                k => k.to_string(),
            };
            let value = to_json(args.next().unwrap_or(Value::Null));
            pairs.get_or_insert_default().push((key, value));
        }
        _ => return Err(Error::Internal("aggregate state mismatch".into())),
    }
    Ok(())
}

/// The result of a jsonb_agg or jsonb_object_agg state: NULL when no row was added.
pub(super) fn finish(acc: Acc) -> Value {
    match acc {
        Acc::JsonbArray(Some(items)) => jsonb(Json::Array(items)),
        Acc::JsonbObject(Some(pairs)) => jsonb(Json::object(pairs)),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_literals() {
        let p = parse_path(r#"{a, "b c" ,NULL,"NULL"}"#).expect("valid");
        assert_eq!(
            p,
            vec![
                Some("a".to_string()),
                Some("b c".to_string()),
                None,
                Some("NULL".to_string())
            ]
        );
        assert_eq!(parse_path("{}").expect("valid"), vec![]);
        assert!(parse_path("x").is_err());
        assert!(parse_path("{a,,b}").is_err());
    }
}
