//! CPU tensors: a Caffe2 dtype, int64 dims (row-major, contiguous; empty dims = scalar) and
//! storage shared cheaply through `Arc` with copy-on-write for writers.

pub mod dlpack;
mod dtype;
mod host;
pub mod rows;
mod serialize;
mod storage;

use std::sync::Arc;

use smallvec::SmallVec;

pub use dtype::DataType;
pub use host::{Refused, Reusable};
pub use serialize::{
    MAX_IMPLICIT_ZERO_BYTES, ZeroFillBudget, check_tensor_proto, segment_of, tensor_from_proto,
    tensor_from_proto_budgeted, tensor_range_to_proto, tensor_to_proto, tensors_from_protos,
};
pub use storage::{
    ALIGNMENT, BufferPool, HostRelease, Pod, SequentialFill, Storage, cast_slice, cast_slice_mut,
};

use crate::error::{C2rsError, Result};

/// Element storage of a tensor.
#[derive(Clone)]
enum Elements {
    /// Fixed-size elements in one aligned (or adopted) buffer of exactly `numel * item_size` bytes.
    /// Never downgraded: no `Weak<Storage>` exists anywhere (this `Arc` does not leave the crate,
    /// `Tensor::storage` is crate-private), so a strong count of 1 proves a reference unique
    /// (`sole_storage`).
    Bytes(Arc<Storage>),
    /// One byte string per element (STRING); arbitrary bytes, not necessarily UTF-8.
    Strings(Arc<Vec<Vec<u8>>>),
}

/// `&mut` to the storage behind `arc` when `arc` is its only reference; `None` when it is
/// shared. `Arc::get_mut` without its locked read-modify-write of the weak count (the lock
/// guards against a concurrent `Weak::upgrade`, and storages have no `Weak`): on the handle
/// free path that instruction was most of the call.
fn sole_storage(arc: &mut Arc<Storage>) -> Option<&mut Storage> {
    if Arc::strong_count(arc) != 1 {
        return None;
    }
    debug_assert_eq!(Arc::weak_count(arc), 0, "storages are never downgraded");
    // Pairs with the release decrement of every other reference that was dropped, so their
    // accesses to the storage happen before ours (as `Arc::get_mut`'s acquire does).
    std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
    let ptr = Arc::as_ptr(arc) as *mut Storage;
    // SAFETY: the strong count is 1 and we hold that reference mutably, so no other `Arc`
    // exists and none can be made but through `arc` (borrowed here); no `Weak` exists to
    // upgrade (`Elements::Bytes` is never downgraded). So the storage is reachable only through
    // this borrow for its lifetime. `Arc::as_ptr` keeps the allocation's write provenance (as
    // `get_mut` uses it).
    Some(unsafe { &mut *ptr })
}

/// A CPU tensor.
///
/// Invariants: `numel == product(dims)` and every dim is ≥ 0; `Bytes` storage holds exactly
/// `numel * dtype.item_size()` bytes; `Strings` holds exactly `numel` entries and is used iff
/// `dtype == STRING`. `Clone` is shallow (shares storage); writers copy first when shared.
#[derive(Clone)]
pub struct Tensor {
    dtype: DataType,
    /// Inline up to `INLINE_DIMS` dims: creating a typical tensor allocates no dims buffer.
    dims: SmallVec<[i64; INLINE_DIMS]>,
    numel: usize,
    elements: Elements,
}

/// Dims kept inline in a `Tensor` (more spill to the heap).
const INLINE_DIMS: usize = 4;

/// Bytes one STRING element takes before its contents (the `Vec` header), used to size STRING
/// tensors against their input and to name the bytes an allocation asked for.
pub const STRING_ELEMENT_BYTES: usize = std::mem::size_of::<Vec<u8>>();

