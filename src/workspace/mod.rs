//! Workspaces and blobs: named values (tensors, strings, native objects such as queues and
//! DB readers) with parent/forwarded lookup, and the nets registered in them.

mod blob;
mod blob_map;
mod bound_blob;
#[allow(clippy::module_inception)]
mod workspace;

pub use blob::{
    Blob, BlobContent, BlobNative, EMPTY_TYPE_NAME, NativeObject, STRING_TYPE_NAME,
    TENSOR_TYPE_NAME,
};
pub use bound_blob::BoundBlob;
pub use workspace::Workspace;
pub mod names;
pub mod serialize;
