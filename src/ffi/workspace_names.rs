//! Workspace calls that take blob and net names as `(pointer, length)`: the `_n` twins of the
//! C-string functions in `workspace.rs`. A name is any UTF-8 text, NUL bytes included, of any
//! length (a `std::string` carries it as is); the C-string functions keep meaning what they
//! mean for NUL-terminated names. Each twin behaves exactly as its C-string function.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::guard::{ffi_fn, name_arg_n, out_param, raw_name_arg_n};
use super::handle::{
    arc_ref, c2rs_buffer, c2rs_tensor, c2rs_workspace, handle_ref, into_handle, take_handle,
};
use super::workspace::{
    blob_or_not_found, created_blob, created_blob_by_raw_name, fetch_bytes, fetch_tensor, interned,
    run_net_by_name,
};
use crate::tensor::Tensor;

/// `c2rs_workspace_has_blob` with the name as `name_len` bytes at `name`.
///
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_has_blob_n(
    ws: *const c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    out: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_workspace_has_blob_n", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        let name = raw_name_arg_n(name, name_len, "name")?;
        let found = ws.has_blob_by_bytes(name.bytes());
        if !found {
            // Only a name no blob has can be one that is not UTF-8.
            name.check_utf8()?;
        }
        out.set(found);
        Ok(())
    })
}

/// `c2rs_workspace_create_blob` with the name as `name_len` bytes at `name`.
///
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8; C2RS_NOT_FOUND when the name is forwarded to a
/// parent blob that no longer exists.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_create_blob_n(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    name_len: usize,
) -> i32 {
    ffi_fn!("c2rs_workspace_create_blob_n", {
        let ws = arc_ref(ws, "ws")?;
        created_blob(ws, name_arg_n(name, name_len, "name")?)?;
        Ok(())
    })
}

/// `c2rs_workspace_create_local_blob` with the name as `name_len` bytes at `name`.
///
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_create_local_blob_n(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    name_len: usize,
) -> i32 {
    ffi_fn!("c2rs_workspace_create_local_blob_n", {
        let ws = arc_ref(ws, "ws")?;
        ws.create_local_blob(name_arg_n(name, name_len, "name")?);
        Ok(())
    })
}

/// `c2rs_workspace_remove_blob` with the name as `name_len` bytes at `name`.
///
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK with `*removed` false when there was no local blob of that name;
/// C2RS_INVALID_ARGUMENT when `ws` or `removed` is NULL, `name` is NULL with `name_len > 0` or
/// the name is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_remove_blob_n(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    removed: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_workspace_remove_blob_n", {
        let removed = out_param(removed, "removed")?;
        let ws = arc_ref(ws, "ws")?;
        removed.set(ws.remove_blob(name_arg_n(name, name_len, "name")?));
        Ok(())
    })
}

