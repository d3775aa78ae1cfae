//! Workspaces from C: blobs (create, feed, fetch, list, remove, rename), parent and forwarded
//! lookup, operators run once, nets created and run.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_void};
use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use super::buffer::StringList;
use super::guard::{RawName, array_arg, byte_slice, ffi_fn, name_arg, out_param, raw_name_arg};
use super::handle::{
    arc_clone, arc_free, arc_into_handle, arc_ref, c2rs_buffer, c2rs_string_list, c2rs_tensor,
    c2rs_workspace, handle_ref, into_handle, take_handle,
};
use crate::error::{C2rsError, Result};
use crate::tensor::Tensor;
use crate::workspace::names::{decode_net_def, decode_operator_def, decode_plan_def};
use crate::workspace::{Blob, BlobContent, Workspace};

/// Names as a string list, byte for byte (a name may hold NUL bytes: see
/// `c2rs_string_list_get_n`).
pub(crate) fn string_list(names: Vec<String>) -> Result<StringList> {
    Ok(StringList::new(names))
}

pub(super) fn blob_or_not_found(ws: &Workspace, name: &str) -> Result<Arc<Blob>> {
    ws.get_blob(name)
        .ok_or_else(|| C2rsError::not_found(format!("Can't find blob: {name}")))
}

pub(super) fn created_blob(ws: &Workspace, name: &str) -> Result<Arc<Blob>> {
    ws.create_blob(name).ok_or_else(|| {
        C2rsError::not_found(format!(
            "blob {name} is forwarded to a parent blob that no longer exists"
        ))
    })
}

/// The blob `name` resolves to, looked up by its bytes: the name's UTF-8 is checked only when
/// no blob has it (then C2RS_INVALID_ARGUMENT, or C2RS_NOT_FOUND "Can't find blob: <name>").
pub(super) fn blob_by_raw_name(ws: &Workspace, name: RawName<'_, '_>) -> Result<Arc<Blob>> {
    match ws.get_blob_by_bytes(name.bytes()) {
        Some(blob) => Ok(blob),
        None => Err(C2rsError::not_found(format!(
            "Can't find blob: {}",
            name.to_str()?
        ))),
    }
}

/// `created_blob` for a name looked up by its bytes (UTF-8 checked only before creating).
pub(super) fn created_blob_by_raw_name(ws: &Workspace, name: RawName<'_, '_>) -> Result<Arc<Blob>> {
    match ws.get_blob_by_bytes(name.bytes()) {
        Some(blob) => Ok(blob),
        None => created_blob(ws, name.to_str()?),
    }
}

/// A host-owned copy of the tensor in blob `name` (`c2rs_workspace_fetch[_n]`).
pub(super) fn fetch_tensor(ws: &Workspace, name: RawName<'_, '_>) -> Result<Tensor> {
    blob_by_raw_name(ws, name)?.copy_tensor().map_err(|e| {
        // The blob was found, so the name is UTF-8.
        let shown = String::from_utf8_lossy(name.bytes());
        C2rsError::new(e.kind(), format!("blob {shown}: {}", e.message()))
    })
}

/// The bytes of a byte-string blob, or Caffe2's description of other non-tensor content
/// (`c2rs_workspace_fetch_string[_n]`).
pub(super) fn fetch_bytes(ws: &Workspace, name: &str) -> Result<Vec<u8>> {
    let blob = blob_or_not_found(ws, name)?;
    let bytes = match &*blob.read() {
        BlobContent::String(s) => s.clone(),
        BlobContent::Tensor(_) => {
            return Err(C2rsError::type_mismatch(format!(
                "blob {name} holds a tensor; fetch it with c2rs_workspace_fetch"
            )));
        }
        other => Blob::native_description(name, other.type_name()).into_bytes(),
    };
    Ok(bytes)
}

/// Runs net `name` `iterations` times, stopping at the first failure
/// (`c2rs_workspace_run_net[_n]`).
pub(super) fn run_net_by_name(ws: &Workspace, name: &str, iterations: i32) -> Result<()> {
    if iterations < 0 {
        return Err(C2rsError::invalid_argument(format!(
            "argument `iterations` = {iterations} is negative"
        )));
    }
    let net = ws
        .get_net(name)
        .ok_or_else(|| C2rsError::not_found(format!("Network {name} does not exist yet.")))?;
    for k in 0..iterations {
        net.run().map_err(|e| {
            if k == 0 {
                e
            } else {
                e.context(format!("iteration {k}"))
            }
        })?;
    }
    Ok(())
}

/// Interned C strings of blob type names (a small, bounded set: one per blob type).
static TYPE_NAMES: Lazy<Mutex<HashMap<&'static str, &'static CStr>>> =
    Lazy::new(|| Mutex::new(HashMap::new()));