/// Dims as text for messages: at most 8 values, then the count, so a message about a proto
/// with a million dims stays short.
pub fn dims_text(dims: &[i64]) -> String {
    const SHOWN: usize = 8;
    if dims.len() <= SHOWN {
        return format!("{dims:?}");
    }
    let head: Vec<String> = dims[..SHOWN].iter().map(i64::to_string).collect();
    format!("[{}, … ({} dims)]", head.join(", "), dims.len())
}

/// Bytes a tensor of `numel` elements of `dtype` holds: the element bytes, or the string
/// headers for STRING (their contents come on top). `None` on overflow.
pub fn element_bytes(dtype: DataType, numel: usize) -> Option<usize> {
    numel.checked_mul(dtype.item_size().unwrap_or(STRING_ELEMENT_BYTES))
}

/// `numel` empty strings, allocated fallibly: a failure is an `Internal` "out of memory"
/// error naming the bytes, never an abort.
fn empty_strings(numel: usize) -> Result<Vec<Vec<u8>>> {
    let mut v: Vec<Vec<u8>> = Vec::new();
    v.try_reserve_exact(numel).map_err(|_| {
        C2rsError::internal(format!(
            "out of memory allocating {} bytes for {numel} STRING elements",
            numel.saturating_mul(STRING_ELEMENT_BYTES)
        ))
    })?;
    v.resize_with(numel, Vec::new);
    Ok(v)
}

/// A copy of `values`, allocated fallibly (the outer vector and every string).
pub fn try_clone_strings(values: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
    let oom = |bytes: usize| {
        C2rsError::internal(format!(
            "out of memory allocating {bytes} bytes copying {} STRING elements",
            values.len()
        ))
    };
    let mut out: Vec<Vec<u8>> = Vec::new();
    out.try_reserve_exact(values.len())
        .map_err(|_| oom(values.len().saturating_mul(STRING_ELEMENT_BYTES)))?;
    for s in values {
        let mut copy = Vec::new();
        copy.try_reserve_exact(s.len()).map_err(|_| oom(s.len()))?;
        copy.extend_from_slice(s);
        out.push(copy);
    }
    Ok(out)
}

/// Number of elements for `dims`, rejecting negative dims and overflow.
pub fn checked_numel(dims: &[i64]) -> Result<usize> {
    let mut n: usize = 1;
    for (i, &d) in dims.iter().enumerate() {
        let d = usize::try_from(d)
            .map_err(|_| C2rsError::invalid_argument(format!("dims[{i}] = {d} is negative")))?;
        n = n.checked_mul(d).ok_or_else(|| {
            C2rsError::invalid_argument(format!(
                "dims {} overflow the element count",
                dims_text(dims)
            ))
        })?;
    }
    Ok(n)
}

/// Byte size of `numel` elements of `dtype` (string headers for STRING), rejecting sizes no
/// allocation can hold.
fn checked_nbytes(dtype: DataType, numel: usize, dims: &[i64]) -> Result<usize> {
    element_bytes(dtype, numel)
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| {
            C2rsError::invalid_argument(format!(
                "a {dtype} tensor of dims {} is too large to allocate",
                dims_text(dims)
            ))
        })
}

impl Tensor {
    /// A zero-filled tensor (empty strings for STRING). The allocation is fallible: a size
    /// the allocator refuses is an `Internal` "out of memory allocating N bytes" error naming
    /// the tensor, never an abort.
    pub fn zeros(dtype: DataType, dims: &[i64]) -> Result<Self> {
        let numel = checked_numel(dims)?;
        let nbytes = checked_nbytes(dtype, numel, dims)?;
        let elements = match dtype.item_size() {
            Some(_) => Storage::zeroed(nbytes).map(|s| Elements::Bytes(Arc::new(s))),
            None => empty_strings(numel).map(|v| Elements::Strings(Arc::new(v))),
        }
        .map_err(|e| {
            C2rsError::new(
                e.kind(),
                format!(
                    "{} (a {dtype} tensor of dims {})",
                    e.message(),
                    dims_text(dims)
                ),
            )
        })?;
        Ok(Self {
            dtype,
            dims: SmallVec::from_slice(dims),
            numel,
            elements,
        })
    }

