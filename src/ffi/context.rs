//! Device contexts (`c2rs_context_*`) and the CUDA runtime (`c2rs_cuda_*`): allocation,
//! copies, random numbers, streams, library handles, memory pools and cuDNN state.
//!
//! Every `c2rs_cuda_*` function exists in every build. Without the `cuda` feature, a driver
//! or a device, those that touch the GPU return C2RS_UNSUPPORTED with the probe's reason;
//! the flag setters and queries (`c2rs_cuda_has_runtime`, `c2rs_cuda_device_count`,
//! `c2rs_cuda_probe_report`, `c2rs_cuda_set_memory_pool`, `c2rs_cuda_memory_pool_name`,
//! `c2rs_cuda_set_full_device_control`) always work.

#![allow(non_camel_case_types)]
// Without CUDA the handle types are already `*mut c_void`; with it they are cudarc types.
#![cfg_attr(not(feature = "cuda"), allow(clippy::unnecessary_cast))]

use std::ffi::{c_char, c_void};

use prost::Message;

use super::guard::{
    OutDefault, array_arg, byte_slice, device_type_arg, dtype_arg, ffi_fn, ffi_fn_or, name_arg,
    out_param,
};
use super::handle::{
    c2rs_buffer, c2rs_context, c2rs_cudnn_scope, c2rs_event, c2rs_tensor, free_handle, handle_mut,
    handle_ref, into_handle,
};
use crate::context::cuda::{self, CudnnScope, MemoryStats};
use crate::context::{Context, DeviceSpec, cpu};
use crate::error::{C2rsError, Result};
use crate::proto::DeviceOption;

/// Frees memory a caffe2rs allocator returned; takes only the pointer (as Caffe2's
/// `MemoryDeleter`). NULL is a no-op.
///
/// Thread safety: callable from any thread; each pointer is freed once.
/// Returns: nothing.
pub type c2rs_deleter = Option<unsafe extern "C" fn(ptr: *mut c_void)>;

/// Counters of one memory pool, in bytes (allocation counts for the last two).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct c2rs_memory_stats {
    /// Handed out and not yet freed.
    pub in_use: u64,
    /// Freed into the pool's cache, kept for reuse.
    pub cached: u64,
    /// Highest `in_use` seen.
    pub peak: u64,
    /// Allocations served from the cache.
    pub cache_hits: u64,
    /// Allocations that went to the driver.
    pub driver_allocs: u64,
}

impl OutDefault for c2rs_memory_stats {
    fn out_default() -> Self {
        Self::default()
    }
}

impl From<MemoryStats> for c2rs_memory_stats {
    fn from(s: MemoryStats) -> Self {
        Self {
            in_use: s.in_use,
            cached: s.cached,
            peak: s.peak,
            cache_hits: s.cache_hits,
            driver_allocs: s.driver_allocs,
        }
    }
}

/// Runs inside `c2rs_cuda_with_cudnn_state` with the state's cuDNN handle (a
/// `cudnnHandle_t`), its stream (a `CUstream` / `cudaStream_t`) and the scope for
/// `c2rs_cuda_cudnn_workspace`.
///
/// Thread safety: called on the thread that called `c2rs_cuda_with_cudnn_state`, with the
/// state's lock held.
/// Returns: 0 on success; anything else fails the call with C2RS_RUN_FAILED.
pub type c2rs_cudnn_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        cudnn_handle: *mut c_void,
        stream: *mut c_void,
        scope: *mut c2rs_cudnn_scope,
    ) -> i32,
>;

/// A serialized DeviceOption; no bytes means the default (CPU, no seed).
pub(crate) fn device_spec_arg(bytes: *const u8, len: usize, name: &str) -> Result<DeviceSpec> {
    let bytes = byte_slice(bytes, len, name)?;
    let option = DeviceOption::decode(bytes).map_err(|e| {
        C2rsError::parse(format!(
            "argument `{name}` is not a valid DeviceOption: {e}"
        ))
    })?;
    DeviceSpec::from_proto(&option)
        .map_err(|e| C2rsError::new(e.kind(), format!("argument `{name}`: {}", e.message())))
}

fn cuda_ctx<'a>(ctx: &'a Context, what: &str) -> Result<&'a cuda::CudaContext> {
    match ctx {
        Context::Cuda(c) => Ok(c),
        Context::Cpu(_) => Err(C2rsError::unsupported(format!(
            "{what} needs a CUDA context; `ctx` is a CPU context"
        ))),
    }
}