pub(super) fn interned(name: &'static str) -> &'static CStr {
    let mut map = TYPE_NAMES.lock();
    map.entry(name).or_insert_with(|| {
        let c = CString::new(name.replace('\0', "\\0")).unwrap_or_default();
        Box::leak(c.into_boxed_c_str())
    })
}

fn name_pairs(
    names: *const *const c_char,
    parent_names: *const *const c_char,
    n: usize,
) -> Result<Vec<(String, String)>> {
    let names = array_arg(names, n, "names")?;
    let parent_names = array_arg(parent_names, n, "parent_names")?;
    names
        .iter()
        .zip(parent_names)
        .enumerate()
        .map(|(i, (&a, &b))| {
            Ok((
                name_arg(a, &format!("names[{i}]"))?.to_string(),
                name_arg(b, &format!("parent_names[{i}]"))?.to_string(),
            ))
        })
        .collect()
}

/// Creates a workspace, a child of `parent` when `parent` is not NULL: the child sees the
/// parent's blobs (unless it shadows them) and keeps the parent alive.
///
/// Ownership: the caller owns `*out` (`c2rs_workspace_free`); `parent` is not consumed.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_new(
    parent: *mut c2rs_workspace,
    out: *mut *mut c2rs_workspace,
) -> i32 {
    ffi_fn!("c2rs_workspace_new", {
        let out = out_param(out, "out")?;
        let ws = if parent.is_null() {
            Workspace::new()
        } else {
            Workspace::new_child(&arc_clone(parent, "parent")?)
        };
        out.set(arc_into_handle(ws));
        Ok(())
    })
}

/// Creates a workspace with root folder `root`: Save, Load, Checkpoint and DBExists resolve
/// relative DB names as `<root>/<db>` (a workspace from `c2rs_workspace_new` uses "."). A child
/// of `parent` when `parent` is not NULL.
///
/// Ownership: the caller owns `*out` (`c2rs_workspace_free`); `root` is copied; `parent` is not
/// consumed.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `root` or `out` is NULL or `root` is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_new_with_root(
    parent: *mut c2rs_workspace,
    root: *const c_char,
    out: *mut *mut c2rs_workspace,
) -> i32 {
    ffi_fn!("c2rs_workspace_new_with_root", {
        let out = out_param(out, "out")?;
        let root = name_arg(root, "root")?;
        let ws = if parent.is_null() {
            Workspace::with_root(root)
        } else {
            Workspace::new_child_with_root(root, &arc_clone(parent, "parent")?)
        };
        out.set(arc_into_handle(ws));
        Ok(())
    })
}

/// Creates a workspace that sees only the listed blobs of `parent`, under new names:
/// `names[i]` here is `parent_names[i]` there (Caffe2's workspace with a blob mapping).
///
/// Ownership: the caller owns `*out` (`c2rs_workspace_free`); the names are copied.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` or a name is NULL or the arrays are
/// NULL with `n > 0`; C2RS_ENFORCE_NOT_MET when `parent` is NULL ("Parent workspace must be
/// specified"); C2RS_NOT_FOUND when a parent name does not exist there.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_new_with_mapping(
    parent: *mut c2rs_workspace,
    names: *const *const c_char,
    parent_names: *const *const c_char,
    n: usize,
    out: *mut *mut c2rs_workspace,
) -> i32 {
    ffi_fn!("c2rs_workspace_new_with_mapping", {
        let out = out_param(out, "out")?;
        let parent = if parent.is_null() {
            None
        } else {
            Some(arc_clone(parent, "parent")?)
        };
        let mapping = name_pairs(names, parent_names, n)?;
        out.set(arc_into_handle(Workspace::new_with_mapping(
            parent.as_ref(),
            &mapping,
        )?));
        Ok(())
    })
}

/// Releases the caller's reference to `ws`. The workspace lives on while children, other
/// handles or running nets still use it.
///
/// Ownership: `ws` is released; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use this handle concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_workspace_free(ws: *mut c2rs_workspace) {
    super::guard::ffi_fn_or!("c2rs_workspace_free", (), {
        arc_free(ws);
        Ok(())
    })
}

/// Whether blob `name` is visible in `ws` (local, forwarded or in a parent).
///
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_has_blob_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_has_blob(
    ws: *const c2rs_workspace,
    name: *const c_char,
    out: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_workspace_has_blob", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        let name = raw_name_arg(name, "name")?;
        let found = ws.has_blob_by_bytes(name.bytes());
        if !found {
            // Only a name no blob has can be one that is not UTF-8.
            name.check_utf8()?;
        }
        out.set(found);
        Ok(())
    })
}

