//! PlanDef bytes through `c2rs_workspace_run_plan` in a workspace holding tensors, queues and
//! DB readers, cancelled by a watchdog (see `caffe2rs_fuzz::plan`).
#![no_main]

caffe2rs_fuzz::asan_options!(caller_sized);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caffe2rs_fuzz::run_target("plan", data);
});
