//! The boundary every export goes through: `catch_unwind`, translation of `C2rsError` into a
//! status plus the thread-local last error, and the argument conversions (NULL checks,
//! out-parameters, names, byte slices, enum-like integers). Area code never sees raw pointers.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::status::{C2RS_OK, C2RS_PANIC, status_of};
use crate::error::{C2rsError, Result};

/// The last failure on this thread: status and message. Only this thread reads or writes it;
/// the pointers handed out stay valid until the next failure replaces it.
struct LastError {
    code: i32,
    /// The message as a C string: each NUL byte (a name may hold one) written as `\0`.
    message: CString,
    /// The exact message bytes (names in it byte for byte), followed by one NUL.
    exact: Vec<u8>,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = RefCell::new(LastError {
        code: C2RS_OK,
        message: CString::default(),
        exact: vec![0],
    });
}

fn record(function: &str, code: i32, message: &str) {
    let text = format!("{function}: {message}");
    // Interior NULs would truncate the C string silently; make them visible instead. The
    // exact text stays available through `last_error_message_exact`.
    let message = CString::new(text.replace('\0', "\\0")).unwrap_or_default();
    let mut exact = text.into_bytes();
    exact.push(0);
    LAST_ERROR.with(|e| {
        *e.borrow_mut() = LastError {
            code,
            message,
            exact,
        }
    });
}

pub(crate) fn last_error_code() -> i32 {
    LAST_ERROR.with(|e| e.borrow().code)
}

/// Pointer to this thread's last message; valid until the next failure on this thread.
pub(crate) fn last_error_message() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().message.as_ptr())
}

/// This thread's last message byte for byte (NULs kept) and its length without the
/// terminating NUL; valid until the next failure on this thread.
pub(crate) fn last_error_message_exact() -> (*const c_char, usize) {
    LAST_ERROR.with(|e| {
        let e = e.borrow();
        (e.exact.as_ptr().cast(), e.exact.len().saturating_sub(1))
    })
}

/// Runs a status-returning export body. Ok → C2RS_OK; Err → its status and message;
/// panic → C2RS_PANIC with the panic text.
#[inline(always)]
pub(crate) fn guard_status(function: &'static str, body: impl FnOnce() -> Result<()>) -> i32 {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => C2RS_OK,
        Ok(Err(e)) => {
            let code = status_of(e.kind());
            record(function, code, e.message());
            code
        }
        Err(payload) => {
            record(
                function,
                C2RS_PANIC,
                C2rsError::from_panic(payload.as_ref()).message(),
            );
            C2RS_PANIC
        }
    }
}

/// Runs an export that returns a value instead of a status; failures and panics give
/// `fallback` (NULL, 0, false) and still set the last error.
#[inline(always)]
pub(crate) fn guard_value<T>(
    function: &'static str,
    fallback: T,
    body: impl FnOnce() -> Result<T>,
) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            record(function, status_of(e.kind()), e.message());
            fallback
        }
        Err(payload) => {
            record(
                function,
                C2RS_PANIC,
                C2rsError::from_panic(payload.as_ref()).message(),
            );
            fallback
        }
    }
}

/// The body of a status-returning export: `ffi_fn!("c2rs_x", { ...; Ok(()) })`.
macro_rules! ffi_fn {
    ($name:literal, $body:block) => {
        $crate::ffi::guard::guard_status($name, || -> $crate::error::Result<()> { $body })
    };
}

/// The body of a value-returning export: `ffi_fn_or!("c2rs_x", fallback, { Ok(value) })`.
macro_rules! ffi_fn_or {
    ($name:literal, $fallback:expr, $body:block) => {
        $crate::ffi::guard::guard_value($name, $fallback, || $body)
    };
}

pub(crate) use {ffi_fn, ffi_fn_or};

pub(crate) fn null_arg(name: &str) -> C2rsError {
    C2rsError::invalid_argument(format!("argument `{name}` is NULL"))
}

/// The "nothing" value an out-parameter holds until the call succeeds.
pub(crate) trait OutDefault {
    fn out_default() -> Self;
}
impl<T> OutDefault for *mut T {
    fn out_default() -> Self {
        std::ptr::null_mut()
    }
}
impl<T> OutDefault for *const T {
    fn out_default() -> Self {
        std::ptr::null()
    }
}
macro_rules! zero_out_default {
    ($($t:ty),*) => { $(impl OutDefault for $t { fn out_default() -> Self { Default::default() } })* };
}
zero_out_default!(bool, i32, u32, i64, u64, usize);
impl<T> OutDefault for Option<T> {
    fn out_default() -> Self {
        None
    }
}
zero_out_default!(f32);

/// An out-parameter, already reset to its default; `set` writes the result.
pub(crate) struct Out<'a, T>(&'a mut T);

impl<T> Out<'_, T> {
    pub(crate) fn set(self, value: T) {
        *self.0 = value;
    }
}

