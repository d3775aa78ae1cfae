//! Flags + length-prefixed NetDef + TensorShapes into every memonger entry point (see
//! `caffe2rs_fuzz::memonger`).
#![no_main]

caffe2rs_fuzz::asan_options!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caffe2rs_fuzz::run_target("memonger", data);
});
