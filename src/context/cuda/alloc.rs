//! The device allocator: Caffe2's `CUDAContext::New` with the `cub` pool (size-class caching,
//! CUB's bin parameters) or `none` (straight to the driver), plus per-device counters.
//!
//! Pool semantics as CUB's caching allocator in Caffe2: a freed block goes back to its
//! device's cache and the next allocation of the same size class takes it (LIFO, so free then
//! re-allocate returns the same address), whatever stream it is used on; ops synchronise their
//! stream before their outputs are freed.

use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use cudarc::driver::sys;
use once_cell::sync::Lazy;
use parking_lot::Mutex;

use super::device::{DeviceGuard, ensure_init, get_device};
use super::error::check;
use super::{MAX_GPUS, MemoryStats, PoolType, memory_pool};
use crate::context::cpu::Deleter;
use crate::error::{C2rsError, Result};

/// `caffe2_cub_bin_growth`, `caffe2_cub_min_bin`, `caffe2_cub_max_bin`,
/// `caffe2_cub_max_managed_mb`.
const BIN_GROWTH: usize = 8;
const MIN_BIN: u32 = 3;
const MAX_BIN: u32 = 10;
const MAX_CACHED_BYTES: u64 = 10240 << 20;

/// The size class of a request: the smallest `BIN_GROWTH^k ≥ n` with `k ≥ MIN_BIN`; `None`
/// above `BIN_GROWTH^MAX_BIN` (allocated exactly and never cached).
fn bin_bytes(n: usize) -> Option<usize> {
    let mut size = BIN_GROWTH.pow(MIN_BIN);
    for _ in MIN_BIN..=MAX_BIN {
        if n <= size {
            return Some(size);
        }
        size *= BIN_GROWTH;
    }
    None
}

/// A live block: where it lives and how many bytes the driver gave it.
struct Block {
    device: i32,
    bytes: usize,
    /// Whether the block came in a size class (and may return to the cache).
    binned: bool,
}

/// Free blocks and counters of one device.
#[derive(Default)]
struct DevicePool {
    free: HashMap<usize, Vec<sys::CUdeviceptr>>,
    stats: MemoryStats,
}

/// Guarded by `POOL` (Caffe2's process-wide allocation mutex; New and Delete hold it across
/// the driver call, which also keeps allocation out of concurrently launched NCCL kernels).
/// Invariant: per device, `stats.in_use` = sum of live block bytes, `stats.cached` = sum of
/// free block bytes.
struct PoolState {
    devices: Vec<DevicePool>,
    live: HashMap<sys::CUdeviceptr, Block>,
}

// SAFETY: the state holds device addresses (integers) only.
unsafe impl Send for PoolState {}

static POOL: Lazy<Mutex<PoolState>> = Lazy::new(|| {
    Mutex::new(PoolState {
        devices: (0..MAX_GPUS).map(|_| DevicePool::default()).collect(),
        live: HashMap::new(),
    })
});

fn driver_alloc(bytes: usize) -> std::result::Result<sys::CUdeviceptr, sys::CUresult> {
    let mut ptr: sys::CUdeviceptr = 0;
    // SAFETY: valid out-pointer; the caller made the target device current.
    let rc = unsafe { sys::cuMemAlloc_v2(&mut ptr, bytes.max(1)) };
    if rc == sys::CUresult::CUDA_SUCCESS {
        Ok(ptr)
    } else {
        Err(rc)
    }
}

fn release_device_cache(state: &mut PoolState, device: i32) {
    let pool = &mut state.devices[device as usize];
    for (bytes, ptrs) in pool.free.drain() {
        for p in ptrs {
            // SAFETY: a cached block of this pool, no longer handed out.
            let _ = unsafe { sys::cuMemFree_v2(p) };
            pool.stats.cached -= bytes as u64;
        }
    }
}