    /// A tensor over existing storage, which must hold exactly the bytes `dims` need.
    pub fn from_storage(dtype: DataType, dims: &[i64], storage: Arc<Storage>) -> Result<Self> {
        let numel = checked_numel(dims)?;
        if dtype == DataType::String {
            return Err(C2rsError::type_mismatch(
                "STRING tensors cannot be built over raw storage",
            ));
        }
        let nbytes = checked_nbytes(dtype, numel, dims)?;
        if storage.len() != nbytes {
            return Err(C2rsError::invalid_argument(format!(
                "a {dtype} tensor of dims {} needs {nbytes} bytes, the storage has {}",
                dims_text(dims),
                storage.len()
            )));
        }
        Ok(Self {
            dtype,
            dims: SmallVec::from_slice(dims),
            numel,
            elements: Elements::Bytes(storage),
        })
    }

    /// A STRING tensor holding `values` (one per element).
    pub fn from_strings(dims: &[i64], values: Vec<Vec<u8>>) -> Result<Self> {
        let numel = checked_numel(dims)?;
        if values.len() != numel {
            return Err(C2rsError::invalid_argument(format!(
                "dims {} need {numel} strings, got {}",
                dims_text(dims),
                values.len()
            )));
        }
        Ok(Self {
            dtype: DataType::String,
            dims: SmallVec::from_slice(dims),
            numel,
            elements: Elements::Strings(Arc::new(values)),
        })
    }

    /// A tensor holding a copy of `values`; `T` must match the dtype's element size.
    pub fn from_slice<T: Pod>(dtype: DataType, dims: &[i64], values: &[T]) -> Result<Self> {
        let mut t = Self::zeros(dtype, dims)?;
        let values = values_of_len(values, t.numel)?;
        t.typed_mut::<T>()?.copy_from_slice(values);
        Ok(t)
    }

    /// Gives the tensor new dims with the same element count, keeping its elements in place.
    pub fn reshape(&mut self, dims: &[i64]) -> Result<()> {
        let numel = checked_numel(dims)?;
        if numel != self.numel {
            return Err(C2rsError::invalid_argument(format!(
                "cannot reshape {} elements to dims {} ({numel} elements)",
                self.numel,
                dims_text(dims)
            )));
        }
        self.dims = SmallVec::from_slice(dims);
        Ok(())
    }

    pub fn dtype(&self) -> DataType {
        self.dtype
    }

    pub fn dims(&self) -> &[i64] {
        &self.dims
    }

    pub fn numel(&self) -> usize {
        self.numel
    }

    /// Byte size of the elements (0 for STRING).
    pub fn nbytes(&self) -> usize {
        match &self.elements {
            Elements::Bytes(s) => s.len(),
            Elements::Strings(_) => 0,
        }
    }

    fn not_for_strings(&self) -> C2rsError {
        C2rsError::type_mismatch("STRING tensors have no raw data; use the string accessors")
    }

    /// The element bytes (native = little-endian layout). Not for STRING.
    pub fn bytes(&self) -> Result<&[u8]> {
        match &self.elements {
            Elements::Bytes(s) => Ok(s.as_slice()),
            Elements::Strings(_) => Err(self.not_for_strings()),
        }
    }

    /// Exclusive access to the element bytes, copying first if the storage is shared or
    /// read-only (copy-on-write). Not for STRING.
    pub fn bytes_mut(&mut self) -> Result<&mut [u8]> {
        let storage = self.unique_storage()?;
        Ok(storage.as_mut_slice())
    }

    /// Pointer to the first element for hosts; NULL when the tensor holds no bytes.
    pub fn data_ptr(&self) -> Result<*const u8> {
        match &self.elements {
            Elements::Bytes(s) => Ok(s.as_ptr()),
            Elements::Strings(_) => Err(self.not_for_strings()),
        }
    }

