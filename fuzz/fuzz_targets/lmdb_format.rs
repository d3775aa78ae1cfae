//! Flags byte + an LMDB `data.mdb` through the in-memory LMDB reader (see
//! `caffe2rs_fuzz::formats`).
#![no_main]

caffe2rs_fuzz::asan_options!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caffe2rs_fuzz::run_target("lmdb_format", data);
});
