//! Raw CPU element storage: 64-byte aligned allocations made here, or foreign buffers adopted
//! with a release callback (DLPack). A `Storage` is immutable in size and shared through
//! `Arc`; writers get exclusive access through `Tensor`'s copy-on-write.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::error::{C2rsError, Result};

/// Alignment of every allocation made here (Caffe2's CPU allocator used 64 bytes).
pub const ALIGNMENT: usize = 64;

/// Releases a foreign buffer; runs exactly once, when the last `Arc<Storage>` drops.
pub type Release = Box<dyn FnOnce() + Send + Sync>;

/// A C host's release callback and its argument (`c2rs_tensor_wrap`): a foreign buffer's
/// release without a boxed closure, so wrapping a host buffer allocates only the `Arc`.
#[derive(Clone, Copy)]
pub struct HostRelease {
    pub func: unsafe extern "C" fn(*mut std::ffi::c_void),
    pub ctx: *mut std::ffi::c_void,
}

enum Owner {
    /// Allocated here by `alloc_aligned(len)`, which returned `base` (freed with
    /// `dealloc_aligned(base, len)`); `None` exactly when `len == 0`.
    Aligned { base: Option<NonNull<u8>> },
    /// Owned by someone else; `Option` so that `Drop` can call the release once.
    Foreign {
        release: Option<Release>,
        read_only: bool,
    },
    /// Owned by a C host, released by its callback (`Option`: called once, by `Drop`).
    Host { release: Option<HostRelease> },
    /// Allocated here as `Aligned` (block `base`); offered back to the pool when dropped
    /// (freed if the pool is gone or full).
    Pooled {
        pool: Weak<BufferPool>,
        base: Option<NonNull<u8>>,
    },
}

/// Buffers up to this size are carved out of a plain (16-byte aligned) `malloc` block padded by
/// `SMALL_PAD` bytes instead of an aligned allocation: glibc's `memalign` path (before 2.38)
/// bypasses the thread cache, takes the arena lock and splits chunks, which cost more than the
/// rest of creating a small tensor. The padding is at most 48 bytes, ≤ 1.2 % of such a buffer.
const SMALL_ALLOC_MAX: usize = 4096;
/// `malloc` blocks are at least 16-byte aligned, so rounding up to `ALIGNMENT` skips at most this.
const SMALL_PAD: usize = ALIGNMENT - 16;

/// The layout `alloc_aligned(len)` asks the allocator for (`len > 0`).
fn aligned_layout(len: usize) -> Result<Layout> {
    let layout = if len <= SMALL_ALLOC_MAX {
        Layout::from_size_align(len + SMALL_PAD, 16)
    } else {
        Layout::from_size_align(len, ALIGNMENT)
    };
    layout.map_err(|_| {
        C2rsError::invalid_argument(format!("cannot allocate {len} bytes: size too large"))
    })
}

/// Allocates `len > 0` bytes aligned to `ALIGNMENT` (zero-filled when `zeroed`). Returns the
/// aligned pointer and the block's base, which `dealloc_aligned(base, len)` frees.
fn alloc_aligned(len: usize, zeroed: bool) -> Result<(NonNull<u8>, NonNull<u8>)> {
    let layout = aligned_layout(len)?;
    // SAFETY: `layout` has a non-zero size (`len > 0`) and a valid power-of-two alignment.
    let raw = unsafe {
        if zeroed {
            alloc::alloc_zeroed(layout)
        } else {
            alloc::alloc(layout)
        }
    };
    let base = NonNull::new(raw)
        .ok_or_else(|| C2rsError::internal(format!("out of memory allocating {len} bytes")))?;
    let offset = base.as_ptr().align_offset(ALIGNMENT);
    // `layout.align() == ALIGNMENT` gives offset 0; otherwise the block is 16-byte aligned, so
    // `offset <= SMALL_PAD` and `[base + offset, base + offset + len)` lies inside the block.
    if offset > layout.size() - len {
        // Unreachable by the allocator contract; refuse rather than hand out a short buffer.
        // SAFETY: `raw` was allocated just above with `layout`.
        unsafe { alloc::dealloc(raw, layout) };
        return Err(C2rsError::internal("allocator returned a misaligned block"));
    }
    // SAFETY: `offset <= layout.size() - len` (checked above), so the result is in the block
    // and non-null.
    let ptr = unsafe { NonNull::new_unchecked(raw.add(offset)) };
    Ok((ptr, base))
}

