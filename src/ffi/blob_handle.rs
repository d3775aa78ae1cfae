//! Blob handles from C: a blob looked up by name once (`c2rs_workspace_blob_handle`), then
//! checked, fed and fetched through the handle with no name lookup per call. A handle follows
//! the operators' rule for removed blobs (see `workspace::BoundBlob`).

use std::ffi::c_char;

use super::guard::{RawName, ffi_fn, ffi_fn_or, out_param, raw_name_arg, raw_name_arg_n};
use super::handle::{
    arc_clone, c2rs_blob_handle, c2rs_tensor, c2rs_workspace, free_handle, handle_ref, into_handle,
    take_handle,
};
use crate::error::{C2rsError, Result};
use crate::tensor::Tensor;
use crate::workspace::BoundBlob;

/// Binds the blob `name` resolves to; the name's UTF-8 is checked only when no blob has it.
fn bind(ws: *const c2rs_workspace, name: RawName<'_, '_>, create: bool) -> Result<BoundBlob> {
    let ws = arc_clone(ws, "ws")?;
    match ws.get_blob_by_bytes(name.bytes()) {
        // Found, so the bytes are a stored (UTF-8) name.
        Some(blob) => Ok(BoundBlob::with_blob(
            &ws,
            &String::from_utf8_lossy(name.bytes()),
            blob,
        )),
        None => BoundBlob::new(&ws, name.to_str()?, create),
    }
}

