//! Tensors: creation, inspection, element access, TensorProto(s) encoding and DLPack exchange.

use std::ffi::c_void;

use prost::Message;

use super::guard::{array_arg, byte_slice, dtype_arg, ffi_fn, ffi_fn_or, out_param};
use super::handle::{
    c2rs_buffer, c2rs_tensor, c2rs_tensor_list, free_handle, handle_mut, handle_ref, into_handle,
};
use super::tensor_handles::{free_tensor_handle, tensor_handle};
use crate::error::C2rsError;
use crate::proto::{TensorProto, TensorProtos};
use crate::tensor::dlpack::{self, DLManagedTensorVersioned};
use crate::tensor::{DataType, Tensor, tensor_from_proto, tensor_to_proto, tensors_from_protos};

/// 32-bit float (TensorProto.DataType FLOAT).
pub const C2RS_DTYPE_FLOAT: i32 = 1;
/// 32-bit signed integer.
pub const C2RS_DTYPE_INT32: i32 = 2;
/// Legacy byte payload (read from old DBs); stored as uint8_t.
pub const C2RS_DTYPE_BYTE: i32 = 3;
/// Byte strings, one per element; use the string accessors.
pub const C2RS_DTYPE_STRING: i32 = 4;
/// Boolean stored as one byte (0 or 1).
pub const C2RS_DTYPE_BOOL: i32 = 5;
/// 8-bit unsigned integer.
pub const C2RS_DTYPE_UINT8: i32 = 6;
/// 8-bit signed integer.
pub const C2RS_DTYPE_INT8: i32 = 7;
/// 16-bit unsigned integer.
pub const C2RS_DTYPE_UINT16: i32 = 8;
/// 16-bit signed integer.
pub const C2RS_DTYPE_INT16: i32 = 9;
/// 64-bit signed integer.
pub const C2RS_DTYPE_INT64: i32 = 10;
/// IEEE half precision, stored as its uint16_t bit pattern.
pub const C2RS_DTYPE_FLOAT16: i32 = 12;
/// 64-bit float.
pub const C2RS_DTYPE_DOUBLE: i32 = 13;

/// Most bytes of zeros one decode fills in outside the `segment`s of the TensorProtos it
/// decodes (elements the input does not carry); beyond it the decode is C2RS_PARSE_ERROR.
pub const C2RS_MAX_IMPLICIT_ZERO_BYTES: usize = 16 << 20;

const _: () = assert!(C2RS_MAX_IMPLICIT_ZERO_BYTES == crate::tensor::MAX_IMPLICIT_ZERO_BYTES);

fn decode_error(what: &str, e: prost::DecodeError) -> C2rsError {
    C2rsError::parse(format!("bytes are not a valid {what}: {e}"))
}

/// Creates a zero-filled CPU tensor (empty strings for STRING), 64-byte aligned.
///
/// `dims` holds `ndim` non-negative sizes; `ndim == 0` makes a scalar (one element) and then
/// `dims` may be NULL. A zero dim makes an empty tensor.
/// Ownership: on success the caller owns `*out`; release it with `c2rs_tensor_free`.
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL, `dims` is NULL with `ndim > 0`,
/// a dim is negative, the size overflows or `dtype` is not a Caffe2 dtype number;
/// C2RS_UNSUPPORTED for dtype numbers without tensor storage (UNDEFINED 0, 14, 15);
/// C2RS_INTERNAL when the memory cannot be allocated ("out of memory allocating <n> bytes …",
/// for STRING the per-element string headers).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_new(
    dtype: i32,
    dims: *const i64,
    ndim: usize,
    out: *mut *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_tensor_new", {
        let out = out_param(out, "out")?;
        let dtype = dtype_arg(dtype, "dtype")?;
        let dims = array_arg(dims, ndim, "dims")?;
        out.set(tensor_handle(Tensor::zeros(dtype, dims)?));
        Ok(())
    })
}

