//! Tensor handles on the host's hot path: `c2rs_tensor_wrap`, which makes a tensor over a host
//! buffer without copying it, and a cache of freed handles for it to reuse.
//!
//! A `c2rs_tensor` is a `Box<Tensor>` whose tensor holds an `Arc<Storage>`. Hosts that move
//! records through a queue wrap buffers in one thread and free the handles in another; through
//! the system allocator each pair costs two cross-thread mallocs and frees (arena locks, cache
//! misses). `c2rs_tensor_free` therefore keeps a freed handle that wrapped a host buffer nobody
//! else shares as a `tensor::Reusable` (buffer released, allocations kept) in a per-thread
//! cache (`LOCAL`), and `c2rs_tensor_wrap` refills one from it. Other tensors are freed as
//! before (see `Reusable::reclaim`). Full caches pass batches of `BATCH` to a shared
//! stack (`SHARED`), empty ones take a batch from it, so a producer/consumer pair trades
//! handles with one lock per `BATCH`. Ownership is unchanged: each handle is freed exactly
//! once by its owner, each buffer released exactly once (when its storage is released).

use std::cell::RefCell;
use std::ffi::c_void;

use parking_lot::Mutex;

use super::guard::{array_arg, dtype_arg, ffi_fn, null_arg, out_param};
use super::handle::c2rs_tensor;
use crate::error::{C2rsError, Result};
use crate::tensor::{DataType, HostRelease, Refused, Reusable, Storage, Tensor};

/// Handles moved between a thread's cache and the shared stack at once.
const BATCH: usize = 32;
/// A thread's cache holds at most this many handles.
const LOCAL_MAX: usize = 2 * BATCH;
/// The shared stack holds at most this many batches; further ones are freed.
const SHARED_MAX_BATCHES: usize = 64;

/// This thread's reusable handles. Used only by this thread and never re-entered: nothing
/// called while it is borrowed calls back into the cache (a storage's release callback runs
/// in `Reusable::reclaim`, before the cache is touched).
struct Local {
    free: Vec<Reusable>,
}

impl Drop for Local {
    fn drop(&mut self) {
        // Thread exit: hand the handles to the shared stack (or free them).
        give_to_shared(std::mem::take(&mut self.free));
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local { free: Vec::new() }) };
}

/// Batches given up by threads' caches. Guards only the list; held for one push or pop.
static SHARED: Mutex<Vec<Vec<Reusable>>> = Mutex::new(Vec::new());

fn give_to_shared(batch: Vec<Reusable>) {
    if batch.is_empty() {
        return;
    }
    let mut stack = SHARED.lock();
    if stack.len() < SHARED_MAX_BATCHES {
        stack.push(batch);
    }
    // Else `batch` drops here: its handles (empty tensors) are freed.
}

/// A reusable handle from this thread's cache or a shared batch; `None` when both are empty
/// (or during thread teardown).
fn take_reusable() -> Option<Reusable> {
    LOCAL
        .try_with(|local| {
            let mut local = local.borrow_mut();
            if let Some(r) = local.free.pop() {
                return Some(r);
            }
            let batch = SHARED.lock().pop()?;
            local.free = batch;
            local.free.pop()
        })
        .ok()
        .flatten()
}

/// Keeps a reusable handle (this thread's cache, spilling a batch to the shared stack when
/// full). During thread teardown it is simply freed.
fn keep_reusable(r: Reusable) {
    let _ = LOCAL.try_with(move |local| {
        let mut local = local.borrow_mut();
        if local.free.capacity() == 0 {
            local.free.reserve_exact(LOCAL_MAX);
        }
        local.free.push(r);
        if local.free.len() >= LOCAL_MAX {
            let keep = local.free.len() - BATCH;
            let batch = local.free.split_off(keep);
            drop(local);
            give_to_shared(batch);
        }
    });
}

/// A new handle owning `t`.
pub(crate) fn tensor_handle(t: Tensor) -> *mut c2rs_tensor {
    Box::into_raw(Box::new(t)) as *mut c2rs_tensor
}

