//! `CudaContext`: Caffe2's `CUDAContext` — a gpu, a stream id selecting the calling thread's
//! stream on that gpu, a seed and a per-context cuRAND generator.

use std::ffi::c_void;

use cudarc::driver::sys;

use super::device::{DeviceGuard, ensure_init, resolve_gpu, set_device};
use super::error::{check, driver_error_text, lib_error};
use super::stream::{cublas_handle, cudnn_handle, stream_handle};
use crate::context::cpu::{Deleter, items_nbytes};
use crate::context::{DeviceSpec, DeviceType, random_number_seed};
use crate::error::{C2rsError, Result};
use crate::tensor::DataType;

/// A CUDA context. Not shared between threads (Caffe2: one per operator); the stream it
/// names is the *calling* thread's stream for (gpu, stream id).
pub struct CudaContext {
    gpu_id: i32,
    stream_id: i32,
    random_seed: u32,
    /// Created on first `curand_generator()`, destroyed on drop.
    curand: Option<cudarc::curand::sys::curandGenerator_t>,
}

impl CudaContext {
    /// From a CUDA spec: its gpu (unset → current device), its seed (unset → drawn). Runs the
    /// one-time lazy CUDA init.
    pub fn new(spec: &DeviceSpec) -> Result<Self> {
        if spec.device_type != DeviceType::Cuda {
            return Err(C2rsError::enforce(format!(
                "CUDAContext needs a CUDA device option, got device type {}",
                spec.device_type.as_i32()
            )));
        }
        ensure_init()?;
        Ok(Self {
            gpu_id: resolve_gpu(spec.device_id)?,
            stream_id: 0,
            random_seed: spec.random_seed.unwrap_or_else(random_number_seed),
            curand: None,
        })
    }

    pub fn random_seed(&self) -> u32 {
        self.random_seed
    }

    pub fn gpu_id(&self) -> i32 {
        self.gpu_id
    }

    pub fn stream_id(&self) -> i32 {
        self.stream_id
    }

    /// Selects stream `stream_id` and makes the context's gpu current on this thread.
    pub fn switch_to_device(&mut self, stream_id: i32) -> Result<()> {
        if stream_id < 0 {
            return Err(C2rsError::invalid_argument(format!(
                "stream id {stream_id} is negative"
            )));
        }
        set_device(self.gpu_id)?;
        self.stream_id = stream_id;
        Ok(())
    }

    /// The calling thread's stream for (gpu, stream id), created on first use.
    pub fn cuda_stream(&self) -> Result<sys::CUstream> {
        stream_handle(self.gpu_id, self.stream_id)
    }

    /// The thread's cuBLAS handle for this (gpu, stream id), bound to `cuda_stream()`.
    pub fn cublas_handle(&self) -> Result<cudarc::cublas::sys::cublasHandle_t> {
        cublas_handle(self.gpu_id, self.stream_id)
    }

    /// The thread's cuDNN handle for this (gpu, stream id), bound to `cuda_stream()`.
    pub fn cudnn_handle(&self) -> Result<cudarc::cudnn::sys::cudnnHandle_t> {
        cudnn_handle(self.gpu_id, self.stream_id)
    }

    /// This context's cuRAND generator (PSEUDO_DEFAULT, seeded with `random_seed`), re-bound to
    /// the current stream on every call.
    pub fn curand_generator(&mut self) -> Result<cudarc::curand::sys::curandGenerator_t> {
        // SAFETY: only checks whether the library file exists.
        if !unsafe { cudarc::curand::sys::is_culib_present() } {
            return Err(C2rsError::unsupported(
                "cuRAND (libcurand) is not installed",
            ));
        }
        let stream = self.cuda_stream()?;
        let _guard = DeviceGuard::new(self.gpu_id)?;
        let generator = match self.curand {
            Some(g) => g,
            None => {
                let g = cudarc::curand::result::create_generator()
                    .map_err(|s| lib_error("curandCreateGenerator", s))?;
                // SAFETY: fresh generator.
                if let Err(s) =
                    unsafe { cudarc::curand::result::set_seed(g, self.random_seed as u64) }
                {
                    // SAFETY: created above, not stored.
                    let _ = unsafe { cudarc::curand::result::destroy_generator(g) };
                    return Err(lib_error("curandSetPseudoRandomGeneratorSeed", s));
                }
                self.curand = Some(g);
                g
            }
        };
        // SAFETY: live generator; the stream belongs to this thread and gpu.
        unsafe {
            cudarc::curand::result::set_stream(
                generator,
                stream as cudarc::curand::sys::cudaStream_t,
            )
        }
        .map_err(|s| lib_error("curandSetStream", s))?;
        Ok(generator)
    }

