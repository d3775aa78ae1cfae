//! DLPack v1 exchange (`DLManagedTensorVersioned`): zero-copy export of a tensor's storage
//! and zero-copy adoption of a producer's buffer. The struct layouts are DLPack's public ABI;
//! the C header defines them by hand (cbindgen.toml) so that a host's own dlpack.h wins.

use std::ffi::c_void;
use std::sync::Arc;

use super::{DataType, Storage, Tensor, checked_numel};
use crate::error::{C2rsError, Result};

pub(crate) const DLPACK_MAJOR: u32 = 1;
pub(crate) const DLPACK_MINOR: u32 = 0;
pub(crate) const FLAG_READ_ONLY: u64 = 1;

pub(crate) const DL_CPU: i32 = 1;
pub(crate) const DL_CUDA: i32 = 2;
pub(crate) const DL_CUDA_HOST: i32 = 3;

pub(crate) const DL_INT: u8 = 0;
pub(crate) const DL_UINT: u8 = 1;
pub(crate) const DL_FLOAT: u8 = 2;
pub(crate) const DL_BOOL: u8 = 6;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DLPackVersion {
    pub major: u32,
    pub minor: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DLDevice {
    /// `DLDeviceType`, a C enum: `int` on every platform caffe2rs targets.
    pub device_type: i32,
    pub device_id: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DLDataType {
    pub code: u8,
    pub bits: u8,
    pub lanes: u16,
}

#[repr(C)]
#[derive(Debug)]
pub struct DLTensor {
    pub data: *mut c_void,
    pub device: DLDevice,
    pub ndim: i32,
    pub dtype: DLDataType,
    pub shape: *mut i64,
    pub strides: *mut i64,
    pub byte_offset: u64,
}

#[repr(C)]
#[derive(Debug)]
pub struct DLManagedTensorVersioned {
    pub version: DLPackVersion,
    pub manager_ctx: *mut c_void,
    pub deleter: Option<unsafe extern "C" fn(*mut DLManagedTensorVersioned)>,
    pub flags: u64,
    pub dl_tensor: DLTensor,
}

/// DLPack type of a caffe2rs dtype; STRING has none.
pub fn dl_dtype(dtype: DataType) -> Option<DLDataType> {
    let (code, bits) = match dtype {
        DataType::Float => (DL_FLOAT, 32),
        DataType::Double => (DL_FLOAT, 64),
        DataType::Float16 => (DL_FLOAT, 16),
        DataType::Int8 => (DL_INT, 8),
        DataType::Int16 => (DL_INT, 16),
        DataType::Int32 => (DL_INT, 32),
        DataType::Int64 => (DL_INT, 64),
        DataType::Uint8 | DataType::Byte => (DL_UINT, 8),
        DataType::Uint16 => (DL_UINT, 16),
        DataType::Bool => (DL_BOOL, 8),
        DataType::String => return None,
    };
    Some(DLDataType {
        code,
        bits,
        lanes: 1,
    })
}

/// caffe2rs dtype of a DLPack type (8-bit unsigned becomes UINT8).
pub fn dtype_of(dl: DLDataType) -> Result<DataType> {
    let d = match (dl.code, dl.bits, dl.lanes) {
        (DL_FLOAT, 32, 1) => DataType::Float,
        (DL_FLOAT, 64, 1) => DataType::Double,
        (DL_FLOAT, 16, 1) => DataType::Float16,
        (DL_INT, 8, 1) => DataType::Int8,
        (DL_INT, 16, 1) => DataType::Int16,
        (DL_INT, 32, 1) => DataType::Int32,
        (DL_INT, 64, 1) => DataType::Int64,
        (DL_UINT, 8, 1) => DataType::Uint8,
        (DL_UINT, 16, 1) => DataType::Uint16,
        (DL_BOOL, 8, 1) => DataType::Bool,
        (code, bits, lanes) => {
            return Err(C2rsError::unsupported(format!(
                "DLPack dtype (code {code}, bits {bits}, lanes {lanes}) has no Caffe2 equivalent"
            )));
        }
    };
    Ok(d)
}

/// Exports `tensor` without copying: the result shares the tensor's storage and keeps it alive
/// until its deleter runs. Marked read-only: the tensor copies before its next write, so the
/// export keeps seeing the values it was made with.
pub fn export(tensor: &Tensor) -> Result<*mut DLManagedTensorVersioned> {
    // The storage (None for an empty tensor) keeps the bytes alive after the tensor handle
    // is freed.
    let storage = tensor.storage().cloned();
    let data = storage
        .as_ref()
        .map_or(std::ptr::null_mut(), |s| s.as_ptr() as *mut c_void);
    export_raw(
        data,
        DLDevice {
            device_type: DL_CPU,
            device_id: 0,
        },
        tensor.dtype(),
        tensor.dims(),
        FLAG_READ_ONLY,
        Box::new(storage),
    )
}

/// Exports `tensor` without copying, writable when it `writes_in_place` (no other holder of
/// its storage, not adopted read-only): the consumer then holds the only reference to the
/// elements and may write them. Otherwise the export is read-only, or refused when
/// `require_writable`. Returns the export and whether it is writable. The caller drops its
/// `tensor` right after (the export's exclusivity relies on it).
pub fn export_for_handover(
    tensor: &Tensor,
    require_writable: bool,
) -> Result<(*mut DLManagedTensorVersioned, bool)> {
    let writable = tensor.writes_in_place();
    if require_writable && !writable {
        return Err(C2rsError::enforce(format!(
            "a writable export needs storage no one else holds, but this {} tensor of dims {} \
             shares its storage (with another tensor, a DLPack export, or a read-only adopted \
             buffer); clone it (c2rs_tensor_clone) and write to a copy, or export it read-only",
            tensor.dtype(),
            super::dims_text(tensor.dims())
        )));
    }
    let storage = tensor.storage().cloned();
    let data = storage
        .as_ref()
        .map_or(std::ptr::null_mut(), |s| s.as_ptr() as *mut c_void);
    let flags = if writable { 0 } else { FLAG_READ_ONLY };
    let m = export_raw(
        data,
        DLDevice {
            device_type: DL_CPU,
            device_id: 0,
        },
        tensor.dtype(),
        tensor.dims(),
        flags,
        Box::new(storage),
    )?;
    Ok((m, writable))
}

/// Adopts a DLPack tensor without copying. On success the tensor owns `managed`: its deleter
/// is called exactly once, when the last user of the storage lets go. On failure nothing is
/// adopted and the caller still owns `managed`.
///
/// # Safety
/// `managed` must point to a valid `DLManagedTensorVersioned` whose `data`, `shape` and
/// `strides` are valid as DLPack defines them, and that nobody else will delete.
pub unsafe fn adopt(managed: *mut DLManagedTensorVersioned) -> Result<Tensor> {
    // SAFETY: forwarded caller contract.
    let device = unsafe { (*managed).dl_tensor.device };
    if device.device_type != DL_CPU && device.device_type != DL_CUDA_HOST {
        let hint = if device.device_type == DL_CUDA {
            " (a kDLCUDA tensor goes into a workspace blob with c2rs_cuda_tensor_from_dlpack)"
        } else {
            ""
        };
        return Err(C2rsError::unsupported(format!(
            "DLPack device type {} is not host memory (kDLCPU or kDLCUDAHost){hint}",
            device.device_type
        )));
    }
    // SAFETY: forwarded caller contract.
    let p = unsafe { parse(managed) }?;
    // SAFETY: forwarded caller contract (a valid export handed over to us).
    if let Some(reclaimed) = unsafe { reclaim_own_export(managed, &p) } {
        return reclaimed;
    }
    // SAFETY: forwarded caller contract: nobody else deletes `managed`.
    let release = unsafe { release_of(managed) };
    // SAFETY: DLPack grants the bytes `[data, data + nbytes)` until the deleter runs, which is
    // exactly when this storage releases them.
    let storage = unsafe { Storage::adopt(p.data, p.nbytes, p.read_only, release) };
    Tensor::from_storage(p.dtype, &p.dims, Arc::new(storage))
}

/// An export this library made (`export_raw` with a CPU storage) that comes back writable,
/// unchanged (same data, size): the tensor takes the original storage back and the export's
/// context is freed, instead of wrapping the export in one more layer. A buffer that travels
/// back and forth between a host and caffe2rs (a queue's ping-pong, a host operator between two
/// caffe2rs operators) then never accumulates layers of foreign storage. Read-only exports and
/// anything else are left to the general path (None); once it returns Some, `managed` is gone.
///
/// # Safety
/// As `adopt`: `managed` is a valid DLPack tensor handed over to us, described by `p`.
unsafe fn reclaim_own_export(
    managed: *mut DLManagedTensorVersioned,
    p: &Parsed,
) -> Option<Result<Tensor>> {
    // SAFETY: `managed` is valid (caller contract).
    let (deleter, ctx) = unsafe { ((*managed).deleter, (*managed).manager_ctx) };
    let ours: unsafe extern "C" fn(*mut DLManagedTensorVersioned) = delete_export;
    if p.read_only || deleter.is_none_or(|d| !std::ptr::fn_addr_eq(d, ours)) {
        return None;
    }
    // `delete_export` as the deleter means `export_raw` made it: `managed` is the first field
    // of an `ExportContext`, which `manager_ctx` points to as well.
    if ctx != managed as *mut c_void {
        return None;
    }
    let ctx = managed as *mut ExportContext;
    // SAFETY: a live `ExportContext` (see above); only read here.
    let keep = unsafe { &(*ctx)._keep };
    let matches = match keep.downcast_ref::<Option<Arc<Storage>>>() {
        Some(Some(s)) => std::ptr::eq(s.as_ptr(), p.data) && s.len() == p.nbytes,
        Some(None) => p.nbytes == 0,
        None => false,
    };
    if !matches {
        return None;
    }
    // SAFETY: the context was leaked by `export_raw` and is handed back to us; DLPack gives
    // its deleter to exactly one consumer, so reconstructing the box here is the only release.
    let ctx = unsafe { Box::from_raw(ctx) };
    let storage = ctx
        ._keep
        .downcast::<Option<Arc<Storage>>>()
        .ok()
        .and_then(|s| *s);
    // The storage matched the export in size, so building the tensor does not fail; should it,
    // the storage was released with the context (nothing leaks) and the error is returned.
    Some(match storage {
        Some(s) => Tensor::from_storage(p.dtype, &p.dims, s),
        None => Tensor::zeros(p.dtype, &p.dims),
    })
}

/// What a validated DLPack tensor describes (any device; the caller checks the device).
pub(crate) struct Parsed {
    pub dtype: DataType,
    pub dims: Vec<i64>,
    /// `data + byte_offset`; NULL only for an empty tensor.
    pub data: *mut u8,
    pub nbytes: usize,
    pub read_only: bool,
}

/// Validates version, dtype, shape, strides and alignment of a DLPack tensor on any device.
///
/// # Safety
/// As `adopt` (`managed` valid, its `shape`/`strides` readable as DLPack defines them).
pub(crate) unsafe fn parse(managed: *mut DLManagedTensorVersioned) -> Result<Parsed> {
    // SAFETY: the caller guarantees `managed` points to a valid struct.
    let m = unsafe { &*managed };
    if m.version.major != DLPACK_MAJOR {
        return Err(C2rsError::unsupported(format!(
            "DLPack major version {} is not supported (expected {DLPACK_MAJOR})",
            m.version.major
        )));
    }
    let t = &m.dl_tensor;
    let dtype = dtype_of(t.dtype)?;
    let item = dtype.item_size().unwrap_or(1);
    let ndim = usize::try_from(t.ndim)
        .map_err(|_| C2rsError::invalid_argument(format!("DLPack ndim {} is negative", t.ndim)))?;
    if ndim > 0 && t.shape.is_null() {
        return Err(C2rsError::invalid_argument(
            "DLPack shape is NULL with ndim > 0",
        ));
    }
    let dims: Vec<i64> = if ndim == 0 {
        Vec::new()
    } else {
        // SAFETY: DLPack requires `shape` to hold `ndim` values; checked non-NULL above.
        unsafe { std::slice::from_raw_parts(t.shape, ndim) }.to_vec()
    };
    let numel = checked_numel(&dims)?;
    if !t.strides.is_null() && numel > 0 {
        // SAFETY: DLPack requires a non-NULL `strides` to hold `ndim` values.
        let strides = unsafe { std::slice::from_raw_parts(t.strides, ndim) };
        check_compact(&dims, strides)?;
    }
    // Checked here, before anything is adopted: a size no Rust slice can describe would make
    // the adoption fail after the fact, and that failure would run the producer's deleter.
    let nbytes = numel
        .checked_mul(item)
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| {
            C2rsError::invalid_argument(format!(
                "DLPack tensor of shape {} is too large ({numel} elements of {item} bytes)",
                super::dims_text(&dims)
            ))
        })?;
    let data = if t.data.is_null() {
        if nbytes > 0 {
            return Err(C2rsError::invalid_argument(
                "DLPack data is NULL for a non-empty tensor",
            ));
        }
        std::ptr::null_mut()
    } else {
        let offset = usize::try_from(t.byte_offset)
            .map_err(|_| C2rsError::invalid_argument("DLPack byte_offset too large"))?;
        let data = (t.data as *mut u8).wrapping_add(offset);
        if (t.data as usize).checked_add(offset).is_none()
            || (data as usize).checked_add(nbytes).is_none()
        {
            return Err(C2rsError::invalid_argument(format!(
                "DLPack data {:p} + byte_offset {offset} + {nbytes} bytes wraps around the \
                 address space",
                t.data
            )));
        }
        data
    };
    if nbytes > 0 && (data as usize) % item != 0 {
        return Err(C2rsError::invalid_argument(format!(
            "DLPack data at {data:p} is not aligned to its {item}-byte elements"
        )));
    }
    Ok(Parsed {
        dtype,
        dims,
        data,
        nbytes,
        read_only: m.flags & FLAG_READ_ONLY != 0,
    })
}

/// The closure that calls `managed`'s deleter (once, when run; dropping it unrun leaks).
///
/// # Safety
/// `managed` stays valid until the closure runs, and nobody else deletes it.
pub(crate) unsafe fn release_of(
    managed: *mut DLManagedTensorVersioned,
) -> Box<dyn FnOnce() + Send + Sync> {
    let producer = SendPtr(managed);
    Box::new(move || {
        let managed = producer.get();
        // SAFETY: `managed` stays valid until its deleter runs; it runs here exactly once.
        if let Some(deleter) = unsafe { (*managed).deleter } {
            // SAFETY: the deleter is the producer's and takes the struct it came with.
            unsafe { deleter(managed) };
        }
    })
}

/// What an export keeps alive. `managed` is the first field so the C pointer to it is also
/// the pointer to the whole context (the deleter recovers the `Box` from it).
#[repr(C)]
struct ExportContext {
    managed: DLManagedTensorVersioned,
    shape: Vec<i64>,
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

/// Exports `data` (on `device`, compact row-major `dims` of `dtype`) without copying; `keep`
/// is dropped when the consumer calls the deleter.
pub(crate) fn export_raw(
    data: *mut c_void,
    device: DLDevice,
    dtype: DataType,
    dims: &[i64],
    flags: u64,
    keep: Box<dyn std::any::Any + Send + Sync>,
) -> Result<*mut DLManagedTensorVersioned> {
    let dl = dl_dtype(dtype).ok_or_else(|| {
        C2rsError::unsupported("STRING tensors cannot be exported through DLPack")
    })?;
    let ndim = i32::try_from(dims.len())
        .map_err(|_| C2rsError::unsupported("too many dims for DLPack"))?;
    let mut ctx = Box::new(ExportContext {
        managed: DLManagedTensorVersioned {
            version: DLPackVersion {
                major: DLPACK_MAJOR,
                minor: DLPACK_MINOR,
            },
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(delete_export),
            flags,
            dl_tensor: DLTensor {
                data,
                device,
                ndim,
                dtype: dl,
                shape: std::ptr::null_mut(),
                strides: std::ptr::null_mut(),
                byte_offset: 0,
            },
        },
        shape: dims.to_vec(),
        _keep: keep,
    });
    ctx.managed.dl_tensor.shape = if ctx.shape.is_empty() {
        std::ptr::null_mut()
    } else {
        ctx.shape.as_mut_ptr()
    };
    let raw = Box::into_raw(ctx);
    // SAFETY: `raw` comes from `Box::into_raw` just above, so it is valid and unaliased.
    unsafe { (*raw).managed.manager_ctx = raw as *mut c_void };
    Ok(raw as *mut DLManagedTensorVersioned)
}

unsafe extern "C" fn delete_export(managed: *mut DLManagedTensorVersioned) {
    if managed.is_null() {
        return;
    }
    // `keep` may free device memory; nothing of it may unwind into C frames.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `managed` is the first field of a `Box<ExportContext>` leaked by
        // `export_raw` (repr(C) puts it at offset 0); DLPack calls the deleter once, so this
        // is the only reconstruction of that box.
        drop(unsafe { Box::from_raw(managed as *mut ExportContext) });
    }));
}

