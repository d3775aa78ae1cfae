//! Per-thread CUDA streams and the cuBLAS/cuDNN handles bound to them.
//!
//! Identity (Caffe2's contract): same thread + gpu + stream id → same stream and handles;
//! another thread or gpu → others. Streams are non-blocking (never the legacy default
//! stream) and created lazily on their gpu. At thread exit handles are destroyed first, then
//! streams, ignoring every error (the driver may already be shutting down at process exit).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;

use cudarc::driver::sys;

use super::device::{DeviceGuard, pointer_device, resolve_gpu};
use super::error::{check, lib_error};
use super::probe::runtime;
use crate::error::{C2rsError, Result};

/// One (gpu, stream id) slot of a thread. Handles are raw addresses owned by this entry.
struct StreamEntry {
    stream: sys::CUstream,
    cublas: Option<cudarc::cublas::sys::cublasHandle_t>,
    cudnn: Option<cudarc::cudnn::sys::cudnnHandle_t>,
}

/// The calling thread's streams. Only this thread touches it (thread-local, no lock).
#[derive(Default)]
struct ThreadStreams {
    entries: HashMap<(i32, i32), StreamEntry>,
}

impl Drop for ThreadStreams {
    fn drop(&mut self) {
        for ((gpu, _), entry) in self.entries.drain() {
            let _guard = DeviceGuard::new(gpu).ok();
            if let Some(h) = entry.cublas {
                // SAFETY: created by this entry, destroyed once; errors ignored in teardown.
                let _ = unsafe { cudarc::cublas::result::destroy_handle(h) };
            }
            if let Some(h) = entry.cudnn {
                // SAFETY: as above.
                let _ = unsafe { cudarc::cudnn::result::destroy_handle(h) };
            }
            // SAFETY: created by this entry; no handle refers to it any more.
            let _ = unsafe { sys::cuStreamDestroy_v2(entry.stream) };
        }
    }
}

thread_local! {
    static STREAMS: RefCell<ThreadStreams> = RefCell::new(ThreadStreams::default());
}

fn with_entry<T>(
    gpu: i32,
    stream_id: i32,
    f: impl FnOnce(&mut StreamEntry) -> Result<T>,
) -> Result<T> {
    let rt = runtime()?;
    rt.check_ordinal(gpu)?;
    if stream_id < 0 {
        return Err(C2rsError::invalid_argument(format!(
            "stream id {stream_id} is negative"
        )));
    }
    STREAMS
        .try_with(|cell| {
            let mut table = cell
                .try_borrow_mut()
                .map_err(|_| C2rsError::internal("re-entrant use of the thread's stream table"))?;
            let entry = match table.entries.entry((gpu, stream_id)) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let _guard = DeviceGuard::new(gpu)?;
                    let mut stream: sys::CUstream = std::ptr::null_mut();
                    // SAFETY: valid out-pointer; the gpu's primary context is current.
                    check(
                        unsafe {
                            sys::cuStreamCreate(
                                &mut stream,
                                sys::CUstream_flags::CU_STREAM_NON_BLOCKING as u32,
                            )
                        },
                        "cuStreamCreate",
                    )?;
                    v.insert(StreamEntry {
                        stream,
                        cublas: None,
                        cudnn: None,
                    })
                }
            };
            f(entry)
        })
        .map_err(|_| C2rsError::closed("the thread is exiting; its CUDA streams are gone"))?
}

/// Caffe2's static `CUDAContext::cuda_stream(gpu, stream_id)` for the calling thread.
pub fn stream_handle(gpu: i32, stream_id: i32) -> Result<sys::CUstream> {
    with_entry(gpu, stream_id, |e| Ok(e.stream))
}