/// Creates a context from a serialized Caffe2 DeviceOption: device_type CPU (0) or MKLDNN (2)
/// → a CPU context, CUDA (1) → a CUDA context on `device_id` (unset or −1: the thread's
/// current device). `random_seed` seeds the context's generator; unset draws a fresh seed.
///
/// `len == 0` (NULL allowed) means a default CPU context.
/// Ownership: `device_option` is only read; the caller owns `*out` (`c2rs_context_free`).
/// Thread safety: safe from any thread; the context itself is for one thread at a time (a
/// CUDA context uses the stream of the thread that calls it).
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL or `device_option` is NULL with
/// `len > 0`; C2RS_PARSE_ERROR for bytes that are not a DeviceOption; C2RS_ENFORCE_NOT_MET for
/// an unregistered device type ("Device type <n> not registered."); C2RS_UNSUPPORTED for CUDA
/// without a usable GPU; C2RS_INVALID_ARGUMENT for a GPU id out of range.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_new(
    device_option: *const u8,
    len: usize,
    out: *mut *mut c2rs_context,
) -> i32 {
    ffi_fn!("c2rs_context_new", {
        let out = out_param(out, "out")?;
        let spec = device_spec_arg(device_option, len, "device_option")?;
        out.set(into_handle(Context::new(&spec)?));
        Ok(())
    })
}

/// Frees a context (a CUDA context first waits for its stream's work).
///
/// Ownership: consumes `ctx`; NULL is a no-op.
/// Thread safety: not concurrently with other calls on `ctx`.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_context_free(ctx: *mut c2rs_context) {
    ffi_fn_or!("c2rs_context_free", (), {
        free_handle(ctx);
        Ok(())
    })
}

/// The context's device type: 0 CPU, 1 CUDA.
///
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_device_type(ctx: *const c2rs_context, out: *mut i32) -> i32 {
    ffi_fn!("c2rs_context_device_type", {
        let out = out_param(out, "out")?;
        out.set(handle_ref(ctx, "ctx")?.device_type().as_i32());
        Ok(())
    })
}

/// The context's random seed (the DeviceOption's, or the one drawn at creation).
///
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_random_seed(ctx: *const c2rs_context, out: *mut u32) -> i32 {
    ffi_fn!("c2rs_context_random_seed", {
        let out = out_param(out, "out")?;
        out.set(handle_ref(ctx, "ctx")?.random_seed());
        Ok(())
    })
}

/// Draws `n` values from a CPU context's MT19937 generator (created on first use from the
/// seed): the same sequence as `std::mt19937(seed)`; later calls continue it.
///
/// Thread safety: not concurrently with other calls on `ctx`.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` is NULL or `out` is NULL with `n > 0`;
/// C2RS_UNSUPPORTED for a CUDA context (its generator is cuRAND's).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_rand_u32(ctx: *mut c2rs_context, out: *mut u32, n: usize) -> i32 {
    ffi_fn!("c2rs_context_rand_u32", {
        let ctx = handle_mut(ctx, "ctx")?;
        array_arg(out as *const u32, n, "out")?;
        let Context::Cpu(c) = ctx else {
            return Err(C2rsError::unsupported(
                "a CUDA context's generator is cuRAND; use c2rs_context_curand_generator",
            ));
        };
        if n > 0 {
            // SAFETY: non-NULL (checked above); the caller provides `n` writable values.
            let values = unsafe { std::slice::from_raw_parts_mut(out, n) };
            c.rand_generator().fill(values);
        }
        Ok(())
    })
}

/// Caffe2's `RandomNumberSeed()`: a fresh seed from a process counter, pid and clock;
/// consecutive calls differ.
///
/// Thread safety: safe from any thread.
/// Returns: the seed.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_context_random_number_seed() -> u32 {
    ffi_fn_or!("c2rs_context_random_number_seed", 0, {
        Ok(crate::context::random_number_seed())
    })
}

/// Caffe2's `SwitchToDevice(stream_id)`: no-op for CPU; for CUDA selects the stream id and
/// makes the context's GPU current on the calling thread.
///
/// Thread safety: not concurrently with other calls on `ctx`; changes the calling thread's
/// current device.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` is NULL or (CUDA) `stream_id` < 0;
/// C2RS_ENFORCE_NOT_MET when the driver refuses.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_switch_to_device(ctx: *mut c2rs_context, stream_id: i32) -> i32 {
    ffi_fn!("c2rs_context_switch_to_device", {
        handle_mut(ctx, "ctx")?.switch_to_device(stream_id)
    })
}

/// Caffe2's `FinishDeviceComputation()`: no-op for CPU; for CUDA waits for this thread's
/// stream of the context and reports any CUDA error, including sticky errors of earlier
/// kernels ("Encountered CUDA error: <NAME>: <text> (device d, stream s)").
///
/// Thread safety: not concurrently with other calls on `ctx`.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` is NULL; C2RS_ENFORCE_NOT_MET with the
/// CUDA error.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_finish_device_computation(ctx: *mut c2rs_context) -> i32 {
    ffi_fn!("c2rs_context_finish_device_computation", {
        handle_mut(ctx, "ctx")?.finish_device_computation()
    })
}