    /// Writable pointer for hosts after copy-on-write; NULL when the tensor holds no bytes.
    pub fn mutable_data_ptr(&mut self) -> Result<*mut u8> {
        Ok(self.unique_storage()?.as_mut_ptr())
    }

    fn unique_storage(&mut self) -> Result<&mut Storage> {
        let Elements::Bytes(arc) = &mut self.elements else {
            return Err(C2rsError::type_mismatch(
                "STRING tensors have no raw data; use the string accessors",
            ));
        };
        if sole_storage(arc).is_none_or(|s| s.is_read_only()) {
            *arc = Arc::new(Storage::copy_of(arc.as_slice())?);
        }
        sole_storage(arc).ok_or_else(|| C2rsError::internal("fresh storage is not unique"))
    }

    /// The shared storage (for zero-copy exports); `None` for STRING. Crate-private: see
    /// `Elements::Bytes` (never downgraded).
    pub(crate) fn storage(&self) -> Option<&Arc<Storage>> {
        match &self.elements {
            Elements::Bytes(s) => Some(s),
            Elements::Strings(_) => None,
        }
    }

    /// Elements as `&[T]`; `T`'s size must equal the dtype's element size.
    pub fn typed<T: Pod>(&self) -> Result<&[T]> {
        self.check_item::<T>()?;
        cast_slice(self.bytes()?).ok_or_else(|| C2rsError::internal("tensor storage is misaligned"))
    }

    /// Elements as `&mut [T]` after copy-on-write.
    pub fn typed_mut<T: Pod>(&mut self) -> Result<&mut [T]> {
        self.check_item::<T>()?;
        cast_slice_mut(self.bytes_mut()?)
            .ok_or_else(|| C2rsError::internal("tensor storage is misaligned"))
    }

    fn check_item<T>(&self) -> Result<()> {
        match self.dtype.item_size() {
            Some(n) if n == std::mem::size_of::<T>() => Ok(()),
            _ => Err(C2rsError::type_mismatch(format!(
                "a {} tensor cannot be viewed as {}",
                self.dtype,
                std::any::type_name::<T>()
            ))),
        }
    }

    /// The elements of a STRING tensor.
    pub fn strings(&self) -> Result<&[Vec<u8>]> {
        match &self.elements {
            Elements::Strings(v) => Ok(v),
            Elements::Bytes(_) => Err(C2rsError::type_mismatch(format!(
                "a {} tensor has no string elements",
                self.dtype
            ))),
        }
    }

    /// Mutable elements of a STRING tensor (copy-on-write, the copy allocated fallibly).
    pub fn strings_mut(&mut self) -> Result<&mut [Vec<u8>]> {
        match &mut self.elements {
            Elements::Strings(v) => {
                if Arc::get_mut(v).is_none() {
                    *v = Arc::new(try_clone_strings(v)?);
                }
                Arc::get_mut(v)
                    .map(|v| v.as_mut_slice())
                    .ok_or_else(|| C2rsError::internal("fresh strings are not unique"))
            }
            Elements::Bytes(_) => Err(C2rsError::type_mismatch(format!(
                "a {} tensor has no string elements",
                self.dtype
            ))),
        }
    }

    /// A copy that shares nothing with `self`.
    pub fn deep_copy(&self) -> Result<Self> {
        let elements = match &self.elements {
            Elements::Bytes(s) => Elements::Bytes(Arc::new(Storage::copy_of(s.as_slice())?)),
            Elements::Strings(v) => Elements::Strings(Arc::new(try_clone_strings(v)?)),
        };
        Ok(Self {
            dtype: self.dtype,
            dims: self.dims.clone(),
            numel: self.numel,
            elements,
        })
    }

