//! Opaque C handle types and their ownership. Each `c2rs_*` struct is a zero-sized marker
//! that cbindgen emits as an incomplete type; `BoxHandle` binds it to the Rust value it
//! stands for. Exports convert pointers only through the functions here, so a handle can
//! never be cast to the wrong type or freed the wrong way.
#![allow(non_camel_case_types)]

use std::ffi::CString;
use std::sync::Arc;

use super::guard::null_arg;
use crate::error::Result;
use crate::tensor::Tensor;
use crate::workspace::Workspace;

/// A CPU tensor. Created by `c2rs_tensor_*` constructors, released by `c2rs_tensor_free`.
pub struct c2rs_tensor {
    _private: [u8; 0],
}

/// An owned byte buffer returned by the library (serialized protobufs, JSON reports).
/// Released by `c2rs_buffer_free`.
pub struct c2rs_buffer {
    _private: [u8; 0],
}

/// An owned list of NUL-terminated UTF-8 strings. Released by `c2rs_string_list_free`.
pub struct c2rs_string_list {
    _private: [u8; 0],
}

/// An owned list of tensors (a decoded TensorProtos). Released by `c2rs_tensor_list_free`.
pub struct c2rs_tensor_list {
    _private: [u8; 0],
}

/// A workspace: named blobs and nets. Shared (`Arc`): operators, child workspaces and other
/// threads may keep it alive. Created by `c2rs_workspace_new`, released by `c2rs_workspace_free`.
pub struct c2rs_workspace {
    _private: [u8; 0],
}

/// What a host-registered operator's callbacks see: its inputs, outputs and arguments. Lent
/// by the library for the duration of one callback; never created or freed by the host.
pub struct c2rs_op_context {
    _private: [u8; 0],
}

/// A handle owned through a `Box`: created once, freed once by its `*_free`.
pub(crate) trait BoxHandle {
    type Target;
}
impl BoxHandle for c2rs_tensor {
    type Target = Tensor;
}
impl BoxHandle for c2rs_buffer {
    type Target = Vec<u8>;
}
impl BoxHandle for c2rs_string_list {
    type Target = Vec<CString>;
}
impl BoxHandle for c2rs_tensor_list {
    type Target = Vec<Tensor>;
}

/// Moves `value` to the heap and returns the C handle that now owns it.
pub(crate) fn into_handle<H: BoxHandle>(value: H::Target) -> *mut H {
    Box::into_raw(Box::new(value)) as *mut H
}

/// Borrows the value behind a handle; NULL is `C2RS_INVALID_ARGUMENT` naming `name`.
pub(crate) fn handle_ref<'a, H: BoxHandle>(ptr: *const H, name: &str) -> Result<&'a H::Target> {
    if ptr.is_null() {
        return Err(null_arg(name));
    }
    // SAFETY: non-NULL handles come from `into_handle::<H>` (the C contract: only pass live
    // handles of the right type), so the pointer is a live `Box<H::Target>`.
    Ok(unsafe { &*(ptr as *const H::Target) })
}

/// Mutably borrows the value behind a handle.
pub(crate) fn handle_mut<'a, H: BoxHandle>(ptr: *mut H, name: &str) -> Result<&'a mut H::Target> {
    if ptr.is_null() {
        return Err(null_arg(name));
    }
    // SAFETY: as in `handle_ref`; the C contract forbids concurrent use of a mutable handle.
    Ok(unsafe { &mut *(ptr as *mut H::Target) })
}

/// Takes the value out of a handle, consuming the handle; NULL is `C2RS_INVALID_ARGUMENT`.
pub(crate) fn take_handle<H: BoxHandle>(ptr: *mut H, name: &str) -> Result<H::Target> {
    if ptr.is_null() {
        return Err(null_arg(name));
    }
    // SAFETY: as in `handle_ref`; the caller hands its ownership of the handle over.
    Ok(*unsafe { Box::from_raw(ptr as *mut H::Target) })
}

/// Frees a handle; NULL is a no-op.
pub(crate) fn free_handle<H: BoxHandle>(ptr: *mut H) {
    if !ptr.is_null() {
        // SAFETY: as in `take_handle`; freeing twice is excluded by the C contract.
        drop(unsafe { Box::from_raw(ptr as *mut H::Target) });
    }
}

/// A handle lent to a callback for the duration of one call: points at a value the library
/// owns (never freed through the handle).
pub(crate) fn lend_handle<H: BoxHandle>(value: &mut H::Target) -> *mut H {
    value as *mut H::Target as *mut H
}

/// A handle owned through an `Arc`: each handle is one strong count; `*_free` drops it.
pub(crate) trait ArcHandle {
    type Target;
}
impl ArcHandle for c2rs_workspace {
    type Target = Workspace;
}

/// Turns one strong count into a C handle.
pub(crate) fn arc_into_handle<H: ArcHandle>(value: Arc<H::Target>) -> *mut H {
    Arc::into_raw(value) as *mut H
}

/// Borrows the value behind an `Arc` handle; NULL is `C2RS_INVALID_ARGUMENT` naming `name`.
pub(crate) fn arc_ref<'a, H: ArcHandle>(ptr: *const H, name: &str) -> Result<&'a H::Target> {
    if ptr.is_null() {
        return Err(null_arg(name));
    }
    // SAFETY: non-NULL handles come from `arc_into_handle::<H>` and hold a strong count until
    // their `*_free` (the C contract), so the pointee is a live `H::Target`.
    Ok(unsafe { &*(ptr as *const H::Target) })
}

/// A new strong count for the value behind an `Arc` handle (the handle keeps its own).
pub(crate) fn arc_clone<H: ArcHandle>(ptr: *const H, name: &str) -> Result<Arc<H::Target>> {
    if ptr.is_null() {
        return Err(null_arg(name));
    }
    let ptr = ptr as *const H::Target;
    // SAFETY: as in `arc_ref`: `ptr` came from `Arc::into_raw` and its count is still held, so
    // incrementing it and adopting the new count is sound.
    unsafe {
        Arc::increment_strong_count(ptr);
        Ok(Arc::from_raw(ptr))
    }
}

/// Drops the strong count a handle holds; NULL is a no-op.
pub(crate) fn arc_free<H: ArcHandle>(ptr: *mut H) {
    if !ptr.is_null() {
        // SAFETY: `ptr` came from `arc_into_handle::<H>`; freeing twice is excluded by the C
        // contract, so this count is still owned by the handle.
        drop(unsafe { Arc::from_raw(ptr as *const H::Target) });
    }
}