/// Checks an out-parameter for NULL and resets it (ARCHITECTURE.md convention 4).
pub(crate) fn out_param<'a, T: OutDefault>(ptr: *mut T, name: &str) -> Result<Out<'a, T>> {
    if ptr.is_null() {
        return Err(null_arg(name));
    }
    // SAFETY: non-NULL; the C contract makes the caller pass a writable, aligned `T`.
    let slot = unsafe { &mut *ptr };
    *slot = T::out_default();
    Ok(Out(slot))
}

/// A `(ptr, len)` input; `len == 0` accepts NULL.
pub(crate) fn byte_slice<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(C2rsError::invalid_argument(format!(
            "argument `{name}` is NULL with length {len}"
        )));
    }
    // SAFETY: non-NULL; the caller guarantees `len` readable bytes that outlive the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A `(ptr, count)` array input; `count == 0` accepts NULL.
pub(crate) fn array_arg<'a, T>(ptr: *const T, count: usize, name: &str) -> Result<&'a [T]> {
    if count == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(C2rsError::invalid_argument(format!(
            "argument `{name}` is NULL with count {count}"
        )));
    }
    // SAFETY: non-NULL; the caller guarantees `count` readable, initialised `T`s.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// A NUL-terminated UTF-8 string argument.
pub(crate) fn name_arg<'a>(ptr: *const c_char, name: &str) -> Result<&'a str> {
    raw_name_arg(ptr, name)?.to_str()
}

/// A name given as `(ptr, len)`: any UTF-8 text, NUL bytes included (blob and net names are
/// UTF-8 strings of any content and length); `len == 0` accepts NULL and is the empty name.
/// Bytes that are not UTF-8 are refused, never repaired, with the offending offset.
pub(crate) fn name_arg_n<'a>(ptr: *const c_char, len: usize, name: &str) -> Result<&'a str> {
    raw_name_arg_n(ptr, len, name)?.to_str()
}

/// A name argument whose bytes are not checked for UTF-8 yet: lookups go by bytes, and a
/// name that is not UTF-8 matches no blob, so a call that finds its blob needs no check; a call
/// that finds nothing (or creates a blob) calls `to_str`, which refuses bytes that are not UTF-8
/// with the same message as `name_arg` / `name_arg_n`.
#[derive(Clone, Copy)]
pub(crate) struct RawName<'a, 'n> {
    bytes: &'a [u8],
    arg: &'n str,
    /// Given as (pointer, length) (`name_arg_n`'s message), else as a C string.
    with_len: bool,
}

impl<'a> RawName<'a, '_> {
    pub(crate) fn bytes(self) -> &'a [u8] {
        self.bytes
    }

    /// The name as UTF-8 text; C2RS_INVALID_ARGUMENT naming the argument when it is not.
    #[inline]
    pub(crate) fn to_str(self) -> Result<&'a str> {
        std::str::from_utf8(self.bytes).map_err(|e| self.not_utf8(e))
    }

    /// `to_str` when only the check matters (a name no blob has): ASCII, the common case, is
    /// recognised inline.
    #[inline]
    pub(crate) fn check_utf8(self) -> Result<()> {
        if self.bytes.is_ascii() {
            return Ok(());
        }
        self.to_str().map(|_| ())
    }

    #[cold]
    #[inline(never)]
    fn not_utf8(self, e: std::str::Utf8Error) -> C2rsError {
        let arg = self.arg;
        if self.with_len {
            C2rsError::invalid_argument(format!(
                "argument `{arg}` is not valid UTF-8 (byte {} of {}); blob and net names are \
                 UTF-8 strings",
                e.valid_up_to(),
                self.bytes.len()
            ))
        } else {
            C2rsError::invalid_argument(format!("argument `{arg}` is not valid UTF-8: {e}"))
        }
    }
}

/// A NUL-terminated name, UTF-8 not checked yet (see `RawName`); NULL is refused.
pub(crate) fn raw_name_arg<'a, 'n>(ptr: *const c_char, name: &'n str) -> Result<RawName<'a, 'n>> {
    if ptr.is_null() {
        return Err(null_arg(name));
    }
    // SAFETY: non-NULL; the caller guarantees a NUL-terminated string that outlives the call.
    let bytes = unsafe { std::ffi::CStr::from_ptr(ptr) }.to_bytes();
    Ok(RawName {
        bytes,
        arg: name,
        with_len: false,
    })
}

/// A `(ptr, len)` name, UTF-8 not checked yet (see `RawName`); `len == 0` accepts NULL.
pub(crate) fn raw_name_arg_n<'a, 'n>(
    ptr: *const c_char,
    len: usize,
    name: &'n str,
) -> Result<RawName<'a, 'n>> {
    Ok(RawName {
        bytes: byte_slice(ptr.cast(), len, name)?,
        arg: name,
        with_len: true,
    })
}