/// A strided layout is accepted only when it is the row-major compact one; dims of size 1 may
/// carry any stride (they are never stepped over).
fn check_compact(dims: &[i64], strides: &[i64]) -> Result<()> {
    let mut expected: i64 = 1;
    for (i, (&d, &s)) in dims.iter().zip(strides).enumerate().rev() {
        if d != 1 && s != expected {
            return Err(C2rsError::unsupported(format!(
                "DLPack strides {strides:?} for shape {dims:?} are not compact row-major (dim {i} has stride {s}, expected {expected})"
            )));
        }
        expected = expected.saturating_mul(d);
    }
    Ok(())
}

/// A raw pointer moved into the release closure, which may run on any thread.
struct SendPtr(*mut DLManagedTensorVersioned);
impl SendPtr {
    /// A method rather than field access, so closures capture the whole wrapper.
    fn get(&self) -> *mut DLManagedTensorVersioned {
        self.0
    }
}
// SAFETY: DLPack hands the managed tensor over to the consumer, who may release it from any
// thread; the pointer is used only once, by the release closure.
unsafe impl Send for SendPtr {}
// SAFETY: the wrapper is only read (to obtain the pointer) by the closure that owns it.
unsafe impl Sync for SendPtr {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn export_keeps_storage_alive_and_shares_bytes() {
        let t = Tensor::from_slice(DataType::Float, &[2, 2], &[1f32, 2., 3., 4.]).unwrap();
        let ptr = t.data_ptr().unwrap();
        let m = export(&t).unwrap();
        drop(t);
        // SAFETY: `m` is a live export; read its fields and data, then delete it once.
        unsafe {
            assert_eq!((*m).dl_tensor.data as *const u8, ptr);
            assert_eq!((*m).flags & FLAG_READ_ONLY, FLAG_READ_ONLY);
            let shape = std::slice::from_raw_parts((*m).dl_tensor.shape, 2);
            assert_eq!(shape, &[2, 2]);
            let data = std::slice::from_raw_parts((*m).dl_tensor.data as *const f32, 4);
            assert_eq!(data, &[1., 2., 3., 4.]);
            ((*m).deleter.unwrap())(m);
        }
    }