/// Decodes a serialized Caffe2 `TensorProto` into a CPU tensor.
///
/// Reads every storage form Caffe2 writers produce: the typed fields, `int32_data` or
/// `byte_data` for BOOL/INT8/UINT8/INT16/UINT16/FLOAT16, `byte_data` for BYTE, `raw_data`
/// (little-endian, `storage_type` RAW) and bfloat16 `raw_data` (`data_format` 1). A missing
/// `data_type` means FLOAT. With a `segment`, elements outside it are zero, at most 16 MiB
/// of them (C2RS_MAX_IMPLICIT_ZERO_BYTES): a proto claiming more data than it carries is
/// refused before anything is allocated. `device_detail` is ignored: the tensor lives on the
/// CPU. Unknown fields are skipped.
/// Ownership: `bytes` is only read; on success the caller owns `*out` (`c2rs_tensor_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL or `bytes` is NULL with
/// `len > 0`; C2RS_PARSE_ERROR when the bytes are not a TensorProto, the payload length
/// disagrees with dims or segment, a dim is negative, the dtype number is unknown, the
/// tensor is too large to address, or the zeros outside the segment exceed
/// C2RS_MAX_IMPLICIT_ZERO_BYTES; C2RS_UNSUPPORTED for external data or a dtype without tensor
/// storage; C2RS_INTERNAL when memory runs out.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_from_proto(
    bytes: *const u8,
    len: usize,
    out: *mut *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_tensor_from_proto", {
        let out = out_param(out, "out")?;
        let bytes = byte_slice(bytes, len, "bytes")?;
        let proto = TensorProto::decode(bytes).map_err(|e| decode_error("TensorProto", e))?;
        out.set(into_handle(tensor_from_proto(&proto)?));
        Ok(())
    })
}

/// Serializes `t` as a Caffe2 `TensorProto`, storing each dtype where C++ Caffe2 does
/// (FLOAT16 as one bit pattern per `int32_data` entry; BYTE in `byte_data`). No name,
/// segment or device_detail is written.
///
/// Ownership: the caller owns `*out` (`c2rs_buffer_free`).
/// Thread safety: read-only on `t`; concurrent readers are fine, a concurrent writer is not.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `t` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_to_proto(t: *const c2rs_tensor, out: *mut *mut c2rs_buffer) -> i32 {
    ffi_fn!("c2rs_tensor_to_proto", {
        let out = out_param(out, "out")?;
        let t = handle_ref(t, "t")?;
        out.set(into_handle(tensor_to_proto(t)?.encode_to_vec()));
        Ok(())
    })
}

/// Decodes a serialized Caffe2 `TensorProtos` (a DB record) into a list of tensors, in order.
///
/// Each entry is decoded as by `c2rs_tensor_from_proto`; the entries share one
/// C2RS_MAX_IMPLICIT_ZERO_BYTES allowance for zeros outside their segments.
/// Ownership: `bytes` is only read; on success the caller owns `*out`
/// (`c2rs_tensor_list_free`).
/// Thread safety: safe from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL or `bytes` is NULL with
/// `len > 0`; C2RS_PARSE_ERROR or C2RS_UNSUPPORTED as for `c2rs_tensor_from_proto`, with the
/// message naming the index of the entry at fault.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_protos_decode(
    bytes: *const u8,
    len: usize,
    out: *mut *mut c2rs_tensor_list,
) -> i32 {
    ffi_fn!("c2rs_tensor_protos_decode", {
        let out = out_param(out, "out")?;
        let bytes = byte_slice(bytes, len, "bytes")?;
        let protos = TensorProtos::decode(bytes).map_err(|e| decode_error("TensorProtos", e))?;
        out.set(into_handle(tensors_from_protos(&protos.protos)?));
        Ok(())
    })
}

