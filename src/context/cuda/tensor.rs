//! Tensors whose elements live in CUDA device memory (Caffe2's `Tensor` with device CUDA).
//!
//! A separate type from the CPU `Tensor`, stored in workspace blobs as a native object of type
//! name [`CUDA_TENSOR_TYPE_NAME`] (`"CudaTensor"`): plain numeric dtypes only (STRING refused),
//! dims, the owning gpu, and a device buffer from the caching device allocator (returned to the
//! pool when the last clone drops) or adopted from a DLPack producer (its deleter runs once).
//!
//! Immutable once built: operators write new tensors into their outputs, so clones share the
//! buffer without copy-on-write. Compiled in every build; without the `cuda` feature or a GPU
//! every constructor fails with `Unsupported`, so no value of the type ever exists there.

use std::ffi::c_void;
use std::sync::Arc;

use super::CudaContext;
use crate::context::DeviceSpec;
use crate::error::{C2rsError, Result};
use crate::tensor::dlpack::{self, DLDevice, DLManagedTensorVersioned};
use crate::tensor::{DataType, Tensor, checked_numel};
use crate::workspace::BlobNative;

/// The blob type name of a CUDA tensor.
pub const CUDA_TENSOR_TYPE_NAME: &str = "CudaTensor";

/// Device bytes and how to give them back. The address is kept as an integer (device memory
/// is never dereferenced on the host).
struct DeviceBuffer {
    addr: usize,
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

/// A tensor in CUDA device memory.
#[derive(Clone)]
pub struct CudaTensor {
    dtype: DataType,
    dims: Vec<i64>,
    numel: usize,
    nbytes: usize,
    gpu: i32,
    buffer: Arc<DeviceBuffer>,
}

impl BlobNative for CudaTensor {
    const TYPE_NAME: &'static str = CUDA_TENSOR_TYPE_NAME;
}

impl std::fmt::Debug for CudaTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaTensor")
            .field("dtype", &self.dtype)
            .field("dims", &self.dims)
            .field("gpu", &self.gpu)
            .finish()
    }
}

/// A context on `gpu` (checks that CUDA is usable and the ordinal is in range).
fn context_on(gpu: i32) -> Result<CudaContext> {
    let spec = DeviceSpec {
        random_seed: Some(0),
        ..DeviceSpec::cuda(Some(gpu))
    };
    CudaContext::new(&spec)
}

/// Byte size of `dims` elements of `dtype`, refusing STRING.
fn sized(dtype: DataType, dims: &[i64]) -> Result<(usize, usize)> {
    let item = dtype.item_size().ok_or_else(|| {
        C2rsError::type_mismatch(format!(
            "{} tensors cannot live on CUDA (plain numeric types only)",
            dtype.name()
        ))
    })?;
    let numel = checked_numel(dims)?;
    let nbytes = numel.checked_mul(item).ok_or_else(|| {
        C2rsError::invalid_argument(format!("a {dtype} tensor of dims {dims:?} is too large"))
    })?;
    Ok((numel, nbytes))
}

/// Copies `n` bytes on `ctx`'s stream and waits for them (and reports sticky errors).
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes (host or device memory).
unsafe fn copy_and_wait(
    ctx: &mut CudaContext,
    n: usize,
    src: *const c_void,
    dst: *mut c_void,
) -> Result<()> {
    // SAFETY: forwarded caller contract; we wait below, so the buffers outlive the copy.
    unsafe { ctx.copy_bytes(n, src, dst) }?;
    ctx.finish_device_computation()
}

impl CudaTensor {
    /// An uninitialised tensor on `gpu` (Caffe2 does not zero device memory).
    pub fn empty(dtype: DataType, dims: &[i64], gpu: i32) -> Result<Self> {
        let ctx = context_on(gpu)?;
        Self::empty_on(&ctx, dtype, dims)
    }

    fn empty_on(ctx: &CudaContext, dtype: DataType, dims: &[i64]) -> Result<Self> {
        let (numel, nbytes) = sized(dtype, dims)?;
        let (ptr, deleter) = ctx.allocate(nbytes)?;
        let addr = ptr as usize;
        let release = Box::new(move || {
            // SAFETY: `addr` came from the device allocator with this deleter and is released
            // exactly once, here.
            unsafe { deleter(addr as *mut c_void) }
        });
        Ok(Self {
            dtype,
            dims: dims.to_vec(),
            numel,
            nbytes,
            gpu: ctx.gpu_id(),
            buffer: Arc::new(DeviceBuffer {
                addr,
                release: Some(release),
            }),
        })
    }

    /// A device copy of the CPU tensor `host` on `gpu` (waits for the copy).
    pub fn from_host(host: &Tensor, gpu: i32) -> Result<Self> {
        let mut ctx = context_on(gpu)?;
        let out = Self::empty_on(&ctx, host.dtype(), host.dims())?;
        let src = host.data_ptr()?;
        // SAFETY: `host` holds `nbytes` readable bytes and `out` as many device bytes; both
        // live until the copy has finished (we wait).
        unsafe { copy_and_wait(&mut ctx, out.nbytes, src as *const c_void, out.data_ptr()) }?;
        Ok(out)
    }

