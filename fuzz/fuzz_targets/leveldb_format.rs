//! Selector byte + a LevelDB table, log or MANIFEST through the checks every LevelDB file
//! passes before it is read (see `caffe2rs_fuzz::formats`).
#![no_main]

caffe2rs_fuzz::asan_options!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    caffe2rs_fuzz::run_target("leveldb_format", data);
});
