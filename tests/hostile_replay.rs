//! Replays every reproducer under tests/data/hostile (issue 11; format in its README.md)
//! through every path the README lists for its folder, each (file, path) in a child process:
//! a crash, an abort or a hang fails that case instead of killing the test runner, and the
//! child's address space is limited so an allocation the input does not back fails there.
//! Reproducers added later are picked up from the folders; a file that cannot be classified
//! fails `every_hostile_file_is_classified_and_every_expectation_names_one`.
//!
//! Every folder named after a fuzz target is also replayed through that target's harness
//! (`ReadPath::FuzzTarget`): the sources of `fuzz/src` are compiled into this test, so a
//! reproducer meets exactly the checks of the fuzzing run that found it, and, as in the fuzz
//! build (ASan's `max_allocation_size_mb=64`), no single allocation above 64 MiB succeeds in
//! such a child (`CappedAllocator`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

mod support;
use support::child;
use support::hostile::{self, Answer, ReadPath, Reproducer};

/// The fuzz harness (fuzz/src), as a module of this test. Its files name each other through
/// `crate::<module>`, hence the re-exports at this crate's root.
#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code, unused_imports)]
mod caffe2rs_fuzz;
#[allow(unused_imports)]
use caffe2rs_fuzz::{check, db, defs, formats, memonger, operator, plan, scratch, seeds, tensor};

/// One allocation the fuzz build refuses: above 64 MiB.
const ALLOCATION_CAP: usize = 64 << 20;
/// Set (once, in a child replaying through a fuzz harness) to refuse allocations above
/// `ALLOCATION_CAP`; never cleared. Relaxed: it is set before the replay starts any thread.
static CAP_ALLOCATIONS: AtomicBool = AtomicBool::new(false);

/// The system allocator, answering NULL above `ALLOCATION_CAP` once `CAP_ALLOCATIONS` is set:
/// an infallible allocation then aborts (a crash, as ASan's allocation-size-too-big is), a
/// fallible one becomes the library's "out of memory" status (a finding unless the caller's
/// arguments asked for it, as in the fuzz build).
struct CappedAllocator;

fn refused(size: usize) -> bool {
    size > ALLOCATION_CAP && CAP_ALLOCATIONS.load(Ordering::Relaxed)
}