    /// Whether a write would land in the current elements without copying them first: no
    /// other tensor or DLPack export holds the storage, and it is not a read-only adopted
    /// buffer. (Only a holder of this tensor can add holders, so the answer stays true for as
    /// long as the caller keeps the tensor to itself.)
    pub fn writes_in_place(&self) -> bool {
        match &self.elements {
            Elements::Bytes(a) => {
                Arc::strong_count(a) == 1 && Arc::weak_count(a) == 0 && !a.is_read_only()
            }
            Elements::Strings(v) => Arc::strong_count(v) == 1 && Arc::weak_count(v) == 0,
        }
    }

    /// Copies `src`'s elements into this tensor's own buffer when both have the same dtype
    /// (not STRING) and dims and the buffer is unshared and writable; `false`, with `self`
    /// untouched, otherwise (the caller then makes a new copy). Allocates nothing.
    pub fn overwrite_from(&mut self, src: &Tensor) -> bool {
        if self.dtype != src.dtype || self.dims != src.dims {
            return false;
        }
        let (Elements::Bytes(dst), Elements::Bytes(from)) = (&mut self.elements, &src.elements)
        else {
            return false;
        };
        // `src` sharing the buffer makes it shared: `sole_storage` refuses, and the caller copies
        // (a fed blob never shares the host's buffer).
        match sole_storage(dst) {
            Some(storage) if !storage.is_read_only() && storage.len() == from.len() => {
                storage.as_mut_slice().copy_from_slice(from.as_slice());
                true
            }
            _ => false,
        }
    }

