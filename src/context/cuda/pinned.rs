//! Pinned (page-locked) host memory: a caching pool over `cuMemHostAlloc(PORTABLE)` (not
//! write-combined: hosts read these buffers too), the CPU allocator that serves from it once
//! CUDA is initialised, and CPU tensors living in pinned memory for fast transfers.

use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cudarc::driver::sys;
use once_cell::sync::Lazy;
use parking_lot::Mutex;

use super::MemoryStats;
use super::device::{DeviceGuard, ensure_init, get_device};
use super::error::check;
use crate::context::cpu::{CpuAllocator, Deleter, set_cpu_allocator, zero_fill};
use crate::error::{C2rsError, Result};
use crate::tensor::{DataType, Storage, Tensor, checked_numel};

/// Most bytes kept in the cache; frees beyond it go back to the driver.
const MAX_CACHED_BYTES: u64 = 4 << 30;

/// Guarded by `PINNED`. Invariant: `stats.in_use` = sum of `live` sizes, `stats.cached` = sum
/// of `free` sizes.
#[derive(Default)]
struct PinnedState {
    free: HashMap<usize, Vec<usize>>,
    live: HashMap<usize, usize>,
    stats: MemoryStats,
}

static PINNED: Lazy<Mutex<PinnedState>> = Lazy::new(|| Mutex::new(PinnedState::default()));

/// Size class: the next power of two, at least 512 bytes.
fn class_bytes(n: usize) -> usize {
    n.max(512).next_power_of_two()
}

fn allocate_raw(nbytes: usize) -> Result<*mut c_void> {
    ensure_init()?;
    let bytes = class_bytes(nbytes);
    let mut state = PINNED.lock();
    let ptr = if let Some(p) = state.free.get_mut(&bytes).and_then(Vec::pop) {
        state.stats.cached -= bytes as u64;
        state.stats.cache_hits += 1;
        p as *mut c_void
    } else {
        let _guard = DeviceGuard::new(get_device()?)?;
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: valid out-pointer; a context is current (guard).
        let mut rc = unsafe { sys::cuMemHostAlloc(&mut p, bytes, sys::CU_MEMHOSTALLOC_PORTABLE) };
        if rc == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
            release(&mut state);
            // SAFETY: as above.
            rc = unsafe { sys::cuMemHostAlloc(&mut p, bytes, sys::CU_MEMHOSTALLOC_PORTABLE) };
        }
        check(rc, "cuMemHostAlloc").map_err(|e| {
            C2rsError::enforce(format!(
                "out of memory: requested {nbytes} bytes of pinned host memory (cached {}, in use {}): {}",
                state.stats.cached,
                state.stats.in_use,
                e.message()
            ))
        })?;
        state.stats.driver_allocs += 1;
        p
    };
    state.live.insert(ptr as usize, bytes);
    state.stats.in_use += bytes as u64;
    state.stats.peak = state.stats.peak.max(state.stats.in_use);
    if zero_fill() {
        // SAFETY: `ptr` has `bytes >= nbytes` writable host bytes, handed out to nobody else.
        unsafe { std::ptr::write_bytes(ptr as *mut u8, 0, nbytes) };
    }
    Ok(ptr)
}

fn release(state: &mut PinnedState) {
    for (bytes, ptrs) in state.free.drain() {
        for p in ptrs {
            // SAFETY: a cached pinned block, handed out to nobody.
            let _ = unsafe { sys::cuMemFreeHost(p as *mut c_void) };
            state.stats.cached -= bytes as u64;
        }
    }
}

/// Frees a pinned block into the cache; a pointer the pool does not know (pageable memory
/// allocated before the CPU allocator switched to pinned) goes to `free`.
unsafe extern "C" fn pinned_delete(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let mut state = PINNED.lock();
        match state.live.remove(&(ptr as usize)) {
            Some(bytes) => {
                state.stats.in_use -= bytes as u64;
                if state.stats.cached + bytes as u64 <= MAX_CACHED_BYTES {
                    state.stats.cached += bytes as u64;
                    state.free.entry(bytes).or_default().push(ptr as usize);
                } else {
                    // SAFETY: a live pinned block, removed from `live`, freed once.
                    let _ = unsafe { sys::cuMemFreeHost(ptr) };
                }
            }
            None => {
                drop(state);
                // SAFETY: not ours, so it came from the default CPU allocator (posix_memalign).
                unsafe { libc::free(ptr) };
            }
        }
    }));
}

/// `n` bytes of pinned host memory (zero-filled when the CPU zero-fill flag is on) and the
/// deleter that returns them to the pool.
pub fn pinned_allocate(nbytes: usize) -> Result<(*mut c_void, Deleter)> {
    Ok((allocate_raw(nbytes)?, pinned_delete))
}

/// Counters of the pinned pool.
pub fn pinned_stats() -> Result<MemoryStats> {
    super::probe::runtime()?;
    Ok(PINNED.lock().stats)
}

/// The CPU allocator once CUDA is up: pinned, 64-byte aligned (page aligned in fact).
struct PinnedCpuAllocator;

impl CpuAllocator for PinnedCpuAllocator {
    fn allocate(&self, nbytes: usize) -> Result<*mut c_void> {
        allocate_raw(nbytes)
    }
    fn deleter(&self) -> Deleter {
        pinned_delete
    }
    fn name(&self) -> &'static str {
        "pinned"
    }
}

/// Switches the global CPU allocator to pinned memory (part of the lazy CUDA init).
pub(super) fn install_pinned_cpu_allocator() {
    set_cpu_allocator(Arc::new(PinnedCpuAllocator));
}

/// A zero-filled CPU tensor whose elements live in pinned memory.
pub fn pinned_tensor(dtype: DataType, dims: &[i64]) -> Result<Tensor> {
    let item = dtype.item_size().ok_or_else(|| {
        C2rsError::type_mismatch(format!(
            "{} tensors cannot live in pinned memory",
            dtype.name()
        ))
    })?;
    let nbytes = checked_numel(dims)?
        .checked_mul(item)
        .ok_or_else(|| C2rsError::invalid_argument("tensor size overflows"))?;
    let ptr = allocate_raw(nbytes)?;
    // SAFETY: zero the bytes even when the zero-fill flag is off: tensors start zeroed.
    unsafe { std::ptr::write_bytes(ptr as *mut u8, 0, nbytes) };
    let addr = ptr as usize;
    let release = Box::new(move || {
        // SAFETY: `addr` came from `allocate_raw` and is released exactly once, here.
        unsafe { pinned_delete(addr as *mut c_void) }
    });
    // SAFETY: `ptr` is valid for `nbytes` reads and writes until `release` runs; nobody else
    // holds it.
    let storage = unsafe { Storage::adopt(ptr as *mut u8, nbytes, false, release) };
    Tensor::from_storage(dtype, dims, Arc::new(storage))
}
