//! Opaque C handle types and their ownership. Each `c2rs_*` struct is a zero-sized marker
//! that cbindgen emits as an incomplete type; `BoxHandle` binds it to the Rust value it
//! stands for. Exports convert pointers only through the functions here, so a handle can
//! never be cast to the wrong type or freed the wrong way.
#![allow(non_camel_case_types)]

use std::ffi::CString;
use std::sync::Arc;

use super::guard::null_arg;
use crate::db::{BatchReader, Cursor, Db, DbReader, Transaction};
use crate::error::Result;
use crate::tensor::Tensor;

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

/// Frees a handle; NULL is a no-op.
pub(crate) fn free_handle<H: BoxHandle>(ptr: *mut H) {
    if !ptr.is_null() {
        // SAFETY: as in `take_handle`; freeing twice is excluded by the C contract.
        drop(unsafe { Box::from_raw(ptr as *mut H::Target) });
    }
}
