//! cuDNN state: the availability and version check, a growing scratch workspace, and per
//! (gpu, index) states — own handle, own stream, own workspace — whose work is fenced to the
//! caller's stream with two events (Caffe2's `CuDNNState` / `CudnnWrapper::with_cudnn_state`).

use std::ffi::c_void;
use std::sync::OnceLock;

use cudarc::driver::sys;
use once_cell::sync::Lazy;
use parking_lot::Mutex;

use super::alloc::cuda_allocate;
use super::device::{DeviceGuard, ensure_init};
use super::error::{check, lib_error};
use super::probe::runtime;
use super::{MAX_CUDNN_STATES, MAX_GPUS};
use crate::context::cpu::Deleter;
use crate::error::{C2rsError, Result};

/// The cuDNN version the bindings were generated for (cudarc feature `cudnn-09021`).
const BINDINGS_VERSION: (usize, usize, usize) = (9, 2, 1);

/// Decodes `cudnnGetVersion()`: cuDNN ≥ 9 encodes major·10000 + minor·100 + patch, older
/// versions major·1000 + minor·100 + patch.
pub fn decode_version(v: usize) -> (usize, usize, usize) {
    if v >= 90000 {
        (v / 10000, (v % 10000) / 100, v % 100)
    } else {
        (v / 1000, (v % 1000) / 100, v % 100)
    }
}

/// Compatibility rule: same major, runtime minor ≥ bindings minor (Caffe2 wanted equality).
pub fn versions_compatible(
    bindings: (usize, usize, usize),
    runtime: (usize, usize, usize),
) -> bool {
    bindings.0 == runtime.0 && runtime.1 >= bindings.1
}

static CUDNN: OnceLock<std::result::Result<usize, C2rsError>> = OnceLock::new();

/// Checks once that libcudnn is present and compatible; returns its raw version.
pub fn ensure_cudnn() -> Result<usize> {
    runtime()?;
    CUDNN
        .get_or_init(|| {
            // SAFETY: only checks whether the library file exists.
            if !unsafe { cudarc::cudnn::sys::is_culib_present() } {
                return Err(C2rsError::unsupported("cuDNN (libcudnn) is not installed"));
            }
            let raw = cudarc::cudnn::result::get_version();
            let rt = decode_version(raw);
            if !versions_compatible(BINDINGS_VERSION, rt) {
                let b = BINDINGS_VERSION;
                return Err(C2rsError::enforce(format!(
                    "cuDNN compiled ({}.{}.{}) and runtime ({}.{}.{}) versions mismatch; the loaded libcudnn must have major {} and minor >= {}",
                    b.0, b.1, b.2, rt.0, rt.1, rt.2, b.0, b.1
                )));
            }
            Ok(raw)
        })
        .clone()
}

/// The runtime cuDNN version (raw `cudnnGetVersion()` value).
pub fn cudnn_version() -> Result<usize> {
    ensure_cudnn()
}

/// Caffe2's `CuDNNWorkspace`: grows to exactly the requested size, never shrinks.
#[derive(Default)]
pub struct CudnnWorkspace {
    block: Option<(*mut c_void, Deleter)>,
    size: usize,
}

impl CudnnWorkspace {
    /// At least `nbytes` of device scratch on the current device.
    pub fn get(&mut self, nbytes: usize) -> Result<*mut c_void> {
        if nbytes > self.size || self.block.is_none() {
            self.reset();
            let (p, d) = cuda_allocate(nbytes)?;
            self.block = Some((p, d));
            self.size = nbytes;
        }
        Ok(self.block.map_or(std::ptr::null_mut(), |b| b.0))
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Frees the scratch.
    pub fn reset(&mut self) {
        if let Some((p, d)) = self.block.take() {
            // SAFETY: allocated by `cuda_allocate`, freed once.
            unsafe { d(p) };
        }
        self.size = 0;
    }
}

impl Drop for CudnnWorkspace {
    fn drop(&mut self) {
        self.reset();
    }
}

/// What a `with_cudnn_state` callback may use: the state's handle (bound to its stream), the
/// stream, and its workspace.
pub struct CudnnScope<'a> {
    pub handle: cudarc::cudnn::sys::cudnnHandle_t,
    pub stream: sys::CUstream,
    workspace: &'a mut CudnnWorkspace,
}

impl CudnnScope<'_> {
    /// Scratch of at least `nbytes`, valid until the callback returns.
    pub fn workspace(&mut self, nbytes: usize) -> Result<*mut c_void> {
        self.workspace.get(nbytes)
    }
    pub fn workspace_size(&self) -> usize {
        self.workspace.size()
    }
}

/// Caffe2's `CuDNNState`.
struct CudnnState {
    handle: cudarc::cudnn::sys::cudnnHandle_t,
    stream: sys::CUstream,
    before: sys::CUevent,
    after: sys::CUevent,
    workspace: CudnnWorkspace,
}

