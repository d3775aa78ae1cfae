//! Pinned (page-locked) host memory: a caching pool over `cuMemHostAlloc(PORTABLE)` (not
//! write-combined: hosts read these buffers too), the CPU allocator that serves from it once
//! CUDA is initialised, and CPU tensors living in pinned memory for fast transfers.
//!
//! Event-guarded reuse: every async copy issued through `CudaContext::copy_bytes` that touches
//! a pinned block records an event on its stream (`fence_use`); a freed block stays cached but
//! is handed out again only once all its events have completed (otherwise the next allocation
//! of that size gets another block). Blocks returned to the driver wait for their events.

use std::collections::{BTreeMap, HashMap};
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

/// An event recorded on a stream after an async copy that reads or writes a pinned block
/// (spec §9: a block must not be handed out again while such a copy may still use it).
#[derive(Clone, Copy)]
struct Fence {
    gpu: i32,
    /// The `CUevent`, as an address.
    event: usize,
}

/// A handed-out block: its size class and the fences of copies issued on it.
struct LiveBlock {
    bytes: usize,
    fences: Vec<Fence>,
}

/// A cached block, reusable once every fence has completed.
struct FreeBlock {
    addr: usize,
    fences: Vec<Fence>,
}

/// Guarded by `PINNED`. Invariant: `stats.in_use` = sum of `live` sizes, `stats.cached` = sum
/// of `free` sizes; every event is in exactly one fence list or in `spare_events`.
#[derive(Default)]
struct PinnedState {
    free: HashMap<usize, Vec<FreeBlock>>,
    /// By start address, so that a pointer inside a block finds it.
    live: BTreeMap<usize, LiveBlock>,
    /// Completed events per gpu, reused for later fences (events belong to a gpu's context).
    spare_events: HashMap<i32, Vec<usize>>,
    stats: MemoryStats,
}

impl PinnedState {
    /// Drops the completed fences of `fences` (their events go back to the spares); true when
    /// none is left pending.
    fn prune(&mut self, fences: &mut Vec<Fence>) -> bool {
        fences.retain(|f| {
            // SAFETY: a live event owned by this pool.
            let rc = unsafe { sys::cuEventQuery(f.event as sys::CUevent) };
            if rc == sys::CUresult::CUDA_ERROR_NOT_READY {
                return true;
            }
            // Done (or failed: the copy is over either way).
            self.spare_events.entry(f.gpu).or_default().push(f.event);
            false
        });
        fences.is_empty()
    }

    /// Waits for every fence (before a block goes back to the driver).
    fn wait_all(&mut self, fences: &mut Vec<Fence>) {
        for f in fences.iter() {
            // SAFETY: a live event owned by this pool; errors mean the copy is over.
            let _ = unsafe { sys::cuEventSynchronize(f.event as sys::CUevent) };
        }
        self.prune(fences);
    }
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
    let ptr = if let Some(p) = take_ready(&mut state, bytes) {
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
    state.live.insert(
        ptr as usize,
        LiveBlock {
            bytes,
            fences: Vec::new(),
        },
    );
    state.stats.in_use += bytes as u64;
    state.stats.peak = state.stats.peak.max(state.stats.in_use);
    if zero_fill() {
        // SAFETY: `ptr` has `bytes >= nbytes` writable host bytes, handed out to nobody else.
        unsafe { std::ptr::write_bytes(ptr as *mut u8, 0, nbytes) };
    }
    Ok(ptr)
}

/// The most recently freed cached block of class `bytes` whose copies have all completed.
fn take_ready(state: &mut PinnedState, bytes: usize) -> Option<usize> {
    let mut blocks = state.free.remove(&bytes)?;
    let mut found = None;
    for i in (0..blocks.len()).rev() {
        let mut fences = std::mem::take(&mut blocks[i].fences);
        let ready = state.prune(&mut fences);
        blocks[i].fences = fences;
        if ready {
            found = Some(blocks.remove(i).addr);
            break;
        }
    }
    if !blocks.is_empty() {
        state.free.insert(bytes, blocks);
    }
    found
}

fn release(state: &mut PinnedState) {
    let classes: Vec<(usize, Vec<FreeBlock>)> = state.free.drain().collect();
    for (bytes, blocks) in classes {
        for mut b in blocks {
            state.wait_all(&mut b.fences);
            // SAFETY: a cached pinned block, handed out to nobody, no copy pending on it.
            let _ = unsafe { sys::cuMemFreeHost(b.addr as *mut c_void) };
            state.stats.cached -= bytes as u64;
        }
    }
}

/// Records, on `stream` of `gpu`, that an async copy just issued there uses the pinned block
/// holding `ptr` (if `ptr` is pinned memory of this pool; otherwise nothing happens). Until
/// the copy completes, the block is not handed out again after it is freed. The caller has
/// `gpu`'s context current.
pub(super) fn fence_use(ptr: *const c_void, gpu: i32, stream: sys::CUstream) -> Result<()> {
    let addr = ptr as usize;
    let mut state = PINNED.lock();
    let Some((&start, block)) = state.live.range_mut(..=addr).next_back() else {
        return Ok(());
    };
    if addr >= start + block.bytes {
        return Ok(());
    }
    let mut fences = std::mem::take(&mut block.fences);
    state.prune(&mut fences);
    let event = match state.spare_events.get_mut(&gpu).and_then(Vec::pop) {
        Some(e) => e as sys::CUevent,
        None => {
            let mut e: sys::CUevent = std::ptr::null_mut();
            // SAFETY: valid out-pointer; the caller made `gpu`'s context current.
            let rc = unsafe {
                sys::cuEventCreate(&mut e, sys::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32)
            };
            if let Err(err) = check(rc, "cuEventCreate") {
                restore_fences(&mut state, start, fences);
                return Err(err);
            }
            e
        }
    };
    // SAFETY: a live event of `gpu`'s context and a live stream of the same gpu.
    let rc = unsafe { sys::cuEventRecord(event, stream) };
    if let Err(err) = check(rc, "cuEventRecord") {
        state
            .spare_events
            .entry(gpu)
            .or_default()
            .push(event as usize);
        restore_fences(&mut state, start, fences);
        return Err(err);
    }
    fences.push(Fence {
        gpu,
        event: event as usize,
    });
    restore_fences(&mut state, start, fences);
    Ok(())
}

fn restore_fences(state: &mut PinnedState, start: usize, fences: Vec<Fence>) {
    if let Some(b) = state.live.get_mut(&start) {
        b.fences = fences;
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
            Some(LiveBlock { bytes, mut fences }) => {
                state.stats.in_use -= bytes as u64;
                state.prune(&mut fences);
                if state.stats.cached + bytes as u64 <= MAX_CACHED_BYTES {
                    state.stats.cached += bytes as u64;
                    state.free.entry(bytes).or_default().push(FreeBlock {
                        addr: ptr as usize,
                        fences,
                    });
                } else {
                    state.wait_all(&mut fences);
                    // cuMemFreeHost needs a current context (CUDA_ERROR_INVALID_CONTEXT
                    // otherwise, and the block would leak); the deleter runs on any thread,
                    // including threads that never used CUDA. PORTABLE blocks may be freed
                    // under any device's context.
                    let _guard = get_device().and_then(DeviceGuard::new).ok();
                    // SAFETY: a live pinned block, removed from `live`, freed once, with no
                    // copy pending on it.
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