/// `c2rs_workspace_rename_blob` with both names as (pointer, length).
///
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` is NULL, a name pointer is NULL with a
/// length > 0 or a name is not UTF-8; C2RS_NOT_FOUND when the old name is not a local blob;
/// C2RS_ALREADY_EXISTS when the new name is visible in `ws`.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_rename_blob_n(
    ws: *mut c2rs_workspace,
    old_name: *const c_char,
    old_name_len: usize,
    new_name: *const c_char,
    new_name_len: usize,
) -> i32 {
    ffi_fn!("c2rs_workspace_rename_blob_n", {
        let ws = arc_ref(ws, "ws")?;
        ws.rename_blob(
            name_arg_n(old_name, old_name_len, "old_name")?,
            name_arg_n(new_name, new_name_len, "new_name")?,
        )
    })
}

/// `c2rs_workspace_blob_id` with the name as `name_len` bytes at `name`.
///
/// Borrowed: the value is an opaque identity, never to be dereferenced.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK (`*out` NULL when no blob of that name is visible); C2RS_INVALID_ARGUMENT
/// when `ws` or `out` is NULL, `name` is NULL with `name_len > 0` or the name is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_blob_id_n(
    ws: *const c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    out: *mut *const c_void,
) -> i32 {
    ffi_fn!("c2rs_workspace_blob_id_n", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        if let Some(b) = ws.get_blob(name_arg_n(name, name_len, "name")?) {
            out.set(Arc::as_ptr(&b) as *const c_void);
        }
        Ok(())
    })
}

/// `c2rs_workspace_blob_type` with the name as `name_len` bytes at `name`.
///
/// Borrowed: `*out` is static (never freed).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8; C2RS_NOT_FOUND when no blob of that name is
/// visible.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_blob_type_n(
    ws: *const c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    out: *mut *const c_char,
) -> i32 {
    ffi_fn!("c2rs_workspace_blob_type_n", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        let blob = blob_or_not_found(ws, name_arg_n(name, name_len, "name")?)?;
        out.set(interned(blob.type_name()).as_ptr());
        Ok(())
    })
}

/// `c2rs_workspace_feed` with the name as `name_len` bytes at `name`: stores a copy of `t`.
///
/// Ownership: `t` is copied, not consumed.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// `t` must not be written concurrently.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `t` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8; C2RS_NOT_FOUND when the name is forwarded to a
/// parent blob that no longer exists.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_feed_n(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    t: *const c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_workspace_feed_n", {
        let ws = arc_ref(ws, "ws")?;
        let name = raw_name_arg_n(name, name_len, "name")?;
        let t = handle_ref(t, "t")?;
        created_blob_by_raw_name(ws, name)?.set_tensor_copy(t)
    })
}

/// `c2rs_workspace_feed_move` with the name as `name_len` bytes at `name`: moves `t` into the
/// blob without copying its data.
///
/// Ownership: `t` is consumed in every case, success or failure (unless `t` is NULL); do not
/// use or free it afterwards.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `t` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8; C2RS_NOT_FOUND as for `c2rs_workspace_feed_n`.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_feed_move_n(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    t: *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_workspace_feed_move_n", {
        let tensor: Tensor = take_handle(t, "t")?;
        let ws = arc_ref(ws, "ws")?;
        created_blob_by_raw_name(ws, raw_name_arg_n(name, name_len, "name")?)?.set_tensor(tensor);
        Ok(())
    })
}

/// `c2rs_workspace_fetch` with the name as `name_len` bytes at `name`: a copy of the tensor,
/// owned by the host.
///
/// Ownership: the caller owns `*out` (`c2rs_tensor_free`).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8; C2RS_NOT_FOUND when no blob of that name is visible
/// ("Can't find blob: <name>"); C2RS_TYPE_MISMATCH when the blob holds no tensor.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_fetch_n(
    ws: *const c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    out: *mut *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_workspace_fetch_n", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        out.set(into_handle(fetch_tensor(
            ws,
            raw_name_arg_n(name, name_len, "name")?,
        )?));
        Ok(())
    })
}

/// `c2rs_workspace_feed_string` with the name as `name_len` bytes at `name`: stores a
/// byte-string blob (the data may contain NUL bytes too).
///
/// Ownership: the bytes are copied.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` is NULL, `name` or `data` is NULL with a
/// length > 0 or the name is not UTF-8; C2RS_NOT_FOUND as for `c2rs_workspace_feed_n`.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_feed_string_n(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    data: *const u8,
    len: usize,
) -> i32 {
    ffi_fn!("c2rs_workspace_feed_string_n", {
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg_n(name, name_len, "name")?;
        let bytes = super::guard::byte_slice(data, len, "data")?.to_vec();
        created_blob(ws, name)?.set_string(bytes);
        Ok(())
    })
}

/// `c2rs_workspace_fetch_string` with the name as `name_len` bytes at `name`: the bytes of a
/// byte-string blob, or Caffe2's description of other non-tensor content.
///
/// Ownership: the caller owns `*out` (`c2rs_buffer_free`).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8; C2RS_NOT_FOUND when no blob of that name is
/// visible; C2RS_TYPE_MISMATCH when it holds a tensor (use `c2rs_workspace_fetch_n`).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_fetch_string_n(
    ws: *const c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    out: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_workspace_fetch_string_n", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        out.set(into_handle(fetch_bytes(
            ws,
            name_arg_n(name, name_len, "name")?,
        )?));
        Ok(())
    })
}

/// `c2rs_workspace_run_net` with the net name as `name_len` bytes at `name` (a NetDef's name
/// may hold NUL bytes): runs the net `iterations` times, stopping at the first failure.
///
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// No workspace lock is held while the net runs.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` is NULL, `name` is NULL with
/// `name_len > 0`, the name is not UTF-8 or `iterations` is negative; C2RS_NOT_FOUND when
/// there is no net of that name; C2RS_RUN_FAILED when an operator reports failure; any status
/// an operator raises (messages as for `c2rs_workspace_run_net`).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_run_net_n(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    iterations: i32,
) -> i32 {
    ffi_fn!("c2rs_workspace_run_net_n", {
        let ws = arc_ref(ws, "ws")?;
        run_net_by_name(ws, name_arg_n(name, name_len, "name")?, iterations)
    })
}

/// `c2rs_workspace_has_net` with the net name as `name_len` bytes at `name`.
///
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_has_net_n(
    ws: *const c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    out: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_workspace_has_net_n", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        out.set(ws.has_net(name_arg_n(name, name_len, "name")?));
        Ok(())
    })
}