/// Caffe2's `Context::New(nbytes)`: CPU → the global CPU allocator (64-byte aligned,
/// zero-filled unless turned off, pinned once CUDA is initialised); CUDA → the device pool
/// on the context's GPU. `nbytes == 0` still gives a valid, freeable pointer.
///
/// Ownership: the caller owns `*out` and frees it with `(*deleter)(*out)`, from any thread.
/// Thread safety: safe from any thread for different contexts; allocation itself is
/// thread-safe.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx`, `out` or `deleter` is NULL;
/// C2RS_ENFORCE_NOT_MET when out of memory ("out of memory: requested <n> bytes ...").
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_alloc(
    ctx: *const c2rs_context,
    nbytes: usize,
    out: *mut *mut c_void,
    deleter: *mut c2rs_deleter,
) -> i32 {
    ffi_fn!("c2rs_context_alloc", {
        let out = out_param(out, "out")?;
        let deleter = out_param(deleter, "deleter")?;
        let (ptr, del) = match handle_ref(ctx, "ctx")? {
            Context::Cpu(_) => cpu::cpu_allocate(nbytes)?,
            Context::Cuda(c) => c.allocate(nbytes)?,
        };
        out.set(ptr);
        deleter.set(Some(del));
        Ok(())
    })
}

/// Caffe2's `CopyBytes`: CPU context → memcpy (host to host); CUDA context → asynchronous
/// copy on the context's stream, direction inferred from the pointers (host↔device,
/// device↔device); call `c2rs_context_finish_device_computation` before reading the result.
/// `n == 0` does nothing (NULL allowed).
///
/// Borrowed: both buffers must stay valid until the copy has run.
/// Thread safety: not concurrently with other calls on `ctx`; raw data pointers are not protected.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` is NULL; C2RS_ENFORCE_NOT_MET when `n > 0`
/// and `src` or `dst` is NULL, or the driver refuses the copy.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_copy_bytes(
    ctx: *const c2rs_context,
    n: usize,
    src: *const c_void,
    dst: *mut c_void,
) -> i32 {
    ffi_fn!("c2rs_context_copy_bytes", {
        match handle_ref(ctx, "ctx")? {
            // SAFETY: the C contract: `src`/`dst` valid for `n` bytes, not overlapping.
            Context::Cpu(_) => unsafe { cpu::copy_bytes(n, src, dst) },
            // SAFETY: as above, until the stream has run the copy.
            Context::Cuda(c) => unsafe { c.copy_bytes(n, src, dst) },
        }
    })
}

/// Caffe2's `CopyItems` for `n` items of a plain dtype (bytes = n · item size).
///
/// Borrowed: as `c2rs_context_copy_bytes`.
/// Thread safety: not concurrently with other calls on `ctx`; raw data pointers are not protected.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` is NULL or `dtype` is not a Caffe2
/// dtype; C2RS_ENFORCE_NOT_MET for NULL buffers with `n > 0` and, on a CUDA context, for STRING
/// ("CUDAContext requires fundamental types."); C2RS_UNSUPPORTED for STRING on a CPU context
/// (copy string tensors as tensors).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_copy_items(
    ctx: *const c2rs_context,
    dtype: i32,
    n: usize,
    src: *const c_void,
    dst: *mut c_void,
) -> i32 {
    ffi_fn!("c2rs_context_copy_items", {
        let ctx = handle_ref(ctx, "ctx")?;
        let dtype = dtype_arg(dtype, "dtype")?;
        match ctx {
            // SAFETY: the C contract: buffers valid for the items' bytes.
            Context::Cpu(c) => unsafe { c.copy_items(dtype, n, src, dst) },
            // SAFETY: as above.
            Context::Cuda(c) => unsafe { c.copy_items(dtype, n, src, dst) },
        }
    })
}

/// Caffe2's `Context::Record(event, err)`: records `event` for the work issued so far on the
/// context (CUDA: on its stream); with `err` (non-NULL) the event fails with that message.
///
/// Thread safety: record an event from one thread, at most once until reset; the context as
/// for other calls.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` or `event` is NULL; C2RS_ENFORCE_NOT_MET
/// for "You are trying to record with a wrong device type.", "Calling Record multiple
/// times" and (CUDA) a current device other than the event's.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_record_event(
    ctx: *const c2rs_context,
    event: *const c2rs_event,
    err: *const c_char,
) -> i32 {
    ffi_fn!("c2rs_context_record_event", {
        let ctx = handle_ref(ctx, "ctx")?;
        let event = handle_ref(event, "event")?;
        let err = super::guard::opt_name_arg(err, "err")?;
        ctx.record(event, err)
    })
}

/// Caffe2's `Context::WaitEvent(event)`: a CPU context blocks until the event finishes; a
/// CUDA context makes its stream wait for a CUDA event (the host does not block) and blocks
/// the host for a CPU event.
///
/// Thread safety: safe concurrently with other waits, finishes and queries of `event`.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` or `event` is NULL; C2RS_ENFORCE_NOT_MET
/// when the driver refuses the wait.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_wait_event(
    ctx: *const c2rs_context,
    event: *const c2rs_event,
) -> i32 {
    ffi_fn!("c2rs_context_wait_event", {
        let ctx = handle_ref(ctx, "ctx")?;
        ctx.wait_event(handle_ref(event, "event")?)
    })
}