/// The tensor of a handle, in the handle's own allocation (the handle is consumed).
///
/// # Safety
/// `h` must be a live, non-NULL tensor handle the caller owns and gives up: it must not be
/// used or freed afterwards.
pub(crate) unsafe fn tensor_handle_into_box(h: *mut c2rs_tensor) -> Box<Tensor> {
    // SAFETY: every tensor handle is a `Box<Tensor>` allocation (`into_handle`,
    // `tensor_handle`, a reused one, or a box a queue handed out), given up by the caller.
    unsafe { Box::from_raw(h as *mut Tensor) }
}

/// Frees a tensor handle (NULL is a no-op). A tensor wrapping a host buffer that nobody else
/// shares has the buffer released now and its allocations kept for `c2rs_tensor_wrap`; any
/// other is dropped.
pub(crate) fn free_tensor_handle(h: *mut c2rs_tensor) {
    if h.is_null() {
        return;
    }
    // SAFETY: a live handle, freed once by its owner (C contract), not used afterwards.
    let t = unsafe { tensor_handle_into_box(h) };
    if let Ok(r) = Reusable::reclaim(t) {
        keep_reusable(r);
    }
}

/// A handle for a tensor of `dtype`/`dims` over a host buffer (`c2rs_tensor_wrap`), reusing a
/// cached handle when there is one. On error nothing was adopted: the release is not run.
///
/// Inlined into its one caller so that `release` and the storage built from it stay in
/// registers: passed on the stack, they were written as words and read back as 16-byte
/// vectors, a store-forwarding stall that took about a third of a wrap.
///
/// # Safety
/// As `Storage::adopt_host` for `ptr`, `len`, `release`.
#[inline(always)]
unsafe fn wrap_handle(
    dtype: DataType,
    dims: &[i64],
    ptr: *mut u8,
    len: usize,
    release: HostRelease,
) -> Result<*mut c2rs_tensor> {
    // SAFETY: the caller's contract is `adopt_host`'s.
    let storage = unsafe { Storage::adopt_host(ptr, len, release) };
    match take_reusable()
        .unwrap_or_default()
        .fill(dtype, dims, storage)
    {
        Ok(t) => Ok(Box::into_raw(t) as *mut c2rs_tensor),
        Err(refused) => {
            let Refused {
                error,
                reusable,
                mut storage,
            } = *refused;
            // Undo the adoption: the host keeps its buffer.
            storage.disown_host();
            keep_reusable(reusable);
            Err(error)
        }
    }
}