// SAFETY: driver objects may be used from any thread; each state is used under its mutex.
unsafe impl Send for CudnnState {}

impl CudnnState {
    /// Creates the state on the current device.
    fn new() -> Result<Self> {
        let mut stream: sys::CUstream = std::ptr::null_mut();
        // SAFETY: valid out-pointer; the caller made the gpu current. A blocking stream (flag 0).
        check(
            unsafe { sys::cuStreamCreate(&mut stream, 0) },
            "cuStreamCreate",
        )?;
        let flags = sys::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32;
        let mut before: sys::CUevent = std::ptr::null_mut();
        let mut after: sys::CUevent = std::ptr::null_mut();
        // SAFETY: valid out-pointers. On failure the objects leak: the table is process-long.
        check(
            unsafe { sys::cuEventCreate(&mut before, flags) },
            "cuEventCreate",
        )?;
        // SAFETY: as above.
        check(
            unsafe { sys::cuEventCreate(&mut after, flags) },
            "cuEventCreate",
        )?;
        let handle =
            cudarc::cudnn::result::create_handle().map_err(|s| lib_error("cudnnCreate", s))?;
        // SAFETY: fresh handle and stream.
        unsafe {
            cudarc::cudnn::result::set_stream(handle, stream as cudarc::cudnn::sys::cudaStream_t)
        }
        .map_err(|s| lib_error("cudnnSetStream", s))?;
        Ok(Self {
            handle,
            stream,
            before,
            after,
            workspace: CudnnWorkspace::default(),
        })
    }

    /// Fences `f` between the caller's stream and the state's stream.
    fn execute<T>(
        &mut self,
        caller: sys::CUstream,
        f: impl FnOnce(&mut CudnnScope<'_>) -> Result<T>,
    ) -> Result<T> {
        // SAFETY: live events and streams; the state is exclusively ours (mutex).
        check(
            unsafe { sys::cuEventRecord(self.before, caller) },
            "cuEventRecord",
        )?;
        // SAFETY: as above.
        check(
            unsafe { sys::cuStreamWaitEvent(self.stream, self.before, 0) },
            "cuStreamWaitEvent",
        )?;
        let mut scope = CudnnScope {
            handle: self.handle,
            stream: self.stream,
            workspace: &mut self.workspace,
        };
        let out = f(&mut scope);
        // Fence even when `f` failed, so the caller never races work `f` queued.
        // SAFETY: as above.
        check(
            unsafe { sys::cuEventRecord(self.after, self.stream) },
            "cuEventRecord",
        )?;
        // SAFETY: as above.
        check(
            unsafe { sys::cuStreamWaitEvent(caller, self.after, 0) },
            "cuStreamWaitEvent",
        )?;
        out
    }
}

/// Per gpu, per state index: the lazily created state. Each mutex serialises its state's
/// users. Lives for the whole process (never destroyed: avoids racing driver shutdown).
static STATES: Lazy<Vec<Vec<Mutex<Option<CudnnState>>>>> = Lazy::new(|| {
    (0..MAX_GPUS)
        .map(|_| (0..MAX_CUDNN_STATES).map(|_| Mutex::new(None)).collect())
        .collect()
});

/// Caffe2's `CudnnWrapper::with_cudnn_state(idx, f)`: runs `f` with state `idx` of `gpu`,
/// ordered after the work already on `caller_stream` and before what is queued there next.
pub fn with_cudnn_state<T>(
    gpu: i32,
    idx: usize,
    caller_stream: sys::CUstream,
    f: impl FnOnce(&mut CudnnScope<'_>) -> Result<T>,
) -> Result<T> {
    ensure_init()?;
    ensure_cudnn()?;
    runtime()?.check_ordinal(gpu)?;
    if idx >= MAX_CUDNN_STATES {
        return Err(C2rsError::enforce(format!(
            "Invalid state_idx {idx}: must be below {MAX_CUDNN_STATES}"
        )));
    }
    let _guard = DeviceGuard::new(gpu)?;
    let mut slot = STATES[gpu as usize][idx].lock();
    if slot.is_none() {
        *slot = Some(CudnnState::new()?);
    }
    match slot.as_mut() {
        Some(state) => state.execute(caller_stream, f),
        None => Err(C2rsError::internal("cuDNN state vanished")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decode_with_the_major_aware_encoding() {
        assert_eq!(decode_version(90201), (9, 2, 1));
        assert_eq!(decode_version(8907), (8, 9, 7));
        assert_eq!(decode_version(7605), (7, 6, 5));
    }

    #[test]
    fn runtime_minor_may_be_newer_not_older_nor_another_major() {
        assert!(versions_compatible((9, 2, 1), (9, 2, 0)));
        assert!(versions_compatible((9, 2, 1), (9, 8, 0)));
        assert!(!versions_compatible((9, 2, 1), (9, 1, 0)));
        assert!(!versions_compatible((9, 2, 1), (8, 9, 7)));
    }
}