    /// Whether two tensors share element storage (zero-copy views of one another).
    pub fn shares_storage_with(&self, other: &Tensor) -> bool {
        match (&self.elements, &other.elements) {
            (Elements::Bytes(a), Elements::Bytes(b)) => Arc::ptr_eq(a, b),
            (Elements::Strings(a), Elements::Strings(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor")
            .field("dtype", &self.dtype)
            .field("dims", &self.dims)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Tensor {
    /// Same dtype, dims and element bytes (bitwise: NaNs with equal bits compare equal).
    fn eq(&self, other: &Self) -> bool {
        if self.dtype != other.dtype || self.dims != other.dims {
            return false;
        }
        match (&self.elements, &other.elements) {
            (Elements::Bytes(a), Elements::Bytes(b)) => a.as_slice() == b.as_slice(),
            (Elements::Strings(a), Elements::Strings(b)) => a == b,
            _ => false,
        }
    }
}

fn values_of_len<T>(values: &[T], numel: usize) -> Result<&[T]> {
    if values.len() != numel {
        return Err(C2rsError::invalid_argument(format!(
            "expected {numel} values, got {}",
            values.len()
        )));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sole_storage_is_refused_while_a_copy_shares_it_and_granted_after_the_copy_drops_elsewhere() {
        let mut t = Tensor::zeros(DataType::Int32, &[4]).unwrap();
        let Elements::Bytes(arc) = &mut t.elements else {
            panic!("an INT32 tensor has byte storage")
        };
        assert!(
            sole_storage(arc).is_some(),
            "a fresh tensor owns its storage"
        );
        let copy = t.clone();
        let Elements::Bytes(arc) = &mut t.elements else {
            unreachable!()
        };
        assert!(sole_storage(arc).is_none(), "a copy shares it");
        // The copy writes nothing (shared storage is read-only), then drops on another
        // thread; afterwards the original is the sole owner again and writes in place.
        std::thread::spawn(move || assert_eq!(copy.typed::<i32>().unwrap(), &[0; 4]))
            .join()
            .unwrap();
        let before = t.data_ptr().unwrap();
        t.typed_mut::<i32>().unwrap().copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(
            t.data_ptr().unwrap(),
            before,
            "no copy-on-write once unshared"
        );
        let shared = t.clone();
        t.typed_mut::<i32>().unwrap()[0] = 9;
        assert_ne!(
            t.data_ptr().unwrap(),
            before,
            "shared: the writer copies first"
        );
        assert_eq!(shared.typed::<i32>().unwrap(), &[1, 2, 3, 4]);
        assert_eq!(t.typed::<i32>().unwrap(), &[9, 2, 3, 4]);
    }

    #[test]
    fn zeros_covers_scalars_and_zero_size_dims() {
        let s = Tensor::zeros(DataType::Float, &[]).unwrap();
        assert_eq!(s.numel(), 1);
        assert_eq!(s.typed::<f32>().unwrap(), &[0.0]);
        let e = Tensor::zeros(DataType::Double, &[0, 5]).unwrap();
        assert_eq!(e.numel(), 0);
        assert_eq!(e.nbytes(), 0);
        let st = Tensor::zeros(DataType::String, &[2]).unwrap();
        assert_eq!(st.strings().unwrap(), &[Vec::<u8>::new(), Vec::new()]);
    }

    #[test]
    fn storage_is_64_byte_aligned() {
        for d in DataType::ALL.iter().filter(|d| d.item_size().is_some()) {
            let t = Tensor::zeros(*d, &[3, 5]).unwrap();
            assert_eq!(t.data_ptr().unwrap() as usize % 64, 0, "{d}");
        }
    }

    #[test]
    fn negative_or_overflowing_dims_are_rejected() {
        assert!(
            Tensor::zeros(DataType::Float, &[2, -1])
                .unwrap_err()
                .message()
                .contains("dims[1] = -1")
        );
        assert!(Tensor::zeros(DataType::Float, &[i64::MAX, 4]).is_err());
        assert!(Tensor::zeros(DataType::String, &[i64::MAX / 2]).is_err());
    }

    #[test]
    fn allocations_beyond_memory_are_out_of_memory_errors_naming_the_tensor() {
        // 2^46 elements: more than any address space holds, for every dtype (STRING: their
        // headers), so the fallible allocation fails instead of aborting.
        for dtype in [DataType::Float, DataType::String] {
            let e = Tensor::zeros(dtype, &[1 << 46]).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Internal, "{dtype}");
            let bytes = (1usize << 46) * element_bytes(dtype, 1).unwrap();
            assert!(
                e.message()
                    .starts_with(&format!("out of memory allocating {bytes} bytes")),
                "{}",
                e.message()
            );
            assert!(e.message().contains(&format!("a {dtype} tensor")));
        }
    }

    #[test]
    fn dims_text_shortens_long_dims() {
        assert_eq!(dims_text(&[2, 3]), "[2, 3]");
        let long: Vec<i64> = (0..1000).collect();
        assert_eq!(dims_text(&long), "[0, 1, 2, 3, 4, 5, 6, 7, … (1000 dims)]");
    }

    #[test]
    fn reshape_keeps_elements_and_checks_the_count() {
        let mut t = Tensor::from_slice(DataType::Int32, &[4], &[1i32, 2, 3, 4]).unwrap();
        t.reshape(&[2, 2]).unwrap();
        assert_eq!(
            (t.dims(), t.typed::<i32>().unwrap()),
            (&[2i64, 2][..], &[1, 2, 3, 4][..])
        );
        assert!(t.reshape(&[3]).is_err());
    }

    #[test]
    fn writes_copy_shared_storage_first() {
        let a = Tensor::from_slice(DataType::Int32, &[2], &[1i32, 2]).unwrap();
        let mut b = a.clone();
        assert!(a.shares_storage_with(&b));
        b.typed_mut::<i32>().unwrap()[0] = 7;
        assert!(!a.shares_storage_with(&b));
        assert_eq!(a.typed::<i32>().unwrap(), &[1, 2]);
        assert_eq!(b.typed::<i32>().unwrap(), &[7, 2]);
    }

    #[test]
    fn typed_views_check_element_size() {
        let t = Tensor::zeros(DataType::Int64, &[2]).unwrap();
        assert_eq!(
            t.typed::<f32>().unwrap_err().kind(),
            crate::ErrorKind::TypeMismatch
        );
        assert_eq!(
            t.strings().unwrap_err().kind(),
            crate::ErrorKind::TypeMismatch
        );
    }
}
