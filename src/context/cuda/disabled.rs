//! The CUDA API of a build without the `cuda` feature: the same names and signatures, every
//! entry point answering `Unsupported` (device count 0). The context and event types cannot
//! be constructed.

use std::convert::Infallible;
use std::ffi::c_void;

use super::{MemoryStats, unavailable};
use crate::context::DeviceSpec;
use crate::context::cpu::Deleter;
use crate::error::Result;
use crate::tensor::{DataType, Tensor};

const REASON: &str = "caffe2rs was built without the `cuda` feature";

fn off<T>() -> Result<T> {
    Err(unavailable(REASON))
}

pub fn device_count() -> i32 {
    0
}
pub fn probe_report() -> String {
    format!("no CUDA GPU: {REASON}")
}
pub fn get_device() -> Result<i32> {
    off()
}
pub fn set_device(_id: i32) -> Result<()> {
    off()
}
pub fn peer_access_pattern() -> Result<Vec<Vec<bool>>> {
    off()
}
pub fn tensor_core_available() -> Result<bool> {
    off()
}
pub fn pointer_device(_ptr: *const c_void) -> Result<i32> {
    off()
}
pub fn is_stream_free(_gpu: Option<i32>, _stream_id: i32) -> Result<bool> {
    off()
}
pub fn stream_handle(_gpu: i32, _stream_id: i32) -> Result<*mut c_void> {
    off()
}
/// # Safety
/// Nothing is accessed in this build.
pub unsafe fn copy_bytes_sync(_n: usize, _src: *const c_void, _dst: *mut c_void) -> Result<()> {
    off()
}
pub fn cuda_allocate(_nbytes: usize) -> Result<(*mut c_void, Deleter)> {
    off()
}
pub fn memory_stats(_device: i32) -> Result<MemoryStats> {
    off()
}
pub fn release_cached(_device: i32) -> Result<()> {
    off()
}
pub fn pinned_allocate(_nbytes: usize) -> Result<(*mut c_void, Deleter)> {
    off()
}
pub fn pinned_stats() -> Result<MemoryStats> {
    off()
}
pub fn pinned_tensor(_dtype: DataType, _dims: &[i64]) -> Result<Tensor> {
    off()
}
pub fn cudnn_version() -> Result<usize> {
    off()
}

/// Never constructed in this build.
pub struct DeviceGuard(Infallible);
impl DeviceGuard {
    pub fn new(_device: i32) -> Result<Self> {
        off()
    }
}

/// Never constructed in this build.
pub struct CudnnScope<'a> {
    pub handle: *mut c_void,
    pub stream: *mut c_void,
    never: Infallible,
    _lifetime: std::marker::PhantomData<&'a ()>,
}
impl CudnnScope<'_> {
    pub fn workspace(&mut self, _nbytes: usize) -> Result<*mut c_void> {
        match self.never {}
    }
    pub fn workspace_size(&self) -> usize {
        match self.never {}
    }
}

pub fn with_cudnn_state<T>(
    _gpu: i32,
    _idx: usize,
    _caller_stream: *mut c_void,
    _f: impl FnOnce(&mut CudnnScope<'_>) -> Result<T>,
) -> Result<T> {
    off()
}

/// Never constructed in this build.
pub struct CudaContext(Infallible);

impl CudaContext {
    pub fn new(_spec: &DeviceSpec) -> Result<Self> {
        off()
    }
    pub fn random_seed(&self) -> u32 {
        match self.0 {}
    }
    pub fn gpu_id(&self) -> i32 {
        match self.0 {}
    }
    pub fn stream_id(&self) -> i32 {
        match self.0 {}
    }
    pub fn switch_to_device(&mut self, _stream_id: i32) -> Result<()> {
        match self.0 {}
    }
    pub fn finish_device_computation(&mut self) -> Result<()> {
        match self.0 {}
    }
    pub fn cuda_stream(&self) -> Result<*mut c_void> {
        match self.0 {}
    }
    pub fn cublas_handle(&self) -> Result<*mut c_void> {
        match self.0 {}
    }
    pub fn cudnn_handle(&self) -> Result<*mut c_void> {
        match self.0 {}
    }
    pub fn curand_generator(&mut self) -> Result<*mut c_void> {
        match self.0 {}
    }
    /// # Safety
    /// Never callable in this build.
    pub unsafe fn copy_bytes(
        &self,
        _n: usize,
        _src: *const c_void,
        _dst: *mut c_void,
    ) -> Result<()> {
        match self.0 {}
    }
    /// # Safety
    /// Never callable in this build.
    pub unsafe fn copy_items(
        &self,
        _dtype: DataType,
        _n: usize,
        _src: *const c_void,
        _dst: *mut c_void,
    ) -> Result<()> {
        match self.0 {}
    }
    pub fn allocate(&self, _nbytes: usize) -> Result<(*mut c_void, Deleter)> {
        match self.0 {}
    }
}

/// Never constructed in this build.
pub struct CudaEvent(Infallible);

impl CudaEvent {
    pub fn new(_gpu: Option<i32>) -> Result<Self> {
        off()
    }
    pub fn gpu(&self) -> i32 {
        match self.0 {}
    }
    pub fn record(&self, _ctx: &CudaContext, _err: Option<&str>) -> Result<()> {
        match self.0 {}
    }
    pub fn record_failure(&self, _err: &str) -> Result<()> {
        match self.0 {}
    }
    pub fn finish(&self) -> Result<()> {
        match self.0 {}
    }
    pub fn query(&self) -> crate::context::EventStatus {
        match self.0 {}
    }
    pub fn error_message(&self) -> String {
        match self.0 {}
    }
    pub fn set_finished(&self, _err: Option<&str>) -> Result<()> {
        match self.0 {}
    }
    pub fn reset(&self) {
        match self.0 {}
    }
    pub fn wait_on_stream(&self, _ctx: &CudaContext) -> Result<()> {
        match self.0 {}
    }
}