// SAFETY: every call is forwarded unchanged to the system allocator, or answered with NULL,
// which the GlobalAlloc contract allows for any allocation.
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if refused(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if refused(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if refused(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CappedAllocator = CappedAllocator;

const REPLAY: &str = "hostile_reproducers_answer_with_a_status_through_every_path";
const RUNNER: &str = "child_runner_reports_aborts_hangs_and_reports";
/// Generous for a debug build on a loaded machine; a fixed library answers in milliseconds.
const TIMEOUT: Duration = Duration::from_secs(60);

/// In a child: runs case `<path>:<reproducer>` and reports its answer.
fn replay_one(case: &str) {
    let (path, rel) = case.split_once(':').expect("case is <path>:<file>");
    let path = ReadPath::from_name(path).expect("known path");
    let rep = Reproducer::find(rel);
    if path == ReadPath::FuzzTarget {
        let target = rep.target.expect("a fuzz target's folder");
        let data = std::fs::read(rep.path()).expect("read reproducer");
        CAP_ALLOCATIONS.store(true, Ordering::Relaxed);
        // A finding aborts this child (the parent reports its FINDING line).
        assert!(
            caffe2rs_fuzz::run_target(target, &data),
            "no target {target}"
        );
        child::report("status", "0");
        child::report("message", "");
        return;
    }
    let a = hostile::run_reproducer(&rep, path);
    child::report("status", &a.status.to_string());
    child::report("message", &a.message);
    if let Some(seek) = a.seek {
        child::report("seek", &seek.to_string());
    }
}

/// Replays the reproducers `select` picks in children of test `test`; fails listing every
/// case that crashed, hung or answered wrongly.
fn replay(test: &str, select: impl Fn(&Reproducer) -> bool) {
    let reps: Vec<Reproducer> = hostile::reproducers().into_iter().filter(select).collect();
    assert!(!reps.is_empty(), "no reproducers selected");
    let mut failures = Vec::new();
    for rep in &reps {
        for path in rep.paths() {
            let case = format!("{}:{}", path.name(), rep.rel);
            let out = child::run(test, &case, TIMEOUT, &[]);
            if !out.passed() {
                failures.push(format!(
                    "{case}: the child did not finish: {}",
                    out.describe()
                ));
                continue;
            }
            let got = Answer {
                status: out.get("status").parse().expect("status"),
                message: out.get("message").to_string(),
                seek: out.reports.get("seek").map(|s| s.parse().expect("seek")),
            };
            if let Err(e) = hostile::check(rep, path, &got) {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the hostile cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn hostile_reproducers_answer_with_a_status_through_every_path() {
    if let Some(case) = child::case() {
        replay_one(&case);
        return;
    }
    replay(REPLAY, |_| true);
}

#[test]
fn every_hostile_file_is_classified_and_every_expectation_names_one() {
    // `reproducers` panics on a file it cannot classify.
    let reps = hostile::reproducers();
    for folder in ["tensor_proto/", "db_minidb/", "db_lmdb/", "files/"] {
        assert!(
            reps.iter().any(|r| r.rel.starts_with(folder)),
            "no reproducer under {folder}"
        );
    }
    let tpdb = Reproducer::find("files/tpdb_string_dims_2e32.minidb");
    assert_eq!(
        tpdb.format,
        hostile::Format::Db {
            db_type: "minidb",
            flagged: false
        }
    );
    assert!(Reproducer::find("files/lmdb_truncated_8192").is_lmdb());
    hostile::expected_prefixes_exist(&reps).unwrap();
}

#[test]
fn every_fuzz_target_has_a_harness_and_a_hostile_folder_route() {
    // The classifier, the harness and scripts/fuzz.sh name the same targets in the same order.
    assert_eq!(hostile::FUZZ_TARGETS, caffe2rs_fuzz::TARGETS);
    let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fuzz.sh"))
        .expect("scripts/fuzz.sh");
    let line = script
        .lines()
        .find_map(|l| l.strip_prefix("TARGETS=("))
        .and_then(|l| l.strip_suffix(')'))
        .expect("a TARGETS=(...) line in scripts/fuzz.sh");
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        hostile::FUZZ_TARGETS
    );
    assert!(!caffe2rs_fuzz::run_target("no_such_target", b""));
    // A reproducer in a fuzz target's folder is read through its harness, and the folders
    // the hostile README describes through their library paths as well.
    for rep in hostile::reproducers() {
        match rep.rel.split_once('/').map(|(folder, _)| folder) {
            Some("files") => assert_eq!(rep.target, None, "{}", rep.rel),
            folder => {
                assert_eq!(rep.target, folder, "{}", rep.rel);
                assert!(rep.paths().contains(&ReadPath::FuzzTarget), "{}", rep.rel);
            }
        }
    }
}

#[test]
fn the_replay_allocator_refuses_only_what_the_fuzz_build_refuses() {
    if let Some(case) = child::case() {
        CAP_ALLOCATIONS.store(true, Ordering::Relaxed);
        let mut v: Vec<u8> = Vec::new();
        let big = v.try_reserve_exact(ALLOCATION_CAP + 1).is_ok();
        let at_cap = v.try_reserve_exact(ALLOCATION_CAP).is_ok();
        child::report("big", &big.to_string());
        child::report("at_cap", &at_cap.to_string());
        assert_eq!(case, "cap");
        return;
    }
    let out = child::run(
        "the_replay_allocator_refuses_only_what_the_fuzz_build_refuses",
        "cap",
        TIMEOUT,
        &[],
    );
    assert!(out.passed(), "{}", out.describe());
    assert_eq!((out.get("big"), out.get("at_cap")), ("false", "true"));
}

#[test]
fn flags_byte_selects_batch_size_outputs_and_prefetch_as_the_readme_says() {
    use hostile::DbSettings;
    let s = DbSettings::from_flags(0x13);
    assert_eq!(
        (s.batch_size, s.outputs, s.prefetch_depth, s.no_prefetch),
        (7, 1, Some(2), false)
    );
    let s = DbSettings::from_flags(0b10_1110);
    assert_eq!(
        (s.batch_size, s.outputs, s.prefetch_depth, s.no_prefetch),
        (3, 4, None, true)
    );
}

#[test]
fn child_runner_reports_aborts_hangs_and_reports() {
    if let Some(case) = child::case() {
        match case.as_str() {
            "abort" => std::process::abort(),
            "hang" => std::thread::sleep(Duration::from_secs(120)),
            "report" => child::report("line", "two\nlines \\ and a backslash"),
            "allocate" => {
                // The child's address-space limit turns this into a failed reservation.
                let mut v: Vec<u8> = Vec::new();
                child::report("reserved", &v.try_reserve(16 << 30).is_ok().to_string());
            }
            other => panic!("unknown case {other}"),
        }
        return;
    }
    let aborted = child::run(RUNNER, "abort", TIMEOUT, &[]);
    assert!(!aborted.passed());
    assert_eq!(
        aborted.signal,
        Some(libc::SIGABRT),
        "{}",
        aborted.describe()
    );
    let hung = child::run(RUNNER, "hang", Duration::from_millis(500), &[]);
    assert!(hung.timed_out && !hung.passed());
    let reported = child::run(RUNNER, "report", TIMEOUT, &[]);
    assert!(reported.passed(), "{}", reported.describe());
    assert_eq!(reported.get("line"), "two\nlines \\ and a backslash");
    let limited = child::run(RUNNER, "allocate", TIMEOUT, &[]);
    assert_eq!(limited.get("reserved"), "false");
}
