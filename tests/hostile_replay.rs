//! Replays every reproducer under tests/data/hostile (issue 11; format in its README.md)
//! through every path the README lists for its folder, each (file, path) in a child process:
//! a crash, an abort or a hang fails that case instead of killing the test runner, and the
//! child's address space is limited so an allocation the input does not back fails there.
//! Reproducers added later are picked up from the folders; a file that cannot be classified
//! fails `every_hostile_file_is_classified_and_every_expectation_names_one`.

use std::time::Duration;

mod support;
use support::child;
use support::hostile::{self, Answer, ReadPath, Reproducer};

const REPLAY: &str = "hostile_reproducers_answer_with_a_status_through_every_path";
const RUNNER: &str = "child_runner_reports_aborts_hangs_and_reports";
/// Generous for a debug build on a loaded machine; a fixed library answers in milliseconds.
const TIMEOUT: Duration = Duration::from_secs(60);

/// In a child: runs case `<path>:<reproducer>` and reports its answer.
fn replay_one(case: &str) {
    let (path, rel) = case.split_once(':').expect("case is <path>:<file>");
    let path = ReadPath::from_name(path).expect("known path");
    let a = hostile::run_reproducer(&Reproducer::find(rel), path);
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
        for &path in rep.format.paths() {
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