    /// Waits for this (thread, gpu, stream) stream only, then reports any CUDA error,
    /// including sticky ones left by earlier kernels.
    pub fn finish_device_computation(&mut self) -> Result<()> {
        let stream = self.cuda_stream()?;
        // SAFETY: a live stream of this thread.
        let rc = unsafe { sys::cuStreamSynchronize(stream) };
        if rc != sys::CUresult::CUDA_SUCCESS {
            return Err(C2rsError::enforce(format!(
                "Encountered CUDA error: {} (device {}, stream {})",
                driver_error_text(rc),
                self.gpu_id,
                self.stream_id
            )));
        }
        Ok(())
    }

    /// Caffe2's `CUDAContext::CopyBytes`: asynchronous on this context's stream, direction
    /// inferred by unified addressing (host↔device, device↔device across gpus).
    ///
    /// # Safety
    /// For `n > 0`: `src` readable and `dst` writable for `n` bytes until the stream has
    /// executed the copy (pageable host memory makes the copy synchronous in practice).
    pub unsafe fn copy_bytes(&self, n: usize, src: *const c_void, dst: *mut c_void) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        if src.is_null() || dst.is_null() {
            return Err(C2rsError::enforce(format!(
                "CopyBytes of {n} bytes with a NULL pointer"
            )));
        }
        let stream = self.cuda_stream()?;
        let _guard = DeviceGuard::new(self.gpu_id)?;
        // SAFETY: the caller's contract above.
        check(
            unsafe {
                sys::cuMemcpyAsync(dst as sys::CUdeviceptr, src as sys::CUdeviceptr, n, stream)
            },
            "cuMemcpyAsync",
        )?;
        // Pinned host blocks touched by the copy are not reused before it completes.
        super::pinned::fence_use(src, self.gpu_id, stream)?;
        super::pinned::fence_use(dst, self.gpu_id, stream)
    }

    /// Caffe2's `CUDAContext::CopyItems`: plain types only.
    ///
    /// # Safety
    /// As `copy_bytes` for the resulting byte count.
    pub unsafe fn copy_items(
        &self,
        dtype: DataType,
        n: usize,
        src: *const c_void,
        dst: *mut c_void,
    ) -> Result<()> {
        if dtype.item_size().is_none() {
            return Err(C2rsError::enforce(
                "CUDAContext requires fundamental types.",
            ));
        }
        let nbytes = items_nbytes(dtype, n, "CUDAContext::CopyItems")?;
        // SAFETY: forwarded caller contract.
        unsafe { self.copy_bytes(nbytes, src, dst) }
    }

    /// Caffe2's `CUDAContext::New`: `nbytes` on this context's gpu.
    pub fn allocate(&self, nbytes: usize) -> Result<(*mut c_void, Deleter)> {
        let _guard = DeviceGuard::new(self.gpu_id)?;
        super::alloc::cuda_allocate(nbytes)
    }
}

impl Drop for CudaContext {
    fn drop(&mut self) {
        if let Some(g) = self.curand.take() {
            // The generator's state lives on `gpu_id`: free it there, as it was created (the
            // context may be dropped on a thread with another device current, or none).
            let _guard = DeviceGuard::new(self.gpu_id).ok();
            // SAFETY: created by this context, destroyed once; errors ignored in teardown.
            let _ = unsafe { cudarc::curand::result::destroy_generator(g) };
        }
        // Dropping a context waits for its work (Caffe2's destructor synchronises).
        if let Ok(stream) = self.cuda_stream() {
            // SAFETY: a live stream of this thread; errors ignored in teardown.
            let _ = unsafe { sys::cuStreamSynchronize(stream) };
        }
    }
}