/// Caffe2's `HasAsyncPartDefault()` for a device type: false for CPU, true for CUDA.
///
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL; C2RS_ENFORCE_NOT_MET for an
/// unregistered device type.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_has_async_part(device_type: i32, out: *mut bool) -> i32 {
    ffi_fn!("c2rs_context_has_async_part", {
        let out = out_param(out, "out")?;
        let t = device_type_arg(device_type, "device_type")?;
        out.set(Context::has_async_part_default(t));
        Ok(())
    })
}

/// Caffe2's `SupportsAsyncScheduling()` for a device type: false for CPU, true for CUDA.
///
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL; C2RS_ENFORCE_NOT_MET for an
/// unregistered device type.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_supports_async_scheduling(device_type: i32, out: *mut bool) -> i32 {
    ffi_fn!("c2rs_context_supports_async_scheduling", {
        let out = out_param(out, "out")?;
        let t = device_type_arg(device_type, "device_type")?;
        out.set(Context::supports_async_scheduling(t));
        Ok(())
    })
}

/// Caffe2's `IsStreamFree(option, stream_id)`: always true for CPU; for CUDA whether the
/// calling thread's stream has no pending work (the stream is created if missing). Takes no
/// global lock; never call it from teardown code.
///
/// Thread safety: safe from any thread (per-thread streams).
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL or `device_option` is NULL with
/// `len > 0`; C2RS_PARSE_ERROR for bad bytes; C2RS_UNSUPPORTED for CUDA without a GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_is_stream_free(
    device_option: *const u8,
    len: usize,
    stream_id: i32,
    out: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_context_is_stream_free", {
        let out = out_param(out, "out")?;
        let spec = device_spec_arg(device_option, len, "device_option")?;
        out.set(Context::is_stream_free(&spec, stream_id)?);
        Ok(())
    })
}

/// Caffe2's `IsSameDevice(a, b)`: same device type, GPU id, node name and NUMA node (the seed
/// is ignored). Both are serialized DeviceOptions.
///
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL or a buffer is NULL with a
/// length; C2RS_PARSE_ERROR for bad bytes; C2RS_ENFORCE_NOT_MET for an unregistered type.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_is_same_device(
    a: *const u8,
    a_len: usize,
    b: *const u8,
    b_len: usize,
    out: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_context_is_same_device", {
        let out = out_param(out, "out")?;
        let a = device_spec_arg(a, a_len, "a")?;
        let b = device_spec_arg(b, b_len, "b")?;
        out.set(a.is_same_device(&b));
        Ok(())
    })
}

/// Sets `caffe2_cpu_allocator_do_zero_fill` (default true): whether CPU allocations are
/// zero-filled.
///
/// Thread safety: safe from any thread; affects later allocations.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_context_cpu_set_zero_fill(on: bool) {
    ffi_fn_or!("c2rs_context_cpu_set_zero_fill", (), {
        cpu::set_zero_fill(on);
        Ok(())
    })
}

/// Sets `caffe2_report_cpu_memory_usage` (default false): CPU allocations made while it is on
/// are counted (and logged to stderr) until freed.
///
/// Thread safety: safe from any thread; affects later allocations.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_context_cpu_set_report_usage(on: bool) {
    ffi_fn_or!("c2rs_context_cpu_set_report_usage", (), {
        cpu::set_report_usage(on);
        Ok(())
    })
}

/// Bytes the CPU memory reporter counts as allocated and not yet freed.
///
/// Thread safety: safe from any thread.
/// Returns: the byte count (0 when reporting was never on).
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_context_cpu_reported_bytes() -> u64 {
    ffi_fn_or!("c2rs_context_cpu_reported_bytes", 0, {
        Ok(cpu::reported_bytes() as u64)
    })
}

/// Name of the current global CPU allocator: "default" or "pinned" (after CUDA init).
///
/// Borrowed: static; never freed.
/// Thread safety: safe from any thread.
/// Returns: the name, never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_context_cpu_allocator_name() -> *const c_char {
    ffi_fn_or!("c2rs_context_cpu_allocator_name", c"default".as_ptr(), {
        Ok(match cpu::cpu_allocator().name() {
            "pinned" => c"pinned".as_ptr(),
            _ => c"default".as_ptr(),
        })
    })
}

