//! Flags byte + a minidb file through every DB reader (see `caffe2rs_fuzz::db`).
#![no_main]

use caffe2rs_fuzz::db::{Format, run};

caffe2rs_fuzz::asan_options!();

libfuzzer_sys::fuzz_target!(|data: &[u8]| run(Format::MiniDb, data));
