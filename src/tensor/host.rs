//! Tensor allocations reused by the C ABI's handle cache (`ffi/tensor_handles.rs`): a host that
//! wraps a buffer per record and frees the handle after the record crossed a queue would
//! otherwise allocate and free a handle box and a storage `Arc` per tensor.

use std::sync::Arc;

use smallvec::SmallVec;

use super::{DataType, Elements, Storage, Tensor, checked_nbytes, checked_numel};
use crate::error::{C2rsError, Result};

/// A boxed tensor ready for reuse: no elements, and a byte storage `Arc` nobody else holds
/// (it holds `Storage::empty()`). Only `new` and `reclaim` make one, so the `Arc` stays unique
/// until `fill` hands the tensor out.
pub struct Reusable(Box<Tensor>);

impl Default for Reusable {
    fn default() -> Self {
        Self::new()
    }
}

impl Reusable {
    pub fn new() -> Self {
        Self(Box::new(Tensor {
            dtype: DataType::Uint8,
            dims: SmallVec::new(),
            numel: 0,
            elements: Elements::Bytes(Arc::new(Storage::empty())),
        }))
    }

    /// A tensor being freed, kept for reuse when nobody shares its storage: the storage's
    /// buffer is released now (running a host buffer's release callback). `Err` gives the
    /// tensor back (shared storage, STRING) to be dropped as usual.
    pub fn reclaim(mut t: Box<Tensor>) -> std::result::Result<Self, Box<Tensor>> {
        let Elements::Bytes(arc) = &mut t.elements else {
            return Err(t);
        };
        let Some(storage) = Arc::get_mut(arc) else {
            return Err(t);
        };
        *storage = Storage::empty();
        t.numel = 0;
        t.dims.clear();
        Ok(Self(t))
    }

    /// The tensor of `dtype` and `dims` over `storage`, in this allocation. When the shape
    /// does not fit the storage, the error comes back with both, the storage not dropped, so
    /// that a caller who adopted a host buffer can undo the adoption.
    pub fn fill(
        mut self,
        dtype: DataType,
        dims: &[i64],
        storage: Storage,
    ) -> std::result::Result<Box<Tensor>, Box<Refused>> {
        let Some(numel) = fitting_numel(dtype, dims, storage.len()) else {
            return Err(self.refuse(dtype, dims, storage));
        };
        let t = &mut *self.0;
        match &mut t.elements {
            Elements::Bytes(arc) => {
                let slot = Arc::as_ptr(arc) as *mut Storage;
                // SAFETY: by the type's invariant this `Arc` is the only reference to its
                // storage (no other strong or weak one exists: `reclaim` checked with
                // `get_mut`, `new` made it, and a `Reusable` never clones it), so writing
                // through its pointer (which `Arc` derives with write provenance, as its
                // `get_mut` does) races with nothing and aliases no reference. The old value is
                // `Storage::empty()`, which owns nothing, so skipping its drop loses nothing.
                unsafe { slot.write(storage) };
            }
            // Not reachable by the invariant; stays correct if it were.
            Elements::Strings(_) => t.elements = Elements::Bytes(Arc::new(storage)),
        }
        t.dtype = dtype;
        for &d in dims {
            t.dims.push(d);
        }
        t.numel = numel;
        Ok(self.0)
    }

    #[cold]
    fn refuse(self, dtype: DataType, dims: &[i64], storage: Storage) -> Box<Refused> {
        let error = storage_numel(dtype, dims, &storage)
            .err()
            .unwrap_or_else(|| C2rsError::internal("shape check disagreement"));
        Box::new(Refused {
            error,
            reusable: self,
            storage,
        })
    }
}

/// A `Reusable::fill` that did not fit: the error, and both inputs back.
pub struct Refused {
    pub error: C2rsError,
    pub reusable: Reusable,
    pub storage: Storage,
}

/// The element count of `dims` when `dtype` elements of that shape take exactly `len`
/// bytes; `None` otherwise (STRING, a negative dim, overflow, another size).
fn fitting_numel(dtype: DataType, dims: &[i64], len: usize) -> Option<usize> {
    let item = dtype.item_size()?;
    let mut numel: usize = 1;
    for &d in dims {
        numel = numel.checked_mul(usize::try_from(d).ok()?)?;
    }
    (numel.checked_mul(item)? == len).then_some(numel)
}

/// The element count of `dims` when `storage` holds exactly its bytes (as `from_storage`).
fn storage_numel(dtype: DataType, dims: &[i64], storage: &Storage) -> Result<usize> {
    if dtype == DataType::String {
        return Err(C2rsError::type_mismatch(
            "STRING tensors cannot be built over raw storage",
        ));
    }
    let numel = checked_numel(dims)?;
    let nbytes = checked_nbytes(dtype, numel, dims)?;
    if storage.len() != nbytes {
        return Err(C2rsError::invalid_argument(format!(
            "a {dtype} tensor of dims {dims:?} needs {nbytes} bytes, the storage has {}",
            storage.len()
        )));
    }
    Ok(numel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaim_releases_unique_storage_and_refuses_shared_ones() {
        let t = Box::new(Tensor::from_slice(DataType::Int32, &[2], &[1i32, 2]).unwrap());
        let copy = (*t).clone();
        let t = Reusable::reclaim(t)
            .err()
            .expect("shared storage is not reclaimed");
        drop(copy);
        let Ok(r) = Reusable::reclaim(t) else {
            panic!("unique storage is reclaimed")
        };
        let storage = Storage::copy_of(&[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]).unwrap();
        let refused = r.fill(DataType::Int32, &[2], storage).err().unwrap();
        assert!(
            refused
                .error
                .message()
                .contains("needs 8 bytes, the storage has 12")
        );
        let t = refused
            .reusable
            .fill(DataType::Int32, &[3], refused.storage)
            .ok()
            .unwrap();
        assert_eq!(t.typed::<i32>().unwrap(), &[1, 2, 3]);
        assert_eq!(t.dims(), &[3]);
        let strings = Box::new(Tensor::from_strings(&[1], vec![b"a".to_vec()]).unwrap());
        assert!(Reusable::reclaim(strings).is_err());
    }
}
