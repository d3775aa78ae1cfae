//! Tensor allocations reused by the C ABI's handle cache (`ffi/tensor_handles.rs`): a host that
//! wraps a buffer per record and frees the handle after the record crossed a queue would
//! otherwise allocate and free a handle box and a storage `Arc` per tensor.

use std::sync::Arc;

use smallvec::SmallVec;

use super::{DataType, Elements, Storage, Tensor, checked_nbytes, checked_numel};
use crate::error::{C2rsError, Result};

/// A boxed tensor ready for reuse: no elements, and a byte storage `Arc` nobody else holds,
/// holding a storage that owns nothing (`Storage::empty()`, or a host storage after
/// `release_host`). Only `new` and `reclaim` make one, so the `Arc` stays unique until `fill`
/// hands the tensor out.
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

    /// A tensor being freed, kept for reuse when it wraps a host buffer (`adopt_host`) that
    /// nobody else shares: the buffer is released now (its release callback runs). `Err` gives
    /// any other tensor back, to be dropped as usual: only hosts that wrap buffers refill
    /// these, so keeping others would only pile up allocations (and, with glibc, keep small
    /// chunks alive above freed large ones, which made the heap trim and re-fault big
    /// buffers on every round).
    pub fn reclaim(mut t: Box<Tensor>) -> std::result::Result<Self, Box<Tensor>> {
        let Elements::Bytes(arc) = &mut t.elements else {
            return Err(t);
        };
        let Some(storage) = super::sole_storage(arc) else {
            return Err(t);
        };
        if !storage.release_host() {
            return Err(t);
        }
        t.numel = 0;
        t.dims.clear();
        Ok(Self(t))
    }

    /// The tensor of `dtype` and `dims` over `storage`, in this allocation. When the shape
    /// does not fit the storage, the error comes back with both, the storage not dropped, so
    /// that a caller who adopted a host buffer can undo the adoption.
    #[inline]
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
            // The `Arc` is unique by the type's invariant (`reclaim` checked, `new` made it, a
            // `Reusable` never clones it). The old storage owns nothing (type invariant), so
            // forgetting it loses nothing and spares the call to its destructor.
            Elements::Bytes(arc) => match super::sole_storage(arc) {
                Some(slot) => std::mem::forget(std::mem::replace(slot, storage)),
                // Not reachable by the invariant; stays correct if it were.
                None => *arc = Arc::new(storage),
            },
            Elements::Strings(_) => t.elements = Elements::Bytes(Arc::new(storage)),
        }
        t.dtype = dtype;
        // One push per dim: `extend_from_slice` calls memmove, slower for the usual 1–4 dims.
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
    fn reclaim_takes_only_unshared_host_storage_and_fill_checks_the_shape() {
        static RELEASED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        unsafe extern "C" fn release(_: *mut std::ffi::c_void) {
            RELEASED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let buf = std::cell::UnsafeCell::new([0u8; 8]);
        let host = || {
            // SAFETY: `buf` outlives every tensor made here; `release` only counts.
            unsafe {
                Storage::adopt_host(
                    buf.get() as *mut u8,
                    8,
                    super::super::HostRelease {
                        func: release,
                        ctx: std::ptr::null_mut(),
                    },
                )
            }
        };
        let t = Reusable::new()
            .fill(DataType::Int32, &[2], host())
            .ok()
            .unwrap();
        let copy = (*t).clone();
        let t = Reusable::reclaim(t)
            .err()
            .expect("shared storage is not reclaimed");
        drop(copy);
        assert_eq!(RELEASED.load(std::sync::atomic::Ordering::SeqCst), 0);
        let Ok(r) = Reusable::reclaim(t) else {
            panic!("unshared host storage is reclaimed")
        };
        assert_eq!(
            RELEASED.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "released at reclaim"
        );
        let refused = r.fill(DataType::Int32, &[3], host()).err().unwrap();
        assert!(
            refused
                .error
                .message()
                .contains("needs 12 bytes, the storage has 8")
        );
        let mut storage = refused.storage;
        storage.disown_host();
        drop(storage);
        assert_eq!(
            RELEASED.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "disowned"
        );
        let t = refused
            .reusable
            .fill(DataType::Uint8, &[2, 4], host())
            .ok()
            .unwrap();
        assert_eq!(t.dims(), &[2, 4]);
        assert_eq!(t.data_ptr().unwrap(), buf.get() as *const u8);
        // Library-owned storage and strings are dropped as usual, not kept.
        let own = Box::new(Tensor::from_slice(DataType::Int32, &[1], &[1i32]).unwrap());
        assert!(Reusable::reclaim(own).is_err());
        let strings = Box::new(Tensor::from_strings(&[1], vec![b"a".to_vec()]).unwrap());
        assert!(Reusable::reclaim(strings).is_err());
        drop(t);
        assert_eq!(RELEASED.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
