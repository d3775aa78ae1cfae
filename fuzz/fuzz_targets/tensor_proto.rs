//! Raw bytes as a TensorProto and as a TensorProtos (see `caffe2rs_fuzz::tensor`).
#![no_main]

caffe2rs_fuzz::asan_options!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caffe2rs_fuzz::run_target("tensor_proto", data);
});
