//! The C ABI: every `extern "C"` function, grouped by the C object family it acts on, plus
//! the plumbing they share (`guard`: panic boundary, argument conversion, last error;
//! `status`: codes; `handle`: opaque types and ownership).
//!
//! Exports take raw pointers by design and are safe to call from C under the documented
//! contract (valid, live handles); NULL is checked, everything else is the caller's promise.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod blob_handle;
pub mod buffer;
pub mod context;
pub mod cuda_tensor;
pub mod db;
pub mod event;
pub(crate) mod guard;
pub mod handle;
pub mod memonger;
pub mod object;
pub mod operator;
pub mod operator_handle;
pub mod queue;
pub mod queue_safe;
pub mod record_source;
pub mod status;
pub mod tensor;
pub mod tensor_handles;
pub mod tensor_move;
pub mod version;
pub mod workspace;
pub mod workspace_names;
pub mod workspace_take;
