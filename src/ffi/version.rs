//! Library identity and the last-error accessors.

use std::ffi::{CString, c_char};

use once_cell::sync::Lazy;

use super::guard::{self, ffi_fn_or};
use super::status::status_name;

/// ABI major version; equals the SONAME suffix (libcaffe2rs.so.0). Bumped only for breaking changes.
pub const C2RS_ABI_MAJOR: u32 = 0;
/// ABI minor version; bumped when functions or constants are added.
pub const C2RS_ABI_MINOR: u32 = 2;

/// CPU device type (Caffe2 `DeviceType`).
pub const C2RS_DEVICE_CPU: i32 = 0;
/// CUDA device type (Caffe2 `DeviceType`).
pub const C2RS_DEVICE_CUDA: i32 = 1;

static VERSION: Lazy<CString> = Lazy::new(|| {
    let features = if cfg!(feature = "cuda") {
        "dlpack, cuda"
    } else {
        "dlpack"
    };
    let text = format!(
        "caffe2rs {} (git {}; abi {C2RS_ABI_MAJOR}.{C2RS_ABI_MINOR}; features: {features})",
        env!("CARGO_PKG_VERSION"),
        env!("C2RS_GIT_REVISION")
    );
    CString::new(text).unwrap_or_default()
});

/// The ABI version of the loaded library: `(C2RS_ABI_MAJOR << 16) | C2RS_ABI_MINOR`.
///
/// Compare with the macros of the header you compiled against: a different major is
/// incompatible; a smaller minor lacks newer functions.
/// Thread safety: safe from any thread.
/// Returns: the packed version.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_abi_version() -> u32 {
    (C2RS_ABI_MAJOR << 16) | C2RS_ABI_MINOR
}

/// Human-readable version: crate version, git revision, ABI version and enabled features.
///
/// Borrowed: static; never freed.
/// Thread safety: safe from any thread.
/// Returns: a NUL-terminated string, never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_version_string() -> *const c_char {
    ffi_fn_or!("c2rs_version_string", c"caffe2rs".as_ptr(), {
        Ok(VERSION.as_ptr())
    })
}

/// Message of the last failing call on this thread, naming the function and the argument,
/// blob or operator at fault.
///
/// Borrowed: valid until the next failing call on this thread.
/// Thread safety: per thread; each thread sees only its own failures.
/// Returns: the message; "" when no call on this thread has failed.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_last_error_message() -> *const c_char {
    ffi_fn_or!("c2rs_last_error_message", c"".as_ptr(), {
        Ok(guard::last_error_message())
    })
}

/// Message of the last failing call on this thread, byte for byte: names in it keep every
/// byte, NUL included (`c2rs_last_error_message` writes a NUL as the two characters `\0`);
/// `*len` is its length without the terminating NUL that follows it.
///
/// Borrowed: valid until the next failing call on this thread.
/// Thread safety: per thread; each thread sees only its own failures.
/// Returns: the message ("" with `*len` 0 when no call on this thread has failed); `len` may
/// be NULL when the length is not wanted.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_last_error_message_n(len: *mut usize) -> *const c_char {
    ffi_fn_or!("c2rs_last_error_message_n", c"".as_ptr(), {
        let (ptr, n) = guard::last_error_message_exact();
        if !len.is_null() {
            // SAFETY: non-NULL; the caller passes a writable size_t.
            unsafe { *len = n };
        }
        Ok(ptr)
    })
}

/// Status of the last failing call on this thread.
///
/// Thread safety: per thread; each thread sees only its own failures.
/// Returns: the status; C2RS_OK when no call on this thread has failed.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_last_error_code() -> i32 {
    ffi_fn_or!("c2rs_last_error_code", 0, { Ok(guard::last_error_code()) })
}

/// The macro name of a status code, e.g. "C2RS_PARSE_ERROR", for logs.
///
/// Borrowed: static; never freed.
/// Thread safety: safe from any thread.
/// Returns: the name; "C2RS_UNKNOWN_STATUS" for numbers this version does not define.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_status_name(status: i32) -> *const c_char {
    ffi_fn_or!("c2rs_status_name", c"C2RS_UNKNOWN_STATUS".as_ptr(), {
        Ok(status_name(status).as_ptr())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn version_string_names_crate_version_and_abi() {
        // SAFETY: a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(c2rs_version_string()) }
            .to_str()
            .unwrap();
        assert!(
            v.starts_with(&format!("caffe2rs {} (git ", env!("CARGO_PKG_VERSION"))),
            "{v}"
        );
        assert!(v.contains("abi 0.2"), "{v}");
        assert_eq!(c2rs_abi_version(), 2);
    }

    #[test]
    fn status_names() {
        // SAFETY: static strings.
        let name = |s| {
            unsafe { CStr::from_ptr(c2rs_status_name(s)) }
                .to_str()
                .unwrap()
        };
        assert_eq!(name(0), "C2RS_OK");
        assert_eq!(name(9), "C2RS_PARSE_ERROR");
        assert_eq!(name(14), "C2RS_INTERNAL");
        assert_eq!(name(-3), "C2RS_UNKNOWN_STATUS");
    }
}