/// A CUDA context's GPU ordinal.
///
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` or `out` is NULL; C2RS_UNSUPPORTED for a
/// CPU context.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_gpu_id(ctx: *const c2rs_context, out: *mut i32) -> i32 {
    ffi_fn!("c2rs_context_gpu_id", {
        let out = out_param(out, "out")?;
        out.set(cuda_ctx(handle_ref(ctx, "ctx")?, "c2rs_context_gpu_id")?.gpu_id());
        Ok(())
    })
}

/// The calling thread's stream (a `CUstream`, usable as `cudaStream_t`) for the CUDA
/// context's GPU and current stream id; created on first use, non-blocking.
///
/// Borrowed: owned by the calling thread's stream table; valid until that thread exits.
/// Thread safety: per thread: another thread gets another stream for the same context.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` or `out` is NULL; C2RS_UNSUPPORTED for a
/// CPU context; C2RS_ENFORCE_NOT_MET when the driver refuses.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_cuda_stream(ctx: *const c2rs_context, out: *mut *mut c_void) -> i32 {
    ffi_fn!("c2rs_context_cuda_stream", {
        let out = out_param(out, "out")?;
        let c = cuda_ctx(handle_ref(ctx, "ctx")?, "c2rs_context_cuda_stream")?;
        out.set(c.cuda_stream()? as *mut c_void);
        Ok(())
    })
}

/// The calling thread's cuBLAS handle (`cublasHandle_t`) for the context's GPU and stream id:
/// pointer mode HOST, bound to `c2rs_context_cuda_stream`.
///
/// Borrowed: as `c2rs_context_cuda_stream`; do not destroy it.
/// Thread safety: per thread, as the stream.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` or `out` is NULL; C2RS_UNSUPPORTED for a
/// CPU context or without libcublas; C2RS_ENFORCE_NOT_MET when cuBLAS refuses.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_cublas_handle(
    ctx: *const c2rs_context,
    out: *mut *mut c_void,
) -> i32 {
    ffi_fn!("c2rs_context_cublas_handle", {
        let out = out_param(out, "out")?;
        let c = cuda_ctx(handle_ref(ctx, "ctx")?, "c2rs_context_cublas_handle")?;
        out.set(c.cublas_handle()? as *mut c_void);
        Ok(())
    })
}

/// The calling thread's cuDNN handle (`cudnnHandle_t`) for the context's GPU and stream id,
/// bound to `c2rs_context_cuda_stream`.
///
/// Borrowed: as `c2rs_context_cuda_stream`; do not destroy it.
/// Thread safety: per thread, as the stream.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` or `out` is NULL; C2RS_UNSUPPORTED for a
/// CPU context or without libcudnn; C2RS_ENFORCE_NOT_MET for an incompatible cuDNN version.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_cudnn_handle(
    ctx: *const c2rs_context,
    out: *mut *mut c_void,
) -> i32 {
    ffi_fn!("c2rs_context_cudnn_handle", {
        let out = out_param(out, "out")?;
        let c = cuda_ctx(handle_ref(ctx, "ctx")?, "c2rs_context_cudnn_handle")?;
        out.set(c.cudnn_handle()? as *mut c_void);
        Ok(())
    })
}

/// The CUDA context's own cuRAND generator (`curandGenerator_t`, PSEUDO_DEFAULT, seeded with
/// the context's seed), re-bound to the current stream on every call.
///
/// Borrowed: owned by `ctx`; valid until `ctx` is freed; do not destroy it.
/// Thread safety: not concurrently with other calls on `ctx`.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ctx` or `out` is NULL; C2RS_UNSUPPORTED for a
/// CPU context or without libcurand; C2RS_ENFORCE_NOT_MET when cuRAND refuses.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_context_curand_generator(
    ctx: *mut c2rs_context,
    out: *mut *mut c_void,
) -> i32 {
    ffi_fn!("c2rs_context_curand_generator", {
        let out = out_param(out, "out")?;
        match handle_mut(ctx, "ctx")? {
            Context::Cuda(c) => out.set(c.curand_generator()? as *mut c_void),
            Context::Cpu(_) => {
                return Err(C2rsError::unsupported(
                    "c2rs_context_curand_generator needs a CUDA context; `ctx` is a CPU context",
                ));
            }
        }
        Ok(())
    })
}

/// Caffe2's `HasCudaRuntime()`: whether this build has the CUDA path (feature `cuda`),
/// whether or not a driver or GPU exists.
///
/// Thread safety: safe from any thread.
/// Returns: true when built with CUDA support.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_cuda_has_runtime() -> bool {
    ffi_fn_or!("c2rs_cuda_has_runtime", false, {
        Ok(cuda::has_cuda_runtime())
    })
}

/// Caffe2's `NumCudaDevices()`: probes once (libcuda present, `cuInit`, device count); 0
/// without a driver or device, or with `C2RS_DISABLE_CUDA=1` in the environment. Never aborts.
///
/// Thread safety: safe from any thread.
/// Returns: the number of visible CUDA devices.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_cuda_device_count() -> i32 {
    ffi_fn_or!("c2rs_cuda_device_count", 0, { Ok(cuda::device_count()) })
}

/// One line describing the probe: driver version and device count, or why there is no GPU
/// (no libcuda, the `cuInit` error, `CUDA_VISIBLE_DEVICES`, disabled by environment).
///
/// Ownership: the caller owns `*out` (`c2rs_buffer_free`); UTF-8 text without a NUL.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_probe_report(out: *mut *mut c2rs_buffer) -> i32 {
    ffi_fn!("c2rs_cuda_probe_report", {
        let out = out_param(out, "out")?;
        out.set(into_handle(cuda::probe_report().into_bytes()));
        Ok(())
    })
}

