//! The boundary every export goes through: `catch_unwind`, translation of `C2rsError` into a
//! status plus the thread-local last error, and the argument conversions (NULL checks,
//! out-parameters, names, byte slices, enum-like integers). Area code never sees raw pointers.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::status::{C2RS_OK, C2RS_PANIC, status_of};
use crate::error::{C2rsError, Result};

/// The last failure on this thread: status and message. Only this thread reads or writes it;
/// the message pointer handed out stays valid until the next failure replaces it.
struct LastError {
    code: i32,
    message: CString,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> = RefCell::new(LastError { code: C2RS_OK, message: CString::default() });
}

fn record(function: &str, code: i32, message: &str) {
    let text = format!("{function}: {message}");
    // Interior NULs would truncate the C string silently; make them visible instead.
    let message = CString::new(text.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = LastError { code, message });
}

pub(crate) fn last_error_code() -> i32 {
    LAST_ERROR.with(|e| e.borrow().code)
}

/// Pointer to this thread's last message; valid until the next failure on this thread.
pub(crate) fn last_error_message() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().message.as_ptr())
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
    if ptr.is_null() {
        return Err(null_arg(name));
    }
    // SAFETY: non-NULL; the caller guarantees a NUL-terminated string that outlives the call.
    let cstr = unsafe { std::ffi::CStr::from_ptr(ptr) };
    cstr.to_str().map_err(|e| {
        C2rsError::invalid_argument(format!("argument `{name}` is not valid UTF-8: {e}"))
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
    fn empty_slices_accept_null() {
        assert!(byte_slice(std::ptr::null(), 0, "b").unwrap().is_empty());
        assert!(byte_slice(std::ptr::null(), 3, "b").is_err());
    }
}