/// The thread's cuBLAS handle for (gpu, stream id): pointer mode HOST, bound to that stream.
pub fn cublas_handle(gpu: i32, stream_id: i32) -> Result<cudarc::cublas::sys::cublasHandle_t> {
    // SAFETY: only checks whether the library file exists.
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        return Err(C2rsError::unsupported(
            "cuBLAS (libcublas) is not installed",
        ));
    }
    with_entry(gpu, stream_id, |e| {
        if let Some(h) = e.cublas {
            return Ok(h);
        }
        let _guard = DeviceGuard::new(gpu)?;
        let h =
            cudarc::cublas::result::create_handle().map_err(|s| lib_error("cublasCreate", s))?;
        // SAFETY: `h` was just created; the stream belongs to this thread and gpu.
        let bound = unsafe {
            cudarc::cublas::sys::cublasSetPointerMode_v2(
                h,
                cudarc::cublas::sys::cublasPointerMode_t::CUBLAS_POINTER_MODE_HOST,
            )
            .result()
            .and_then(|_| {
                cudarc::cublas::result::set_stream(h, e.stream as cudarc::cublas::sys::cudaStream_t)
            })
        };
        if let Err(s) = bound {
            // SAFETY: created above, not stored.
            let _ = unsafe { cudarc::cublas::result::destroy_handle(h) };
            return Err(lib_error("cublasSetStream", s));
        }
        e.cublas = Some(h);
        Ok(h)
    })
}

/// The thread's cuDNN handle for (gpu, stream id), bound to that stream.
pub fn cudnn_handle(gpu: i32, stream_id: i32) -> Result<cudarc::cudnn::sys::cudnnHandle_t> {
    super::cudnn::ensure_cudnn()?;
    with_entry(gpu, stream_id, |e| {
        if let Some(h) = e.cudnn {
            return Ok(h);
        }
        let _guard = DeviceGuard::new(gpu)?;
        let h = cudarc::cudnn::result::create_handle().map_err(|s| lib_error("cudnnCreate", s))?;
        // SAFETY: `h` was just created; the stream belongs to this thread and gpu.
        if let Err(s) = unsafe {
            cudarc::cudnn::result::set_stream(h, e.stream as cudarc::cudnn::sys::cudaStream_t)
        } {
            // SAFETY: created above, not stored.
            let _ = unsafe { cudarc::cudnn::result::destroy_handle(h) };
            return Err(lib_error("cudnnSetStream", s));
        }
        e.cudnn = Some(h);
        Ok(h)
    })
}

/// Caffe2's `CUDAContext::IsStreamFree(option, stream_id)`: whether the calling thread's
/// stream has no pending work (creates the stream if missing; takes no global lock).
pub fn is_stream_free(gpu: Option<i32>, stream_id: i32) -> Result<bool> {
    let gpu = resolve_gpu(gpu)?;
    let stream = stream_handle(gpu, stream_id)?;
    // SAFETY: a live stream of this thread.
    let rc = unsafe { sys::cuStreamQuery(stream) };
    if rc == sys::CUresult::CUDA_ERROR_NOT_READY {
        return Ok(false);
    }
    check(rc, "cuStreamQuery")?;
    Ok(true)
}

/// Caffe2's `CopyBytes<CUDA, CPU>` / `<CPU, CUDA>` called from CPU code: runs on stream 0 of
/// the GPU owning the device pointer (this thread) and synchronises before returning.
/// Host-to-host degenerates to memcpy; device-to-device works across devices (UVA).
///
/// # Safety
/// For `n > 0`: `src` readable and `dst` writable for `n` bytes (host or device memory).
pub unsafe fn copy_bytes_sync(n: usize, src: *const c_void, dst: *mut c_void) -> Result<()> {
    runtime()?;
    if n == 0 {
        return Ok(());
    }
    if src.is_null() || dst.is_null() {
        return Err(C2rsError::enforce(format!(
            "CopyBytes of {n} bytes with a NULL pointer"
        )));
    }
    let src_gpu = pointer_device(src)?;
    let dst_gpu = pointer_device(dst)?;
    let gpu = if src_gpu >= 0 { src_gpu } else { dst_gpu };
    if gpu < 0 {
        // SAFETY: forwarded caller contract (two host buffers).
        return unsafe { crate::context::cpu::copy_bytes(n, src, dst) };
    }
    let stream = stream_handle(gpu, 0)?;
    let _guard = DeviceGuard::new(gpu)?;
    // SAFETY: caller contract; unified addressing infers the direction.
    check(
        unsafe { sys::cuMemcpyAsync(dst as sys::CUdeviceptr, src as sys::CUdeviceptr, n, stream) },
        "cuMemcpyAsync",
    )?;
    // SAFETY: a live stream of this thread.
    check(
        unsafe { sys::cuStreamSynchronize(stream) },
        "cuStreamSynchronize",
    )
}