/// Frees a block from `alloc_aligned(len, _)`.
///
/// # Safety
/// `base` must be the base `alloc_aligned(len, _)` returned, not yet freed.
unsafe fn dealloc_aligned(base: NonNull<u8>, len: usize) {
    // The layout the block was allocated with: the same function, so the two never disagree.
    // It succeeded for this `len` then, so it cannot fail now; if it did, leaking beats
    // freeing with a wrong layout.
    let Ok(layout) = aligned_layout(len) else {
        return;
    };
    // SAFETY: `base` was allocated with `layout` (caller's contract).
    unsafe { alloc::dealloc(base.as_ptr(), layout) };
}

/// A fixed-size byte buffer.
///
/// Invariant: `ptr` is `None` exactly when `len == 0` for `Aligned`; a foreign buffer may have
/// a pointer with `len == 0` or no pointer at all (DLPack allows NULL for empty tensors).
pub struct Storage {
    ptr: Option<NonNull<u8>>,
    len: usize,
    owner: Owner,
}

// SAFETY: (1) `Storage` owns its bytes (or, for foreign buffers, holds the producer's exclusive
// grant of them, which DLPack hands over together with the deleter); nothing in it is tied to a
// thread. (2) Shared access only reads through `as_slice`; mutation goes through `&mut Storage`
// (exclusive, via `Arc::get_mut`) or through raw pointers the C host accepted responsibility for.
unsafe impl Send for Storage {}
// SAFETY: see `Send`; `&Storage` gives read-only access to plain bytes.
unsafe impl Sync for Storage {}

impl Storage {
    /// An empty storage (no bytes, nothing to release).
    pub fn empty() -> Self {
        Self {
            ptr: None,
            len: 0,
            owner: Owner::Aligned { base: None },
        }
    }

    /// A zero-filled, 64-byte aligned buffer of `len` bytes.
    pub fn zeroed(len: usize) -> Result<Self> {
        if len == 0 {
            return Ok(Self {
                ptr: None,
                len: 0,
                owner: Owner::Aligned { base: None },
            });
        }
        let (ptr, base) = alloc_aligned(len, true)?;
        Ok(Self {
            ptr: Some(ptr),
            len,
            owner: Owner::Aligned { base: Some(base) },
        })
    }

    /// An aligned copy of `bytes` (written once, never zero-filled first).
    pub fn copy_of(bytes: &[u8]) -> Result<Self> {
        let mut fill = SequentialFill::new(bytes.len())?;
        fill.push(bytes)?;
        fill.finish()
    }

    /// Adopts `len` bytes at `ptr`, owned elsewhere; `release` runs once when this storage drops.
    ///
    /// # Safety
    /// `ptr` must be valid for reads (and, unless `read_only`, writes) of `len` bytes until
    /// `release` runs, and nothing else may write to it meanwhile. `ptr` may be NULL only when
    /// `len == 0`.
    pub unsafe fn adopt(ptr: *mut u8, len: usize, read_only: bool, release: Release) -> Self {
        Self {
            ptr: NonNull::new(ptr),
            len,
            owner: Owner::Foreign {
                release: Some(release),
                read_only,
            },
        }
    }

    /// Adopts `len` writable bytes at `ptr` owned by a C host; `release.func(release.ctx)` runs
    /// once, when this storage drops, on whichever thread drops it.
    ///
    /// # Safety
    /// As `adopt` (writable, nothing else writes meanwhile); `release.func` must be safe to
    /// call once with `release.ctx` from any thread.
    #[inline]
    pub unsafe fn adopt_host(ptr: *mut u8, len: usize, release: HostRelease) -> Self {
        Self {
            ptr: NonNull::new(ptr),
            len,
            owner: Owner::Host {
                release: Some(release),
            },
        }
    }

    /// Releases an adopted host buffer now (its callback runs, once) and leaves the storage
    /// empty, owning nothing; `false` (nothing done) for any other storage.
    pub fn release_host(&mut self) -> bool {
        let Owner::Host { release } = &mut self.owner else {
            return false;
        };
        if let Some(r) = release.take() {
            // SAFETY: `adopt_host`'s contract: callable once with `ctx`, any thread; `take`
            // makes this the only call.
            unsafe { (r.func)(r.ctx) };
        }
        self.ptr = None;
        self.len = 0;
        true
    }

