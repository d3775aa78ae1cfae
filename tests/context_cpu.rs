//! CPU context through the C ABI. Ported from Caffe2 `caffe2/core/context_test.cc`
//! (TestAllocAlignment with 64 instead of 32 bytes, TestAllocDealloc) and
//! `context_gpu_test.cc` (HasCudaRuntime, TestSetGetDevice* — vacuous without devices), plus
//! the spec's derived cases (seeded MT19937, copies, no-GPU behaviour).

mod context_common;

use std::ffi::c_void;

use caffe2rs::context::mt19937::Mt19937;
use caffe2rs::ffi::context::*;
use context_common::*;

fn alloc(ctx: *const caffe2rs::ffi::handle::c2rs_context, n: usize) -> (*mut c_void, c2rs_deleter) {
    let mut p = std::ptr::null_mut();
    let mut d = None;
    assert_eq!(
        c2rs_context_alloc(ctx, n, &mut p, &mut d),
        0,
        "{}",
        last_error()
    );
    assert!(!p.is_null());
    (p, d)
}

fn free(p: *mut c_void, d: c2rs_deleter) {
    // SAFETY: `p` came with this deleter and is freed once.
    unsafe { d.expect("deleter")(p) };
}

#[test]
fn cpu_allocations_are_64_byte_aligned() {
    let ctx = cpu_context(None);
    for i in 0..=9 {
        let (p, d) = alloc(ctx, i);
        assert_eq!(p as usize % 64, 0, "size {i}");
        free(p, d);
    }
    c2rs_context_free(ctx);
}

#[test]
fn alloc_then_copy_floats_between_allocations() {
    let ctx = cpu_context(None);
    let (a, da) = alloc(ctx, 10 * 4);
    let (b, db) = alloc(ctx, 10 * 4);
    // SAFETY: both hold 10 floats.
    let (fa, fb) = unsafe {
        (
            std::slice::from_raw_parts_mut(a as *mut f32, 10),
            std::slice::from_raw_parts_mut(b as *mut f32, 10),
        )
    };
    for (i, v) in fa.iter_mut().enumerate() {
        *v = i as f32;
    }
    assert_eq!(
        c2rs_context_copy_items(ctx, 1, 10, a, b),
        0,
        "{}",
        last_error()
    );
    for (i, v) in fb.iter().enumerate() {
        assert_eq!(*v, i as f32);
    }
    free(a, da);
    free(b, db);
    c2rs_context_free(ctx);
}

#[test]
fn has_cuda_runtime_follows_the_build_feature() {
    assert_eq!(c2rs_cuda_has_runtime(), cfg!(feature = "cuda"));
}

#[test]
fn set_then_get_device_round_trips_for_every_device() {
    set_then_get_every_device();
}

#[test]
fn seeded_context_draws_the_mt19937_sequence_of_its_seed() {
    let ctx = cpu_context(Some(1701));
    let mut seed = 0;
    assert_eq!(c2rs_context_random_seed(ctx, &mut seed), 0);
    assert_eq!(seed, 1701);
    let mut drawn = [0u32; 700];
    assert_eq!(c2rs_context_rand_u32(ctx, drawn.as_mut_ptr(), 300), 0);
    assert_eq!(
        c2rs_context_rand_u32(ctx, drawn[300..].as_mut_ptr(), 400),
        0
    );
    let mut reference = Mt19937::new(1701);
    let expected: Vec<u32> = (0..700).map(|_| reference.next_u32()).collect();
    assert_eq!(drawn.to_vec(), expected);
    c2rs_context_free(ctx);
}

#[test]
fn default_seed_5489_gives_the_standard_first_output() {
    let ctx = cpu_context(Some(5489));
    let mut v = 0u32;
    assert_eq!(c2rs_context_rand_u32(ctx, &mut v, 1), 0);
    assert_eq!(v, 3_499_211_612);
    c2rs_context_free(ctx);
}

#[test]
fn unseeded_contexts_get_different_seeds() {
    let a = cpu_context(None);
    let b = cpu_context(None);
    let (mut sa, mut sb) = (0, 0);
    assert_eq!(c2rs_context_random_seed(a, &mut sa), 0);
    assert_eq!(c2rs_context_random_seed(b, &mut sb), 0);
    assert_ne!(sa, sb);
    assert_ne!(
        c2rs_context_random_number_seed(),
        c2rs_context_random_number_seed()
    );
    c2rs_context_free(a);
    c2rs_context_free(b);
}