/// Caffe2's `CreateBlob`: makes `name` exist. A name visible in a parent is reused (the
/// parent's blob, content untouched); otherwise an empty local blob is created. Existing
/// content is never changed.
///
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_create_blob_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_NOT_FOUND when `name` is forwarded to a parent blob that no longer exists.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_create_blob(ws: *mut c2rs_workspace, name: *const c_char) -> i32 {
    ffi_fn!("c2rs_workspace_create_blob", {
        let ws = arc_ref(ws, "ws")?;
        created_blob(ws, name_arg(name, "name")?)?;
        Ok(())
    })
}

/// Caffe2's `CreateLocalBlob`: makes `name` exist locally, shadowing a parent blob of the
/// same name. An existing local blob is kept as is.
///
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_create_local_blob_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_create_local_blob(
    ws: *mut c2rs_workspace,
    name: *const c_char,
) -> i32 {
    ffi_fn!("c2rs_workspace_create_local_blob", {
        let ws = arc_ref(ws, "ws")?;
        ws.create_local_blob(name_arg(name, "name")?);
        Ok(())
    })
}

/// Removes the local blob `name` (never a parent's). Operators and nets created before keep
/// their own reference to the removed blob and go on working with it; but once the name holds
/// another blob (fed or created later), they fail with C2RS_ENFORCE_NOT_MET ("blob <name> was
/// removed from the workspace after this operator was created and the name now holds another
/// blob") instead of silently reading the old one: create the net again to use the new blob.
/// A run already under way finishes with the blob it started with.
///
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_remove_blob_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK with `*removed` false when there was no local blob `name`;
/// C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_remove_blob(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    removed: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_workspace_remove_blob", {
        let removed = out_param(removed, "removed")?;
        let ws = arc_ref(ws, "ws")?;
        removed.set(ws.remove_blob(name_arg(name, "name")?));
        Ok(())
    })
}

/// Renames local blob `old_name` to `new_name`; the blob object (and its identity) moves.
///
/// Names: C strings here (they cannot hold NUL); `c2rs_workspace_rename_blob_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or a name is not UTF-8;
/// C2RS_NOT_FOUND when `old_name` is not a local blob; C2RS_ALREADY_EXISTS when `new_name`
/// is visible in `ws`.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_rename_blob(
    ws: *mut c2rs_workspace,
    old_name: *const c_char,
    new_name: *const c_char,
) -> i32 {
    ffi_fn!("c2rs_workspace_rename_blob", {
        let ws = arc_ref(ws, "ws")?;
        ws.rename_blob(
            name_arg(old_name, "old_name")?,
            name_arg(new_name, "new_name")?,
        )
    })
}

/// Blob names of `ws`: with `include_shared`, Caffe2's `Blobs()` (sorted local names, then
/// forwarded names, then the parent's list; a shadowed name appears twice); otherwise the
/// sorted local names only.
///
/// Ownership: the caller owns `*out` (`c2rs_string_list_free`).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_blob_names(
    ws: *const c2rs_workspace,
    include_shared: bool,
    out: *mut *mut c2rs_string_list,
) -> i32 {
    ffi_fn!("c2rs_workspace_blob_names", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        let names = if include_shared {
            ws.blobs()
        } else {
            ws.local_blobs()
        };
        out.set(into_handle(string_list(names)?));
        Ok(())
    })
}

/// Sorted local blob names of `ws` (same as `c2rs_workspace_blob_names(ws, false, out)`).
///
/// Ownership: the caller owns `*out` (`c2rs_string_list_free`).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_local_blob_names(
    ws: *const c2rs_workspace,
    out: *mut *mut c2rs_string_list,
) -> i32 {
    ffi_fn!("c2rs_workspace_local_blob_names", {
        let out = out_param(out, "out")?;
        out.set(into_handle(string_list(arc_ref(ws, "ws")?.local_blobs())?));
        Ok(())
    })
}

/// Identity of the blob `name` resolves to: the same blob object always gives the same
/// value (so a host can tell a parent's blob from a local shadow). NULL when not visible.
///
/// Borrowed: the value is an opaque identity, never to be dereferenced.
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_blob_id_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_blob_id(
    ws: *const c2rs_workspace,
    name: *const c_char,
    out: *mut *const c_void,
) -> i32 {
    ffi_fn!("c2rs_workspace_blob_id", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        if let Some(b) = ws.get_blob(name_arg(name, "name")?) {
            out.set(Arc::as_ptr(&b) as *const c_void);
        }
        Ok(())
    })
}