/// Frees every cached block of `device` back to the driver.
pub fn release_cached(device: i32) -> Result<()> {
    super::probe::runtime()?.check_ordinal(device)?;
    let _guard = DeviceGuard::new(device)?;
    release_device_cache(&mut POOL.lock(), device);
    Ok(())
}

/// Caffe2's `CUDAContext::New(n)`: `n` bytes on the thread's current device.
pub fn cuda_allocate(nbytes: usize) -> Result<(*mut c_void, Deleter)> {
    ensure_init()?;
    let device = get_device()?;
    let _guard = DeviceGuard::new(device)?;
    let mut state = POOL.lock();
    let pool_type = memory_pool();
    let class = if pool_type == PoolType::Cub {
        bin_bytes(nbytes)
    } else {
        None
    };
    let bytes = class.unwrap_or(nbytes);
    let pool = &mut state.devices[device as usize];
    let reused = class.and_then(|c| pool.free.get_mut(&c).and_then(Vec::pop));
    let ptr = match reused {
        Some(p) => {
            pool.stats.cached -= bytes as u64;
            pool.stats.cache_hits += 1;
            p
        }
        None => match driver_alloc(bytes) {
            Ok(p) => p,
            Err(sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY) => {
                release_device_cache(&mut state, device);
                driver_alloc(bytes).map_err(|_| {
                    let s = state.devices[device as usize].stats;
                    C2rsError::enforce(format!(
                        "out of memory: requested {nbytes} bytes on GPU {device} (cached {}, in use {})",
                        s.cached, s.in_use
                    ))
                })?
            }
            Err(rc) => return Err(check(rc, "cuMemAlloc").unwrap_err()),
        },
    };
    let pool = &mut state.devices[device as usize];
    if reused.is_none() {
        pool.stats.driver_allocs += 1;
    }
    pool.stats.in_use += bytes as u64;
    pool.stats.peak = pool.stats.peak.max(pool.stats.in_use);
    state.live.insert(
        ptr,
        Block {
            device,
            bytes,
            binned: class.is_some(),
        },
    );
    Ok((ptr as *mut c_void, cuda_delete))
}

/// The deleter of device allocations (Caffe2's `CUDAContext::Delete`): back to the cache or
/// the driver. An unknown pointer is logged and left alone; nothing panics out of it.
unsafe extern "C" fn cuda_delete(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let mut state = POOL.lock();
        let Some(block) = state.live.remove(&(ptr as sys::CUdeviceptr)) else {
            eprintln!("caffe2rs: freeing {ptr:p}, which the CUDA allocator did not allocate");
            return;
        };
        let pool = &mut state.devices[block.device as usize];
        pool.stats.in_use -= block.bytes as u64;
        let keep = block.binned
            && memory_pool() == PoolType::Cub
            && pool.stats.cached + block.bytes as u64 <= MAX_CACHED_BYTES;
        if keep {
            pool.stats.cached += block.bytes as u64;
            pool.free
                .entry(block.bytes)
                .or_default()
                .push(ptr as sys::CUdeviceptr);
        } else {
            let _guard = DeviceGuard::new(block.device).ok();
            // SAFETY: a live block of this allocator, freed once (removed from `live`).
            let _ = unsafe { sys::cuMemFree_v2(ptr as sys::CUdeviceptr) };
        }
    }));
}

/// Counters of `device`'s pool.
pub fn memory_stats(device: i32) -> Result<MemoryStats> {
    super::probe::runtime()?.check_ordinal(device)?;
    Ok(POOL.lock().devices[device as usize].stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_follow_cub_bins() {
        assert_eq!(bin_bytes(0), Some(512));
        assert_eq!(bin_bytes(512), Some(512));
        assert_eq!(bin_bytes(513), Some(4096));
        assert_eq!(bin_bytes(1 << 20), Some(2 << 20));
        assert_eq!(bin_bytes((2 << 20) + 1), Some(16 << 20));
        assert_eq!(bin_bytes(1 << 30), Some(1 << 30));
        assert_eq!(bin_bytes((1 << 30) + 1), None);
    }
}
