//! `CUDAContext` and everything under it, through cudarc with dynamic loading.
//!
//! One build runs with or without a GPU. Nothing here touches cudarc before `probe` has
//! confirmed that libcuda loads, `cuInit` succeeds and a device exists (cudarc panics, not
//! errors, when a library is missing). Without the `cuda` feature the same API exists and
//! every entry point reports `Unsupported`.
//!
//! Layout: `probe` (is there a GPU, and why not), `device` (current device, guard, peer
//! access, lazy global init), `stream` (per-thread streams and library handles), `alloc`
//! (caching device allocator), `pinned` (pinned host pool), `cudnn` (handle pool, workspace,
//! per-device states), `context` (`CudaContext`), `event` (`CudaEvent`), `tensor` (`CudaTensor`,
//! in every build).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::error::{C2rsError, Result};

#[cfg(feature = "cuda")]
mod alloc;
#[cfg(feature = "cuda")]
mod context;
#[cfg(feature = "cuda")]
mod cudnn;
#[cfg(feature = "cuda")]
mod device;
#[cfg(feature = "cuda")]
mod error;
#[cfg(feature = "cuda")]
mod event;
#[cfg(feature = "cuda")]
mod pinned;
#[cfg(feature = "cuda")]
mod probe;
#[cfg(feature = "cuda")]
mod stream;

#[cfg(not(feature = "cuda"))]
mod disabled;
mod tensor;

pub use self::tensor::{CUDA_TENSOR_TYPE_NAME, CudaTensor};

#[cfg(feature = "cuda")]
pub use self::{
    alloc::{cuda_allocate, memory_stats, release_cached},
    context::CudaContext,
    cudnn::{CudnnScope, cudnn_version, with_cudnn_state},
    device::{
        DeviceGuard, get_device, peer_access_pattern, pointer_device, set_device,
        tensor_core_available,
    },
    event::CudaEvent,
    pinned::{pinned_allocate, pinned_stats, pinned_tensor},
    probe::{device_count, probe_report},
    stream::{copy_bytes_sync, is_stream_free, stream_handle},
};

#[cfg(not(feature = "cuda"))]
pub use self::disabled::*;

/// Caffe2's `HasCudaRuntime()`: whether this build has the CUDA path (feature `cuda`), with or
/// without a driver.
pub fn has_cuda_runtime() -> bool {
    cfg!(feature = "cuda")
}

/// Caffe2's `HasCudaGPU()`.
pub fn has_cuda_gpu() -> bool {
    device_count() > 0
}

/// Most devices Caffe2 supports in one process (`CAFFE2_COMPILE_TIME_MAX_GPUS`).
pub const MAX_GPUS: usize = 16;
/// Cached cuDNN states per device (`CAFFE2_COMPILE_TIME_MAX_CUDNN_STATES`).
pub const MAX_CUDNN_STATES: usize = 4;
/// `CAFFE_CUDA_NUM_THREADS`.
pub const CUDA_NUM_THREADS: usize = 512;
/// `CAFFE_MAXIMUM_NUM_BLOCKS`.
pub const MAXIMUM_NUM_BLOCKS: usize = 4096;

/// `CAFFE_GET_BLOCKS(n)` = clamp(ceil(n / 512), 1, 4096).
pub fn get_blocks(n: usize) -> usize {
    n.div_ceil(CUDA_NUM_THREADS).clamp(1, MAXIMUM_NUM_BLOCKS)
}

/// Counters of one memory pool, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct MemoryStats {
    /// Handed out and not yet freed.
    pub in_use: u64,
    /// Freed into the cache, kept for reuse.
    pub cached: u64,
    /// Highest `in_use` seen.
    pub peak: u64,
    /// Allocations served from the cache.
    pub cache_hits: u64,
    /// Allocations that went to the driver.
    pub driver_allocs: u64,
}

/// `caffe2_cuda_memory_pool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolType {
    /// `"none"` / `""`: every allocation goes to `cuMemAlloc`, every free to `cuMemFree`.
    None,
    /// `"cub"` (this project's default): a size-class caching pool.
    Cub,
}

impl PoolType {
    /// Parses the flag value with Caffe2's errors.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "" | "none" => Ok(PoolType::None),
            "cub" => Ok(PoolType::Cub),
            "cnmem" => Err(C2rsError::enforce(
                "CNMEM is no longer used by Caffe2. Use cub instead.",
            )),
            other => Err(C2rsError::enforce(format!(
                "Unrecognized cuda memory pool type: {other}"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PoolType::None => "none",
            PoolType::Cub => "cub",
        }
    }
}

/// The pool type as `PoolType as u8` (0 none, 1 cub). Relaxed: a setting read per allocation;
/// blocks remember how they were allocated, so a change mid-run is safe.
static POOL_TYPE: AtomicU8 = AtomicU8::new(1);

/// Sets `caffe2_cuda_memory_pool`.
pub fn set_memory_pool(value: &str) -> Result<()> {
    let t = PoolType::parse(value)?;
    POOL_TYPE.store(t as u8, Ordering::Relaxed);
    Ok(())
}

/// Caffe2's `GetCudaMemoryPoolType()`.
pub fn memory_pool() -> PoolType {
    if POOL_TYPE.load(Ordering::Relaxed) == 0 {
        PoolType::None
    } else {
        PoolType::Cub
    }
}

/// `caffe2_cuda_full_device_control`: cache the current device per thread and skip unchanged
/// sets. Relaxed: a setting; each thread's cache is its own.
static FULL_DEVICE_CONTROL: AtomicBool = AtomicBool::new(false);

pub fn set_full_device_control(on: bool) {
    FULL_DEVICE_CONTROL.store(on, Ordering::Relaxed);
}

pub fn full_device_control() -> bool {
    FULL_DEVICE_CONTROL.load(Ordering::Relaxed)
}

/// The error every CUDA entry point gives when there is no usable GPU.
pub fn unavailable(reason: &str) -> C2rsError {
    C2rsError::unsupported(format!("CUDA is not available: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_flag_values_follow_caffe2() {
        assert_eq!(PoolType::parse("").unwrap(), PoolType::None);
        assert_eq!(PoolType::parse("none").unwrap(), PoolType::None);
        assert_eq!(PoolType::parse("cub").unwrap(), PoolType::Cub);
        assert_eq!(
            PoolType::parse("cnmem").unwrap_err().message(),
            "CNMEM is no longer used by Caffe2. Use cub instead."
        );
        assert!(
            PoolType::parse("thrust")
                .unwrap_err()
                .message()
                .starts_with("Unrecognized cuda memory pool type")
        );
    }

    #[test]
    fn get_blocks_is_clamped() {
        assert_eq!(get_blocks(0), 1);
        assert_eq!(get_blocks(512), 1);
        assert_eq!(get_blocks(513), 2);
        assert_eq!(get_blocks(1 << 40), 4096);
    }
}