    static DELETES: AtomicUsize = AtomicUsize::new(0);

    #[test]
    fn round_trip_calls_the_producers_deleter_once() {
        let t = Tensor::from_slice(DataType::Int64, &[3], &[7i64, 8, 9]).unwrap();
        let m = export(&t).unwrap();
        // SAFETY: `m` is a valid export handed over to `adopt`.
        let back = unsafe { adopt(m) }.unwrap();
        assert!(back.storage().is_some());
        assert_eq!(back.typed::<i64>().unwrap(), &[7, 8, 9]);
        assert_eq!(back.data_ptr().unwrap(), t.data_ptr().unwrap());
        drop(t);
        assert_eq!(back.typed::<i64>().unwrap(), &[7, 8, 9]);
        drop(back);

        unsafe extern "C" fn count(_: *mut DLManagedTensorVersioned) {
            DELETES.fetch_add(1, Ordering::SeqCst);
        }
        let mut value = 5i32;
        let mut managed = DLManagedTensorVersioned {
            version: DLPackVersion { major: 1, minor: 1 },
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(count),
            flags: 0,
            dl_tensor: DLTensor {
                data: &mut value as *mut i32 as *mut c_void,
                device: DLDevice {
                    device_type: DL_CPU,
                    device_id: 0,
                },
                ndim: 0,
                dtype: DLDataType {
                    code: DL_INT,
                    bits: 32,
                    lanes: 1,
                },
                shape: std::ptr::null_mut(),
                strides: std::ptr::null_mut(),
                byte_offset: 0,
            },
        };
        // SAFETY: `managed` and `value` outlive the adopted tensor, dropped in this scope.
        let a = unsafe { adopt(&mut managed) }.unwrap();
        let b = a.clone();
        drop(a);
        assert_eq!(DELETES.load(Ordering::SeqCst), 0);
        assert_eq!(b.typed::<i32>().unwrap(), &[5]);
        drop(b);
        assert_eq!(DELETES.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_writable_export_coming_back_reclaims_its_storage_without_a_layer() {
        let t = Tensor::from_slice(DataType::Int32, &[2], &[1i32, 2]).unwrap();
        let storage = Arc::clone(t.storage().unwrap());
        let (m, writable) = export_for_handover(&t, false).unwrap();
        assert!(!writable, "`t` and `storage` still hold it");
        drop(t);
        // Read-only: wrapped, not reclaimed (the adopted storage is a foreign one).
        // SAFETY: `m` is a valid export handed over to `adopt`.
        let back = unsafe { adopt(m) }.unwrap();
        assert!(!Arc::ptr_eq(back.storage().unwrap(), &storage));
        drop(back);
        let t = Tensor::from_slice(DataType::Int32, &[2], &[3i32, 4]).unwrap();
        let original = Arc::as_ptr(t.storage().unwrap());
        let (m, writable) = export_for_handover(&t, true).unwrap();
        assert!(writable, "`t` is the only holder");
        drop(t);
        // SAFETY: `m` is a valid export handed over to `adopt`.
        let back = unsafe { adopt(m) }.unwrap();
        assert_eq!(
            Arc::as_ptr(back.storage().unwrap()),
            original,
            "the same storage"
        );
        assert!(
            back.writes_in_place(),
            "no layer of foreign storage around it"
        );
        assert_eq!(back.typed::<i32>().unwrap(), &[3, 4]);
    }

    static OVERSIZE_DELETES: AtomicUsize = AtomicUsize::new(0);

    #[test]
    fn sizes_no_slice_can_describe_are_refused_before_adopting() {
        unsafe extern "C" fn count(_: *mut DLManagedTensorVersioned) {
            OVERSIZE_DELETES.fetch_add(1, Ordering::SeqCst);
        }
        let mut value = [0u8; 16];
        let managed = |shape: *mut i64, data: *mut c_void, bits: u8| DLManagedTensorVersioned {
            version: DLPackVersion { major: 1, minor: 0 },
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(count),
            flags: 0,
            dl_tensor: DLTensor {
                data,
                device: DLDevice {
                    device_type: DL_CPU,
                    device_id: 0,
                },
                ndim: 1,
                dtype: DLDataType {
                    code: DL_INT,
                    bits,
                    lanes: 1,
                },
                shape,
                strides: std::ptr::null_mut(),
                byte_offset: 0,
            },
        };
        // 2^61 int32 elements: 2^63 bytes, more than isize::MAX.
        let mut shape = [1i64 << 61];
        let mut m = managed(shape.as_mut_ptr(), value.as_mut_ptr().cast(), 32);
        // SAFETY: `m`, `shape` and `value` outlive the call; the size is what is under test.
        let e = unsafe { adopt(&mut m) }.unwrap_err();
        assert!(e.message().contains("too large"), "{}", e.message());
        // 8 bytes just below the top of the address space wrap around.
        let mut shape = [8i64];
        let top = (usize::MAX - 3) as *mut c_void;
        let mut m = managed(shape.as_mut_ptr(), top, 8);
        // SAFETY: refused before the data pointer is ever read.
        let e = unsafe { adopt(&mut m) }.unwrap_err();
        assert!(e.message().contains("wraps around"), "{}", e.message());
        // Refused means not adopted: the producer still owns both and no deleter ran.
        assert_eq!(OVERSIZE_DELETES.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn compactness_rule() {
        assert!(check_compact(&[2, 3], &[3, 1]).is_ok());
        assert!(check_compact(&[2, 1, 3], &[3, 99, 1]).is_ok());
        assert!(check_compact(&[2, 3], &[1, 2]).is_err());
    }
}
