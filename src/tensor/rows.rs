//! Row views of tensors along dim 0: split a batch into rows, stack rows into a batch.
//! Both copy (one memcpy per row for fixed-size types, one clone per string).

use std::sync::Arc;

use super::{DataType, SequentialFill, Storage, Tensor};
use crate::error::{C2rsError, Result};

fn shape_text(t: &Tensor) -> String {
    format!("{:?}/{}", t.dims(), t.dtype())
}

/// Splits `t` (at least 1-D) into `dims[0]` tensors of shape `dims[1..]`.
pub fn split_rows(t: &Tensor) -> Result<Vec<Tensor>> {
    let Some((&n, inner)) = t.dims().split_first() else {
        return Err(C2rsError::enforce(format!(
            "cannot split a scalar {} tensor into rows",
            t.dtype()
        )));
    };
    let n = n as usize;
    let row_len = t.numel().checked_div(n).unwrap_or(0);
    if t.dtype() == DataType::String {
        let strings = t.strings()?;
        return (0..n)
            .map(|i| Tensor::from_strings(inner, strings[i * row_len..(i + 1) * row_len].to_vec()))
            .collect();
    }
    let item = t.dtype().item_size().unwrap_or(0);
    let bytes = t.bytes()?;
    // One copy per row, straight into its new buffer (no zero-fill first).
    (0..n)
        .map(|i| {
            let row = &bytes[i * row_len * item..(i + 1) * row_len * item];
            Tensor::from_storage(t.dtype(), inner, Arc::new(Storage::copy_of(row)?))
        })
        .collect()
}

/// Checks that `row` has the dtype and dims of `first`; the error names both.
pub fn check_same_shape(row: &Tensor, first: &Tensor, what: impl FnOnce() -> String) -> Result<()> {
    if row.dtype() != first.dtype() || row.dims() != first.dims() {
        return Err(C2rsError::enforce(format!(
            "{} has shape/dtype {}, expected {}",
            what(),
            shape_text(row),
            shape_text(first)
        )));
    }
    Ok(())
}

/// Stacks equally shaped rows into one tensor of shape `[rows.len()] + row dims`.
pub fn stack_rows(rows: &[&Tensor]) -> Result<Tensor> {
    let Some(first) = rows.first() else {
        return Err(C2rsError::enforce("cannot stack zero rows"));
    };
    for (k, row) in rows.iter().enumerate() {
        check_same_shape(row, first, || format!("row {k}"))?;
    }
    let mut dims = Vec::with_capacity(first.dims().len() + 1);
    dims.push(rows.len() as i64);
    dims.extend_from_slice(first.dims());
    if first.dtype() == DataType::String {
        let values = rows
            .iter()
            .map(|r| r.strings().map(|s| s.to_vec()))
            .collect::<Result<Vec<_>>>()?
            .concat();
        return Tensor::from_strings(&dims, values);
    }
    // Rows are copied once each, front to back, into a buffer that is never zero-filled.
    let total = first.nbytes().checked_mul(rows.len()).ok_or_else(|| {
        C2rsError::invalid_argument(format!(
            "{} rows of {} overflow",
            rows.len(),
            shape_text(first)
        ))
    })?;
    let mut fill = SequentialFill::new(total)?;
    for row in rows {
        fill.push(row.bytes()?)?;
    }
    Tensor::from_storage(first.dtype(), &dims, Arc::new(fill.finish()?))
}

/// Concatenates tensors (each at least 1-D, equal dtype and inner dims) along dim 0 into one
/// tensor of shape `[sum of dim 0] + inner dims`, with one copy per part.
pub fn concat_rows(parts: &[&Tensor]) -> Result<Tensor> {
    let Some(first) = parts.first() else {
        return Err(C2rsError::enforce("cannot concatenate zero tensors"));
    };
    let Some((_, inner)) = first.dims().split_first() else {
        return Err(C2rsError::enforce("cannot concatenate scalars along dim 0"));
    };
    let mut rows = 0i64;
    for (k, part) in parts.iter().enumerate() {
        if part.dtype() != first.dtype() || part.dims().get(1..) != Some(inner) {
            return Err(C2rsError::enforce(format!(
                "part {k} has shape/dtype {}, expected [_, {inner:?}]/{}",
                shape_text(part),
                first.dtype()
            )));
        }
        rows += part.dims()[0];
    }
    let mut dims = Vec::with_capacity(first.dims().len());
    dims.push(rows);
    dims.extend_from_slice(inner);
    if first.dtype() == DataType::String {
        let mut values = Vec::with_capacity(parts.iter().map(|p| p.numel()).sum());
        for part in parts {
            values.extend_from_slice(part.strings()?);
        }
        return Tensor::from_strings(&dims, values);
    }
    let mut out = Tensor::zeros(first.dtype(), &dims)?;
    let dst = out.bytes_mut()?;
    let mut at = 0;
    for part in parts {
        let src = part.bytes()?;
        dst[at..at + src.len()].copy_from_slice(src);
        at += src.len();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_then_stack_is_identity() {
        let t = Tensor::from_slice(DataType::Int32, &[3, 2], &[1i32, 2, 3, 4, 5, 6]).unwrap();
        let rows = split_rows(&t).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].dims(), &[2]);
        assert_eq!(rows[1].typed::<i32>().unwrap(), &[3, 4]);
        let back = stack_rows(&rows.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(back, t);
        let s = Tensor::from_strings(&[2], vec![b"a".to_vec(), b"bc".to_vec()]).unwrap();
        let rows = split_rows(&s).unwrap();
        assert_eq!(rows[1].dims(), &[] as &[i64]);
        assert_eq!(stack_rows(&rows.iter().collect::<Vec<_>>()).unwrap(), s);
    }

    #[test]
    fn mismatched_rows_and_scalars_are_refused() {
        let a = Tensor::zeros(DataType::Float, &[2]).unwrap();
        let b = Tensor::zeros(DataType::Float, &[3]).unwrap();
        let e = stack_rows(&[&a, &b]).unwrap_err();
        assert_eq!(
            e.message(),
            "row 1 has shape/dtype [3]/FLOAT, expected [2]/FLOAT"
        );
        assert!(split_rows(&Tensor::zeros(DataType::Float, &[]).unwrap()).is_err());
    }

    #[test]
    fn concat_joins_along_dim0_and_checks_inner_dims() {
        let a = Tensor::from_slice(DataType::Int32, &[1, 2], &[1i32, 2]).unwrap();
        let b = Tensor::from_slice(DataType::Int32, &[2, 2], &[3i32, 4, 5, 6]).unwrap();
        let c = concat_rows(&[&a, &b]).unwrap();
        assert_eq!(c.dims(), &[3, 2]);
        assert_eq!(c.typed::<i32>().unwrap(), &[1, 2, 3, 4, 5, 6]);
        let bad = Tensor::from_slice(DataType::Int32, &[1, 3], &[0i32, 0, 0]).unwrap();
        assert!(concat_rows(&[&a, &bad]).is_err());
        let s = Tensor::from_strings(&[1], vec![b"x".to_vec()]).unwrap();
        assert_eq!(concat_rows(&[&s, &s]).unwrap().strings().unwrap().len(), 2);
    }
}
