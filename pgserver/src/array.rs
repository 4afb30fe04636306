//! The binary wire format of one-dimensional arrays (PostgreSQL's `array_send` /
//! `array_recv`): `ndim i32` (0 for an empty array, else 1), `has_null i32`, the element
//! oid `u32`, then per dimension its size `i32` and lower bound `i32` (1), then each element
//! as `len i32` (-1 for NULL) and its bytes in the element type's binary format.

use bytes::{Buf, BufMut};
use pgwire::error::PgWireResult;
use sql::types::array::ElemType;
use sql::{DataType, Value};

use crate::error::{code, user_error};
use crate::types::{ParamType, decode_binary as decode_element, encode_binary as encode_element};

/// The oid of an element type on the wire (`bpchar` elements keep their own).
fn element_oid(e: ElemType) -> u32 {
    match e {
        ElemType::Bpchar => 1042,
        e => e.data_type().oid(),
    }
}

/// Encodes an array of `elem` elements.
pub(crate) fn encode_binary(items: &[Value], elem: ElemType) -> PgWireResult<Vec<u8>> {
    let mut out = Vec::with_capacity(20 + items.len() * 8);
    let too_large = || user_error(code::PROTOCOL_VIOLATION, "array value too large");
    out.put_i32(i32::from(!items.is_empty()));
    out.put_i32(i32::from(items.iter().any(Value::is_null)));
    out.put_u32(element_oid(elem));
    if !items.is_empty() {
        out.put_i32(i32::try_from(items.len()).map_err(|_| too_large())?);
        out.put_i32(1);
    }
    let ty: DataType = elem.data_type();
    for item in items {
        match encode_element(item, ty)? {
            None => out.put_i32(-1),
            Some(bytes) => {
                out.put_i32(i32::try_from(bytes.len()).map_err(|_| too_large())?);
                out.put_slice(&bytes);
            }
        }
    }
    Ok(out)
}

/// Decodes an array of `elem` elements for Bind parameter `index`; None when the bytes are
/// not an array of one dimension in this layout.
pub(crate) fn decode_binary(
    index: usize,
    elem: ElemType,
    mut bytes: &[u8],
) -> Option<PgWireResult<Value>> {
    let ndim = bytes.try_get_i32().ok()?;
    let _has_null = bytes.try_get_i32().ok()?;
    let _oid = bytes.try_get_u32().ok()?;
    let len = match ndim {
        0 => 0,
        1 => {
            let len = usize::try_from(bytes.try_get_i32().ok()?).ok()?;
            let _lower = bytes.try_get_i32().ok()?;
            len
        }
        _ => {
            return Some(Err(user_error(
                code::FEATURE_NOT_SUPPORTED,
                "multidimensional arrays are not supported",
            )));
        }
    };
    let ty = ParamType::from_data_type(elem.data_type());
    // Each element has at least its length word, which bounds the allocation.
    let mut items = Vec::with_capacity(len.min(bytes.len() / 4));
    for _ in 0..len {
        let n = bytes.try_get_i32().ok()?;
        if n < 0 {
            items.push(Value::Null);
            continue;
        }
        let n = usize::try_from(n).ok()?;
        let body = bytes.get(..n)?;
        bytes.advance(n);
        match decode_element(index, ty, body) {
            Ok(v) => items.push(v),
            Err(e) => return Some(Err(e)),
        }
    }
    if !bytes.is_empty() {
        return None;
    }
    Some(Ok(Value::Array(items)))
}
