//! Opaque blob content other than tensors, as a handle a host can keep in its own blobs: a
//! native object (a BlobsQueue, a DB reader, a counter …, shared by reference) or a byte
//! string. A host that switches one operator family to caffe2rs stores these in its own
//! workspace between the caffe2rs operators that make and use them.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::guard::{byte_slice, ffi_fn, ffi_fn_or, out_param};
use super::handle::{BoxHandle, c2rs_db_reader, free_handle, handle_ref, into_handle};
use super::workspace::interned;
use crate::db::DbReader;
use crate::error::{C2rsError, Result};
use crate::workspace::{BlobContent, NativeObject};

/// Blob content that is not a tensor: a native object shared by reference (a queue, a DB
/// reader, …) or a byte string. Got from `c2rs_workspace_take_n` /
/// `c2rs_workspace_fetch_object_n` / `c2rs_object_from_*`, released by `c2rs_object_free`.
pub struct c2rs_object {
    _private: [u8; 0],
}

/// What a `c2rs_object` holds. Invariant: never `Empty` or `Tensor`.
pub(crate) struct ObjectValue(BlobContent);

impl BoxHandle for c2rs_object {
    type Target = ObjectValue;
}

impl ObjectValue {
    /// Wraps non-tensor, non-empty blob content.
    pub(crate) fn new(content: BlobContent) -> Result<Self> {
        match content {
            BlobContent::Empty | BlobContent::Tensor(_) => Err(C2rsError::internal(
                "an object holds a native object or a byte string",
            )),
            other => Ok(Self(other)),
        }
    }
    /// The content, shared (native objects) or copied (byte strings).
    pub(crate) fn content(&self) -> BlobContent {
        self.0.clone()
    }
    pub(crate) fn native(&self) -> Option<&NativeObject> {
        match &self.0 {
            BlobContent::Native(n) => Some(n),
            _ => None,
        }
    }
}

/// The type name of the object, as `c2rs_workspace_blob_type` reports it for a blob holding it
/// ("std::string" for a byte string; e.g. "std::shared_ptr<caffe2::BlobsQueue>",
/// "std::unique_ptr<caffe2::db::DBReader>").
///
/// Borrowed: static, never freed.
/// Thread safety: safe from any thread.
/// Returns: the name; NULL when `obj` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_object_type_name(obj: *const c2rs_object) -> *const c_char {
    ffi_fn_or!("c2rs_object_type_name", std::ptr::null(), {
        Ok(interned(handle_ref(obj, "obj")?.0.type_name()).as_ptr())
    })
}

/// The identity of the object: equal for two handles (or blobs) holding the very same native
/// object, e.g. one queue. A byte string's identity is that of its bytes.
///
/// Borrowed: an opaque value, never to be dereferenced.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `obj` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_object_id(obj: *const c2rs_object, out: *mut *const c_void) -> i32 {
    ffi_fn!("c2rs_object_id", {
        let out = out_param(out, "out")?;
        let id = match &handle_ref(obj, "obj")?.0 {
            BlobContent::Native(n) => n.id(),
            BlobContent::String(s) => s.as_ptr().cast(),
            _ => std::ptr::null(),
        };
        out.set(id);
        Ok(())
    })
}

/// Another handle to the same object (a native object is shared, not copied; a byte string is
/// copied).
///
/// Ownership: the caller owns `*out` (`c2rs_object_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `obj` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_object_clone(obj: *const c2rs_object, out: *mut *mut c2rs_object) -> i32 {
    ffi_fn!("c2rs_object_clone", {
        let out = out_param(out, "out")?;
        out.set(into_handle(ObjectValue(handle_ref(obj, "obj")?.content())));
        Ok(())
    })
}

/// Releases this handle's reference (a native object lives on while a blob, an operator or
/// another handle holds it; a queue's last reference closes it).
///
/// Ownership: `obj` is freed; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use this handle concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_object_free(obj: *mut c2rs_object) {
    ffi_fn_or!("c2rs_object_free", (), {
        free_handle(obj);
        Ok(())
    })
}

/// A byte-string object holding a copy of `len` bytes at `data` (any bytes).
///
/// Ownership: the bytes are copied; the caller owns `*out` (`c2rs_object_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL or `data` is NULL with `len > 0`.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_object_from_bytes(
    data: *const u8,
    len: usize,
    out: *mut *mut c2rs_object,
) -> i32 {
    ffi_fn!("c2rs_object_from_bytes", {
        let out = out_param(out, "out")?;
        let bytes = byte_slice(data, len, "data")?.to_vec();
        out.set(into_handle(ObjectValue(BlobContent::String(bytes))));
        Ok(())
    })
}

/// The bytes of a byte-string object: `*len` bytes at `*data` (not NUL-terminated).
///
/// Borrowed: valid until `obj` is freed.
/// Thread safety: read-only; safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when a pointer is NULL; C2RS_TYPE_MISMATCH when
/// `obj` holds a native object.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_object_bytes(
    obj: *const c2rs_object,
    data: *mut *const u8,
    len: *mut usize,
) -> i32 {
    ffi_fn!("c2rs_object_bytes", {
        let data_out = out_param(data, "data")?;
        let len_out = out_param(len, "len")?;
        match &handle_ref(obj, "obj")?.0 {
            BlobContent::String(s) => {
                // An empty string still gets a non-NULL pointer.
                data_out.set(if s.is_empty() {
                    c"".as_ptr().cast()
                } else {
                    s.as_ptr()
                });
                len_out.set(s.len());
                Ok(())
            }
            other => Err(C2rsError::type_mismatch(format!(
                "the object is a {}, not a byte string",
                other.type_name()
            ))),
        }
    })
}

/// An object sharing `reader` (e.g. to keep it in a host blob, or to put it in a workspace
/// blob with `c2rs_workspace_put_object_n`).
///
/// Ownership: `reader` is shared, not consumed; the caller owns `*out` (`c2rs_object_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `reader` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_object_from_db_reader(
    reader: *const c2rs_db_reader,
    out: *mut *mut c2rs_object,
) -> i32 {
    ffi_fn!("c2rs_object_from_db_reader", {
        let out = out_param(out, "out")?;
        let reader: Arc<DbReader> = Arc::clone(handle_ref(reader, "reader")?);
        out.set(into_handle(ObjectValue(BlobContent::Native(
            NativeObject::new(reader),
        ))));
        Ok(())
    })
}

/// The DB reader `obj` holds (as made by CreateDB), as a reader handle.
///
/// Ownership: the caller owns `*out` (`c2rs_db_reader_free`), one more reference to the reader.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `obj` or `out` is NULL; C2RS_TYPE_MISMATCH when
/// `obj` holds something else.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_object_db_reader(
    obj: *const c2rs_object,
    out: *mut *mut c2rs_db_reader,
) -> i32 {
    ffi_fn!("c2rs_object_db_reader", {
        let out = out_param(out, "out")?;
        out.set(into_handle(object_native::<DbReader>(handle_ref(
            obj, "obj",
        )?)?));
        Ok(())
    })
}

/// The native object of type `T` an object holds; another content is a type mismatch naming
/// both types.
pub(crate) fn object_native<T: crate::workspace::BlobNative>(obj: &ObjectValue) -> Result<Arc<T>> {
    obj.native()
        .and_then(NativeObject::downcast::<T>)
        .ok_or_else(|| {
            C2rsError::type_mismatch(format!(
                "the object is a {}, not a {}",
                obj.0.type_name(),
                T::TYPE_NAME
            ))
        })
}
