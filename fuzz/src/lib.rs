//! Harness code shared by the caffe2rs fuzz targets (one file per target family) and by the
//! seed generator. Everything goes through the library's C ABI, exactly as a C host calls it:
//! the fuzz input is what a host or a file could hand the library.
//!
//! A finding is anything the C ABI promises never to do: a crash or abort, a hang, memory
//! beyond the input's real content (the targets run with a 64 MiB cap on one allocation, see
//! [`asan_options!`]), C2RS_PANIC, and C2RS_INTERNAL other than an out-of-memory for a size the
//! caller asked for. The harness turns each status it gets into a verdict with [`check`] and
//! aborts on a finding, so that libFuzzer records the input.
//!
//! Most of the harness (the data flow the byte-level targets use: the in-memory format
//! targets go through doc-hidden Rust entry points instead) does not depend on libFuzzer:
//! `tests/hostile_replay.rs` includes this crate's sources to replay the reproducers under
//! `tests/data/hostile/<target>/` through [`run_target`], with the same verdicts.

pub mod check;
pub mod db;
pub mod defs;
pub mod formats;
pub mod memonger;
pub mod operator;
pub mod plan;
pub mod scratch;
pub mod seeds;
pub mod tensor;

/// Every fuzz target, in the order `scripts/fuzz.sh all` runs them (its `TARGETS`); each has
/// a folder of reproducers of the same name under `tests/data/hostile/`.
pub const TARGETS: [&str; 10] = [
    "tensor_proto",
    "minidb_format",
    "lmdb_format",
    "leveldb_format",
    "memonger",
    "db_minidb",
    "db_lmdb",
    "db_leveldb",
    "operator",
    "plan",
];

/// Runs one input through fuzz target `target`'s harness, as its binary does (a finding
/// aborts the process). False when there is no such target.
pub fn run_target(target: &str, data: &[u8]) -> bool {
    match target {
        "tensor_proto" => tensor::run(data),
        "minidb_format" => formats::minidb(data),
        "lmdb_format" => formats::lmdb(data),
        "leveldb_format" => formats::leveldb(data),
        "memonger" => memonger::run(data),
        "db_minidb" => db::run(db::Format::MiniDb, data),
        "db_lmdb" => db::run(db::Format::Lmdb, data),
        "db_leveldb" => db::run(db::Format::LevelDb, data),
        "operator" => operator::run(data),
        "plan" => plan::run(data),
        _ => return false,
    }
    true
}

/// Defines `__asan_default_options` for a target binary: the sanitizer settings every run of
/// that binary gets (`cargo fuzz run`, scripts/fuzz.sh, a direct replay), so that a replayed
/// artifact meets the same limits as the run that found it. `ASAN_OPTIONS` still overrides.
///
/// `max_allocation_size_mb=64` caps one allocation at 64 MiB: no input below 1 MiB may make
/// the library allocate that much unless the caller's own arguments ask for it (issue 11's
/// memory bound).
///
/// - `asan_options!()`, for the byte-level targets, where nothing the caller passes asks for a
///   size: an allocation above the cap is a sanitizer error (allocation-size-too-big), with the
///   stack of the allocation, whatever status the library would have made of a failure.
/// - `asan_options!(caller_sized)`, for the operator target, where an argument (a
///   ConstantFill `shape`) is the caller asking: `allocator_may_return_null=1` hands the
///   library NULL above the cap, and its fallible paths must answer "out of memory" with a
///   status (an infallible one aborts: a finding).
///
/// `detect_odr_violation=0` as cargo-fuzz sets it (Rust crates trip it spuriously).
#[macro_export]
macro_rules! asan_options {
    () => {
        $crate::asan_options!(@define c"max_allocation_size_mb=64:allocator_may_return_null=0:detect_odr_violation=0");
    };
    (caller_sized) => {
        $crate::asan_options!(@define c"max_allocation_size_mb=64:allocator_may_return_null=1:detect_odr_violation=0");
    };
    (@define $options:literal) => {
        /// Read by the AddressSanitizer runtime at start-up (see `caffe2rs_fuzz::asan_options!`).
        #[unsafe(no_mangle)]
        pub extern "C" fn __asan_default_options() -> *const ::std::ffi::c_char {
            $options.as_ptr()
        }
    };
}