    /// Forgets a host release callback without calling it: the adoption was undone and the
    /// host keeps its buffer (`c2rs_tensor_wrap` failing after `adopt_host`).
    pub fn disown_host(&mut self) {
        if let Owner::Host { release } = &mut self.owner {
            *release = None;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether writers must copy first (an adopted buffer the producer marked read-only).
    pub fn is_read_only(&self) -> bool {
        matches!(
            self.owner,
            Owner::Foreign {
                read_only: true,
                ..
            }
        )
    }

    /// The first byte, or NULL for an empty buffer without a pointer.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
            .map_or(std::ptr::null(), |p| p.as_ptr() as *const u8)
    }

    /// Mutable pointer for hosts (C ABI); NULL for an empty buffer without a pointer.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.map_or(std::ptr::null_mut(), |p| p.as_ptr())
    }

    pub fn as_slice(&self) -> &[u8] {
        match self.ptr {
            // SAFETY: `ptr` is valid for `len` bytes for the life of `self` (invariant of the
            // constructors), and `&self` excludes writers through safe code.
            Some(p) if self.len > 0 => unsafe { std::slice::from_raw_parts(p.as_ptr(), self.len) },
            _ => &[],
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match self.ptr {
            // SAFETY: as in `as_slice`; `&mut self` makes this the only reference.
            Some(p) if self.len > 0 => unsafe {
                std::slice::from_raw_parts_mut(p.as_ptr(), self.len)
            },
            _ => &mut [],
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        match &mut self.owner {
            Owner::Aligned { base } => {
                if let Some(base) = base.take() {
                    // SAFETY: `base` came from `alloc_aligned(self.len, _)` (in `zeroed` or
                    // `SequentialFill::new`) and is freed only here.
                    unsafe { dealloc_aligned(base, self.len) };
                }
            }
            Owner::Foreign { release, .. } => {
                if let Some(release) = release.take() {
                    release();
                }
            }
            Owner::Host { release } => {
                if let Some(r) = release.take() {
                    // SAFETY: `adopt_host`'s contract: callable once with `ctx`, any thread.
                    unsafe { (r.func)(r.ctx) };
                }
            }
            Owner::Pooled { pool, base } => {
                if let (Some(p), Some(base)) = (self.ptr.take(), base.take()) {
                    BufferPool::give_back(pool, p, base, self.len);
                }
            }
        }
    }
}

/// A free allocation from `alloc_aligned(len, _)`: `(aligned start, block to free, len)`.
type FreeBuffer = (NonNull<u8>, NonNull<u8>, usize);

/// Aligned buffers given back by dropped storages, handed out again to `SequentialFill`s of
/// the same size: memory the process already touched, so refilling it costs no page faults
/// and no kernel zeroing (a fresh multi-megabyte allocation costs both, every time).
/// Holds at most `max` free buffers; the rest are freed.
pub struct BufferPool {
    /// Free allocations, owned by the pool.
    free: Mutex<Vec<FreeBuffer>>,
    max: usize,
}

// SAFETY: the pool owns the free allocations exclusively (no one else holds their pointers);
// plain bytes, nothing tied to a thread; access goes through the mutex.
unsafe impl Send for BufferPool {}
// SAFETY: as above.
unsafe impl Sync for BufferPool {}

impl BufferPool {
    /// A pool keeping at most `max` free buffers.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            free: Mutex::new(Vec::new()),
            max,
        })
    }

    /// Free buffers held now.
    pub fn free_buffers(&self) -> usize {
        self.free.lock().len()
    }

    /// The most recently given back buffer of `len` bytes (the likeliest still in cache).
    fn take(&self, len: usize) -> Option<(NonNull<u8>, NonNull<u8>)> {
        let mut free = self.free.lock();
        let i = free.iter().rposition(|&(_, _, l)| l == len)?;
        let (ptr, base, _) = free.remove(i);
        Some((ptr, base))
    }

    /// Keeps the allocation (`ptr` inside block `base` from `alloc_aligned(len, _)`, ownership
    /// passed in) when `pool` is alive and has room, else frees it.
    fn give_back(pool: &Weak<BufferPool>, ptr: NonNull<u8>, base: NonNull<u8>, len: usize) {
        if let Some(pool) = pool.upgrade() {
            let mut free = pool.free.lock();
            if free.len() < pool.max {
                free.push((ptr, base, len));
                return;
            }
        }
        // SAFETY: a block from `alloc_aligned(len, _)` (in `SequentialFill::new`), whose only
        // owner gave it up.
        unsafe { dealloc_aligned(base, len) };
    }
}

impl Drop for BufferPool {
    fn drop(&mut self) {
        for (_, base, len) in self.free.get_mut().drain(..) {
            // SAFETY: owned by the pool, a block from `alloc_aligned(len, _)`, freed once here.
            unsafe { dealloc_aligned(base, len) };
        }
    }
}

