//! Every byte a storage, a fill or a buffer pool takes from the allocator goes back to it:
//! checked with a counting global allocator, per thread, so that the test harness's own
//! allocations on other threads do not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use caffe2rs::tensor::{BufferPool, SequentialFill, Storage};

/// The system allocator, counting the bytes each thread holds.
struct Counting;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread (frees of another thread's blocks
    /// count where they happen; this test frees on the thread that allocated).
    static HELD: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: no count during the thread's own teardown.
    let _ = HELD.try_with(|h| h.set(h.get() + delta));
}

// SAFETY: forwards every call to `System` unchanged; the counting touches only a const
// thread-local cell (no allocation, no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes this thread holds after running `f`, less those it held before.
fn held_by(f: impl FnOnce()) -> isize {
    let before = HELD.with(Cell::get);
    f();
    HELD.with(Cell::get) - before
}

fn filled(len: usize, pool: &Arc<BufferPool>) -> Storage {
    let mut fill = SequentialFill::pooled(len, pool).unwrap();
    fill.push(&vec![7u8; len]).unwrap();
    fill.finish().unwrap()
}

#[test]
fn storages_fills_and_pools_give_back_every_byte() {
    // Both allocation paths (small padded blocks, large aligned ones).
    for len in [1usize, 4096, 4097, 1 << 20] {
        assert_eq!(
            held_by(|| drop(Storage::copy_of(&vec![1u8; len]).unwrap())),
            0
        );
        assert_eq!(held_by(|| drop(Storage::zeroed(len).unwrap())), 0);
    }
    // A fill dropped before it was finished frees its block.
    let unfinished = held_by(|| {
        let mut fill = SequentialFill::new(10_000).unwrap();
        fill.push(&[1; 100]).unwrap();
    });
    assert_eq!(unfinished, 0);
    // A pool keeps the buffers of dropped storages (at most `max`) and frees them when it
    // drops itself.
    let mut kept = 0;
    let total = held_by(|| {
        let pool = BufferPool::new(2);
        let storages: Vec<Storage> = (0..3).map(|_| filled(50_000, &pool)).collect();
        kept = held_by(|| drop(storages));
        assert_eq!(pool.free_buffers(), 2);
        // A new fill of that size takes a kept buffer instead of allocating.
        let reused = held_by(|| drop(filled(50_000, &pool)));
        assert_eq!(reused, 0);
        assert_eq!(pool.free_buffers(), 2);
    });
    assert!(kept < 0, "the third buffer was freed");
    assert_eq!(total, 0, "the pool freed the buffers it kept");
}