/// Type name of what blob `name` holds: "caffe2::Tensor", "std::string",
/// "nullptr (uninitialized)" or a native type's name (queues, DB readers …).
///
/// Borrowed: `*out` is static (never freed).
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_blob_type_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_NOT_FOUND when no blob `name` is visible.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_blob_type(
    ws: *const c2rs_workspace,
    name: *const c_char,
    out: *mut *const c_char,
) -> i32 {
    ffi_fn!("c2rs_workspace_blob_type", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        let blob = blob_or_not_found(ws, name_arg(name, "name")?)?;
        out.set(interned(blob.type_name()).as_ptr());
        Ok(())
    })
}

/// Python's `FeedBlob` for tensors: creates `name` (as `c2rs_workspace_create_blob`: a name
/// visible in a parent is the parent's blob) and stores a copy of `t` in it.
///
/// Ownership: `t` is copied, not consumed.
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_feed_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// `t` must not be written concurrently.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_NOT_FOUND when `name` is forwarded to a parent blob that no longer exists.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_feed(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    t: *const c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_workspace_feed", {
        let ws = arc_ref(ws, "ws")?;
        let name = raw_name_arg(name, "name")?;
        let t = handle_ref(t, "t")?;
        created_blob_by_raw_name(ws, name)?.set_tensor_copy(t)
    })
}

/// Like `c2rs_workspace_feed`, but moves `t` into the blob without copying its data.
///
/// Ownership: `t` is consumed in every case, success or failure (unless `t` is NULL); do not
/// use or free it afterwards.
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_feed_move_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_NOT_FOUND when `name` is forwarded to a parent blob that no longer exists.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_feed_move(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    t: *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_workspace_feed_move", {
        let tensor: Tensor = take_handle(t, "t")?;
        let ws = arc_ref(ws, "ws")?;
        created_blob_by_raw_name(ws, raw_name_arg(name, "name")?)?.set_tensor(tensor);
        Ok(())
    })
}

/// Python's `FetchBlob` for tensors: a copy of the tensor in blob `name`, owned by the host
/// (later writes to the blob do not show in it).
///
/// Ownership: the caller owns `*out` (`c2rs_tensor_free`).
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_fetch_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_NOT_FOUND when no blob `name` is visible ("Can't find blob: <name>");
/// C2RS_TYPE_MISMATCH when the blob holds no tensor.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_fetch(
    ws: *const c2rs_workspace,
    name: *const c_char,
    out: *mut *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_workspace_fetch", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        out.set(into_handle(fetch_tensor(ws, raw_name_arg(name, "name")?)?));
        Ok(())
    })
}

/// Python's `FeedBlob` for `bytes`/`str`: creates `name` (as `c2rs_workspace_create_blob`)
/// and stores a byte-string blob (may contain NUL bytes).
///
/// Ownership: the bytes are copied.
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_feed_string_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL (`data` may be NULL when
/// `len` is 0) or `name` is not UTF-8; C2RS_NOT_FOUND as for `c2rs_workspace_feed`.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_feed_string(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    data: *const u8,
    len: usize,
) -> i32 {
    ffi_fn!("c2rs_workspace_feed_string", {
        let ws = arc_ref(ws, "ws")?;
        let name = name_arg(name, "name")?;
        let bytes = byte_slice(data, len, "data")?.to_vec();
        created_blob(ws, name)?.set_string(bytes);
        Ok(())
    })
}

/// Python's `FetchBlob` for non-tensor blobs: the bytes of a byte-string blob; for any other
/// non-tensor content (native objects, an empty blob) Caffe2's description
/// "<name>, a C++ native class of type <T>.".
///
/// Ownership: the caller owns `*out` (`c2rs_buffer_free`).
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_fetch_string_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8;
/// C2RS_NOT_FOUND when no blob `name` is visible; C2RS_TYPE_MISMATCH when it holds a tensor
/// (use `c2rs_workspace_fetch`).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_fetch_string(
    ws: *const c2rs_workspace,
    name: *const c_char,
    out: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_workspace_fetch_string", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        out.set(into_handle(fetch_bytes(ws, name_arg(name, "name")?)?));
        Ok(())
    })
}

/// Caffe2's `AddBlobMapping`: makes blob `parent_names[i]` of `parent` visible in `ws` as
/// `names[i]` (resolved at each lookup). Re-adding the same mapping is a no-op; with
/// `skip_defined`, names already visible in `ws` are skipped.
///
/// Ownership: the names are copied; `ws` keeps `parent` alive.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL; C2RS_NOT_FOUND when a
/// parent name does not exist in `parent`; C2RS_ENFORCE_NOT_MET when a name is already
/// forwarded elsewhere ("Redefinition of blob <x>"); C2RS_ALREADY_EXISTS when a name is
/// already visible and `skip_defined` is false.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_add_blob_mapping(
    ws: *mut c2rs_workspace,
    parent: *mut c2rs_workspace,
    names: *const *const c_char,
    parent_names: *const *const c_char,
    n: usize,
    skip_defined: bool,
) -> i32 {
    ffi_fn!("c2rs_workspace_add_blob_mapping", {
        let ws = arc_ref(ws, "ws")?;
        let parent = arc_clone(parent, "parent")?;
        let mapping = name_pairs(names, parent_names, n)?;
        ws.add_blob_mapping(&parent, &mapping, skip_defined)
    })
}