/// Fills a new aligned buffer front to back without zeroing it first: every byte is written
/// exactly once by `push`/`push_with`, and `finish` hands out the storage only when all `len`
/// bytes were written. Nothing reads the buffer before that, so no uninitialised byte is ever
/// observed. Used by batch assembly, where zero-filling would double the memory traffic.
pub struct SequentialFill {
    /// Aligned start of the buffer from `alloc_aligned(len, false)`; `None` when `len == 0`.
    ptr: Option<NonNull<u8>>,
    /// The block to free (`dealloc_aligned(base, len)`); `None` when `len == 0` or once
    /// `finish` handed the buffer to a `Storage`.
    base: Option<NonNull<u8>>,
    len: usize,
    /// Bytes `[0, written)` are initialised; only grows.
    written: usize,
    /// Where the finished storage's buffer goes back when it drops (`pooled`).
    pool: Option<Weak<BufferPool>>,
}

// SAFETY: the buffer is owned exclusively by this value; nothing in it is tied to a thread.
unsafe impl Send for SequentialFill {}

impl SequentialFill {
    pub fn new(len: usize) -> Result<Self> {
        if len == 0 {
            return Ok(Self {
                ptr: None,
                base: None,
                len: 0,
                written: 0,
                pool: None,
            });
        }
        let (ptr, base) = alloc_aligned(len, false)?;
        Ok(Self {
            ptr: Some(ptr),
            base: Some(base),
            len,
            written: 0,
            pool: None,
        })
    }

    /// As `new`, reusing a buffer of `len` bytes from `pool` when it has one; the finished
    /// storage gives its buffer back to `pool` when it drops.
    pub fn pooled(len: usize, pool: &Arc<BufferPool>) -> Result<Self> {
        let mut fill = match pool.take(len) {
            Some((ptr, base)) => Self {
                ptr: Some(ptr),
                base: Some(base),
                len,
                written: 0,
                pool: None,
            },
            None => Self::new(len)?,
        };
        if len > 0 {
            fill.pool = Some(Arc::downgrade(pool));
        }
        Ok(fill)
    }

    fn reserve_next(&self, n: usize) -> Result<*mut u8> {
        if n > self.len - self.written {
            return Err(C2rsError::internal(format!(
                "fill overflow: {n} bytes at {} of {}",
                self.written, self.len
            )));
        }
        Ok(match self.ptr {
            // SAFETY: `written + n <= len`, so the offset stays inside the allocation.
            Some(p) => unsafe { p.as_ptr().add(self.written) },
            None => std::ptr::NonNull::<u8>::dangling().as_ptr(),
        })
    }

    /// Appends a copy of `bytes`.
    pub fn push(&mut self, bytes: &[u8]) -> Result<()> {
        let dst = self.reserve_next(bytes.len())?;
        if !bytes.is_empty() {
            // SAFETY: `dst` is valid for `bytes.len()` writes (checked by `reserve_next`), and a
            // fresh allocation cannot overlap the caller's slice.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
        }
        self.written += bytes.len();
        Ok(())
    }

    /// Appends `n` bytes written by `fill` into a zeroed slice. On error nothing is appended.
    /// With `n == 0` there is nothing to write and `fill` is not called.
    pub fn push_with(
        &mut self,
        n: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<()>,
    ) -> Result<()> {
        let dst = self.reserve_next(n)?;
        if n > 0 {
            // SAFETY: `dst` is valid for `n` writes; zeroing initialises them before the slice
            // is created, and `&mut self` makes it the only reference.
            let region = unsafe {
                std::ptr::write_bytes(dst, 0, n);
                std::slice::from_raw_parts_mut(dst, n)
            };
            fill(region)?;
        }
        self.written += n;
        Ok(())
    }

    /// The filled storage; an error if any byte was left unwritten.
    pub fn finish(mut self) -> Result<Storage> {
        if self.written != self.len {
            return Err(C2rsError::internal(format!(
                "fill incomplete: {} of {} bytes",
                self.written, self.len
            )));
        }
        let base = self.base.take();
        let owner = match self.pool.take() {
            Some(pool) => Owner::Pooled { pool, base },
            None => Owner::Aligned { base },
        };
        let storage = Storage {
            ptr: self.ptr.take(),
            len: self.len,
            owner,
        };
        Ok(storage)
    }
}

