//! The jsonb table functions in FROM: `jsonb_each`, `jsonb_each_text`, `jsonb_object_keys`,
//! `jsonb_array_elements` and `jsonb_array_elements_text`, with PostgreSQL's rows and errors.

use async_trait::async_trait;

use super::eval::eval;
use super::ops::{Operator, SCAN_BATCH};
use super::rows::Row;
use crate::plan::{Expr, JsonbTable as Func};
use crate::store::KvTxn;
use crate::types::jsonb::Json;
use crate::{Error, Result, Value};

/// A table function's rows, computed when the first batch is asked for.
pub(crate) struct JsonbTable {
    func: Func,
    arg: Option<Expr>,
    rows: std::vec::IntoIter<Row>,
}

impl JsonbTable {
    pub(crate) fn new(func: Func, arg: Expr) -> JsonbTable {
        JsonbTable {
            func,
            arg: Some(arg),
            rows: Vec::new().into_iter(),
        }
    }
}

/// The rows of `func` over `j`.
fn rows(func: Func, j: Json) -> Result<Vec<Row>> {
    let invalid = |m: String| Err(Error::InvalidParameter(m));
    let jsonb = |j: Json| Value::Jsonb(Box::new(j));
    let text = |j: Json| j.to_text().map_or(Value::Null, Value::Text);
    Ok(match (func, j) {
        (Func::Each, Json::Object(pairs)) => pairs
            .into_iter()
            .map(|(k, v)| vec![Value::Text(k), jsonb(v)])
            .collect(),
        (Func::EachText, Json::Object(pairs)) => pairs
            .into_iter()
            .map(|(k, v)| vec![Value::Text(k), text(v)])
            .collect(),
        (Func::Each | Func::EachText, _) => {
            return invalid(format!("cannot call {} on a non-object", func.name()));
        }
        (Func::ObjectKeys, Json::Object(pairs)) => pairs
            .into_iter()
            .map(|(k, _)| vec![Value::Text(k)])
            .collect(),
        (Func::ObjectKeys, j) => {
            let kind = if matches!(j, Json::Array(_)) {
                "an array"
            } else {
                "a scalar"
            };
            return invalid(format!("cannot call {} on {kind}", func.name()));
        }
        (Func::ArrayElements, Json::Array(items)) => {
            items.into_iter().map(|i| vec![jsonb(i)]).collect()
        }
        (Func::ArrayElementsText, Json::Array(items)) => {
            items.into_iter().map(|i| vec![text(i)]).collect()
        }
        (_, Json::Object(_)) => return invalid("cannot extract elements from an object".into()),
        _ => return invalid("cannot extract elements from a scalar".into()),
    })
}

#[async_trait]
impl Operator for JsonbTable {
    async fn next(&mut self, _txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        if let Some(arg) = self.arg.take() {
            match eval(&arg, &[])? {
                Value::Null => {}
                Value::Jsonb(j) => self.rows = rows(self.func, *j)?.into_iter(),
                v => return Err(Error::Internal(format!("{} of {v:?}", self.func.name()))),
            }
        }
        let batch: Vec<Row> = self.rows.by_ref().take(SCAN_BATCH).collect();
        Ok((!batch.is_empty()).then_some(batch))
    }
}