/// Caffe2's `CopyForwardedTensors`: each listed name that is forwarded becomes a local copy
/// of the tensor it forwards to; other names are ignored.
///
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL; C2RS_TYPE_MISMATCH when a
/// forwarded blob holds no tensor; C2RS_NOT_FOUND when its source blob no longer exists.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_copy_forwarded_tensors(
    ws: *mut c2rs_workspace,
    names: *const *const c_char,
    n: usize,
) -> i32 {
    ffi_fn!("c2rs_workspace_copy_forwarded_tensors", {
        let ws = arc_ref(ws, "ws")?;
        let names = array_arg(names, n, "names")?
            .iter()
            .enumerate()
            .map(|(i, &p)| Ok(name_arg(p, &format!("names[{i}]"))?.to_string()))
            .collect::<Result<Vec<_>>>()?;
        ws.copy_forwarded_tensors(&names)
    })
}

/// Python's `RunOperatorOnce`: decodes an OperatorDef, checks its schema, resolves inputs,
/// creates outputs (they stay, even when the run fails) and runs it once.
///
/// Ownership: the bytes are only read.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// No workspace lock is held while the operator runs.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` is NULL, `op_def` is NULL with
/// `len > 0` or a name field (type, name, input, output, control_input) is not UTF-8 (the
/// message names the operator and the field, e.g. "op (Copy): output 0 "a\xffb" is not valid
/// UTF-8"; nothing is created); C2RS_PARSE_ERROR when the bytes are not an OperatorDef; C2RS_NOT_FOUND when
/// the type is not registered (the message names it); C2RS_SCHEMA_MISMATCH with the reason;
/// C2RS_ENFORCE_NOT_MET for a missing input blob ("op Relu: Encountered a non-existing
/// input blob: X") and other enforces; C2RS_RUN_FAILED when the operator reports failure;
/// any other status an operator raises. Run messages read "op (<type>): …".
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_run_operator_once(
    ws: *mut c2rs_workspace,
    op_def: *const u8,
    len: usize,
) -> i32 {
    ffi_fn!("c2rs_workspace_run_operator_once", {
        let ws = arc_clone(ws, "ws")?;
        let def = decode_operator_def(byte_slice(op_def, len, "op_def")?)?;
        ws.run_operator_once(&def)
    })
}

/// Python's `CreateNet`: decodes a NetDef and builds it under its name (types "simple"
/// (default), "dag", "async_dag", "async_scheduling", "async_simple", "async_polling",
/// "singlethread_async"). With `overwrite` an existing net of that name is dropped first
/// (so a failed rebuild loses it); a failed build leaves no net.
///
/// Ownership: the bytes are only read.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` is NULL, `net_def` is NULL with
/// `len > 0`, the net has no name or a name in it (the net's, an external input or output,
/// an operator's type, inputs or outputs) is not UTF-8 (the message names the net, the
/// operator's position and type and the field); C2RS_PARSE_ERROR when the bytes are not a
/// NetDef;
/// C2RS_ALREADY_EXISTS when the name exists and `overwrite` is false; C2RS_NOT_FOUND for an
/// unknown net or operator type or an external input missing from the workspace;
/// C2RS_ENFORCE_NOT_MET when an op input has no source or an external output is never produced,
/// or a DAG net's `num_workers` exceeds 1024; C2RS_SCHEMA_MISMATCH as
/// for operators. Operator errors read "op #<i> (<type>): …".
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_create_net(
    ws: *mut c2rs_workspace,
    net_def: *const u8,
    len: usize,
    overwrite: bool,
) -> i32 {
    ffi_fn!("c2rs_workspace_create_net", {
        let ws = arc_clone(ws, "ws")?;
        let def = decode_net_def(byte_slice(net_def, len, "net_def")?)?;
        for input in &def.external_input {
            if !ws.has_blob(input) {
                return Err(C2rsError::not_found(format!(
                    "external input {input} of net {} does not exist in the workspace",
                    def.name()
                )));
            }
        }
        ws.create_net(&def, overwrite)?;
        Ok(())
    })
}

