//! Opaque C handle types and their ownership. Each `c2rs_*` struct is a zero-sized marker
//! that cbindgen emits as an incomplete type; `BoxHandle` binds it to the Rust value it
//! stands for. Exports convert pointers only through the functions here, so a handle can
//! never be cast to the wrong type or freed the wrong way.
#![allow(non_camel_case_types)]

use std::sync::Arc;

use super::guard::null_arg;
use crate::db::{BatchReader, Cursor, Db, DbReader, Transaction};
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

/// An owned list of UTF-8 strings, each NUL-terminated and also readable with its exact
/// length (`c2rs_string_list_get_n`). Released by `c2rs_string_list_free`.
pub struct c2rs_string_list {
    _private: [u8; 0],
}

/// An owned list of tensors (a decoded TensorProtos). Released by `c2rs_tensor_list_free`.
pub struct c2rs_tensor_list {
    _private: [u8; 0],
}

/// An open database. Released by `c2rs_db_free`; its cursors and transactions stay usable.
pub struct c2rs_db {
    _private: [u8; 0],
}

/// A cursor over a database's records. Released by `c2rs_db_cursor_free`.
pub struct c2rs_db_cursor {
    _private: [u8; 0],
}

/// A write transaction. Released (and committed) by `c2rs_db_transaction_free`.
pub struct c2rs_db_transaction {
    _private: [u8; 0],
}

/// A shared, thread-safe, sharded record reader (Caffe2's DBReader). Released by
/// `c2rs_db_reader_free`.
pub struct c2rs_db_reader {
    _private: [u8; 0],
}

/// A prefetching batch reader over a `c2rs_db_reader` (TensorProtosDBInput for hosts).
/// Released by `c2rs_batch_reader_free`, which stops and joins its threads.
pub struct c2rs_batch_reader {
    _private: [u8; 0],
}

/// A memory plan made by `c2rs_memonger_plan`. Released by `c2rs_memory_plan_free`.
pub struct c2rs_memory_plan {
    _private: [u8; 0],
}

/// A device context (Caffe2's CPUContext or CUDAContext). Created by `c2rs_context_new`,
/// released by `c2rs_context_free`. Used by one thread at a time.
pub struct c2rs_context {
    _private: [u8; 0],
}

/// An event (CPU or CUDA) with Caffe2's state machine. Created by `c2rs_event_new`, released
/// by `c2rs_event_free`. Wait, Finish and Query may run concurrently from any thread.
pub struct c2rs_event {
    _private: [u8; 0],
}

/// The cuDNN state lent to a `c2rs_cuda_with_cudnn_state` callback; valid only during it.
pub struct c2rs_cudnn_scope {
    _private: [u8; 0],
}

/// A workspace: named blobs and nets. Shared (`Arc`): operators, child workspaces and other
/// threads may keep it alive. Created by `c2rs_workspace_new`, released by `c2rs_workspace_free`.
pub struct c2rs_workspace {
    _private: [u8; 0],
}

/// A blob of a workspace, looked up by name once (`c2rs_workspace_blob_handle`), so that
/// feeding, fetching and checking it costs no name lookup. Keeps its workspace alive. Released
/// by `c2rs_blob_handle_free`.
pub struct c2rs_blob_handle {
    _private: [u8; 0],
}

/// What a host-registered operator's callbacks see: its inputs, outputs and arguments. Lent
/// by the library for the duration of one callback; never created or freed by the host.
pub struct c2rs_op_context {
    _private: [u8; 0],
}

/// A BlobsQueue held in a workspace blob. Shared (`Arc`) with the blob, operators and other
/// handles. Got from `c2rs_blobs_queue_create` / `_from_workspace`, released by
/// `c2rs_blobs_queue_free`. Fully thread-safe.
pub struct c2rs_blobs_queue {
    _private: [u8; 0],
}

/// A RebatchingQueue held in a workspace blob. Shared (`Arc`). Released by
/// `c2rs_rebatching_queue_free`. Fully thread-safe.
pub struct c2rs_rebatching_queue {
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
    type Target = super::buffer::StringList;
}
impl BoxHandle for c2rs_tensor_list {
    type Target = Vec<Tensor>;
}
impl BoxHandle for c2rs_db {
    type Target = Box<dyn Db>;
}
impl BoxHandle for c2rs_db_cursor {
    type Target = Box<dyn Cursor>;
}
impl BoxHandle for c2rs_db_transaction {
    type Target = Box<dyn Transaction>;
}
impl BoxHandle for c2rs_batch_reader {
    type Target = BatchReader;
}
impl BoxHandle for c2rs_context {
    type Target = crate::context::Context;
}
impl BoxHandle for c2rs_event {
    type Target = crate::context::Event;
}
/// The handle holds one reference; operators and workspace blobs may hold others.
impl BoxHandle for c2rs_db_reader {
    type Target = Arc<DbReader>;
}

impl BoxHandle for c2rs_blob_handle {
    type Target = crate::workspace::BoundBlob;
}

impl BoxHandle for c2rs_memory_plan {
    type Target = crate::memonger::planner::MemoryPlan;
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
impl ArcHandle for c2rs_blobs_queue {
    type Target = crate::ops::queue_ops::BlobQueue;
}
impl ArcHandle for c2rs_rebatching_queue {
    type Target = crate::queue::RebatchingQueue;
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
