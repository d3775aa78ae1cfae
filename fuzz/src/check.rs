//! Verdicts on the statuses the library returns: a documented error is an answer, a panic or
//! an unexpected internal error is a finding, and a finding aborts the process so that
//! libFuzzer keeps the input as a crash artifact.

use std::ffi::CStr;

use caffe2rs::ffi::status::{C2RS_INTERNAL, C2RS_OK, C2RS_PANIC};
use caffe2rs::ffi::version::{c2rs_last_error_code, c2rs_last_error_message};

/// Whether an out-of-memory answer (C2RS_INTERNAL "out of memory ...") is acceptable: only
/// where the caller's own arguments asked for the size (an operator's `shape` argument), never
/// where the size came from bytes (a TensorProto, a DB file, a NetDef).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Oom {
    Finding,
    Allowed,
}

/// The calling thread's last error message ("" when none).
pub fn last_error() -> String {
    let p = c2rs_last_error_message();
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the library returns a NUL-terminated string valid until the next failing call
    // on this thread; it is copied at once.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Reports a finding and aborts (libFuzzer records the input as `crash-*`).
pub fn finding(call: &str, what: &str) -> ! {
    eprintln!("==caffe2rs-fuzz== FINDING in {call}: {what}");
    std::process::abort();
}

/// Whether `C2RS_FUZZ_TRACE` is set: then every checked call prints its status and message
/// to stderr (for replaying an input by hand; never set while fuzzing).
fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("C2RS_FUZZ_TRACE").is_some())
}

/// Prints `what` when tracing (see [`tracing`]).
pub fn trace(what: &str) {
    if tracing() {
        eprintln!("==caffe2rs-fuzz== {what}");
    }
}

/// The calling thread's last error message as bytes, without copying ("" when none).
fn last_error_bytes<'a>() -> &'a [u8] {
    let p = c2rs_last_error_message();
    if p.is_null() {
        return b"";
    }
    // SAFETY: the library returns a NUL-terminated string valid until the next failing call
    // on this thread; it is only read before the harness makes another call.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

/// True on C2RS_OK, false on a documented error; aborts on C2RS_PANIC, on C2RS_INTERNAL unless
/// it is an allowed out-of-memory, on an unknown code, and on a broken error contract (the
/// last-error code must equal the status and the message must say something). Copies the
/// message only to print it (most inputs fail somewhere: this runs for each).
pub fn check(status: i32, call: &str, oom: Oom) -> bool {
    if status == C2RS_OK {
        if tracing() {
            eprintln!("==caffe2rs-fuzz== {call}: OK");
        }
        return true;
    }
    let message = last_error_bytes();
    if tracing() {
        eprintln!(
            "==caffe2rs-fuzz== {call}: {status}: {}",
            String::from_utf8_lossy(message)
        );
    }
    let text = || String::from_utf8_lossy(message).into_owned();
    if status == C2RS_PANIC {
        finding(call, &format!("C2RS_PANIC: {}", text()));
    }
    let out_of_memory = message.windows(13).any(|w| w == b"out of memory");
    if status == C2RS_INTERNAL && !(oom == Oom::Allowed && out_of_memory) {
        finding(call, &format!("C2RS_INTERNAL: {}", text()));
    }
    if !(1..=C2RS_INTERNAL).contains(&status) {
        finding(call, &format!("unknown status {status}: {}", text()));
    }
    let code = c2rs_last_error_code();
    if code != status {
        finding(
            call,
            &format!(
                "returned {status} but c2rs_last_error_code() is {code}: {}",
                text()
            ),
        );
    }
    if message.is_empty() {
        finding(
            call,
            &format!("returned {status} with an empty error message"),
        );
    }
    false
}

/// As [`check`], and the out-parameter contract: set (non-NULL) on success, left NULL on
/// failure.
pub fn check_out<T>(status: i32, out: *const T, call: &str, oom: Oom) -> bool {
    let ok = check(status, call, oom);
    if ok && out.is_null() {
        finding(call, "returned C2RS_OK but left the out-parameter NULL");
    }
    if !ok && !out.is_null() {
        finding(
            call,
            &format!("returned {status} but set the out-parameter"),
        );
    }
    ok
}

/// Reads every byte of `bytes` (so that a dangling or short view faults here, under the
/// sanitizer, instead of going unnoticed) and returns a checksum the optimiser cannot drop.
/// Eight bytes per step: every loop step costs a traced comparison in the fuzz build.
pub fn touch(bytes: &[u8]) -> u64 {
    let words = bytes.chunks_exact(8);
    let tail = words
        .remainder()
        .iter()
        .fold(0u64, |acc, &b| acc.rotate_left(5) ^ u64::from(b));
    let sum = words.fold(tail, |acc, w| {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        acc.rotate_left(5) ^ u64::from_le_bytes(word)
    });
    std::hint::black_box(sum)
}