/// Serializes `n` tensors as one Caffe2 `TensorProtos` (a DB record), in order.
///
/// Ownership: the tensors are only read; the caller owns `*out` (`c2rs_buffer_free`).
/// Thread safety: read-only on the tensors; concurrent readers are fine, a concurrent writer is not.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `out` is NULL, `tensors` is NULL with
/// `n > 0`, or an entry is NULL (the message names its index).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_protos_encode(
    tensors: *const *const c2rs_tensor,
    n: usize,
    out: *mut *mut c2rs_buffer,
) -> i32 {
    ffi_fn!("c2rs_tensor_protos_encode", {
        let out = out_param(out, "out")?;
        let handles = array_arg(tensors, n, "tensors")?;
        let mut protos = TensorProtos::default();
        for (i, &h) in handles.iter().enumerate() {
            protos
                .protos
                .push(tensor_to_proto(handle_ref(h, &format!("tensors[{i}]"))?)?);
        }
        out.set(into_handle(protos.encode_to_vec()));
        Ok(())
    })
}

/// Number of tensors in `list`.
///
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: the count; 0 when `list` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_tensor_list_len(list: *const c2rs_tensor_list) -> usize {
    ffi_fn_or!("c2rs_tensor_list_len", 0, {
        Ok(handle_ref(list, "list")?.len())
    })
}

/// Borrows tensor `i` of `list`.
///
/// Borrowed: `*out` stays valid until `list` is freed; do not free it. Copy what must outlive
/// the list, or read it through the tensor accessors.
/// Thread safety: read-only; concurrent readers are fine.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `list` or `out` is NULL or `i` is out of range.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_list_get(
    list: *const c2rs_tensor_list,
    i: usize,
    out: *mut *const c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_tensor_list_get", {
        let out = out_param(out, "out")?;
        let list = handle_ref(list, "list")?;
        let t = list.get(i).ok_or_else(|| {
            C2rsError::invalid_argument(format!(
                "index {i} is out of range for a list of {}",
                list.len()
            ))
        })?;
        out.set(t as *const Tensor as *const c2rs_tensor);
        Ok(())
    })
}

/// Releases `list` and every tensor in it.
///
/// Ownership: `list` is freed; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use `list` or its tensors concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_tensor_list_free(list: *mut c2rs_tensor_list) {
    ffi_fn_or!("c2rs_tensor_list_free", (), {
        free_handle(list);
        Ok(())
    })
}

/// The dtype of `t` (Caffe2 numbering, one of the C2RS_DTYPE_* values).
///
/// Thread safety: read-only; concurrent readers are fine, a concurrent writer is not.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `t` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_dtype(t: *const c2rs_tensor, out: *mut i32) -> i32 {
    ffi_fn!("c2rs_tensor_dtype", {
        let out = out_param(out, "out")?;
        out.set(handle_ref(t, "t")?.dtype().as_i32());
        Ok(())
    })
}

/// Shape of `t`: `*dims` points to `*ndim` values owned by `t` (NULL for a scalar).
///
/// Borrowed: `*dims` stays valid until `t` is freed.
/// Thread safety: read-only; concurrent readers are fine, a concurrent writer is not.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `t`, `dims` or `ndim` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_dims(
    t: *const c2rs_tensor,
    dims: *mut *const i64,
    ndim: *mut usize,
) -> i32 {
    ffi_fn!("c2rs_tensor_dims", {
        let dims_out = out_param(dims, "dims")?;
        let ndim_out = out_param(ndim, "ndim")?;
        let shape = handle_ref(t, "t")?.dims();
        dims_out.set(if shape.is_empty() {
            std::ptr::null()
        } else {
            shape.as_ptr()
        });
        ndim_out.set(shape.len());
        Ok(())
    })
}

/// Number of elements of `t` (1 for a scalar, 0 when a dim is 0).
///
/// Thread safety: read-only; concurrent readers are fine, a concurrent writer is not.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `t` or `out` is NULL.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_numel(t: *const c2rs_tensor, out: *mut i64) -> i32 {
    ffi_fn!("c2rs_tensor_numel", {
        let out = out_param(out, "out")?;
        let n = handle_ref(t, "t")?.numel();
        out.set(i64::try_from(n).map_err(|_| C2rsError::internal("element count exceeds int64"))?);
        Ok(())
    })
}

