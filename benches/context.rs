//! CPU part of the context benchmark: allocate-and-copy through the C ABI
//! (`c2rs_context_alloc` + `c2rs_context_copy_bytes` + deleter) against the same work done with
//! `posix_memalign` + `memcpy` + `free` directly, in one run, reported as a ratio. The GPU part
//! (pinned H2D/D2H vs `cudaMemcpyAsync`) needs a device and is not here.
//!
//! Run: `cargo bench --bench context` (sizes 4 KiB .. 64 MiB).

use std::ffi::c_void;
use std::hint::black_box;
use std::time::{Duration, Instant};

use caffe2rs::ffi::context::*;

fn time_per_iter(mut f: impl FnMut(), min_time: Duration) -> f64 {
    f();
    let mut iters = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        let elapsed = start.elapsed();
        if elapsed >= min_time {
            return elapsed.as_secs_f64() / iters as f64;
        }
        iters *= 2;
    }
}

fn main() {
    let ctx = {
        let mut c = std::ptr::null_mut();
        assert_eq!(c2rs_context_new(std::ptr::null(), 0, &mut c), 0);
        c
    };
    println!(
        "{:>10} {:>14} {:>14} {:>8} {:>12}",
        "bytes", "c2rs (us)", "memcpy (us)", "ratio", "c2rs GB/s"
    );
    for &n in &[4usize << 10, 256 << 10, 4 << 20, 64 << 20] {
        let src: Vec<u8> = (0..n).map(|i| i as u8).collect();
        let ours = time_per_iter(
            || {
                let mut p = std::ptr::null_mut();
                let mut d = None;
                assert_eq!(c2rs_context_alloc(ctx, n, &mut p, &mut d), 0);
                assert_eq!(
                    c2rs_context_copy_bytes(ctx, n, src.as_ptr() as *const c_void, p),
                    0
                );
                black_box(p);
                // SAFETY: freed once with its deleter.
                unsafe { d.unwrap()(p) };
            },
            Duration::from_millis(300),
        );
        let baseline = time_per_iter(
            || {
                let mut p: *mut c_void = std::ptr::null_mut();
                // SAFETY: valid out-pointer, power-of-two alignment; freed below. Zero-filled
                // like the default CPU allocator so both do the same work.
                unsafe {
                    assert_eq!(libc::posix_memalign(&mut p, 64, n), 0);
                    std::ptr::write_bytes(p as *mut u8, 0, n);
                    libc::memcpy(p, src.as_ptr() as *const c_void, n);
                    black_box(p);
                    libc::free(p);
                }
            },
            Duration::from_millis(300),
        );
        println!(
            "{:>10} {:>14.2} {:>14.2} {:>8.3} {:>12.2}",
            n,
            ours * 1e6,
            baseline * 1e6,
            ours / baseline,
            n as f64 / ours / 1e9
        );
    }
    c2rs_context_free(ctx);
}