    /// A device tensor on `gpu` filled from `nbytes` host bytes at `data`.
    ///
    /// # Safety
    /// `data` readable for `nbytes` bytes (may be NULL when `nbytes` is 0).
    pub unsafe fn from_host_bytes(
        dtype: DataType,
        dims: &[i64],
        gpu: i32,
        data: *const c_void,
        nbytes: usize,
    ) -> Result<Self> {
        let mut ctx = context_on(gpu)?;
        let (_, need) = sized(dtype, dims)?;
        if need != nbytes {
            return Err(C2rsError::invalid_argument(format!(
                "a {dtype} tensor of dims {dims:?} needs {need} bytes, got {nbytes}"
            )));
        }
        let out = Self::empty_on(&ctx, dtype, dims)?;
        // SAFETY: caller contract for `data`; `out` has `nbytes` device bytes; we wait.
        unsafe { copy_and_wait(&mut ctx, nbytes, data, out.data_ptr()) }?;
        Ok(out)
    }

    /// A CPU copy of this tensor (waits for the copy).
    pub fn to_host(&self) -> Result<Tensor> {
        let mut ctx = context_on(self.gpu)?;
        let mut host = Tensor::zeros(self.dtype, &self.dims)?;
        let dst = host.mutable_data_ptr()?;
        // SAFETY: `host` is a fresh tensor of `nbytes` writable bytes; the device buffer lives
        // as long as `self`; we wait.
        unsafe { copy_and_wait(&mut ctx, self.nbytes, self.data_ptr(), dst as *mut c_void) }?;
        Ok(host)
    }

    /// A copy on the same gpu (Caffe2's `Copy` on a CUDA device).
    pub fn deep_copy(&self) -> Result<Self> {
        self.copy_to_gpu(self.gpu)
    }

    /// A copy on `gpu` (peer or through the driver across devices); waits for it.
    pub fn copy_to_gpu(&self, gpu: i32) -> Result<Self> {
        let mut ctx = context_on(gpu)?;
        let out = Self::empty_on(&ctx, self.dtype, &self.dims)?;
        // SAFETY: both device buffers hold `nbytes` bytes and outlive the copy (we wait).
        unsafe { copy_and_wait(&mut ctx, self.nbytes, self.data_ptr(), out.data_ptr()) }?;
        Ok(out)
    }

    /// Adopts a kDLCUDA DLPack tensor without copying: on success its deleter runs exactly
    /// once, when the last clone of the result drops; on failure the caller still owns it.
    ///
    /// # Safety
    /// `managed` valid as DLPack defines it, handed over to us, deleted by nobody else.
    pub unsafe fn from_dlpack(managed: *mut DLManagedTensorVersioned) -> Result<Self> {
        // SAFETY: forwarded caller contract.
        let device = unsafe { (*managed).dl_tensor.device };
        if device.device_type != dlpack::DL_CUDA {
            return Err(C2rsError::unsupported(format!(
                "DLPack device type {} is not kDLCUDA ({}); host tensors go through c2rs_tensor_from_dlpack",
                device.device_type,
                dlpack::DL_CUDA
            )));
        }
        let ctx = context_on(device.device_id)?;
        // SAFETY: forwarded caller contract.
        let p = unsafe { dlpack::parse(managed) }?;
        sized(p.dtype, &p.dims)?;
        if p.nbytes > 0 {
            let owner = super::pointer_device(p.data as *const c_void)?;
            if owner != device.device_id {
                return Err(C2rsError::invalid_argument(format!(
                    "DLPack data at {:p} is not device memory of GPU {} (the driver says {})",
                    p.data,
                    device.device_id,
                    if owner < 0 {
                        "host memory".to_string()
                    } else {
                        format!("GPU {owner}")
                    }
                )));
            }
        }
        // SAFETY: forwarded caller contract; from here on we own `managed`.
        let release = unsafe { dlpack::release_of(managed) };
        let numel = checked_numel(&p.dims)?;
        Ok(Self {
            dtype: p.dtype,
            dims: p.dims,
            numel,
            nbytes: p.nbytes,
            gpu: ctx.gpu_id(),
            buffer: Arc::new(DeviceBuffer {
                addr: p.data as usize,
                release: Some(release),
            }),
        })
    }

    /// Exports without copying as kDLCUDA (device id = gpu, read-only flag: the buffer is
    /// shared). The export keeps the device memory alive until its deleter runs.
    pub fn to_dlpack(&self) -> Result<*mut DLManagedTensorVersioned> {
        dlpack::export_raw(
            self.data_ptr(),
            DLDevice {
                device_type: dlpack::DL_CUDA,
                device_id: self.gpu,
            },
            self.dtype,
            &self.dims,
            dlpack::FLAG_READ_ONLY,
            Box::new(Arc::clone(&self.buffer)),
        )
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
    pub fn nbytes(&self) -> usize {
        self.nbytes
    }
    /// The CUDA ordinal holding the elements.
    pub fn gpu(&self) -> i32 {
        self.gpu
    }
    /// The device address of the first element (never dereference it on the host).
    pub fn data_ptr(&self) -> *mut c_void {
        self.buffer.addr as *mut c_void
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_cannot_live_on_cuda() {
        let e = sized(DataType::String, &[2]).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::TypeMismatch);
        assert_eq!(sized(DataType::Float, &[2, 3]).unwrap(), (6, 24));
    }

    #[test]
    fn without_a_gpu_nothing_is_built() {
        if super::super::device_count() > 0 {
            return;
        }
        let host = Tensor::from_slice(DataType::Int32, &[2], &[1i32, 2]).unwrap();
        let e = CudaTensor::from_host(&host, 0).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Unsupported);
        assert!(e.message().starts_with("CUDA is not available"), "{e}");
        assert!(CudaTensor::empty(DataType::Float, &[1], 0).is_err());
    }
}