/// Read-only pointer to the elements of `t`: contiguous, row-major, 64-byte aligned when the
/// library allocated them; FLOAT16 as uint16_t bit patterns, BOOL as one byte 0/1.
///
/// Borrowed: valid until `t` is freed or `c2rs_tensor_mutable_data` is called on it (which may
/// move the elements if the storage is shared). `*out` is NULL when `t` has no elements.
/// Thread safety: read-only; concurrent readers are fine, a concurrent writer is not.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `t` or `out` is NULL; C2RS_TYPE_MISMATCH for
/// STRING tensors (use `c2rs_tensor_string_at`).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_data(t: *const c2rs_tensor, out: *mut *const c_void) -> i32 {
    ffi_fn!("c2rs_tensor_data", {
        let out = out_param(out, "out")?;
        out.set(handle_ref(t, "t")?.data_ptr()? as *const c_void);
        Ok(())
    })
}

/// Writable pointer to the elements of `t`. If the storage is shared (a DLPack export made
/// from `t` is still alive) or was adopted read-only, the elements are copied first, so the
/// writes never reach the other holders.
///
/// Borrowed: valid until `t` is freed; `*out` is NULL when `t` has no elements.
/// Thread safety: no other call may use `t` concurrently.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `t` or `out` is NULL; C2RS_TYPE_MISMATCH for
/// STRING tensors (use `c2rs_tensor_set_string`).
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_mutable_data(t: *mut c2rs_tensor, out: *mut *mut c_void) -> i32 {
    ffi_fn!("c2rs_tensor_mutable_data", {
        let out = out_param(out, "out")?;
        out.set(handle_mut(t, "t")?.mutable_data_ptr()? as *mut c_void);
        Ok(())
    })
}

/// Element `i` (row-major) of a STRING tensor: `*len` bytes at `*ptr`, arbitrary bytes, not
/// NUL-terminated.
///
/// Borrowed: valid until `t` is freed or element `i` is set again.
/// Thread safety: read-only; concurrent readers are fine, a concurrent writer is not.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `t`, `ptr` or `len` is NULL or `i` is out of
/// range; C2RS_TYPE_MISMATCH when `t` is not a STRING tensor.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_string_at(
    t: *const c2rs_tensor,
    i: usize,
    ptr: *mut *const u8,
    len: *mut usize,
) -> i32 {
    ffi_fn!("c2rs_tensor_string_at", {
        let ptr_out = out_param(ptr, "ptr")?;
        let len_out = out_param(len, "len")?;
        let strings = handle_ref(t, "t")?.strings()?;
        let s = strings.get(i).ok_or_else(|| {
            C2rsError::invalid_argument(format!(
                "index {i} is out of range for {} strings",
                strings.len()
            ))
        })?;
        // An empty string still gets a non-NULL pointer so hosts can tell it from an error.
        ptr_out.set(if s.is_empty() {
            c"".as_ptr() as *const u8
        } else {
            s.as_ptr()
        });
        len_out.set(s.len());
        Ok(())
    })
}

/// Sets element `i` of a STRING tensor to a copy of `len` bytes at `ptr` (any bytes).
///
/// Ownership: the bytes are copied; `ptr` may be NULL when `len` is 0.
/// Thread safety: no other call may use `t` concurrently.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `t` is NULL, `ptr` is NULL with `len > 0`, or
/// `i` is out of range; C2RS_TYPE_MISMATCH when `t` is not a STRING tensor.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_set_string(
    t: *mut c2rs_tensor,
    i: usize,
    ptr: *const u8,
    len: usize,
) -> i32 {
    ffi_fn!("c2rs_tensor_set_string", {
        let bytes = byte_slice(ptr, len, "ptr")?;
        let strings = handle_mut(t, "t")?.strings_mut()?;
        let count = strings.len();
        let slot = strings.get_mut(i).ok_or_else(|| {
            C2rsError::invalid_argument(format!("index {i} is out of range for {count} strings"))
        })?;
        *slot = bytes.to_vec();
        Ok(())
    })
}

