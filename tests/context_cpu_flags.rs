//! The process-wide CPU allocator flags (zero fill, usage reporting). One test, in its own
//! binary, because the flags are global.

mod context_common;

use caffe2rs::ffi::context::*;
use context_common::*;

#[test]
fn zero_fill_is_on_by_default_and_reporter_totals_return_to_zero() {
    let ctx = cpu_context(None);
    // Zero fill: dirty a block, free it, allocate again: whatever block comes back is zeroed.
    for _ in 0..8 {
        let mut p = std::ptr::null_mut();
        let mut d = None;
        assert_eq!(c2rs_context_alloc(ctx, 4096, &mut p, &mut d), 0);
        // SAFETY: 4096 bytes just allocated.
        let bytes = unsafe { std::slice::from_raw_parts_mut(p as *mut u8, 4096) };
        assert!(bytes.iter().all(|&b| b == 0));
        bytes.fill(0xab);
        // SAFETY: freed once with its deleter.
        unsafe { d.unwrap()(p) };
    }

    assert_eq!(c2rs_context_cpu_reported_bytes(), 0);
    c2rs_context_cpu_set_report_usage(true);
    let mut blocks = Vec::new();
    for n in [10usize, 100, 1000] {
        let mut p = std::ptr::null_mut();
        let mut d = None;
        assert_eq!(c2rs_context_alloc(ctx, n, &mut p, &mut d), 0);
        blocks.push((p, d));
    }
    assert_eq!(c2rs_context_cpu_reported_bytes(), 1110);
    c2rs_context_cpu_set_report_usage(false);
    for (p, d) in blocks {
        // SAFETY: freed once with its deleter (the reporting one: still counts down).
        unsafe { d.unwrap()(p) };
    }
    assert_eq!(c2rs_context_cpu_reported_bytes(), 0);
    let name = unsafe { std::ffi::CStr::from_ptr(c2rs_context_cpu_allocator_name()) };
    assert_eq!(name.to_str().unwrap(), "default");
    c2rs_context_free(ctx);
}