#[test]
fn zero_byte_copy_accepts_null_and_null_with_bytes_is_an_enforce() {
    let ctx = cpu_context(None);
    assert_eq!(
        c2rs_context_copy_bytes(ctx, 0, std::ptr::null(), std::ptr::null_mut()),
        0
    );
    let mut dst = [0u8; 4];
    assert_eq!(
        c2rs_context_copy_bytes(ctx, 4, std::ptr::null(), dst.as_mut_ptr() as *mut c_void),
        1
    );
    assert!(last_error().starts_with("c2rs_context_copy_bytes: CopyBytes of 4 bytes"));
    let src = [1u8, 2, 3, 4];
    assert_eq!(
        c2rs_context_copy_bytes(
            ctx,
            4,
            src.as_ptr() as *const c_void,
            dst.as_mut_ptr() as *mut c_void
        ),
        0
    );
    assert_eq!(dst, src);
    assert_eq!(
        c2rs_context_copy_items(
            ctx,
            4,
            1,
            src.as_ptr() as *const c_void,
            dst.as_mut_ptr() as *mut c_void
        ),
        7,
        "STRING items have no byte copy"
    );
    c2rs_context_free(ctx);
}

#[test]
fn cpu_switch_and_finish_are_no_ops_and_capabilities_match_caffe2() {
    let ctx = cpu_context(None);
    assert_eq!(c2rs_context_switch_to_device(ctx, 5), 0);
    assert_eq!(c2rs_context_finish_device_computation(ctx), 0);
    let mut b = true;
    assert_eq!(c2rs_context_has_async_part(0, &mut b), 0);
    assert!(!b);
    assert_eq!(c2rs_context_supports_async_scheduling(0, &mut b), 0);
    assert!(!b);
    assert_eq!(c2rs_context_has_async_part(1, &mut b), 0);
    assert!(b);
    let opt = option_bytes(0, None, None);
    b = false;
    assert_eq!(
        c2rs_context_is_stream_free(opt.as_ptr(), opt.len(), 3, &mut b),
        0
    );
    assert!(b);
    let mut t = -1;
    assert_eq!(c2rs_context_device_type(ctx, &mut t), 0);
    assert_eq!(t, 0);
    c2rs_context_free(ctx);
}

#[test]
fn mkldnn_option_makes_a_cpu_context_and_opengl_is_not_registered() {
    let ctx = new_context(&option_bytes(2, None, Some(1)));
    let mut t = -1;
    assert_eq!(c2rs_context_device_type(ctx, &mut t), 0);
    assert_eq!(t, 0);
    c2rs_context_free(ctx);
    let opt = option_bytes(3, None, None);
    let mut out = std::ptr::null_mut();
    assert_eq!(c2rs_context_new(opt.as_ptr(), opt.len(), &mut out), 1);
    assert!(
        last_error().ends_with("Device type 3 not registered."),
        "{}",
        last_error()
    );
}

#[test]
fn same_device_compares_type_id_node_and_numa_but_not_seed() {
    let a = option_bytes(1, Some(0), Some(1));
    let b = option_bytes(1, Some(0), Some(2));
    let c = option_bytes(1, Some(1), Some(1));
    let mut same = false;
    assert_eq!(
        c2rs_context_is_same_device(a.as_ptr(), a.len(), b.as_ptr(), b.len(), &mut same),
        0
    );
    assert!(same);
    assert_eq!(
        c2rs_context_is_same_device(a.as_ptr(), a.len(), c.as_ptr(), c.len(), &mut same),
        0
    );
    assert!(!same);
}

#[test]
fn cpu_context_has_no_cuda_handles() {
    let ctx = cpu_context(None);
    let mut p = std::ptr::null_mut();
    assert_eq!(c2rs_context_cuda_stream(ctx, &mut p), 7);
    assert_eq!(c2rs_context_curand_generator(ctx, &mut p), 7);
    let mut g = 0;
    assert_eq!(c2rs_context_gpu_id(ctx, &mut g), 7);
    c2rs_context_free(ctx);
}
