//! Sequence descriptors and their counters.
//!
//! Keys (suffixes of the catalog prefix):
//!
//! - `0x06 <escaped sequence name>` → the sequence descriptor (JSON, see [`Sequence`]);
//! - `0x07 <sequence id u32 BE>` → its counter: the last value handed out (i64 BE) and
//!   whether it was handed out (one byte, 1 = called), absent before the first `nextval`.
//!
//! The descriptor is written by the DDL statement's transaction; the counter by small
//! transactions of their own (`exec::sequence`), so values are never handed out twice and a
//! rolled-back statement leaves a gap, as in PostgreSQL.

use serde::{Deserialize, Serialize};

use super::{NEXT_TABLE_ID, corrupt, counter_key, named_key, next_id};
use crate::store::KvTxn;
use crate::{DataType, Error, Result};

const SEQUENCES: u8 = 0x06;
const COUNTERS: u8 = 0x07;

/// A sequence descriptor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    /// The id (keys its counter; shares the table id counter).
    pub id: u32,
    /// The name (unique among relations).
    pub name: String,
    /// smallint, integer or bigint.
    pub data_type: DataType,
    /// The step (never 0).
    pub increment: i64,
    /// The smallest value.
    pub min: i64,
    /// The largest value.
    pub max: i64,
    /// The first value.
    pub start: i64,
    /// How many values a session takes at once (at least 1).
    pub cache: i64,
    /// Whether the sequence wraps around at its bounds.
    pub cycle: bool,
    /// The table and column owning the sequence (SERIAL, identity): dropped with the table.
    #[serde(default)]
    pub owner: Option<(String, String)>,
}

impl Sequence {
    /// A sequence with PostgreSQL's defaults for `data_type`, ascending from 1.
    pub fn new(name: String, data_type: DataType) -> Sequence {
        Sequence {
            id: 0,
            name,
            data_type,
            increment: 1,
            min: 1,
            max: type_max(data_type),
            start: 1,
            cache: 1,
            cycle: false,
            owner: None,
        }
    }

    /// The value after `value`, wrapping if the sequence cycles; `None` past a bound.
    pub fn step(&self, value: i64) -> Option<i64> {
        match value.checked_add(self.increment) {
            Some(v) if (self.min..=self.max).contains(&v) => Some(v),
            _ if self.cycle => Some(if self.increment > 0 {
                self.min
            } else {
                self.max
            }),
            _ => None,
        }
    }

    /// The 2200H error of a sequence that reached its bound.
    pub fn exhausted(&self) -> Error {
        let (which, bound) = if self.increment > 0 {
            ("maximum", self.max)
        } else {
            ("minimum", self.min)
        };
        Error::SequenceLimit(format!(
            "nextval: reached {which} value of sequence \"{}\" ({bound})",
            self.name
        ))
    }
}

/// The largest value of a sequence type.
pub fn type_max(t: DataType) -> i64 {
    match t {
        DataType::Int2 => i16::MAX as i64,
        DataType::Int4 => i32::MAX as i64,
        _ => i64::MAX,
    }
}

/// The smallest value of a sequence type.
pub fn type_min(t: DataType) -> i64 {
    match t {
        DataType::Int2 => i16::MIN as i64,
        DataType::Int4 => i32::MIN as i64,
        _ => i64::MIN,
    }
}

/// The descriptor key of sequence `name`.
pub(crate) fn sequence_key(name: &str) -> Vec<u8> {
    named_key(SEQUENCES, name)
}

fn counter(id: u32) -> Vec<u8> {
    let mut key = counter_key(COUNTERS);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Reads a sequence descriptor; `None` if there is no such sequence.
pub(crate) async fn get_sequence(txn: &mut dyn KvTxn, name: &str) -> Result<Option<Sequence>> {
    let Some(raw) = txn.get(&sequence_key(name)).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| corrupt(&e.to_string()))
}

/// Reads a sequence descriptor, 42P01 if there is none.
pub(crate) async fn must_get_sequence(txn: &mut dyn KvTxn, name: &str) -> Result<Sequence> {
    get_sequence(txn, name)
        .await?
        .ok_or_else(|| Error::UndefinedTable(format!("relation \"{name}\" does not exist")))
}

/// Creates a sequence from a descriptor whose id is assigned here; 42P07 if the name is taken.
pub(crate) async fn create_sequence(txn: &mut dyn KvTxn, mut seq: Sequence) -> Result<Sequence> {
    super::must_be_new_relation(txn, &seq.name).await?;
    seq.id = next_id(txn, NEXT_TABLE_ID).await?;
    put_sequence(txn, &seq)?;
    Ok(seq)
}

/// Writes a sequence descriptor (new or changed).
pub(crate) fn put_sequence(txn: &mut dyn KvTxn, seq: &Sequence) -> Result<()> {
    let raw = serde_json::to_vec(seq).map_err(|e| Error::Internal(e.to_string()))?;
    txn.put(sequence_key(&seq.name), raw)?;
    Ok(())
}

/// Deletes a sequence descriptor and its counter.
pub(crate) fn drop_sequence(txn: &mut dyn KvTxn, seq: &Sequence) -> Result<()> {
    txn.delete(sequence_key(&seq.name))?;
    txn.delete(counter(seq.id))?;
    Ok(())
}

/// Makes a sequence start over at its start value (ALTER SEQUENCE RESTART, TRUNCATE RESTART
/// IDENTITY).
pub(crate) fn restart(txn: &mut dyn KvTxn, seq: &Sequence) -> Result<()> {
    Ok(txn.delete(counter(seq.id))?)
}

/// A sequence's counter: the last value and whether it was handed out (before the first
/// `nextval`: the start value, not handed out).
pub(crate) async fn read_counter(txn: &mut dyn KvTxn, seq: &Sequence) -> Result<(i64, bool)> {
    let Some(raw) = txn.get(&counter(seq.id)).await? else {
        return Ok((seq.start, false));
    };
    let (value, called) = raw.split_at_checked(8).ok_or_else(|| corrupt("sequence"))?;
    let value = i64::from_be_bytes(value.try_into().map_err(|_| corrupt("sequence"))?);
    Ok((value, called == [1]))
}

/// Writes a sequence's counter.
pub(crate) fn write_counter(
    txn: &mut dyn KvTxn,
    seq: &Sequence,
    value: i64,
    called: bool,
) -> Result<()> {
    let mut raw = value.to_be_bytes().to_vec();
    raw.push(called as u8);
    txn.put(counter(seq.id), raw)?;
    Ok(())
}
