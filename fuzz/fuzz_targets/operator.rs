//! OperatorDef bytes through `c2rs_workspace_run_operator_once` in a workspace holding
//! tensors, queues and DB readers (see `caffe2rs_fuzz::operator`).
#![no_main]

caffe2rs_fuzz::asan_options!(caller_sized);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caffe2rs_fuzz::run_target("operator", data);
});