/// A dtype integer (Caffe2 `TensorProto.DataType` numbering).
#[inline]
pub(crate) fn dtype_arg(value: i32, name: &str) -> Result<crate::tensor::DataType> {
    crate::tensor::DataType::try_from(value)
        .map_err(|e| C2rsError::new(e.kind(), format!("argument `{name}`: {}", e.message())))
}

/// An optional NUL-terminated UTF-8 string argument: NULL → `None`.
pub(crate) fn opt_name_arg<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    name_arg(ptr, name).map(Some)
}

/// A device type integer (Caffe2 `DeviceType`: CPU 0, CUDA 1, MKLDNN 2).
pub(crate) fn device_type_arg(value: i32, name: &str) -> Result<crate::context::DeviceType> {
    crate::context::DeviceType::try_from(value)
        .map_err(|e| C2rsError::new(e.kind(), format!("argument `{name}`: {}", e.message())))
}

#[cfg(test)]
mod tests {
    use super::super::status::*;
    use super::*;
    use std::ffi::CStr;

    fn message() -> String {
        // SAFETY: the pointer is this thread's current message, read before any other call.
        unsafe { CStr::from_ptr(last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn panicking_body_becomes_panic_status_with_its_text() {
        let status = guard_status("c2rs_test_fn", || -> Result<()> { panic!("boom {}", 7) });
        assert_eq!(status, C2RS_PANIC);
        assert_eq!(last_error_code(), C2RS_PANIC);
        assert_eq!(message(), "c2rs_test_fn: panic: boom 7");
        let v = guard_value("c2rs_test_value", 99usize, || -> Result<usize> {
            panic!("static text")
        });
        assert_eq!(v, 99);
        assert_eq!(message(), "c2rs_test_value: panic: static text");
    }

    #[test]
    fn error_message_names_the_function_and_survives_success() {
        let status = guard_status("c2rs_thing", || {
            Err(C2rsError::not_found("blob `x` does not exist"))
        });
        assert_eq!(status, C2RS_NOT_FOUND);
        assert_eq!(guard_status("c2rs_other", || Ok(())), C2RS_OK);
        assert_eq!(message(), "c2rs_thing: blob `x` does not exist");
        assert_eq!(last_error_code(), C2RS_NOT_FOUND);
    }

    #[test]
    fn last_error_is_per_thread() {
        guard_status("c2rs_a", || Err(C2rsError::closed("queue closed")));
        let other = std::thread::spawn(|| (last_error_code(), message()))
            .join()
            .unwrap();
        assert_eq!(other, (C2RS_OK, String::new()));
        assert_eq!(last_error_code(), C2RS_CLOSED);
    }

    #[test]
    fn out_param_is_reset_before_the_body_runs() {
        let mut slot: i64 = 42;
        assert!(out_param(&mut slot as *mut i64, "out").is_ok());
        assert_eq!(slot, 0);
        assert!(
            out_param::<i64>(std::ptr::null_mut(), "numel")
                .err()
                .unwrap()
                .message()
                .contains("`numel`")
        );
    }

    #[test]
    fn exact_message_keeps_nul_bytes_the_c_string_shows_them() {
        let status = guard_status("c2rs_n", || {
            Err(C2rsError::not_found("Can't find blob: a\0b"))
        });
        assert_eq!(status, C2RS_NOT_FOUND);
        assert_eq!(message(), "c2rs_n: Can't find blob: a\\0b");
        let (ptr, len) = last_error_message_exact();
        // SAFETY: the exact message covers `len` bytes plus a terminating NUL.
        let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len + 1) };
        assert_eq!(&bytes[..len], b"c2rs_n: Can't find blob: a\0b");
        assert_eq!(bytes[len], 0);
    }

    #[test]
    fn length_taking_names_accept_nul_and_unicode_and_refuse_other_bytes() {
        let name = "a\0é\u{1F600}";
        assert_eq!(
            name_arg_n(name.as_ptr().cast(), name.len(), "name").unwrap(),
            name
        );
        assert_eq!(name_arg_n(std::ptr::null(), 0, "name").unwrap(), "");
        let e = name_arg_n(std::ptr::null(), 2, "name").unwrap_err();
        assert!(e.message().contains("`name` is NULL with length 2"));
        let bad = b"ab\xffc";
        let e = name_arg_n(bad.as_ptr().cast(), bad.len(), "old_name").unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::InvalidArgument);
        assert_eq!(
            e.message(),
            "argument `old_name` is not valid UTF-8 (byte 2 of 4); blob and net names are UTF-8 \
             strings"
        );
    }

    #[test]
    fn empty_slices_accept_null() {
        assert!(byte_slice(std::ptr::null(), 0, "b").unwrap().is_empty());
        assert!(byte_slice(std::ptr::null(), 3, "b").is_err());
    }
}