impl Drop for SequentialFill {
    fn drop(&mut self) {
        if let Some(base) = self.base.take() {
            // SAFETY: from `alloc_aligned(self.len, _)` (in `new`, or taken from a pool, which
            // got it the same way); `finish` takes `base` out before the value drops, so a
            // finished buffer is not freed here.
            unsafe { dealloc_aligned(base, self.len) };
        }
    }
}

/// Element types whose bytes may be reinterpreted from aligned storage.
///
/// # Safety
/// Implementors must be plain-old-data: every bit pattern valid, no padding, no drop glue.
pub unsafe trait Pod: Copy + 'static {}
// SAFETY: primitive numbers; every bit pattern is a valid value, no padding.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for i8 {}
// SAFETY: as above.
unsafe impl Pod for u16 {}
// SAFETY: as above.
unsafe impl Pod for i16 {}
// SAFETY: as above.
unsafe impl Pod for i32 {}
// SAFETY: as above.
unsafe impl Pod for i64 {}
// SAFETY: as above.
unsafe impl Pod for f32 {}
// SAFETY: as above.
unsafe impl Pod for f64 {}

/// Views `bytes` as `&[T]`; `None` when the length or the alignment does not fit `T`.
pub fn cast_slice<T: Pod>(bytes: &[u8]) -> Option<&[T]> {
    let size = std::mem::size_of::<T>();
    if bytes.is_empty() {
        return Some(&[]);
    }
    if bytes.len() % size != 0 || (bytes.as_ptr() as usize) % std::mem::align_of::<T>() != 0 {
        return None;
    }
    // SAFETY: length and alignment checked above; `T: Pod` accepts every bit pattern; the
    // lifetime is that of `bytes`.
    Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const T, bytes.len() / size) })
}

