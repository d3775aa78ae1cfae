//! `CPUContext`: the global CPU allocator (64-byte aligned, zero-filled, replaceable, with an
//! optional usage reporter), host copies, and the per-context MT19937 generator.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use once_cell::sync::Lazy;
use parking_lot::{Mutex, RwLock};

use super::mt19937::Mt19937;
use super::{DeviceSpec, DeviceType, random_number_seed};
use crate::error::{C2rsError, Result};
use crate::tensor::DataType;

/// Alignment of every CPU allocation (Caffe2 used 32; AVX-512 wants 64).
pub const CPU_ALIGNMENT: usize = 64;

/// Frees a pointer an allocator returned. A plain C function pointer: it gets no size, as in
/// Caffe2's `MemoryDeleter`.
pub type Deleter = unsafe extern "C" fn(*mut c_void);

/// A host allocator. Every deleter must also accept pointers from the default allocator
/// (both end in `free`), because the reporter calls the *current* allocator's deleter.
pub trait CpuAllocator: Send + Sync {
    /// `nbytes` bytes, 64-byte aligned, non-null even for 0.
    fn allocate(&self, nbytes: usize) -> Result<*mut c_void>;
    /// The function that frees what `allocate` returned.
    fn deleter(&self) -> Deleter;
    /// For logs and diagnostics.
    fn name(&self) -> &'static str;
}

/// `caffe2_cpu_allocator_do_zero_fill` (default true). Relaxed: a plain setting, read per
/// allocation; no other memory is published through it.
static ZERO_FILL: AtomicBool = AtomicBool::new(true);
/// `caffe2_report_cpu_memory_usage` (default false). Relaxed, as `ZERO_FILL`.
static REPORT_USAGE: AtomicBool = AtomicBool::new(false);

/// Sets `caffe2_cpu_allocator_do_zero_fill`.
pub fn set_zero_fill(on: bool) {
    ZERO_FILL.store(on, Ordering::Relaxed);
}

pub fn zero_fill() -> bool {
    ZERO_FILL.load(Ordering::Relaxed)
}

/// Sets `caffe2_report_cpu_memory_usage`.
pub fn set_report_usage(on: bool) {
    REPORT_USAGE.store(on, Ordering::Relaxed);
}

/// `posix_memalign(64)` + `free`, zero-filled when the flag says so.
pub struct DefaultCpuAllocator;

/// Aligned host allocation shared by the default and pinned-fallback paths.
pub(crate) fn aligned_alloc(nbytes: usize) -> Result<*mut c_void> {
    let mut ptr: *mut c_void = std::ptr::null_mut();
    // SAFETY: `ptr` is a valid out-pointer; the alignment is a power of two and a multiple of
    // `sizeof(void*)`; size 0 is replaced by 1 so a unique non-null pointer comes back.
    let rc = unsafe { libc::posix_memalign(&mut ptr, CPU_ALIGNMENT, nbytes.max(1)) };
    if rc != 0 || ptr.is_null() {
        return Err(C2rsError::enforce(format!(
            "out of memory: requested {nbytes} bytes"
        )));
    }
    if zero_fill() {
        // SAFETY: `ptr` points to at least `nbytes` writable bytes just allocated.
        unsafe { std::ptr::write_bytes(ptr as *mut u8, 0, nbytes) };
    }
    Ok(ptr)
}

/// The default deleter: `free` (NULL is a no-op).
///
/// # Safety
/// `ptr` is NULL or came from `posix_memalign`/`malloc` and was not freed yet.
pub unsafe extern "C" fn free_deleter(ptr: *mut c_void) {
    // SAFETY: the caller's contract above.
    unsafe { libc::free(ptr) }
}

impl CpuAllocator for DefaultCpuAllocator {
    fn allocate(&self, nbytes: usize) -> Result<*mut c_void> {
        aligned_alloc(nbytes)
    }
    fn deleter(&self) -> Deleter {
        free_deleter
    }
    fn name(&self) -> &'static str {
        "default"
    }
}

/// The global allocator. Readers clone the `Arc` under a read lock (swap is rare); a swap
/// replaces it under the write lock and the old one drops when its last user is done.
static CPU_ALLOCATOR: Lazy<RwLock<Arc<dyn CpuAllocator>>> =
    Lazy::new(|| RwLock::new(Arc::new(DefaultCpuAllocator)));

/// Caffe2's `SetCPUAllocator`: takes ownership; the previous allocator is dropped.
pub fn set_cpu_allocator(allocator: Arc<dyn CpuAllocator>) {
    *CPU_ALLOCATOR.write() = allocator;
}

/// The current global allocator.
pub fn cpu_allocator() -> Arc<dyn CpuAllocator> {
    CPU_ALLOCATOR.read().clone()
}

/// The reporter's table. Guarded by `REPORTER`. Invariant: `total` is the sum of `sizes`.
#[derive(Default)]
struct Reporter {
    sizes: HashMap<usize, usize>,
    total: usize,
}

static REPORTER: Lazy<Mutex<Reporter>> = Lazy::new(|| Mutex::new(Reporter::default()));

/// Bytes the reporter currently counts as allocated (0 unless reporting was on).
pub fn reported_bytes() -> usize {
    REPORTER.lock().total
}

