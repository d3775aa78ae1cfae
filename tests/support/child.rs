//! Runs one case of a test in a child process (the test binary itself, re-executed), so that a
//! crash, an abort or a hang in the library fails that case instead of killing the test
//! runner.
//!
//! Protocol: the parent calls `run(test_name, case, ...)`, which re-executes the current test
//! binary filtered to exactly `test_name`, with `CHILD_CASE_ENV` set to `case`. The test
//! function starts with `if let Some(case) = child::case() { ...; return; }`: in the child it
//! runs only that case and reports through `child::report`, which prints one line the parent
//! reads back. The child also lowers its address-space limit (`CHILD_MEMORY_LIMIT` by
//! default) so that an allocation nobody asked for fails in the child instead of exhausting
//! the machine the tests share.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Names the case a child runs; unset in the parent.
pub const CHILD_CASE_ENV: &str = "C2RS_TEST_CHILD_CASE";
/// The child's address-space limit in bytes (decimal); `0` for none.
pub const CHILD_MEMORY_ENV: &str = "C2RS_TEST_CHILD_MEMORY";
/// Default address-space limit of a child: enough for the test binary, its threads and any
/// allocation an input really backs, far below what a hostile size would ask for.
pub const CHILD_MEMORY_LIMIT: u64 = 8 << 30;
/// Prefix of the lines a child reports results with.
const REPORT_PREFIX: &str = "C2RS-CHILD-REPORT ";

/// In a child: the case to run (and the address-space limit applied once). `None` in the
/// parent.
pub fn case() -> Option<String> {
    let case = std::env::var(CHILD_CASE_ENV).ok()?;
    let limit = std::env::var(CHILD_MEMORY_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(CHILD_MEMORY_LIMIT);
    if limit > 0 {
        limit_address_space(limit);
    }
    Some(case)
}

fn limit_address_space(bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads a valid, initialised struct; it only changes this (child)
    // process's limit.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) };
    assert_eq!(rc, 0, "setrlimit(RLIMIT_AS) failed");
}

/// In a child: reports `key = value` to the parent (one line; newlines are escaped).
pub fn report(key: &str, value: &str) {
    let value = value.replace('\\', "\\\\").replace('\n', "\\n");
    println!("{REPORT_PREFIX}{key}={value}");
}

/// Undoes `report`'s escaping (`\\` → `\`, `\n` → newline).
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// What a child did.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code when it exited (0: its test passed).
    pub code: Option<i32>,
    /// The signal that killed it (SIGABRT, SIGSEGV, …), if one did.
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// `report`ed values by key (the last value of each key).
    pub reports: BTreeMap<String, String>,
    /// Everything the child wrote (for failure messages).
    pub output: String,
}

impl Outcome {
    /// Whether the child ran to the end of its test without crashing, hanging or failing.
    pub fn passed(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// The reported value of `key`, or a panic describing what the child did instead.
    pub fn get(&self, key: &str) -> &str {
        match self.reports.get(key) {
            Some(v) => v,
            None => panic!("child reported no `{key}`: {self:#?}"),
        }
    }

    /// A one-paragraph description for assertion messages.
    pub fn describe(&self) -> String {
        let tail: String = {
            let lines: Vec<&str> = self.output.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        };
        format!(
            "exit code {:?}, signal {:?}, timed out {}; last output:\n{tail}",
            self.code, self.signal, self.timed_out
        )
    }
}

/// Runs case `case` of test `test_name` (the full path the test harness prints, e.g.
/// `hostile_inputs_replay_without_crashing`) in a child, killing it after `timeout`.
/// `env` adds variables (e.g. `CHILD_MEMORY_ENV`).
pub fn run(test_name: &str, case: &str, timeout: Duration, env: &[(&str, &str)]) -> Outcome {
    let exe = std::env::current_exe().expect("current test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        test_name,
        "--exact",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_CASE_ENV, case)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn the test binary");
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait for the killed child");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let mut reports = BTreeMap::new();
    for line in stdout.lines() {
        // The harness may print "test <name> ... " on the same line before the report.
        if let Some(rest) = line
            .find(REPORT_PREFIX)
            .map(|i| &line[i + REPORT_PREFIX.len()..])
        {
            if let Some((k, v)) = rest.split_once('=') {
                reports.insert(k.to_string(), unescape(v));
            }
        }
    }
    use std::os::unix::process::ExitStatusExt;
    Outcome {
        code: status.code(),
        signal: status.signal(),
        timed_out,
        reports,
        output: format!("{stdout}{stderr}"),
    }
}
