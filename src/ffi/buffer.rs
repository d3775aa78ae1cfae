//! Owned byte buffers and string lists returned by the library.

use std::ffi::c_char;

use super::guard::{ffi_fn, ffi_fn_or, out_param};
use super::handle::{c2rs_buffer, c2rs_string_list, free_handle, handle_ref};
use crate::error::C2rsError;

/// The strings behind a `c2rs_string_list`, each kept byte for byte (a blob name may hold NUL
/// bytes) and followed by one terminating NUL so that it can be handed out as a C string.
/// Invariant: every entry is non-empty and its last byte is that terminator.
pub struct StringList {
    entries: Vec<Vec<u8>>,
}

impl StringList {
    pub fn new<S: Into<String>>(strings: impl IntoIterator<Item = S>) -> Self {
        let entries = strings
            .into_iter()
            .map(|s| {
                let mut bytes = s.into().into_bytes();
                bytes.push(0);
                bytes
            })
            .collect();
        Self { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entry `i` with its terminator (None when out of range).
    fn terminated(&self, i: usize) -> Option<&[u8]> {
        self.entries.get(i).map(Vec::as_slice)
    }

    /// Entry `i` without its terminator.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.terminated(i).map(|t| &t[..t.len() - 1])
    }
}

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

/// String `i` of `list`, NUL-terminated UTF-8. A string that itself holds a NUL byte (a blob
/// or net name may) cannot be read this way without losing its tail: this function refuses it
/// rather than truncate it; read it with `c2rs_string_list_get_n`.
///
/// Borrowed: valid until `list` is freed.
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: the string; NULL when `list` is NULL, `i` is out of range or string `i` holds a
/// NUL byte (then the last error, C2RS_INVALID_ARGUMENT, gives its offset).
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_string_list_get(list: *const c2rs_string_list, i: usize) -> *const c_char {
    ffi_fn_or!("c2rs_string_list_get", std::ptr::null(), {
        let Some(entry) = handle_ref(list, "list")?.terminated(i) else {
            return Ok(std::ptr::null());
        };
        if let Some(at) = entry[..entry.len() - 1].iter().position(|&b| b == 0) {
            return Err(C2rsError::invalid_argument(format!(
                "string {i} holds a NUL byte at offset {at} of {}; read it with \
                 c2rs_string_list_get_n",
                entry.len() - 1
            )));
        }
        Ok(entry.as_ptr().cast())
    })
}

/// String `i` of `list` byte for byte: `*ptr` points to `*len` bytes (UTF-8, NUL bytes
/// included when the string holds them), followed by a terminating NUL not counted in `*len`.
///
/// Borrowed: `*ptr` stays valid until `list` is freed.
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `list`, `ptr` or `len` is NULL or `i` is out
/// of range.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_string_list_get_n(
    list: *const c2rs_string_list,
    i: usize,
    ptr: *mut *const c_char,
    len: *mut usize,
) -> i32 {
    ffi_fn!("c2rs_string_list_get_n", {
        let ptr = out_param(ptr, "ptr")?;
        let len = out_param(len, "len")?;
        let list = handle_ref(list, "list")?;
        let entry = list.terminated(i).ok_or_else(|| {
            C2rsError::invalid_argument(format!(
                "index {i} is out of range (the list holds {})",
                list.len()
            ))
        })?;
        ptr.set(entry.as_ptr().cast());
        len.set(entry.len() - 1);
        Ok(())
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
    use crate::ffi::guard::{last_error_code, last_error_message};
    use crate::ffi::handle::into_handle;
    use crate::ffi::status::{C2RS_INVALID_ARGUMENT, C2RS_OK};
    use std::ffi::CStr;

    fn last_message() -> String {
        // SAFETY: this thread's current message, read before any other call.
        unsafe { CStr::from_ptr(last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

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
        let l = into_handle::<c2rs_string_list>(StringList::new(["a", "bé"]));
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

    fn entry(l: *const c2rs_string_list, i: usize) -> (i32, Vec<u8>) {
        let mut ptr = std::ptr::null();
        let mut len = usize::MAX;
        let status = c2rs_string_list_get_n(l, i, &mut ptr, &mut len);
        if status != C2RS_OK {
            assert!(ptr.is_null());
            assert_eq!(len, 0);
            return (status, Vec::new());
        }
        // SAFETY: on success `ptr` covers `len` bytes plus a terminating NUL.
        let with_nul = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len + 1) };
        assert_eq!(with_nul[len], 0, "entry {i} is NUL-terminated");
        (status, with_nul[..len].to_vec())
    }

    #[test]
    fn get_n_gives_exact_bytes_and_lengths_and_get_refuses_interior_nul() {
        let long = "x".repeat(1 << 20);
        let l = into_handle::<c2rs_string_list>(StringList::new([
            "a\0b".to_string(),
            String::new(),
            "\0".to_string(),
            "é\u{1F600}".to_string(),
            long.clone(),
        ]));
        assert_eq!(entry(l, 0), (C2RS_OK, b"a\0b".to_vec()));
        assert_eq!(entry(l, 1), (C2RS_OK, Vec::new()));
        assert_eq!(entry(l, 2), (C2RS_OK, vec![0]));
        assert_eq!(entry(l, 3), (C2RS_OK, "é\u{1F600}".as_bytes().to_vec()));
        assert_eq!(entry(l, 4), (C2RS_OK, long.into_bytes()));
        assert_eq!(entry(l, 5).0, C2RS_INVALID_ARGUMENT);
        assert!(last_message().contains("index 5 is out of range (the list holds 5)"));
        assert_eq!(entry(std::ptr::null(), 0).0, C2RS_INVALID_ARGUMENT);
        let mut len = 0;
        assert_eq!(
            c2rs_string_list_get_n(l, 0, std::ptr::null_mut(), &mut len),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_message().contains("`ptr`"));

        // The C-string accessor never hands out a truncated name.
        assert!(c2rs_string_list_get(l, 0).is_null());
        assert_eq!(last_error_code(), C2RS_INVALID_ARGUMENT);
        assert_eq!(
            last_message(),
            "c2rs_string_list_get: string 0 holds a NUL byte at offset 1 of 3; read it with \
             c2rs_string_list_get_n"
        );
        assert!(c2rs_string_list_get(l, 2).is_null());
        // SAFETY: entry 1 holds no NUL: a valid (empty) C string.
        assert_eq!(unsafe { CStr::from_ptr(c2rs_string_list_get(l, 1)) }, c"");
        // SAFETY: entry 3 holds no NUL: a valid C string.
        let e3 = unsafe { CStr::from_ptr(c2rs_string_list_get(l, 3)) };
        assert_eq!(e3.to_str(), Ok("é\u{1F600}"));
        c2rs_string_list_free(l);
    }
}
