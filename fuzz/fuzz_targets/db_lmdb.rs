//! Flags byte + an LMDB `data.mdb` through every DB reader (see `caffe2rs_fuzz::db`).
#![no_main]

caffe2rs_fuzz::asan_options!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caffe2rs_fuzz::run_target("db_lmdb", data);
});
