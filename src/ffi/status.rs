//! Status codes of the C ABI (ARCHITECTURE.md convention 1). Append-only: a retired code stays
//! here as a comment so its number is never reused.

use crate::error::ErrorKind;

/// Success.
pub const C2RS_OK: i32 = 0;
/// A Caffe2 enforce failed: a recoverable precondition on values or state.
pub const C2RS_ENFORCE_NOT_MET: i32 = 1;
/// An argument is NULL, out of range or otherwise unusable.
pub const C2RS_INVALID_ARGUMENT: i32 = 2;
/// A named thing (blob, net, operator type, file) does not exist.
pub const C2RS_NOT_FOUND: i32 = 3;
/// A named thing already exists and may not be replaced.
pub const C2RS_ALREADY_EXISTS: i32 = 4;
/// A value has another dtype or blob type than expected.
pub const C2RS_TYPE_MISMATCH: i32 = 5;
/// Inputs or outputs disagree with an operator schema.
pub const C2RS_SCHEMA_MISMATCH: i32 = 6;
/// Valid, but not supported by this build or for this data.
pub const C2RS_UNSUPPORTED: i32 = 7;
/// An operator or net ran and reported failure.
pub const C2RS_RUN_FAILED: i32 = 8;
/// Bytes could not be decoded, or decode to inconsistent content.
pub const C2RS_PARSE_ERROR: i32 = 9;
/// A queue or stream is closed.
pub const C2RS_CLOSED: i32 = 10;
/// A deadline passed.
pub const C2RS_TIMEOUT: i32 = 11;
/// The operating system refused a file or device operation.
pub const C2RS_IO_ERROR: i32 = 12;
/// A panic inside the library was caught at the boundary.
pub const C2RS_PANIC: i32 = 13;
/// A broken internal invariant (a bug in caffe2rs).
pub const C2RS_INTERNAL: i32 = 14;

/// The status code of an error kind; the only translation from Rust errors to C statuses.
pub(crate) fn status_of(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::Enforce => C2RS_ENFORCE_NOT_MET,
        ErrorKind::InvalidArgument => C2RS_INVALID_ARGUMENT,
        ErrorKind::NotFound => C2RS_NOT_FOUND,
        ErrorKind::AlreadyExists => C2RS_ALREADY_EXISTS,
        ErrorKind::TypeMismatch => C2RS_TYPE_MISMATCH,
        ErrorKind::SchemaMismatch => C2RS_SCHEMA_MISMATCH,
        ErrorKind::Unsupported => C2RS_UNSUPPORTED,
        ErrorKind::RunFailed => C2RS_RUN_FAILED,
        ErrorKind::Parse => C2RS_PARSE_ERROR,
        ErrorKind::Closed => C2RS_CLOSED,
        ErrorKind::Timeout => C2RS_TIMEOUT,
        ErrorKind::Io => C2RS_IO_ERROR,
        ErrorKind::Panic => C2RS_PANIC,
        ErrorKind::Internal => C2RS_INTERNAL,
    }
}

/// The macro name of a status code, `"C2RS_UNKNOWN_STATUS"` for numbers no version defines.
pub(crate) fn status_name(status: i32) -> &'static std::ffi::CStr {
    match status {
        C2RS_OK => c"C2RS_OK",
        C2RS_ENFORCE_NOT_MET => c"C2RS_ENFORCE_NOT_MET",
        C2RS_INVALID_ARGUMENT => c"C2RS_INVALID_ARGUMENT",
        C2RS_NOT_FOUND => c"C2RS_NOT_FOUND",
        C2RS_ALREADY_EXISTS => c"C2RS_ALREADY_EXISTS",
        C2RS_TYPE_MISMATCH => c"C2RS_TYPE_MISMATCH",
        C2RS_SCHEMA_MISMATCH => c"C2RS_SCHEMA_MISMATCH",
        C2RS_UNSUPPORTED => c"C2RS_UNSUPPORTED",
        C2RS_RUN_FAILED => c"C2RS_RUN_FAILED",
        C2RS_PARSE_ERROR => c"C2RS_PARSE_ERROR",
        C2RS_CLOSED => c"C2RS_CLOSED",
        C2RS_TIMEOUT => c"C2RS_TIMEOUT",
        C2RS_IO_ERROR => c"C2RS_IO_ERROR",
        C2RS_PANIC => c"C2RS_PANIC",
        C2RS_INTERNAL => c"C2RS_INTERNAL",
        _ => c"C2RS_UNKNOWN_STATUS",
    }
}