/// Python's `RunNet`: runs net `name` `iterations` times (0 = not at all), stopping at the
/// first failure.
///
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_run_net_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// No workspace lock is held while the net runs, so other threads may feed, fetch and run
/// meanwhile (two nets writing one blob still race, as in Caffe2).
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL, `name` is not UTF-8 or
/// `iterations` is negative; C2RS_NOT_FOUND when there is no net `name`; C2RS_RUN_FAILED when
/// an operator reports failure; any status an operator raises. Messages read
/// "op #<i> (<type>): …" (in iteration k > 0 prefixed "iteration <k>: ").
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_run_net(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    iterations: i32,
) -> i32 {
    ffi_fn!("c2rs_workspace_run_net", {
        let ws = arc_ref(ws, "ws")?;
        run_net_by_name(ws, name_arg(name, "name")?, iterations)
    })
}

/// Python's `RunNetOnce`: builds the NetDef, runs it once and drops it (never registered).
///
/// Ownership: the bytes are only read.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` is NULL, `net_def` is NULL with
/// `len > 0` or a name in the net is not UTF-8 (as for `c2rs_workspace_create_net`);
/// C2RS_PARSE_ERROR for bytes that are not a NetDef; C2RS_NOT_FOUND for an unknown
/// net type ("Could not create net: <n> of type <t>") or operator type; otherwise as for
/// `c2rs_workspace_create_net` and `c2rs_workspace_run_net`.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_run_net_once(
    ws: *mut c2rs_workspace,
    net_def: *const u8,
    len: usize,
) -> i32 {
    ffi_fn!("c2rs_workspace_run_net_once", {
        let ws = arc_clone(ws, "ws")?;
        let def = decode_net_def(byte_slice(net_def, len, "net_def")?)?;
        ws.run_net_once(&def)
    })
}

/// Python's `RunPlan`: decodes a PlanDef and runs its execution steps in order with Caffe2's
/// ExecutionStep semantics (`network`, `substep`, `num_iter`, `should_stop_blob`,
/// `only_once`, `concurrent_substeps` (one thread per substep), `num_concurrent_instances`,
/// `report_net` + `report_interval`, `run_every_ms`, `create_workspace`). The plan's nets are
/// created in `ws` (a net of the same name that existed before is overwritten once) when the
/// top-level step that uses them starts; they stay registered afterwards. An empty plan
/// succeeds. The first failure anywhere stops the whole plan, and the operators of its nets
/// that touch only objects the plan created are cancelled (a blocked queue operator closes
/// its queue); queues and other objects that existed before the plan are never closed by a
/// failure: a plan blocked on one ends when the host closes it or calls
/// `c2rs_workspace_cancel`. The deprecated `criteria_network` is refused.
///
/// Ownership: the bytes are only read.
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Runs on the calling thread (plus one thread per concurrent substep and reporter); no
/// workspace lock is held while nets run, so another thread may feed, fetch or
/// `c2rs_workspace_cancel` meanwhile.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` is NULL or `plan_def` is NULL with
/// `len > 0`; C2RS_PARSE_ERROR when the bytes are not a PlanDef; C2RS_UNSUPPORTED for a
/// `criteria_network`; C2RS_ENFORCE_NOT_MET for duplicate plan net names, a step using an
/// undefined net, a step with both substeps and networks, `num_iter` with
/// `should_stop_blob`, a missing stop blob or one that is not a scalar bool, a `report_net`
/// without `report_interval`; C2RS_RUN_FAILED when an operator reports failure or the plan
/// was cancelled ("cancelled"); otherwise the status of the failing net or operator. Messages
/// read "plan <p>: step <s> / substep <t>: op #<i> (<type>): …".
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_run_plan(
    ws: *mut c2rs_workspace,
    plan_def: *const u8,
    len: usize,
) -> i32 {
    ffi_fn!("c2rs_workspace_run_plan", {
        let ws = arc_clone(ws, "ws")?;
        let def = decode_plan_def(byte_slice(plan_def, len, "plan_def")?)?;
        ws.run_plan(&def)
    })
}

/// Cancels every plan running on `ws` (`c2rs_workspace_run_plan` calls in progress on other
/// threads): no net, iteration or substep of them starts afterwards, and every operator of
/// their nets gets its cancel hook, so an operator blocked on a queue wakes up (its queue is
/// closed, even a queue the host created; a host operator gets its cancel callback). Each
/// cancelled `c2rs_workspace_run_plan` returns C2RS_RUN_FAILED with "cancelled" in the
/// message, unless it had already failed. Plans started after this call run normally; plain
/// `c2rs_workspace_run_net` calls are not affected. `*cancelled` is the number of plans
/// reached (0 when none was running).
///
/// Thread safety: safe from any thread, concurrently with the plans it cancels.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `cancelled` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_cancel(ws: *mut c2rs_workspace, cancelled: *mut usize) -> i32 {
    ffi_fn!("c2rs_workspace_cancel", {
        let cancelled = out_param(cancelled, "cancelled")?;
        let ws = arc_ref(ws, "ws")?;
        cancelled.set(ws.cancel_plans());
        Ok(())
    })
}