/// Caffe2's `CaffeCudaGetDevice()`: the calling thread's current device (0 when the thread
/// never chose one).
///
/// Thread safety: per thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL; C2RS_UNSUPPORTED without a GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_get_device(out: *mut i32) -> i32 {
    ffi_fn!("c2rs_cuda_get_device", {
        let out = out_param(out, "out")?;
        out.set(cuda::get_device()?);
        Ok(())
    })
}

/// Caffe2's `CaffeCudaSetDevice(id)`: makes `id`'s primary context current on the calling
/// thread (interoperates with the CUDA runtime API's `cudaSetDevice`).
///
/// Thread safety: per thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT for an id out of range; C2RS_UNSUPPORTED without a
/// GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_set_device(id: i32) -> i32 {
    ffi_fn!("c2rs_cuda_set_device", { cuda::set_device(id) })
}

/// Sets `caffe2_cuda_full_device_control`: the library caches each thread's current device
/// and skips unchanged sets (only when nothing else changes the device behind its back).
///
/// Thread safety: safe from any thread.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_cuda_set_full_device_control(on: bool) {
    ffi_fn_or!("c2rs_cuda_set_full_device_control", (), {
        cuda::set_full_device_control(on);
        Ok(())
    })
}

/// Sets `caffe2_cuda_memory_pool`: "cub" (default: size-class caching pool) or "none"/""
/// (straight to the driver). Blocks remember their pool, so switching mid-run is safe.
///
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `name` is NULL or not UTF-8;
/// C2RS_ENFORCE_NOT_MET for "cnmem" ("CNMEM is no longer used by Caffe2. Use cub instead.")
/// and unknown names ("Unrecognized cuda memory pool type").
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_set_memory_pool(name: *const c_char) -> i32 {
    ffi_fn!("c2rs_cuda_set_memory_pool", {
        cuda::set_memory_pool(name_arg(name, "name")?)
    })
}

/// Caffe2's `GetCudaMemoryPoolType()`: "cub" or "none".
///
/// Borrowed: static; never freed.
/// Thread safety: safe from any thread.
/// Returns: the pool name, never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_cuda_memory_pool_name() -> *const c_char {
    ffi_fn_or!("c2rs_cuda_memory_pool_name", c"cub".as_ptr(), {
        Ok(match cuda::memory_pool() {
            cuda::PoolType::Cub => c"cub".as_ptr(),
            cuda::PoolType::None => c"none".as_ptr(),
        })
    })
}

/// Caffe2's `CUDAContext::New(nbytes)`: device memory on the calling thread's current device
/// from the pool. Freed memory returns to the pool; with "cub", freeing then allocating the
/// same size on that device returns the same address.
///
/// Ownership: the caller owns `*out` and frees it with `(*deleter)(*out)` from any thread.
/// Thread safety: safe from any thread (one process-wide allocation lock).
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` or `deleter` is NULL; C2RS_UNSUPPORTED
/// without a GPU; C2RS_ENFORCE_NOT_MET when out of memory ("out of memory: requested <n> bytes
/// on GPU <g> (cached <c>, in use <u>)").
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_alloc(
    nbytes: usize,
    out: *mut *mut c_void,
    deleter: *mut c2rs_deleter,
) -> i32 {
    ffi_fn!("c2rs_cuda_alloc", {
        let out = out_param(out, "out")?;
        let deleter = out_param(deleter, "deleter")?;
        let (p, d) = cuda::cuda_allocate(nbytes)?;
        out.set(p);
        deleter.set(Some(d));
        Ok(())
    })
}

/// Counters of `gpu`'s device pool.
///
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL or `gpu` is out of range;
/// C2RS_UNSUPPORTED without a GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_memory_stats(gpu: i32, out: *mut c2rs_memory_stats) -> i32 {
    ffi_fn!("c2rs_cuda_memory_stats", {
        let out = out_param(out, "out")?;
        out.set(cuda::memory_stats(gpu)?.into());
        Ok(())
    })
}

/// Returns every cached block of `gpu`'s pool to the driver.
///
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `gpu` is out of range; C2RS_UNSUPPORTED
/// without a GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_release_cached(gpu: i32) -> i32 {
    ffi_fn!("c2rs_cuda_release_cached", { cuda::release_cached(gpu) })
}

/// Pinned (page-locked, portable) host memory from the pinned pool, zero-filled unless CPU
/// zero-fill is off: fast, truly asynchronous host↔device copies.
///
/// Ownership: the caller owns `*out` and frees it with `(*deleter)(*out)` from any thread.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` or `deleter` is NULL; C2RS_UNSUPPORTED
/// without a GPU; C2RS_ENFORCE_NOT_MET when out of pinned memory.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_pinned_alloc(
    nbytes: usize,
    out: *mut *mut c_void,
    deleter: *mut c2rs_deleter,
) -> i32 {
    ffi_fn!("c2rs_cuda_pinned_alloc", {
        let out = out_param(out, "out")?;
        let deleter = out_param(deleter, "deleter")?;
        let (p, d) = cuda::pinned_allocate(nbytes)?;
        out.set(p);
        deleter.set(Some(d));
        Ok(())
    })
}

