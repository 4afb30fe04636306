//! The `generate_series` operator: values from a start to a stop by a step, in batches, as
//! PostgreSQL's `generate_series_step_int4` / `_int8` / `_numeric` and
//! `generate_series_timestamp[tz]` compute them (each value is the previous plus the step,
//! so a month step stays on clamped month ends; an integer series ends at the type's limit
//! instead of overflowing).

use async_trait::async_trait;
use rust_decimal::Decimal;

use super::eval::eval;
use super::ops::{Operator, SCAN_BATCH};
use super::rows::Row;
use crate::plan::Expr;
use crate::store::KvTxn;
use crate::types::interval;
use crate::{DataType, Error, Result, Value};

/// A series being generated.
pub(crate) struct Series {
    /// start, stop and step, until the first batch evaluates them.
    args: Option<[Expr; 3]>,
    ty: DataType,
    /// The next value, None once past the stop.
    next: Option<Value>,
    stop: Value,
    step: Value,
    ascending: bool,
}

impl Series {
    pub(crate) fn new(args: [Expr; 3], ty: DataType) -> Series {
        Series {
            args: Some(args),
            ty,
            next: None,
            stop: Value::Null,
            step: Value::Null,
            ascending: true,
        }
    }

    /// Evaluates the arguments; no values when one is NULL.
    fn start(&mut self, args: [Expr; 3]) -> Result<()> {
        let [start, stop, step] = args.map(|e| eval(&e, &[]));
        let (start, stop, step) = (start?, stop?, step?);
        if start.is_null() || stop.is_null() || step.is_null() {
            return Ok(());
        }
        let sign = match &step {
            Value::Int(i) => i.signum(),
            Value::Numeric(d) => i64::from(d.cmp(&Decimal::ZERO) as i8),
            Value::Interval(v) => i64::from(v.span().cmp(&0) as i8),
            v => return Err(Error::Internal(format!("generate_series step {v:?}"))),
        };
        if sign == 0 {
            return Err(Error::InvalidParameter(
                "step size cannot equal zero".into(),
            ));
        }
        self.ascending = sign > 0;
        self.next = Some(start);
        self.stop = stop;
        self.step = step;
        Ok(())
    }

    /// The value after `v`; None when it would leave the type's range (integers).
    fn after(&self, v: &Value) -> Result<Option<Value>> {
        Ok(match (v, &self.step) {
            (Value::Int(a), Value::Int(b)) => {
                let max = match self.ty {
                    DataType::Int4 => i64::from(i32::MAX),
                    _ => i64::MAX,
                };
                let min = match self.ty {
                    DataType::Int4 => i64::from(i32::MIN),
                    _ => i64::MIN,
                };
                a.checked_add(*b)
                    .filter(|n| (min..=max).contains(n))
                    .map(Value::Int)
            }
            (Value::Numeric(a), Value::Numeric(b)) => Some(Value::Numeric(
                a.checked_add(*b)
                    .ok_or_else(crate::types::numeric::overflow)?,
            )),
            (Value::Timestamp(t), Value::Interval(i)) => {
                Some(Value::Timestamp(interval::add_to_timestamp(*t, i)?))
            }
            (Value::Timestamptz(t), Value::Interval(i)) => {
                Some(Value::Timestamptz(interval::add_to_timestamp(*t, i)?))
            }
            (v, step) => {
                return Err(Error::Internal(format!(
                    "generate_series of {v:?} by {step:?}"
                )));
            }
        })
    }

    /// Whether `v` is not yet past the stop.
    fn within(&self, v: &Value) -> Result<bool> {
        let o = v
            .compare(&self.stop)?
            .ok_or_else(|| Error::Internal("generate_series compared with NULL".into()))?;
        Ok(if self.ascending { o.is_le() } else { o.is_ge() })
    }
}

#[async_trait]
impl Operator for Series {
    async fn next(&mut self, _txn: &mut dyn KvTxn) -> Result<Option<Vec<Row>>> {
        super::interrupt::check()?;
        // Generating values never waits: give other tasks on this thread their turn.
        tokio::task::consume_budget().await;
        if let Some(args) = self.args.take() {
            self.start(args)?;
        }
        let mut rows = Vec::new();
        while rows.len() < SCAN_BATCH {
            let Some(v) = self.next.take() else { break };
            if !self.within(&v)? {
                break;
            }
            self.next = self.after(&v)?;
            rows.push(vec![v]);
        }
        Ok((!rows.is_empty()).then_some(rows))
    }
}