/// Makes a CPU tensor over `nbytes` of host memory at `data`, without copying it.
///
/// `dims` holds `ndim` sizes (`ndim == 0`: a scalar; then `dims` may be NULL); `nbytes` must
/// equal the element count times the dtype's size, and `data` must be aligned to the element
/// size (it may be NULL only when `nbytes` is 0). The tensor may read and write the buffer;
/// copies of it (feeding a workspace, a queue, a DLPack export) share the buffer.
/// Ownership: on success the tensor owns the grant to the buffer: `release(ctx)` is called
/// exactly once, when the last tensor sharing the buffer is freed, on whichever thread frees
/// it; the caller owns `*out` (`c2rs_tensor_free`). On failure nothing is adopted and
/// `release` is not called.
/// Thread safety: safe from any thread; `release` may run on any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` or `release` is NULL, `dims` is NULL
/// with `ndim > 0`, a dim is negative, the size overflows, `nbytes` does not match the shape,
/// `data` is NULL with `nbytes > 0` or misaligned, or `dtype` is not a Caffe2 dtype number;
/// C2RS_UNSUPPORTED for STRING and dtypes without tensor storage.
#[unsafe(no_mangle)]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn c2rs_tensor_wrap(
    dtype: i32,
    dims: *const i64,
    ndim: usize,
    data: *mut c_void,
    nbytes: usize,
    release: Option<unsafe extern "C" fn(*mut c_void)>,
    ctx: *mut c_void,
    out: *mut *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_tensor_wrap", {
        let out = out_param(out, "out")?;
        let dtype = dtype_arg(dtype, "dtype")?;
        let dims = array_arg(dims, ndim, "dims")?;
        let func = release.ok_or_else(|| null_arg("release"))?;
        let item = dtype.item_size().ok_or_else(|| {
            C2rsError::unsupported(format!("{dtype} tensors cannot wrap a host buffer"))
        })?;
        if nbytes > 0 && data.is_null() {
            return Err(null_arg("data"));
        }
        // Element sizes are powers of two.
        if (data as usize) & (item - 1) != 0 {
            return Err(C2rsError::invalid_argument(format!(
                "`data` is not aligned to the {item}-byte {dtype} element"
            )));
        }
        // SAFETY: the host grants `nbytes` writable bytes at `data` until `release(ctx)`
        // (the C contract above); the size is checked against dims before the tensor exists,
        // and a failed wrap undoes the adoption.
        let handle = unsafe {
            wrap_handle(
                dtype,
                dims,
                data as *mut u8,
                nbytes,
                HostRelease { func, ctx },
            )
        }?;
        out.set(handle);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::status::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RELEASED: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count_release(ctx: *mut c_void) {
        RELEASED.fetch_add(ctx as usize, Ordering::SeqCst);
    }

    #[test]
    fn a_freed_wrapped_handle_is_reused_by_the_next_wrap_unless_its_storage_is_shared() {
        let mut buf = [0u8; 8];
        let wrap = |buf: &mut [u8; 8]| {
            let mut t = std::ptr::null_mut();
            let dims = [8i64];
            assert_eq!(
                c2rs_tensor_wrap(
                    6,
                    dims.as_ptr(),
                    1,
                    buf.as_mut_ptr().cast(),
                    8,
                    Some(count_release),
                    std::ptr::null_mut(),
                    &mut t
                ),
                C2RS_OK
            );
            t
        };
        let a = wrap(&mut buf);
        free_tensor_handle(a);
        let b = wrap(&mut buf);
        assert_eq!(a, b, "the freed handle came back from this thread's cache");
        // SAFETY: a live handle made just above.
        let shared = unsafe { &*(b as *const Tensor) }.clone();
        free_tensor_handle(b);
        // Not reclaimed: the copy still reads the wrapped buffer.
        assert_eq!(shared.data_ptr().unwrap(), buf.as_ptr());
        drop(shared);
        free_tensor_handle(std::ptr::null_mut());
    }

    #[test]
    fn wrap_releases_once_when_the_last_sharer_is_freed_and_never_on_failure() {
        let mut buf = [1.0f32, 2.0, 3.0, 4.0];
        let dims = [2i64, 2];
        let mut t = std::ptr::null_mut();
        let ctx = 1000usize as *mut c_void;
        let before = RELEASED.load(Ordering::SeqCst);
        // Size mismatch, NULL release, STRING: refused, nothing released.
        assert_eq!(
            c2rs_tensor_wrap(
                1,
                dims.as_ptr(),
                2,
                buf.as_mut_ptr().cast(),
                12,
                Some(count_release),
                ctx,
                &mut t
            ),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_tensor_wrap(
                1,
                dims.as_ptr(),
                2,
                buf.as_mut_ptr().cast(),
                16,
                None,
                ctx,
                &mut t
            ),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_tensor_wrap(
                4,
                dims.as_ptr(),
                2,
                buf.as_mut_ptr().cast(),
                16,
                Some(count_release),
                ctx,
                &mut t
            ),
            C2RS_UNSUPPORTED
        );
        assert_eq!(
            c2rs_tensor_wrap(
                1,
                dims.as_ptr(),
                2,
                buf.as_mut_ptr().cast::<u8>().wrapping_add(1).cast(),
                16,
                Some(count_release),
                ctx,
                &mut t
            ),
            C2RS_INVALID_ARGUMENT
        );
        assert!(t.is_null());
        assert_eq!(
            RELEASED.load(Ordering::SeqCst),
            before,
            "failures release nothing"
        );
        assert_eq!(
            c2rs_tensor_wrap(
                1,
                dims.as_ptr(),
                2,
                buf.as_mut_ptr().cast(),
                16,
                Some(count_release),
                ctx,
                &mut t
            ),
            C2RS_OK
        );
        // SAFETY: a live handle made just above.
        let tensor = unsafe { &*(t as *const Tensor) };
        assert_eq!(tensor.typed::<f32>().unwrap(), &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(tensor.data_ptr().unwrap(), buf.as_ptr().cast(), "zero copy");
        let sharer = tensor.clone();
        free_tensor_handle(t);
        assert_eq!(
            RELEASED.load(Ordering::SeqCst),
            before,
            "a copy still shares the buffer"
        );
        drop(sharer);
        assert_eq!(
            RELEASED.load(Ordering::SeqCst),
            before + 1000,
            "released exactly once"
        );
    }
}