/// Counters of the pinned host pool.
///
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL; C2RS_UNSUPPORTED without a GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_pinned_stats(out: *mut c2rs_memory_stats) -> i32 {
    ffi_fn!("c2rs_cuda_pinned_stats", {
        let out = out_param(out, "out")?;
        out.set(cuda::pinned_stats()?.into());
        Ok(())
    })
}

/// Creates a zero-filled CPU tensor whose elements live in pinned host memory (as
/// `c2rs_tensor_new` otherwise); its data pointer is a fast copy source or target.
///
/// Ownership: the caller owns `*out` (`c2rs_tensor_free`, which returns the memory to the pool).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT as `c2rs_tensor_new`; C2RS_TYPE_MISMATCH for STRING;
/// C2RS_UNSUPPORTED without a GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_tensor_new_pinned(
    dtype: i32,
    dims: *const i64,
    ndim: usize,
    out: *mut *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_cuda_tensor_new_pinned", {
        let out = out_param(out, "out")?;
        let dtype = dtype_arg(dtype, "dtype")?;
        let dims = array_arg(dims, ndim, "dims")?;
        out.set(into_handle(cuda::pinned_tensor(dtype, dims)?));
        Ok(())
    })
}

/// Caffe2's `CopyBytes<CUDA, CPU>` / `<CPU, CUDA>` from host code: copies `n` bytes between
/// any host and device pointers on stream 0 of the GPU owning the device side (calling
/// thread) and waits for it. `n == 0` does nothing.
///
/// Borrowed: both buffers only during the call.
/// Thread safety: safe from any thread; raw data pointers are not protected.
/// Returns: C2RS_OK; C2RS_UNSUPPORTED without a GPU; C2RS_ENFORCE_NOT_MET for NULL buffers
/// with `n > 0` or a driver error (named).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_copy_bytes_sync(n: usize, src: *const c_void, dst: *mut c_void) -> i32 {
    ffi_fn!("c2rs_cuda_copy_bytes_sync", {
        // SAFETY: the C contract: `src`/`dst` valid for `n` bytes.
        unsafe { cuda::copy_bytes_sync(n, src, dst) }
    })
}

/// Caffe2's `GetGPUIDForPointer(ptr)`: the device owning `ptr`; −1 for host memory (pinned or
/// pageable).
///
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL; C2RS_UNSUPPORTED without a GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_pointer_device(ptr: *const c_void, out: *mut i32) -> i32 {
    ffi_fn!("c2rs_cuda_pointer_device", {
        let out = out_param(out, "out")?;
        out.set(cuda::pointer_device(ptr)?);
        Ok(())
    })
}

/// Caffe2's static `CUDAContext::cuda_stream(gpu, stream_id)`: the calling thread's stream.
///
/// Borrowed: valid until the calling thread exits.
/// Thread safety: per thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL, `gpu` is out of range or
/// `stream_id` < 0; C2RS_UNSUPPORTED without a GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_stream(gpu: i32, stream_id: i32, out: *mut *mut c_void) -> i32 {
    ffi_fn!("c2rs_cuda_stream", {
        let out = out_param(out, "out")?;
        out.set(cuda::stream_handle(gpu, stream_id)? as *mut c_void);
        Ok(())
    })
}

/// Caffe2's `GetCudaPeerAccessPattern()[a][b]`: whether device `a` can access device `b`
/// (true on the diagonal, false when the query fails). Peer access within groups of 8 is
/// enabled at CUDA init.
///
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL or an id is out of range;
/// C2RS_UNSUPPORTED without a GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_peer_access(a: i32, b: i32, out: *mut bool) -> i32 {
    ffi_fn!("c2rs_cuda_peer_access", {
        let out = out_param(out, "out")?;
        let pattern = cuda::peer_access_pattern()?;
        let row = usize::try_from(a).ok().and_then(|a| pattern.get(a));
        let cell = row.and_then(|r| usize::try_from(b).ok().and_then(|b| r.get(b)));
        let v = cell.ok_or_else(|| {
            C2rsError::invalid_argument(format!(
                "device ids ({a}, {b}) out of range: {} device(s)",
                pattern.len()
            ))
        })?;
        out.set(*v);
        Ok(())
    })
}

/// Caffe2's `TensorCoreAvailable()`: the current device has compute capability ≥ 7.
///
/// Thread safety: per thread (current device).
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL; C2RS_UNSUPPORTED without a GPU.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_tensor_core_available(out: *mut bool) -> i32 {
    ffi_fn!("c2rs_cuda_tensor_core_available", {
        let out = out_param(out, "out")?;
        out.set(cuda::tensor_core_available()?);
        Ok(())
    })
}