/// A handle on the blob `name` resolves to in `ws` (local, forwarded or a parent's), for
/// `c2rs_blob_handle_has` / `_feed` / `_feed_move` / `_fetch` without a name lookup per call.
/// With `create`, a name that is not visible first gets an empty local blob (as
/// `c2rs_workspace_create_blob`); without, it is C2RS_NOT_FOUND.
///
/// Lifetime: the handle refers to the blob found now, not to the name: after a rename it works
/// on the same blob under its new name. When the blob is removed from the workspace, the
/// handle keeps working on it (as an operator built on it does) until the name is given to
/// another blob; from then on every call on the handle but `_has` and `_free` fails with
/// C2RS_ENFORCE_NOT_MET, and a new handle is needed.
/// Ownership: the caller owns `*out` (`c2rs_blob_handle_free`); it holds a reference to `ws`,
/// so the workspace stays alive until the handle is freed too.
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_blob_handle_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws`, `name` or `out` is NULL or `name` is not
/// UTF-8; C2RS_NOT_FOUND when no blob `name` is visible and `create` is false
/// ("Can't find blob: <name>"), or `name` is forwarded to a parent blob that no longer exists.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_blob_handle(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    create: bool,
    out: *mut *mut c2rs_blob_handle,
) -> i32 {
    ffi_fn!("c2rs_workspace_blob_handle", {
        let out = out_param(out, "out")?;
        let name = raw_name_arg(name, "name")?;
        out.set(into_handle(bind(ws, name, create)?));
        Ok(())
    })
}

/// `c2rs_workspace_blob_handle` with the name as `name_len` bytes at `name`.
///
/// Ownership: as `c2rs_workspace_blob_handle`.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8; C2RS_NOT_FOUND as for `c2rs_workspace_blob_handle`.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_blob_handle_n(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    create: bool,
    out: *mut *mut c2rs_blob_handle,
) -> i32 {
    ffi_fn!("c2rs_workspace_blob_handle_n", {
        let out = out_param(out, "out")?;
        let name = raw_name_arg_n(name, name_len, "name")?;
        out.set(into_handle(bind(ws, name, create)?));
        Ok(())
    })
}

/// Whether the handle's blob is still in its workspace: true until the blob is removed
/// (`c2rs_workspace_remove_blob`, an operator removing it), false from then on, even if the
/// name is given to a new blob. A rename keeps it true.
///
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `h` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blob_handle_has(h: *const c2rs_blob_handle, out: *mut bool) -> i32 {
    ffi_fn!("c2rs_blob_handle_has", {
        let out = out_param(out, "out")?;
        out.set(handle_ref(h, "h")?.is_present());
        Ok(())
    })
}

/// Stores a copy of `t` in the handle's blob (as `c2rs_workspace_feed`). When the blob holds
/// a tensor of the same dtype and dims whose buffer nothing else shares, the values are
/// copied into that buffer and nothing is allocated.
///
/// Ownership: `t` is copied, not consumed.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// `t` must not be written concurrently.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `h` or `t` is NULL; C2RS_ENFORCE_NOT_MET when
/// the blob was removed and its name now holds another blob.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blob_handle_feed(h: *mut c2rs_blob_handle, t: *const c2rs_tensor) -> i32 {
    ffi_fn!("c2rs_blob_handle_feed", {
        let bound = handle_ref(h, "h")?;
        let t = handle_ref(t, "t")?;
        bound.blob()?.set_tensor_copy(t)
    })
}

/// Moves `t` into the handle's blob without copying its data (as
/// `c2rs_workspace_feed_move`).
///
/// Ownership: `t` is consumed in every case, success or failure (unless `t` is NULL); do not
/// use or free it afterwards.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `h` or `t` is NULL; C2RS_ENFORCE_NOT_MET when
/// the blob was removed and its name now holds another blob.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blob_handle_feed_move(h: *mut c2rs_blob_handle, t: *mut c2rs_tensor) -> i32 {
    ffi_fn!("c2rs_blob_handle_feed_move", {
        let tensor: Tensor = take_handle(t, "t")?;
        handle_ref(h, "h")?.blob()?.set_tensor(tensor);
        Ok(())
    })
}

/// A copy of the tensor in the handle's blob, owned by the host (as `c2rs_workspace_fetch`).
///
/// Ownership: the caller owns `*out` (`c2rs_tensor_free`).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `h` or `out` is NULL; C2RS_TYPE_MISMATCH when
/// the blob holds no tensor; C2RS_ENFORCE_NOT_MET when the blob was removed and its name now
/// holds another blob.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_blob_handle_fetch(
    h: *const c2rs_blob_handle,
    out: *mut *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_blob_handle_fetch", {
        let out = out_param(out, "out")?;
        let bound = handle_ref(h, "h")?;
        let tensor = bound.blob()?.copy_tensor().map_err(|e| {
            C2rsError::new(e.kind(), format!("blob {}: {}", bound.name(), e.message()))
        })?;
        out.set(into_handle(tensor));
        Ok(())
    })
}

/// Releases a blob handle (the blob stays in its workspace).
///
/// Ownership: `h` is freed with its reference to the workspace; NULL is a no-op; freeing
/// twice is undefined behaviour.
/// Thread safety: no other call may use `h` concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_blob_handle_free(h: *mut c2rs_blob_handle) {
    ffi_fn_or!("c2rs_blob_handle_free", (), {
        free_handle(h);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::status::{
        C2RS_ENFORCE_NOT_MET, C2RS_INVALID_ARGUMENT, C2RS_NOT_FOUND, C2RS_OK, C2RS_TYPE_MISMATCH,
    };
    use super::*;
    use crate::ffi::tensor::{c2rs_tensor_data, c2rs_tensor_free, c2rs_tensor_new};
    use crate::ffi::workspace::{
        c2rs_workspace_create_blob, c2rs_workspace_feed_string, c2rs_workspace_fetch,
        c2rs_workspace_free, c2rs_workspace_new, c2rs_workspace_remove_blob,
        c2rs_workspace_rename_blob,
    };
    use std::ffi::CStr;
    use std::ptr::{null, null_mut};

    fn last_message() -> String {
        // SAFETY: this thread's current message, read before any other call.
        unsafe { CStr::from_ptr(super::super::guard::last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    fn workspace() -> *mut c2rs_workspace {
        let mut ws = null_mut();
        assert_eq!(c2rs_workspace_new(null_mut(), &mut ws), C2RS_OK);
        ws
    }

    /// A host-owned FLOAT tensor holding `values`.
    fn floats(values: &[f32]) -> *mut c2rs_tensor {
        let mut t = null_mut();
        let dims = [values.len() as i64];
        assert_eq!(c2rs_tensor_new(1, dims.as_ptr(), 1, &mut t), C2RS_OK);
        let mut data = null_mut();
        assert_eq!(
            crate::ffi::tensor::c2rs_tensor_mutable_data(t, &mut data),
            C2RS_OK
        );
        // SAFETY: a fresh FLOAT tensor of `values.len()` elements owned by this test.
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), data.cast(), values.len()) };
        t
    }

    /// The values of a FLOAT tensor handle (freed here).
    fn values_of(t: *mut c2rs_tensor, n: usize) -> Vec<f32> {
        let mut data = null();
        assert_eq!(c2rs_tensor_data(t, &mut data), C2RS_OK);
        // SAFETY: a FLOAT tensor of `n` elements, alive until the free below.
        let v = unsafe { std::slice::from_raw_parts(data.cast::<f32>(), n) }.to_vec();
        c2rs_tensor_free(t);
        v
    }

    fn fetch(h: *const c2rs_blob_handle, n: usize) -> Vec<f32> {
        let mut out = null_mut();
        assert_eq!(
            c2rs_blob_handle_fetch(h, &mut out),
            C2RS_OK,
            "{}",
            last_message()
        );
        values_of(out, n)
    }

    #[test]
    fn null_arguments_are_named_and_out_stays_null() {
        let ws = workspace();
        let mut h = null_mut();
        assert_eq!(
            c2rs_workspace_blob_handle(null_mut(), c"x".as_ptr(), true, &mut h),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_message().contains("`ws` is NULL"));
        assert_eq!(
            c2rs_workspace_blob_handle(ws, null(), true, &mut h),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_message().contains("`name` is NULL"));
        assert_eq!(
            c2rs_workspace_blob_handle(ws, c"x".as_ptr(), true, null_mut()),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_workspace_blob_handle_n(ws, null(), 2, true, &mut h),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_message().contains("is NULL with length 2"));
        assert!(h.is_null());
        let mut b = true;
        assert_eq!(c2rs_blob_handle_has(null(), &mut b), C2RS_INVALID_ARGUMENT);
        assert!(last_message().contains("`h` is NULL"));
        assert_eq!(
            c2rs_blob_handle_feed(null_mut(), null()),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_blob_handle_feed_move(null_mut(), null_mut()),
            C2RS_INVALID_ARGUMENT
        );
        let mut t = null_mut();
        assert_eq!(
            c2rs_blob_handle_fetch(null(), &mut t),
            C2RS_INVALID_ARGUMENT
        );
        c2rs_blob_handle_free(null_mut());
        // With a live handle: NULL tensors and out-parameters are named.
        assert_eq!(
            c2rs_workspace_blob_handle(ws, c"x".as_ptr(), true, &mut h),
            C2RS_OK
        );
        assert_eq!(c2rs_blob_handle_feed(h, null()), C2RS_INVALID_ARGUMENT);
        assert!(last_message().contains("`t` is NULL"));
        assert_eq!(c2rs_blob_handle_has(h, null_mut()), C2RS_INVALID_ARGUMENT);
        assert_eq!(c2rs_blob_handle_fetch(h, null_mut()), C2RS_INVALID_ARGUMENT);
        c2rs_blob_handle_free(h);
        c2rs_workspace_free(ws);
    }

    #[test]
    fn a_missing_name_is_not_found_without_create_and_a_bad_name_is_refused() {
        let ws = workspace();
        let mut h = null_mut();
        assert_eq!(
            c2rs_workspace_blob_handle(ws, c"x".as_ptr(), false, &mut h),
            C2RS_NOT_FOUND
        );
        assert_eq!(
            last_message(),
            "c2rs_workspace_blob_handle: Can't find blob: x"
        );
        assert!(h.is_null());
        let bad = b"a\xffb";
        for create in [false, true] {
            assert_eq!(
                c2rs_workspace_blob_handle_n(ws, bad.as_ptr().cast(), 3, create, &mut h),
                C2RS_INVALID_ARGUMENT
            );
            assert!(last_message().contains("not valid UTF-8 (byte 1 of 3)"));
        }
        // The name with its NUL byte, created through the (pointer, length) form.
        assert_eq!(
            c2rs_workspace_blob_handle_n(ws, b"a\0b".as_ptr().cast(), 3, true, &mut h),
            C2RS_OK
        );
        let mut b = false;
        assert_eq!(c2rs_blob_handle_has(h, &mut b), C2RS_OK);
        assert!(b);
        c2rs_blob_handle_free(h);
        c2rs_workspace_free(ws);
    }

    #[test]
    fn feed_and_fetch_through_a_handle_match_the_named_calls() {
        let ws = workspace();
        let mut h = null_mut();
        assert_eq!(
            c2rs_workspace_blob_handle(ws, c"x".as_ptr(), true, &mut h),
            C2RS_OK
        );
        // An empty blob holds no tensor.
        let mut t = null_mut();
        assert_eq!(c2rs_blob_handle_fetch(h, &mut t), C2RS_TYPE_MISMATCH);
        assert!(last_message().starts_with("c2rs_blob_handle_fetch: blob x: wrong type"));
        let first = floats(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(c2rs_blob_handle_feed(h, first), C2RS_OK);
        // A fetched copy keeps its values when the blob is fed again (in place or not).
        let mut before = null_mut();
        assert_eq!(c2rs_blob_handle_fetch(h, &mut before), C2RS_OK);
        let second = floats(&[5.0, 6.0, 7.0, 8.0]);
        assert_eq!(c2rs_blob_handle_feed(h, second), C2RS_OK);
        assert_eq!(values_of(before, 4), [1.0, 2.0, 3.0, 4.0]);
        // The named fetch sees what the handle fed, and the host's tensor was only copied.
        let mut named = null_mut();
        assert_eq!(c2rs_workspace_fetch(ws, c"x".as_ptr(), &mut named), C2RS_OK);
        assert_eq!(values_of(named, 4), [5.0, 6.0, 7.0, 8.0]);
        assert_eq!(values_of(second, 4), [5.0, 6.0, 7.0, 8.0]);
        assert_eq!(values_of(first, 4), [1.0, 2.0, 3.0, 4.0]);
        // Another shape replaces the tensor; feed_move hands the tensor over.
        assert_eq!(c2rs_blob_handle_feed_move(h, floats(&[9.0])), C2RS_OK);
        assert_eq!(fetch(h, 1), [9.0]);
        c2rs_blob_handle_free(h);
        c2rs_workspace_free(ws);
    }

    #[test]
    fn a_removed_blob_is_reported_and_refused_once_its_name_is_reused() {
        let ws = workspace();
        let mut h = null_mut();
        assert_eq!(
            c2rs_workspace_blob_handle(ws, c"x".as_ptr(), true, &mut h),
            C2RS_OK
        );
        let mut removed = false;
        assert_eq!(
            c2rs_workspace_remove_blob(ws, c"x".as_ptr(), &mut removed),
            C2RS_OK
        );
        assert!(removed);
        let mut has = true;
        assert_eq!(c2rs_blob_handle_has(h, &mut has), C2RS_OK);
        assert!(!has);
        // The name is free: the handle still works on its own blob, which nobody else sees.
        assert_eq!(c2rs_blob_handle_feed_move(h, floats(&[1.0])), C2RS_OK);
        assert_eq!(fetch(h, 1), [1.0]);
        // The name holds another blob now: every use is refused, naming the blob.
        assert_eq!(
            c2rs_workspace_feed_string(ws, c"x".as_ptr(), b"new".as_ptr(), 3),
            C2RS_OK
        );
        let mut t = null_mut();
        assert_eq!(c2rs_blob_handle_fetch(h, &mut t), C2RS_ENFORCE_NOT_MET);
        assert!(
            last_message().starts_with("c2rs_blob_handle_fetch: blob x was removed"),
            "{}",
            last_message()
        );
        let one = floats(&[2.0]);
        assert_eq!(c2rs_blob_handle_feed(h, one), C2RS_ENFORCE_NOT_MET);
        c2rs_tensor_free(one);
        assert_eq!(c2rs_blob_handle_has(h, &mut has), C2RS_OK);
        assert!(!has);
        c2rs_blob_handle_free(h);
        c2rs_workspace_free(ws);
    }

    #[test]
    fn a_handle_follows_a_rename_and_keeps_its_workspace_alive() {
        let ws = workspace();
        assert_eq!(c2rs_workspace_create_blob(ws, c"old".as_ptr()), C2RS_OK);
        let mut h = null_mut();
        assert_eq!(
            c2rs_workspace_blob_handle(ws, c"old".as_ptr(), false, &mut h),
            C2RS_OK
        );
        assert_eq!(
            c2rs_workspace_rename_blob(ws, c"old".as_ptr(), c"new".as_ptr()),
            C2RS_OK
        );
        assert_eq!(c2rs_blob_handle_feed_move(h, floats(&[3.0, 4.0])), C2RS_OK);
        let mut t = null_mut();
        assert_eq!(c2rs_workspace_fetch(ws, c"new".as_ptr(), &mut t), C2RS_OK);
        assert_eq!(values_of(t, 2), [3.0, 4.0]);
        // The host frees the workspace first: the handle keeps it (and the blob) alive.
        c2rs_workspace_free(ws);
        let mut has = false;
        assert_eq!(c2rs_blob_handle_has(h, &mut has), C2RS_OK);
        assert!(has);
        assert_eq!(fetch(h, 2), [3.0, 4.0]);
        c2rs_blob_handle_free(h);
    }
}