/// Exports `t` as a DLPack v1 `DLManagedTensorVersioned` without copying (kDLCPU, compact,
/// `strides` NULL, flag DLPACK_FLAG_BITMASK_READ_ONLY).
///
/// The export shares the elements and keeps them alive after `c2rs_tensor_free(t)`. Later
/// writes to `t` through `c2rs_tensor_mutable_data` copy first and are not seen by the export.
/// Ownership: the caller owns `*out` and must call `(*out)->deleter(*out)` exactly once.
/// Thread safety: read-only on `t`; the export may be used and deleted from any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `t` or `out` is NULL; C2RS_UNSUPPORTED for
/// STRING tensors.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_to_dlpack(
    t: *const c2rs_tensor,
    out: *mut *mut DLManagedTensorVersioned,
) -> i32 {
    ffi_fn!("c2rs_tensor_to_dlpack", {
        let out = out_param(out, "out")?;
        out.set(dlpack::export(handle_ref(t, "t")?)?);
        Ok(())
    })
}

/// Adopts a DLPack v1 tensor in host memory (kDLCPU or kDLCUDAHost) without copying.
///
/// Accepted: DLPack major version 1; int8/16/32/64, uint8/16, float16/32/64 and bool8 with
/// one lane; `strides` NULL or compact row-major; data aligned to the element size.
/// Ownership: on success the tensor owns `in`: its deleter is called exactly once, when the
/// tensor and every copy sharing its storage are freed. If `in` has the read-only flag,
/// `c2rs_tensor_mutable_data` copies first. On failure nothing is adopted and the caller still
/// owns `in`.
/// Thread safety: safe from any thread; the deleter may later run on any thread.
/// Returns: C2RS_OK; C2RS_INVALID_ARGUMENT when `in` or `out` is NULL, the shape is negative,
/// the data pointer is NULL or misaligned for a non-empty tensor; C2RS_UNSUPPORTED for another
/// major version, a device that is not host memory, a dtype without a Caffe2 equivalent, or
/// non-compact strides.
#[unsafe(no_mangle)]
#[must_use]
pub extern "C" fn c2rs_tensor_from_dlpack(
    r#in: *mut DLManagedTensorVersioned,
    out: *mut *mut c2rs_tensor,
) -> i32 {
    ffi_fn!("c2rs_tensor_from_dlpack", {
        let out = out_param(out, "out")?;
        if r#in.is_null() {
            return Err(super::guard::null_arg("in"));
        }
        // SAFETY: non-NULL; the C contract makes `in` a valid DLPack tensor handed over to us.
        let tensor = unsafe { dlpack::adopt(r#in) }?;
        out.set(into_handle(tensor));
        Ok(())
    })
}

/// Releases `t`. Storage shared with a live DLPack export stays alive for the export.
///
/// Ownership: `t` is freed; NULL is a no-op; freeing twice is undefined behaviour.
/// Thread safety: no other call may use `t` concurrently.
/// Returns: nothing.
#[unsafe(no_mangle)]
pub extern "C" fn c2rs_tensor_free(t: *mut c2rs_tensor) {
    ffi_fn_or!("c2rs_tensor_free", (), {
        free_tensor_handle(t);
        Ok(())
    })
}

// The dtype constants above must stay equal to the Rust enum.
const _: () = {
    assert!(C2RS_DTYPE_FLOAT == DataType::Float as i32);
    assert!(C2RS_DTYPE_INT32 == DataType::Int32 as i32);
    assert!(C2RS_DTYPE_BYTE == DataType::Byte as i32);
    assert!(C2RS_DTYPE_STRING == DataType::String as i32);
    assert!(C2RS_DTYPE_BOOL == DataType::Bool as i32);
    assert!(C2RS_DTYPE_UINT8 == DataType::Uint8 as i32);
    assert!(C2RS_DTYPE_INT8 == DataType::Int8 as i32);
    assert!(C2RS_DTYPE_UINT16 == DataType::Uint16 as i32);
    assert!(C2RS_DTYPE_INT16 == DataType::Int16 as i32);
    assert!(C2RS_DTYPE_INT64 == DataType::Int64 as i32);
    assert!(C2RS_DTYPE_FLOAT16 == DataType::Float16 as i32);
    assert!(C2RS_DTYPE_DOUBLE == DataType::Double as i32);
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::status::*;
    use crate::ffi::version::c2rs_last_error_message;
    use std::ffi::CStr;

    fn last_error() -> String {
        // SAFETY: a valid NUL-terminated string owned by this thread.
        unsafe { CStr::from_ptr(c2rs_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    /// What C++ protobuf tolerates: unpacked repeated scalars, unknown fields, a missing
    /// data_type (FLOAT), a segment missing its required fields (zero), and arbitrary bytes in
    /// string_data.
    #[test]
    fn decoding_tolerates_what_cpp_protobuf_tolerates() {
        let decode = |bytes: &[u8]| {
            let mut t: *mut c2rs_tensor = std::ptr::null_mut();
            let status = c2rs_tensor_from_proto(bytes.as_ptr(), bytes.len(), &mut t);
            (status, t)
        };
        // dims [2] unpacked (field 1 varint), float_data unpacked (field 3, fixed32 x2),
        // unknown field 99 (varint) and unknown field 100 (bytes), no data_type.
        let mut bytes = vec![0x08, 0x02, 0x1d];
        bytes.extend_from_slice(&1.5f32.to_le_bytes());
        bytes.push(0x1d);
        bytes.extend_from_slice(&(-2.0f32).to_le_bytes());
        bytes.extend_from_slice(&[0x98, 0x06, 0x07, 0xa2, 0x06, 0x02, 0xff, 0xfe]);
        let (status, t) = decode(&bytes);
        assert_eq!(status, C2RS_OK, "{}", last_error());
        let mut dtype = 0;
        assert_eq!(c2rs_tensor_dtype(t, &mut dtype), C2RS_OK);
        assert_eq!(dtype, C2RS_DTYPE_FLOAT);
        let mut data: *const c_void = std::ptr::null();
        assert_eq!(c2rs_tensor_data(t, &mut data), C2RS_OK);
        // SAFETY: two floats owned by the live tensor.
        assert_eq!(
            unsafe { std::slice::from_raw_parts(data as *const f32, 2) },
            &[1.5, -2.0]
        );
        c2rs_tensor_free(t);
        // An empty segment message (begin/end missing → 0) on an empty tensor: [0, 0).
        let (status, t) = decode(&[0x08, 0x00, 0x5a, 0x00]);
        assert_eq!(status, C2RS_OK, "{}", last_error());
        c2rs_tensor_free(t);
        // STRING with non-UTF-8 bytes.
        let (status, t) = decode(&[0x08, 0x01, 0x10, 0x04, 0x32, 0x02, 0xff, 0x00]);
        assert_eq!(status, C2RS_OK, "{}", last_error());
        let (mut p, mut len) = (std::ptr::null(), 0usize);
        assert_eq!(c2rs_tensor_string_at(t, 0, &mut p, &mut len), C2RS_OK);
        // SAFETY: `len` bytes owned by the live tensor.
        assert_eq!(unsafe { std::slice::from_raw_parts(p, len) }, &[0xff, 0x00]);
        c2rs_tensor_free(t);
    }

    #[test]
    fn null_arguments_are_invalid_and_named() {
        let mut t: *mut c2rs_tensor = std::ptr::null_mut();
        assert_eq!(
            c2rs_tensor_new(C2RS_DTYPE_FLOAT, std::ptr::null(), 0, std::ptr::null_mut()),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_error().contains("`out`"), "{}", last_error());
        assert_eq!(
            c2rs_tensor_new(C2RS_DTYPE_FLOAT, std::ptr::null(), 2, &mut t),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_error().contains("`dims`"), "{}", last_error());
        let mut n = 5i64;
        assert_eq!(
            c2rs_tensor_numel(std::ptr::null(), &mut n),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(n, 0, "out-param reset before the failure");
        assert!(
            last_error().starts_with("c2rs_tensor_numel: argument `t` is NULL"),
            "{}",
            last_error()
        );
        assert_eq!(
            c2rs_tensor_from_proto(std::ptr::null(), 3, &mut t),
            C2RS_INVALID_ARGUMENT
        );
        assert_eq!(
            c2rs_tensor_from_dlpack(std::ptr::null_mut(), &mut t),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_error().contains("`in`"));
        c2rs_tensor_free(std::ptr::null_mut());
        c2rs_tensor_list_free(std::ptr::null_mut());
        assert_eq!(c2rs_tensor_list_len(std::ptr::null()), 0);
    }

    #[test]
    fn bad_dtype_numbers_are_rejected_by_name() {
        let mut t: *mut c2rs_tensor = std::ptr::null_mut();
        assert_eq!(
            c2rs_tensor_new(11, std::ptr::null(), 0, &mut t),
            C2RS_INVALID_ARGUMENT
        );
        assert!(
            last_error().contains("argument `dtype`: Unknown data type: 11"),
            "{}",
            last_error()
        );
        assert_eq!(
            c2rs_tensor_new(0, std::ptr::null(), 0, &mut t),
            C2RS_UNSUPPORTED
        );
        assert!(t.is_null());
        let dims = [2i64, -3];
        assert_eq!(
            c2rs_tensor_new(C2RS_DTYPE_INT32, dims.as_ptr(), 2, &mut t),
            C2RS_INVALID_ARGUMENT
        );
        assert!(last_error().contains("dims[1] = -3"));
    }

    #[test]
    fn string_elements_are_set_and_read_back_with_any_bytes() {
        let dims = [3i64];
        let mut t: *mut c2rs_tensor = std::ptr::null_mut();
        assert_eq!(
            c2rs_tensor_new(C2RS_DTYPE_STRING, dims.as_ptr(), 1, &mut t),
            C2RS_OK
        );
        let value = b"a\0b\xff";
        assert_eq!(
            c2rs_tensor_set_string(t, 1, value.as_ptr(), value.len()),
            C2RS_OK
        );
        assert_eq!(
            c2rs_tensor_set_string(t, 3, value.as_ptr(), 1),
            C2RS_INVALID_ARGUMENT
        );
        let (mut p, mut len) = (std::ptr::null(), 0usize);
        assert_eq!(c2rs_tensor_string_at(t, 1, &mut p, &mut len), C2RS_OK);
        // SAFETY: `len` bytes at `p`, owned by the live tensor.
        assert_eq!(unsafe { std::slice::from_raw_parts(p, len) }, value);
        assert_eq!(c2rs_tensor_string_at(t, 0, &mut p, &mut len), C2RS_OK);
        assert_eq!((p.is_null(), len), (false, 0));
        let mut data: *const c_void = std::ptr::null();
        assert_eq!(c2rs_tensor_data(t, &mut data), C2RS_TYPE_MISMATCH);
        c2rs_tensor_free(t);
    }

    #[test]
    fn mutable_data_after_export_does_not_change_the_export() {
        let dims = [2i64];
        let mut t: *mut c2rs_tensor = std::ptr::null_mut();
        assert_eq!(
            c2rs_tensor_new(C2RS_DTYPE_INT32, dims.as_ptr(), 1, &mut t),
            C2RS_OK
        );
        let mut m: *mut DLManagedTensorVersioned = std::ptr::null_mut();
        assert_eq!(c2rs_tensor_to_dlpack(t, &mut m), C2RS_OK);
        let mut data: *mut c_void = std::ptr::null_mut();
        assert_eq!(c2rs_tensor_mutable_data(t, &mut data), C2RS_OK);
        // SAFETY: `data` points to 2 writable i32; `m` is a live export of 2 i32.
        unsafe {
            *(data as *mut i32) = 9;
            assert_ne!((*m).dl_tensor.data, data);
            assert_eq!(*((*m).dl_tensor.data as *const i32), 0);
            ((*m).deleter.expect("deleter"))(m);
        }
        c2rs_tensor_free(t);
    }
}