/// Number of plans running on `ws` now (`c2rs_workspace_run_plan` calls in progress).
///
/// Thread safety: safe from any thread; the count may change right after it is read.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_running_plans(ws: *const c2rs_workspace, out: *mut usize) -> i32 {
    ffi_fn!("c2rs_workspace_running_plans", {
        let out = out_param(out, "out")?;
        out.set(arc_ref(ws, "ws")?.running_plan_count());
        Ok(())
    })
}

/// Whether a net `name` exists in `ws`.
///
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_has_net_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL or `name` is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_has_net(
    ws: *const c2rs_workspace,
    name: *const c_char,
    out: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_workspace_has_net", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        out.set(ws.has_net(name_arg(name, "name")?));
        Ok(())
    })
}

/// Sorted names of the nets in `ws`.
///
/// Ownership: the caller owns `*out` (`c2rs_string_list_free`).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_net_names(
    ws: *const c2rs_workspace,
    out: *mut *mut c2rs_string_list,
) -> i32 {
    ffi_fn!("c2rs_workspace_net_names", {
        let out = out_param(out, "out")?;
        out.set(into_handle(string_list(arc_ref(ws, "ws")?.nets())?));
        Ok(())
    })
}

/// Deletes net `name` (a run in progress on another thread finishes first: it holds the net).
///
/// Names: a C string here (it cannot hold NUL); `c2rs_workspace_delete_net_n` takes
/// (pointer, length).
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK with `*deleted` false when there was no such net; C2RS_INVALID_ARGUMENT
/// when a pointer is NULL or `name` is not UTF-8.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_delete_net(
    ws: *mut c2rs_workspace,
    name: *const c_char,
    deleted: *mut bool,
) -> i32 {
    ffi_fn!("c2rs_workspace_delete_net", {
        let deleted = out_param(deleted, "deleted")?;
        let ws = arc_ref(ws, "ws")?;
        deleted.set(ws.delete_net(name_arg(name, "name")?));
        Ok(())
    })
}

