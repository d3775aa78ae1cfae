//! Byte sizes from a serialized `TensorShapes` (spec §2): element size × ∏dims with checked
//! 64-bit arithmetic; unknown dtypes, unknown shapes and negative dims give "size unknown".

use prost::Message;

use super::graph::FastMap;
use crate::error::{C2rsError, Result};
use crate::proto::{TensorShape, TensorShapes};

/// What the planner knows about one blob's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeInfo {
    /// Bytes, when known.
    pub bytes: Option<u64>,
    /// Caffe2 dtype number (FLOAT when the field is missing).
    pub dtype: i32,
    /// Why the size is unknown, when it is.
    pub unknown_reason: Option<String>,
}

/// Element size of a Caffe2 dtype number; `None` for STRING, UNDEFINED and unknown values.
pub fn element_size(dtype: i32) -> Option<u64> {
    Some(match dtype {
        1 | 2 => 4,
        3 | 5 | 6 | 7 => 1,
        8 | 9 | 12 => 2,
        10 | 13 => 8,
        _ => return None,
    })
}

fn shape_info(s: &TensorShape, name: &str) -> ShapeInfo {
    let dtype = s.data_type.unwrap_or(1);
    let unknown = |why: String| ShapeInfo {
        bytes: None,
        dtype,
        unknown_reason: Some(why),
    };
    if s.unknown_shape == Some(true) {
        return unknown(format!("blob `{name}` has unknown_shape"));
    }
    if !s.unknown_dims.is_empty() {
        return unknown(format!("blob `{name}` has unknown dims"));
    }
    if let Some(d) = s.dims.iter().find(|d| **d < 0) {
        return unknown(format!("blob `{name}` has negative dim {d}"));
    }
    let Some(elem) = element_size(dtype) else {
        return unknown(format!(
            "blob `{name}` has dtype {dtype} without a fixed element size"
        ));
    };
    let bytes = s
        .dims
        .iter()
        .try_fold(elem, |acc, &d| acc.checked_mul(d as u64));
    match bytes {
        Some(b) => ShapeInfo {
            bytes: Some(b),
            dtype,
            unknown_reason: None,
        },
        None => unknown(format!("blob `{name}` size overflows 64 bits")),
    }
}

/// Shape information per blob name.
pub type ShapeMap = FastMap<String, ShapeInfo>;

/// Decodes `bytes` (a serialized TensorShapes) into name → shape info. Identical duplicates
/// are fine; two different shapes for one name are an error.
pub fn parse_shapes(bytes: &[u8]) -> Result<ShapeMap> {
    let shapes = TensorShapes::decode(bytes)
        .map_err(|e| C2rsError::parse(format!("bytes are not a valid TensorShapes: {e}")))?;
    let mut seen: FastMap<String, (TensorShape, ShapeInfo)> = FastMap::default();
    seen.reserve(shapes.shapes.len());
    let mut total: u64 = 0;
    for mut s in shapes.shapes {
        let name = String::from_utf8(s.name.take().unwrap_or_default())
            .map_err(|_| C2rsError::parse("a TensorShape name is not UTF-8"))?;
        if name.is_empty() {
            return Err(C2rsError::invalid_argument("a TensorShape has no name"));
        }
        if let Some((prev, _)) = seen.get(&name) {
            if prev.dims != s.dims
                || prev.data_type.unwrap_or(1) != s.data_type.unwrap_or(1)
                || prev.unknown_dims != s.unknown_dims
                || prev.unknown_shape.unwrap_or(false) != s.unknown_shape.unwrap_or(false)
            {
                return Err(C2rsError::invalid_argument(format!(
                    "conflicting shapes for blob {name}"
                )));
            }
            continue;
        }
        let info = shape_info(&s, &name);
        // The planner adds sizes up (arena offsets, live bytes, totals) in 64-bit arithmetic;
        // sizes whose sum does not fit in int64 are refused here, once, instead.
        total = total
            .checked_add(info.bytes.unwrap_or(0))
            .filter(|&t| t <= i64::MAX as u64)
            .ok_or_else(|| {
                C2rsError::invalid_argument(format!(
                    "TensorShapes: the sizes add up to more than 2^63-1 bytes (at blob {name})"
                ))
            })?;
        seen.insert(name, (s, info));
    }
    Ok(seen.into_iter().map(|(k, (_, info))| (k, info)).collect())
}
