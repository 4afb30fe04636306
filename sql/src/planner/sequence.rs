//! Planning sequence DDL: CREATE SEQUENCE and DROP SEQUENCE, and the sequences that SERIAL
//! and identity columns own.

use sqlparser::ast;

use super::expr::object_name;
use crate::catalog::Sequence;
use crate::catalog::sequence::{type_max, type_min};
use crate::plan::{Plan, SchemaPlan};
use crate::{DataType, Error, Result};

fn invalid(m: String) -> Error {
    Error::InvalidParameter(m)
}

/// An integer constant of a sequence option (a signed literal).
fn option_value(e: &ast::Expr) -> Result<i64> {
    let text = match e {
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => format!("-{expr}"),
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Plus,
            expr,
        } => expr.to_string(),
        e => e.to_string(),
    };
    text.parse()
        .map_err(|_| Error::Syntax(format!("syntax error at or near \"{text}\"")))
}

/// Applies sequence options to `seq` and checks the result as PostgreSQL's `init_params`
/// does (22023). Bounds and start not given follow the type and the direction.
pub(crate) fn apply_options(seq: &mut Sequence, options: &[ast::SequenceOptions]) -> Result<()> {
    use ast::SequenceOptions as O;
    let (mut min, mut max, mut start) = (None, None, None);
    for o in options {
        match o {
            O::DataType(t) => {
                seq.data_type = match DataType::from_ast(t)? {
                    t @ (DataType::Int2 | DataType::Int4 | DataType::Int8) => t,
                    _ => {
                        return Err(invalid(
                            "sequence type must be smallint, integer, or bigint".into(),
                        ));
                    }
                }
            }
            O::IncrementBy(e, _) => seq.increment = option_value(e)?,
            O::MinValue(e) => min = Some(e.as_ref().map(option_value).transpose()?),
            O::MaxValue(e) => max = Some(e.as_ref().map(option_value).transpose()?),
            O::StartWith(e, _) => start = Some(option_value(e)?),
            O::Cache(e) => seq.cache = option_value(e)?,
            O::Cycle(no) => seq.cycle = !no,
            O::OwnedBy(_) => {
                return Err(Error::NotSupported("OWNED BY is not supported yet".into()));
            }
        }
    }
    if seq.increment == 0 {
        return Err(invalid("INCREMENT must not be zero".into()));
    }
    let ascending = seq.increment > 0;
    seq.min = min.flatten().unwrap_or(if ascending {
        1
    } else {
        type_min(seq.data_type)
    });
    seq.max = max.flatten().unwrap_or(if ascending {
        type_max(seq.data_type)
    } else {
        -1
    });
    seq.start = start.unwrap_or(if ascending { seq.min } else { seq.max });
    let t = seq.data_type;
    for (what, v) in [("MINVALUE", seq.min), ("MAXVALUE", seq.max)] {
        if v < type_min(t) || v > type_max(t) {
            return Err(invalid(format!(
                "{what} ({v}) is out of range for sequence data type {t}"
            )));
        }
    }
    if seq.min >= seq.max {
        return Err(invalid(format!(
            "MINVALUE ({}) must be less than MAXVALUE ({})",
            seq.min, seq.max
        )));
    }
    if seq.start < seq.min {
        return Err(invalid(format!(
            "START value ({}) cannot be less than MINVALUE ({})",
            seq.start, seq.min
        )));
    }
    if seq.start > seq.max {
        return Err(invalid(format!(
            "START value ({}) cannot be greater than MAXVALUE ({})",
            seq.start, seq.max
        )));
    }
    if seq.cache < 1 {
        return Err(invalid(format!(
            "CACHE ({}) must be greater than zero",
            seq.cache
        )));
    }
    Ok(())
}

/// Plans CREATE SEQUENCE.
pub(super) fn plan_create_sequence(
    temporary: bool,
    if_not_exists: bool,
    name: &ast::ObjectName,
    options: &[ast::SequenceOptions],
) -> Result<Plan> {
    if temporary {
        return Err(Error::NotSupported(
            "temporary sequences are not supported yet".into(),
        ));
    }
    let mut seq = Sequence::new(object_name(name)?, DataType::Int8);
    apply_options(&mut seq, options)?;
    Ok(Plan::Schema(SchemaPlan::CreateSequence {
        seq,
        if_not_exists,
    }))
}

/// The sequence a SERIAL or identity column owns: `<table>_<column>_seq`.
pub(super) fn owned_sequence(
    table: &str,
    column: &str,
    data_type: DataType,
    options: &[ast::SequenceOptions],
) -> Result<Sequence> {
    let mut seq = Sequence::new(format!("{table}_{column}_seq"), data_type);
    apply_options(&mut seq, options)?;
    seq.owner = Some((table.to_string(), column.to_string()));
    Ok(seq)
}

/// The type of a SERIAL pseudo-type name, if `t` is one.
pub(super) fn serial_type(t: &ast::DataType) -> Option<DataType> {
    let ast::DataType::Custom(name, modifiers) = t else {
        return None;
    };
    if !modifiers.is_empty() {
        return None;
    }
    match name.to_string().to_ascii_lowercase().as_str() {
        "smallserial" | "serial2" => Some(DataType::Int2),
        "serial" | "serial4" => Some(DataType::Int4),
        "bigserial" | "serial8" => Some(DataType::Int8),
        _ => None,
    }
}