/// `c2rs_workspace_delete_net` with the net name as `name_len` bytes at `name`.
///
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK with `*deleted` false when there was no such net; C2RS_INVALID_ARGUMENT
/// when `ws` or `deleted` is NULL, `name` is NULL with `name_len > 0` or the name is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_delete_net_n(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    deleted: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_workspace_delete_net_n", {
        let deleted = out_param(deleted, "deleted")?;
        let ws = arc_ref(ws, "ws")?;
        deleted.set(ws.delete_net(name_arg_n(name, name_len, "name")?));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::status::{C2RS_INVALID_ARGUMENT, C2RS_OK};
    use super::*;
    use crate::ffi::workspace::{c2rs_workspace_free, c2rs_workspace_new};
    use std::ffi::CStr;
    use std::ptr::{null, null_mut};

    fn last_message() -> String {
        // SAFETY: this thread's current message, read before any other call.
        unsafe { CStr::from_ptr(super::super::guard::last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    /// Every twin with a NULL workspace, then with a NULL name of non-zero length, then with a
    /// name that is not UTF-8: each is C2RS_INVALID_ARGUMENT naming the parameter.
    #[test]
    fn null_and_non_utf8_arguments_name_the_parameter() {
        let mut ws = null_mut();
        assert_eq!(c2rs_workspace_new(null_mut(), &mut ws), C2RS_OK);
        let mut b = false;
        let b: *mut bool = &mut b; // shared by several closures: a raw out-pointer is Copy
        let (mut id, mut ty) = (null(), null());
        let (mut t, mut buf) = (null_mut(), null_mut());
        let bad = b"\xff".as_ptr().cast::<c_char>();
        type Call<'a> = Box<dyn FnMut(*mut c2rs_workspace, *const c_char, usize) -> i32 + 'a>;
        let calls: Vec<(&str, Call)> = vec![
            (
                "has_blob",
                Box::new(|w, n, l| c2rs_workspace_has_blob_n(w, n, l, b)),
            ),
            (
                "create_blob",
                Box::new(|w, n, l| c2rs_workspace_create_blob_n(w, n, l)),
            ),
            (
                "create_local",
                Box::new(|w, n, l| c2rs_workspace_create_local_blob_n(w, n, l)),
            ),
            (
                "remove_blob",
                Box::new(|w, n, l| c2rs_workspace_remove_blob_n(w, n, l, b)),
            ),
            (
                "rename_old",
                Box::new(|w, n, l| c2rs_workspace_rename_blob_n(w, n, l, null(), 0)),
            ),
            (
                "rename_new",
                Box::new(|w, n, l| c2rs_workspace_rename_blob_n(w, null(), 0, n, l)),
            ),
            (
                "blob_id",
                Box::new(|w, n, l| c2rs_workspace_blob_id_n(w, n, l, &mut id)),
            ),
            (
                "blob_type",
                Box::new(|w, n, l| c2rs_workspace_blob_type_n(w, n, l, &mut ty)),
            ),
            (
                "fetch",
                Box::new(|w, n, l| c2rs_workspace_fetch_n(w, n, l, &mut t)),
            ),
            (
                "feed_string",
                Box::new(|w, n, l| c2rs_workspace_feed_string_n(w, n, l, null(), 0)),
            ),
            (
                "fetch_string",
                Box::new(|w, n, l| c2rs_workspace_fetch_string_n(w, n, l, &mut buf)),
            ),
            (
                "run_net",
                Box::new(|w, n, l| c2rs_workspace_run_net_n(w, n, l, 1)),
            ),
            (
                "has_net",
                Box::new(|w, n, l| c2rs_workspace_has_net_n(w, n, l, b)),
            ),
            (
                "delete_net",
                Box::new(|w, n, l| c2rs_workspace_delete_net_n(w, n, l, b)),
            ),
        ];
        for (what, mut call) in calls {
            assert_eq!(
                call(null_mut(), c"x".as_ptr(), 1),
                C2RS_INVALID_ARGUMENT,
                "{what}"
            );
            assert!(
                last_message().contains("argument `ws` is NULL"),
                "{what}: {}",
                last_message()
            );
            assert_eq!(call(ws, null(), 3), C2RS_INVALID_ARGUMENT, "{what}");
            assert!(last_message().contains("is NULL with length 3"), "{what}");
            assert_eq!(call(ws, bad, 1), C2RS_INVALID_ARGUMENT, "{what}");
            assert!(
                last_message().contains("is not valid UTF-8 (byte 0 of 1)"),
                "{what}"
            );
        }
        // Tensors: a NULL tensor is named; feed_move consumes nothing it was not given.
        assert_eq!(
            c2rs_workspace_feed_n(ws, c"x".as_ptr(), 1, null()),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_message().contains("`t`"));
        assert_eq!(
            c2rs_workspace_feed_move_n(ws, c"x".as_ptr(), 1, null_mut()),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_message().contains("`t`"));
        let mut has = true;
        assert_eq!(
            c2rs_workspace_has_blob_n(ws, c"x".as_ptr(), 1, &mut has),
            C2RS_OK
        );
        assert!(!has, "no failed call created the blob");
        c2rs_workspace_free(ws);
    }
}