/// Net position of the last operator that failed to build or run in `ws` (-1 when none, or
/// when the failing operator ran outside a net).
///
/// Thread safety: calls on one workspace are serialized internally; safe from many threads.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `ws` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_workspace_last_failed_op_position(
    ws: *const c2rs_workspace,
    out: *mut i64,
) -> i32 {
    ffi_fn!("c2rs_workspace_last_failed_op_position", {
        let out = out_param(out, "out")?;
        let ws = arc_ref(ws, "ws")?;
        out.set(
            ws.last_failed_op_net_position()
                .and_then(|p| i64::try_from(p).ok())
                .unwrap_or(-1),
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::status::*;
    use super::*;
    use crate::operator::{OpSchema, global_registry};
    use crate::ops::FnOperator;
    use crate::proto::OperatorDef;
    use prost::Message;
    use std::ptr::{null, null_mut};

    fn last_message() -> String {
        // SAFETY: this thread's current message, read before any other call.
        unsafe { CStr::from_ptr(super::super::guard::last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    fn new_ws() -> *mut c2rs_workspace {
        let mut ws = null_mut();
        assert_eq!(c2rs_workspace_new(null_mut(), &mut ws), C2RS_OK);
        ws
    }

    #[test]
    fn null_arguments_name_the_parameter() {
        let ws = new_ws();
        let mut b = true;
        assert_eq!(
            c2rs_workspace_has_blob(ws, null(), &mut b),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_message().contains("`name`"));
        assert!(!b);
        assert_eq!(
            c2rs_workspace_create_blob(null_mut(), c"x".as_ptr()),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_message().contains("`ws`"));
        assert_eq!(
            c2rs_workspace_run_net(ws, c"n".as_ptr(), -2),
            C2RS_INVALID_ARGUMENT
        );
        let mut out = null_mut();
        assert_eq!(
            c2rs_workspace_fetch(ws, c"x".as_ptr(), &mut out),
            C2RS_NOT_FOUND
        );
        assert!(out.is_null());
        // Invalid UTF-8 name.
        let bad = [0xffu8, 0];
        assert_eq!(
            c2rs_workspace_create_blob(ws, bad.as_ptr() as *const c_char),
            C2RS_INVALID_ARGUMENT
        );
        c2rs_workspace_free(ws);
        c2rs_workspace_free(null_mut());
    }

    #[test]
    fn feed_move_consumes_the_tensor_even_on_failure() {
        let ws = new_ws();
        let t = into_handle::<c2rs_tensor>(
            Tensor::zeros(crate::tensor::DataType::Float, &[2]).unwrap(),
        );
        // NULL name: the tensor is still consumed (freed); a leak checker would see it.
        assert_eq!(
            c2rs_workspace_feed_move(ws, null(), t),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_workspace_feed_move(ws, c"x".as_ptr(), null_mut()),
            C2RS_INVALID_ARGUMENT
        );
        c2rs_workspace_free(ws);
    }

    #[test]
    fn panicking_operator_gives_panic_status_and_workspace_stays_usable() {
        {
            let mut r = global_registry().write();
            if r.schema("FfiTestPanic").is_none() {
                r.register(OpSchema::new("FfiTestPanic"), |b| {
                    Ok(FnOperator::boxed(b, |_| panic!("kaboom")))
                })
                .unwrap();
            }
        }
        let ws = new_ws();
        let def = OperatorDef {
            r#type: Some("FfiTestPanic".into()),
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            c2rs_workspace_run_operator_once(ws, def.as_ptr(), def.len()),
            C2RS_PANIC
        );
        assert_eq!(
            last_message(),
            "c2rs_workspace_run_operator_once: op (FfiTestPanic): panic: kaboom"
        );
        assert_eq!(c2rs_workspace_create_blob(ws, c"after".as_ptr()), C2RS_OK);
        c2rs_workspace_free(ws);
    }

    #[test]
    fn run_plan_checks_its_arguments_and_prefixes_the_step_path() {
        use crate::proto::{ExecutionStep, PlanDef};
        let ws = new_ws();
        assert_eq!(
            c2rs_workspace_run_plan(null_mut(), null(), 0),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_message().contains("`ws`"));
        assert_eq!(
            c2rs_workspace_run_plan(ws, null(), 3),
            C2RS_INVALID_ARGUMENT
        );
        let garbage = [0xffu8, 0xff, 0xff];
        assert_eq!(
            c2rs_workspace_run_plan(ws, garbage.as_ptr(), garbage.len()),
            C2RS_PARSE_ERROR
        );
        // An empty plan (zero bytes, NULL pointer) succeeds.
        assert_eq!(c2rs_workspace_run_plan(ws, null(), 0), C2RS_OK);
        let plan = PlanDef {
            name: Some("p".into()),
            execution_step: vec![ExecutionStep {
                name: Some("s".into()),
                network: vec!["missing".into()],
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(
            c2rs_workspace_run_plan(ws, plan.as_ptr(), plan.len()),
            C2RS_ENFORCE_NOT_MET
        );
        assert_eq!(
            last_message(),
            "c2rs_workspace_run_plan: plan p: step s: ExecutionStep s uses undefined net missing"
        );
        c2rs_workspace_free(ws);
    }

    #[test]
    fn cancel_and_running_plans_report_counts_and_check_pointers() {
        let ws = new_ws();
        let mut n = 7usize;
        assert_eq!(c2rs_workspace_cancel(ws, &mut n), C2RS_OK);
        assert_eq!(n, 0);
        n = 7;
        assert_eq!(c2rs_workspace_running_plans(ws, &mut n), C2RS_OK);
        assert_eq!(n, 0);
        assert_eq!(c2rs_workspace_cancel(ws, null_mut()), C2RS_INVALID_ARGUMENT);
        assert!(last_message().contains("`cancelled`"));
        assert_eq!(
            c2rs_workspace_cancel(null_mut(), &mut n),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_workspace_running_plans(null(), &mut n),
            C2RS_INVALID_ARGUMENT
        );
        c2rs_workspace_free(ws);
    }

    #[test]
    fn blob_type_names_are_static_and_stable() {
        let ws = new_ws();
        assert_eq!(c2rs_workspace_create_blob(ws, c"e".as_ptr()), C2RS_OK);
        let mut a = null();
        let mut b = null();
        assert_eq!(c2rs_workspace_blob_type(ws, c"e".as_ptr(), &mut a), C2RS_OK);
        assert_eq!(c2rs_workspace_blob_type(ws, c"e".as_ptr(), &mut b), C2RS_OK);
        assert_eq!(a, b);
        // SAFETY: a static NUL-terminated string.
        assert_eq!(unsafe { CStr::from_ptr(a) }, c"nullptr (uninitialized)");
        assert_eq!(
            c2rs_workspace_blob_type(ws, c"nope".as_ptr(), &mut a),
            C2RS_NOT_FOUND
        );
        c2rs_workspace_free(ws);
    }
}
