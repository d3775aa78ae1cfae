//! Workspace blobs without copies: moving a blob's content out (`take`), a shared read-only
//! snapshot of a tensor, and putting or sharing non-tensor objects (queues, DB readers, byte
//! strings). Names are (pointer, length) as for every `_n` function.

use std::ffi::c_char;

use super::guard::{ffi_fn, name_arg_n, out_param};
use super::handle::{arc_ref, c2rs_tensor, c2rs_workspace, handle_ref, into_handle};
use super::object::{ObjectValue, c2rs_object};
use super::workspace::{blob_or_not_found, created_blob};
use crate::error::C2rsError;
use crate::workspace::BlobContent;

/// Moves the content of blob `name` out without copying, leaving the blob empty ("nullptr
/// (uninitialized)", as Caffe2's `Blob::Release`): a tensor goes to `*tensor`, any other
/// content (a byte string, a queue, a DB reader …) to `*object`. Both stay NULL when the blob
/// was already empty. `object` may be NULL when the caller expects a tensor: then a blob
/// holding something else is refused and left as it was. A tensor taken from a blob nobody
/// else shares (an operator output, a dequeued batch) is the only holder of its storage: it can
/// be written in place or handed over writable (`c2rs_tensor_into_dlpack`).
///
/// Operators built on the blob keep the blob itself and see it empty until it is fed again.
/// Ownership: on success the caller owns `*tensor` (`c2rs_tensor_free`) or `*object`
/// (`c2rs_object_free`).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `tensor` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8; C2RS_NOT_FOUND when no blob `name` is visible
/// ("Can't find blob: <name>"); C2RS_TYPE_MISMATCH when `object` is NULL and the blob holds
/// something other than a tensor (the blob is untouched).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_take_n(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    tensor: *mut *mut c2rs_tensor,
    object: *mut *mut c2rs_object,
) -> i32 {
    ffi_fn!("c2rs_workspace_take_n", {
        let tensor_out = out_param(tensor, "tensor")?;
        let object_out = if object.is_null() {
            None
        } else {
            Some(out_param(object, "object")?)
        };
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg_n(name, name_len, "name")?;
        let blob = blob_or_not_found(ws, name)?;
        let mut guard = blob.write();
        match (&*guard, &object_out) {
            (BlobContent::Tensor(_) | BlobContent::Empty, _) | (_, Some(_)) => {}
            (other, None) => {
                return Err(C2rsError::type_mismatch(format!(
                    "blob {name} holds {}, not a tensor (pass `object` to take any content)",
                    other.type_name()
                )));
            }
        }
        let content = std::mem::take(&mut *guard);
        drop(guard);
        match content {
            BlobContent::Empty => {}
            BlobContent::Tensor(t) => tensor_out.set(into_handle(t)),
            other => {
                if let Some(o) = object_out {
                    o.set(into_handle(ObjectValue::new(other)?));
                }
            }
        }
        Ok(())
    })
}

/// A read-only snapshot of the tensor in blob `name` that shares its storage: no element is
/// copied (`c2rs_tensor_data` gives the blob's own pointer). The snapshot never changes: a
/// later write to the blob (an operator output, a feed) goes to new storage or copies first
/// while the snapshot lives, and writing through the snapshot (`c2rs_tensor_mutable_data`)
/// copies it first. The price of holding it is that copy: free it before the blob is written
/// again when in-place writes matter.
///
/// Ownership: the caller owns `*out` (`c2rs_tensor_free`); its storage stays alive until then,
/// even when the blob is overwritten, removed or its workspace freed.
/// Borrowed: nothing; the data pointer of `*out` is valid until `*out` is freed.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8; C2RS_NOT_FOUND when no blob `name` is visible;
/// C2RS_TYPE_MISMATCH when it holds no tensor.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_fetch_shared_n(
    ws: *const c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    out: *mut *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_workspace_fetch_shared_n", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg_n(name, name_len, "name")?;
        let t = blob_or_not_found(ws, name)?
            .tensor()
            .map_err(|e| C2rsError::new(e.kind(), format!("blob {name}: {}", e.message())))?;
        out.set(into_handle(t));
        Ok(())
    })
}

/// Another handle to the non-tensor content of blob `name` (a queue, a DB reader: shared, the
/// same object; a byte string: copied), leaving the blob as it is.
///
/// Ownership: the caller owns `*out` (`c2rs_object_free`).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8; C2RS_NOT_FOUND when no blob `name` is visible;
/// C2RS_TYPE_MISMATCH when it holds a tensor or nothing.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_fetch_object_n(
    ws: *const c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    out: *mut *mut c2rs_object,
) -> i32 {
    ffi_fn!("c2rs_workspace_fetch_object_n", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg_n(name, name_len, "name")?;
        let content = blob_or_not_found(ws, name)?.read().clone();
        match content {
            BlobContent::Empty | BlobContent::Tensor(_) => Err(C2rsError::type_mismatch(format!(
                "blob {name} holds {}, not an object",
                content.type_name()
            ))),
            other => {
                out.set(into_handle(ObjectValue::new(other)?));
                Ok(())
            }
        }
    })
}

/// Puts `obj` in blob `name` (created as `c2rs_workspace_create_blob` does), replacing its
/// content: operators reading the blob then use that very object (a queue shared with the
/// host's other blobs, a DB reader opened elsewhere).
///
/// Ownership: `obj` is shared (a byte string copied), not consumed; the caller still frees it.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `obj` is NULL, `name` is NULL with
/// `name_len > 0` or the name is not UTF-8; C2RS_NOT_FOUND when `name` is forwarded to a parent
/// blob that no longer exists.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_put_object_n(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    name_len: usize,
    obj: *const c2rs_object,
) -> i32 {
    ffi_fn!("c2rs_workspace_put_object_n", {
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg_n(name, name_len, "name")?;
        let content = handle_ref(obj, "obj")?.content();
        *created_blob(ws, name)?.write() = content;
        Ok(())
    })
}