/// The reporting deleter: forgets the pointer (an unknown one is logged, not fatal), then
/// calls the current global allocator's deleter.
unsafe extern "C" fn reporting_deleter(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    {
        let mut r = REPORTER.lock();
        match r.sizes.remove(&(ptr as usize)) {
            Some(n) => {
                r.total -= n;
                eprintln!("Caffe2 deleted {n} bytes, total alloc {} bytes.", r.total);
            }
            None => {
                eprintln!("caffe2rs: deleting {ptr:p}, which the CPU memory reporter does not know")
            }
        }
        debug_assert_eq!(r.total, r.sizes.values().sum::<usize>());
    }
    let deleter = cpu_allocator().deleter();
    // SAFETY: `ptr` came from a CPU allocator; every allocator's deleter accepts pointers of the
    // default allocator and of itself (trait contract).
    unsafe { deleter(ptr) }
}

/// Caffe2's `CPUContext::New`: allocates through the global allocator; with reporting on,
/// the returned deleter updates the report.
pub fn cpu_allocate(nbytes: usize) -> Result<(*mut c_void, Deleter)> {
    let allocator = cpu_allocator();
    let ptr = allocator.allocate(nbytes)?;
    if !REPORT_USAGE.load(Ordering::Relaxed) {
        return Ok((ptr, allocator.deleter()));
    }
    let mut r = REPORTER.lock();
    r.sizes.insert(ptr as usize, nbytes);
    r.total += nbytes;
    eprintln!(
        "Caffe2 alloc {nbytes} bytes, total alloc {} bytes.",
        r.total
    );
    Ok((ptr, reporting_deleter))
}

/// Host-to-host `CopyBytes`: `n == 0` returns at once (NULL allowed); otherwise both
/// pointers must be non-NULL.
///
/// # Safety
/// For `n > 0`, `src` is readable and `dst` writable for `n` bytes and they do not overlap.
pub unsafe fn copy_bytes(n: usize, src: *const c_void, dst: *mut c_void) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    if src.is_null() || dst.is_null() {
        return Err(C2rsError::enforce(format!(
            "CopyBytes of {n} bytes with a NULL {}",
            if src.is_null() {
                "source"
            } else {
                "destination"
            }
        )));
    }
    // SAFETY: the caller's contract above; both pointers are non-NULL.
    unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, n) };
    Ok(())
}

/// Bytes of `n` items of `dtype`; STRING (no fixed item size) is an enforce.
pub fn items_nbytes(dtype: DataType, n: usize, who: &str) -> Result<usize> {
    let size = dtype.item_size().ok_or_else(|| {
        C2rsError::unsupported(format!(
            "{who}: {} items have no fixed size; copy string tensors as tensors",
            dtype.name()
        ))
    })?;
    n.checked_mul(size).ok_or_else(|| {
        C2rsError::invalid_argument(format!("{n} items of {} overflow", dtype.name()))
    })
}

/// Caffe2's `CPUContext`: a seed, a lazily created MT19937 and host copies.
pub struct CpuContext {
    random_seed: u32,
    /// Created on first `rand_generator()` from `random_seed` (boxed: 2.5 KB of state).
    generator: Option<Box<Mt19937>>,
}

impl CpuContext {
    /// From a spec of type CPU (or MKLDNN); an unset seed draws `random_number_seed()`.
    pub fn new(spec: &DeviceSpec) -> Result<Self> {
        if spec.device_type.canonical() != DeviceType::Cpu {
            return Err(C2rsError::enforce(format!(
                "CPUContext needs a CPU device option, got device type {}",
                spec.device_type.as_i32()
            )));
        }
        Ok(Self {
            random_seed: spec.random_seed.unwrap_or_else(random_number_seed),
            generator: None,
        })
    }

    pub fn random_seed(&self) -> u32 {
        self.random_seed
    }

    /// The context's generator, seeded with `random_seed` on first use.
    pub fn rand_generator(&mut self) -> &mut Mt19937 {
        let seed = self.random_seed;
        self.generator
            .get_or_insert_with(|| Box::new(Mt19937::new(seed)))
    }

    /// No-op: CPU work has no streams.
    pub fn switch_to_device(&mut self, _stream_id: i32) {}

    /// No-op: CPU work is finished when it returns.
    pub fn finish_device_computation(&mut self) {}

    /// Caffe2's `CopyItems` for plain types (bytes = n · item size).
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
        let nbytes = items_nbytes(dtype, n, "CPUContext::CopyItems")?;
        // SAFETY: forwarded caller contract.
        unsafe { copy_bytes(nbytes, src, dst) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_of_zero_bytes_accepts_null() {
        // SAFETY: n == 0 touches nothing.
        assert!(unsafe { copy_bytes(0, std::ptr::null(), std::ptr::null_mut()) }.is_ok());
        let mut dst = [0u8; 4];
        // SAFETY: dst is writable; src is NULL, which must be refused before any access.
        let e = unsafe { copy_bytes(4, std::ptr::null(), dst.as_mut_ptr() as *mut c_void) };
        assert!(e.unwrap_err().message().contains("NULL source"));
    }

    #[test]
    fn string_items_have_no_byte_copy() {
        assert!(items_nbytes(DataType::String, 1, "x").is_err());
        assert_eq!(items_nbytes(DataType::Double, 3, "x").unwrap(), 24);
    }

    #[test]
    fn cuda_spec_is_not_a_cpu_context() {
        assert!(CpuContext::new(&DeviceSpec::cuda(Some(0))).is_err());
    }
}
