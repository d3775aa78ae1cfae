//! Flags byte + a minidb file through the in-memory record parser and the batch assembler
//! (see `caffe2rs_fuzz::formats`).
#![no_main]

caffe2rs_fuzz::asan_options!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caffe2rs_fuzz::run_target("minidb_format", data);
});
