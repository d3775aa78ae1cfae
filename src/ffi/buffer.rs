//! Owned byte buffers and string lists returned by the library.

use std::ffi::c_char;

use super::guard::ffi_fn_or;
use super::handle::{c2rs_buffer, c2rs_string_list, free_handle, handle_ref};

/// Pointer to the bytes of `buf`.
///
/// Borrowed: valid until `buf` is freed.
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: the first byte; NULL when `buf` is NULL or empty.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_buffer_data(buf: *const c2rs_buffer) -> *const u8 {
    ffi_fn_or!("c2rs_buffer_data", std::ptr::null(), {
        let bytes = handle_ref(buf, "buf")?;
        Ok(if bytes.is_empty() {
            std::ptr::null()
        } else {
            bytes.as_ptr()
        })
    })
}

/// Number of bytes in `buf`.
///
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: the length; 0 when `buf` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_buffer_len(buf: *const c2rs_buffer) -> usize {
    ffi_fn_or!("c2rs_buffer_len", 0, { Ok(handle_ref(buf, "buf")?.len()) })
}

/// Releases `buf`.
///
/// Ownership: `buf` is freed; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use `buf` concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_buffer_free(buf: *mut c2rs_buffer) {
    ffi_fn_or!("c2rs_buffer_free", (), {
        free_handle(buf);
        Ok(())
    })
}

/// Number of strings in `list`.
///
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: the count; 0 when `list` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_string_list_len(list: *const c2rs_string_list) -> usize {
    ffi_fn_or!("c2rs_string_list_len", 0, {
        Ok(handle_ref(list, "list")?.len())
    })
}

/// String `i` of `list`, NUL-terminated UTF-8.
///
/// Borrowed: valid until `list` is freed.
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: the string; NULL when `list` is NULL or `i` is out of range.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_string_list_get(list: *const c2rs_string_list, i: usize) -> *const c_char {
    ffi_fn_or!("c2rs_string_list_get", std::ptr::null(), {
        Ok(handle_ref(list, "list")?
            .get(i)
            .map_or(std::ptr::null(), |s| s.as_ptr()))
    })
}

/// Releases `list` and its strings.
///
/// Ownership: `list` is freed; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use `list` concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_string_list_free(list: *mut c2rs_string_list) {
    ffi_fn_or!("c2rs_string_list_free", (), {
        free_handle(list);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::handle::into_handle;
    use std::ffi::{CStr, CString};

    #[test]
    fn buffer_accessors_and_null_handles() {
        let b = into_handle::<c2rs_buffer>(vec![1, 2, 3]);
        assert_eq!(c2rs_buffer_len(b), 3);
        // SAFETY: `b` is live; the pointer covers 3 bytes.
        assert_eq!(
            unsafe { std::slice::from_raw_parts(c2rs_buffer_data(b), 3) },
            &[1, 2, 3]
        );
        c2rs_buffer_free(b);
        assert_eq!(c2rs_buffer_len(std::ptr::null()), 0);
        assert!(c2rs_buffer_data(std::ptr::null()).is_null());
        c2rs_buffer_free(std::ptr::null_mut());
    }

    #[test]
    fn string_list_get_is_null_out_of_range() {
        let l = into_handle::<c2rs_string_list>(vec![
            CString::new("a").unwrap(),
            CString::new("bé").unwrap(),
        ]);
        assert_eq!(c2rs_string_list_len(l), 2);
        // SAFETY: in-range entries of a live list are valid C strings.
        assert_eq!(
            unsafe { CStr::from_ptr(c2rs_string_list_get(l, 1)) }
                .to_str()
                .unwrap(),
            "bé"
        );
        assert!(c2rs_string_list_get(l, 2).is_null());
        assert!(c2rs_string_list_get(std::ptr::null(), 0).is_null());
        c2rs_string_list_free(l);
        c2rs_string_list_free(std::ptr::null_mut());
    }
}