/// Views `bytes` as `&mut [T]`; `None` when the length or the alignment does not fit `T`.
pub fn cast_slice_mut<T: Pod>(bytes: &mut [u8]) -> Option<&mut [T]> {
    let size = std::mem::size_of::<T>();
    if bytes.is_empty() {
        return Some(&mut []);
    }
    if bytes.len() % size != 0 || (bytes.as_ptr() as usize) % std::mem::align_of::<T>() != 0 {
        return None;
    }
    // SAFETY: as in `cast_slice`, with exclusivity inherited from `&mut bytes`.
    Some(unsafe {
        std::slice::from_raw_parts_mut(bytes.as_mut_ptr() as *mut T, bytes.len() / size)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn zeroed_storage_is_aligned_and_zero() {
        // Both allocation paths: padded malloc (<= SMALL_ALLOC_MAX) and aligned allocation.
        for len in [1usize, 3, 64, 65, 4096, 4097, 100_000] {
            let s = Storage::zeroed(len).unwrap();
            assert_eq!(s.as_ptr() as usize % ALIGNMENT, 0);
            assert!(s.as_slice().iter().all(|&b| b == 0));
            assert_eq!(s.len(), len);
        }
        assert!(Storage::zeroed(0).unwrap().as_ptr().is_null());
    }

    /// Up to `SMALL_ALLOC_MAX` bytes a plain malloc block padded by 48 bytes, above it an
    /// exact aligned allocation: the overhead the module documents.
    #[test]
    fn small_buffers_take_padded_malloc_blocks_and_large_ones_exact_aligned_blocks() {
        let layout = |len| {
            let l = aligned_layout(len).unwrap();
            (l.size(), l.align())
        };
        assert_eq!(layout(1), (49, 16));
        assert_eq!(layout(SMALL_ALLOC_MAX), (SMALL_ALLOC_MAX + 48, 16));
        assert_eq!(
            layout(SMALL_ALLOC_MAX + 1),
            (SMALL_ALLOC_MAX + 1, ALIGNMENT)
        );
        assert!(aligned_layout(usize::MAX - 8).is_err());
    }

    #[test]
    fn filled_storage_is_aligned_on_both_allocation_paths() {
        for len in [1usize, 48, 4096, 4097, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let s = Storage::copy_of(&bytes).unwrap();
            assert_eq!(s.as_ptr() as usize % ALIGNMENT, 0);
            assert_eq!(s.as_slice(), &bytes[..]);
        }
        // An unfinished fill frees its block (checked by Miri / ASan builds).
        let mut f = SequentialFill::new(100).unwrap();
        f.push(&[1; 10]).unwrap();
        drop(f);
    }

    #[test]
    fn adopted_storage_releases_exactly_once_after_last_owner() {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut backing = vec![1u8, 2, 3];
        let c = calls.clone();
        // SAFETY: `backing` outlives the storage (the storage drops inside this test first).
        let s = Arc::new(unsafe {
            Storage::adopt(
                backing.as_mut_ptr(),
                3,
                false,
                Box::new(move || {
                    c.fetch_add(1, Ordering::SeqCst);
                }),
            )
        });
        let s2 = s.clone();
        drop(s);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert_eq!(s2.as_slice(), &[1, 2, 3]);
        drop(s2);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn sequential_fill_hands_out_storage_only_when_complete() {
        let mut f = SequentialFill::new(6).unwrap();
        f.push(&[1, 2]).unwrap();
        f.push_with(3, |d| {
            d.copy_from_slice(&[3, 4, 5]);
            Ok(())
        })
        .unwrap();
        assert!(f.push(&[6, 7]).is_err(), "overflow is refused");
        f.push_with(0, |_| Err(C2rsError::internal("called for no bytes")))
            .unwrap();
        assert!(
            f.push_with(1, |_| Err(C2rsError::internal("refused")))
                .is_err(),
            "a failed fill appends nothing"
        );
        f.push(&[6]).unwrap();
        let s = f.finish().unwrap();
        assert_eq!(s.as_slice(), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(s.as_ptr() as usize % ALIGNMENT, 0);
        let mut g = SequentialFill::new(4).unwrap();
        g.push(&[1]).unwrap();
        assert!(
            g.finish().is_err(),
            "an incomplete fill is never handed out"
        );
        assert!(SequentialFill::new(0).unwrap().finish().unwrap().is_empty());
        assert!(!Storage::copy_of(&[7]).unwrap().is_empty());
    }

    #[test]
    fn cast_slices_check_length_and_alignment() {
        let s = Storage::copy_of(&[0, 0, 128, 63, 0, 0, 0, 64]).unwrap();
        assert_eq!(cast_slice::<f32>(s.as_slice()).unwrap(), &[1.0f32, 2.0]);
        assert!(cast_slice::<f32>(&s.as_slice()[..7]).is_none());
        assert!(cast_slice::<f32>(&s.as_slice()[1..5]).is_none());
        let mut m = Storage::copy_of(&[0, 0, 128, 63, 0, 0, 0, 64, 0]).unwrap();
        let bytes = m.as_mut_slice();
        cast_slice_mut::<f32>(&mut bytes[..8]).unwrap()[1] = 3.0;
        assert_eq!(&bytes[4..8], &3.0f32.to_le_bytes());
        assert!(cast_slice_mut::<f32>(&mut bytes[..7]).is_none(), "length");
        assert!(
            cast_slice_mut::<f32>(&mut bytes[1..5]).is_none(),
            "alignment"
        );
        assert!(cast_slice_mut::<f32>(&mut bytes[1..8]).is_none(), "both");
        assert!(cast_slice_mut::<f32>(&mut bytes[..0]).unwrap().is_empty());
    }

    #[test]
    fn pooled_buffers_come_back_for_fills_of_their_size_up_to_the_pool_limit() {
        let filled = |pool: &Arc<BufferPool>, len: usize, byte: u8| {
            let mut f = SequentialFill::pooled(len, pool).unwrap();
            f.push(&vec![byte; len]).unwrap();
            f.finish().unwrap()
        };
        let pool = BufferPool::new(2);
        let a = filled(&pool, 4096, 1);
        let b = filled(&pool, 4096, 2);
        let c = filled(&pool, 4096, 3);
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        drop((a, b, c));
        assert_eq!(
            pool.free_buffers(),
            2,
            "the third buffer is freed, not kept"
        );
        // Same size: a kept buffer, refilled with the new bytes; another size: a fresh one.
        let d = filled(&pool, 4096, 4);
        assert!(d.as_ptr() == pa || d.as_ptr() == pb);
        assert_eq!(d.as_slice(), &[4u8; 4096][..]);
        assert_eq!(d.as_ptr() as usize % ALIGNMENT, 0);
        let e = filled(&pool, 100, 5);
        assert_eq!((pool.free_buffers(), e.as_slice()), (1, &[5u8; 100][..]));
        // An unfinished fill frees its buffer; storages outliving the pool free theirs.
        let mut f = SequentialFill::pooled(4096, &pool).unwrap();
        f.push(&[1]).unwrap();
        drop(f);
        assert_eq!(pool.free_buffers(), 0);
        drop(pool);
        assert_eq!(d.as_slice()[0], 4);
        drop((d, e));
    }
}