/// The loaded cuDNN's version (`cudnnGetVersion()`), after checking it against the bindings:
/// same major, runtime minor ≥ bindings minor.
///
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL; C2RS_UNSUPPORTED without a GPU
/// or libcudnn; C2RS_ENFORCE_NOT_MET for "cuDNN compiled (x) and runtime (y) versions mismatch".
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_cudnn_version(out: *mut usize) -> i32 {
    ffi_fn!("c2rs_cuda_cudnn_version", {
        let out = out_param(out, "out")?;
        out.set(cuda::cudnn_version()?);
        Ok(())
    })
}

/// Caffe2's `CudnnWrapper::with_cudnn_state(idx, f)`: runs `f` with cuDNN state `idx` (< 4)
/// of `gpu` — its own handle, stream and growing workspace — ordered after the work already
/// on `caller_stream` and before what the caller queues there next. Calls on one (gpu, idx)
/// are serialised; `gpu` is current during `f`.
///
/// Borrowed: the handle, stream and scope passed to `f` are valid only during `f`.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `f` is NULL or `gpu` is out of range;
/// C2RS_ENFORCE_NOT_MET for `idx` ≥ 4 or a driver error; C2RS_RUN_FAILED when `f` returns
/// nonzero; C2RS_UNSUPPORTED without a GPU or libcudnn.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_with_cudnn_state(
    gpu: i32,
    idx: usize,
    caller_stream: *mut c_void,
    f: c2rs_cudnn_fn,
    user: *mut c_void,
) -> i32 {
    ffi_fn!("c2rs_cuda_with_cudnn_state", {
        let f = f.ok_or_else(|| super::guard::null_arg("f"))?;
        cuda::with_cudnn_state(
            gpu,
            idx,
            caller_stream as _,
            |scope: &mut CudnnScope<'_>| {
                let handle = scope.handle as *mut c_void;
                let stream = scope.stream as *mut c_void;
                let scope_ptr = scope as *mut CudnnScope<'_> as *mut c2rs_cudnn_scope;
                // SAFETY: a C callback with the documented arguments; `scope_ptr` is valid for
                // the duration of the call.
                let rc = unsafe { f(user, handle, stream, scope_ptr) };
                if rc != 0 {
                    return Err(C2rsError::run_failed(format!(
                        "the cuDNN callback returned {rc}"
                    )));
                }
                Ok(())
            },
        )
    })
}

/// Inside a `c2rs_cuda_with_cudnn_state` callback: device scratch of at least `nbytes` from
/// the state's workspace, which grows to exactly the largest request and never shrinks.
///
/// Borrowed: valid until the callback returns (a later request may replace it).
/// Thread safety: only from the callback that received `scope`.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `scope` or `out` is NULL; C2RS_ENFORCE_NOT_MET
/// when out of device memory.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_cuda_cudnn_workspace(
    scope: *mut c2rs_cudnn_scope,
    nbytes: usize,
    out: *mut *mut c_void,
) -> i32 {
    ffi_fn!("c2rs_cuda_cudnn_workspace", {
        let out = out_param(out, "out")?;
        if scope.is_null() {
            return Err(super::guard::null_arg("scope"));
        }
        // SAFETY: non-NULL scopes are only handed to callbacks by `c2rs_cuda_with_cudnn_state`,
        // which keeps the `CudnnScope` alive and exclusively lent during the callback.
        let scope = unsafe { &mut *(scope as *mut CudnnScope<'_>) };
        out.set(scope.workspace(nbytes)?);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::status::*;
    use super::*;

    #[test]
    fn null_arguments_are_named() {
        assert_eq!(
            c2rs_context_new(std::ptr::null(), 0, std::ptr::null_mut()),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_context_device_type(std::ptr::null(), std::ptr::null_mut()),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_context_record_event(std::ptr::null(), std::ptr::null(), std::ptr::null()),
            C2RS_INVALID_ARGUMENT
        );
        c2rs_context_free(std::ptr::null_mut());
    }

    #[test]
    fn bad_device_option_bytes_are_a_parse_error() {
        let junk = [0xffu8, 0xff, 0xff];
        let mut ctx = std::ptr::null_mut();
        assert_eq!(
            c2rs_context_new(junk.as_ptr(), junk.len(), &mut ctx),
            C2RS_PARSE_ERROR
        );
        assert!(ctx.is_null());
    }

    #[test]
    fn unknown_device_type_is_an_enforce() {
        let opt = DeviceOption {
            device_type: Some(3),
            ..Default::default()
        }
        .encode_to_vec();
        let mut ctx = std::ptr::null_mut();
        assert_eq!(
            c2rs_context_new(opt.as_ptr(), opt.len(), &mut ctx),
            C2RS_ENFORCE_NOT_MET
        );
        let mut b = false;
        assert_eq!(c2rs_context_has_async_part(4, &mut b), C2RS_ENFORCE_NOT_MET);
    }
}
