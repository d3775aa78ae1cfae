//! The `tensor_proto` target: raw bytes as a serialized `TensorProto` and as a `TensorProtos`
//! (a DB record). What decodes is read back through every accessor and re-encoded; the
//! re-encoding must decode again and encode to the same bytes (encoding is canonical).

use std::ptr;

use caffe2rs::ffi::buffer::{c2rs_buffer_data, c2rs_buffer_free, c2rs_buffer_len};
use caffe2rs::ffi::handle::{c2rs_buffer, c2rs_tensor, c2rs_tensor_list};
use caffe2rs::ffi::tensor::{
    c2rs_tensor_data, c2rs_tensor_dims, c2rs_tensor_dtype, c2rs_tensor_free,
    c2rs_tensor_from_proto, c2rs_tensor_list_free, c2rs_tensor_list_get, c2rs_tensor_list_len,
    c2rs_tensor_numel, c2rs_tensor_protos_decode, c2rs_tensor_protos_encode, c2rs_tensor_string_at,
    c2rs_tensor_to_proto,
};
use caffe2rs::tensor::DataType;

use crate::check::{Oom, check, check_out, finding, touch};

/// STRING elements read back per tensor: enough to reach every storage path.
const STRINGS_READ: usize = 64;

/// One input through both decoders.
pub fn run(data: &[u8]) {
    tensor_round_trip(data);
    protos_round_trip(data);
}

/// Copies a library buffer out and frees it.
pub fn take_buffer(buf: *mut c2rs_buffer) -> Vec<u8> {
    let len = c2rs_buffer_len(buf);
    let data = c2rs_buffer_data(buf);
    let bytes = if len == 0 || data.is_null() {
        Vec::new()
    } else {
        // SAFETY: the buffer owns `len` bytes at `data` until it is freed below.
        unsafe { std::slice::from_raw_parts(data, len) }.to_vec()
    };
    c2rs_buffer_free(buf);
    bytes
}

fn decode_tensor(bytes: &[u8], call: &str) -> Option<*mut c2rs_tensor> {
    let mut t = ptr::null_mut();
    let status = c2rs_tensor_from_proto(bytes.as_ptr(), bytes.len(), &mut t);
    check_out(status, t, call, Oom::Finding).then_some(t)
}

fn encode_tensor(t: *const c2rs_tensor) -> Vec<u8> {
    let mut buf = ptr::null_mut();
    let status = c2rs_tensor_to_proto(t, &mut buf);
    if !check_out(status, buf, "c2rs_tensor_to_proto", Oom::Finding) {
        finding("c2rs_tensor_to_proto", "a decoded tensor does not encode");
    }
    take_buffer(buf)
}

fn tensor_round_trip(data: &[u8]) {
    let Some(t) = decode_tensor(data, "c2rs_tensor_from_proto") else {
        return;
    };
    inspect(t);
    let first = encode_tensor(t);
    c2rs_tensor_free(t);
    let Some(again) = decode_tensor(&first, "c2rs_tensor_from_proto (re-encoded)") else {
        finding(
            "c2rs_tensor_to_proto",
            "the re-encoded TensorProto does not decode",
        );
    };
    let second = encode_tensor(again);
    c2rs_tensor_free(again);
    if first != second {
        finding(
            "c2rs_tensor_to_proto",
            "re-encoding a re-decoded tensor changed its bytes",
        );
    }
}

fn decode_list(bytes: &[u8], call: &str) -> Option<*mut c2rs_tensor_list> {
    let mut list = ptr::null_mut();
    let status = c2rs_tensor_protos_decode(bytes.as_ptr(), bytes.len(), &mut list);
    check_out(status, list, call, Oom::Finding).then_some(list)
}

/// The list's tensors (borrowed from it) and their TensorProtos encoding.
fn encode_list(list: *const c2rs_tensor_list, inspect_each: bool) -> Vec<u8> {
    let n = c2rs_tensor_list_len(list);
    let mut tensors: Vec<*const c2rs_tensor> = Vec::with_capacity(n);
    for i in 0..n {
        let mut t = ptr::null();
        let status = c2rs_tensor_list_get(list, i, &mut t);
        if !check_out(status, t, "c2rs_tensor_list_get", Oom::Finding) {
            finding(
                "c2rs_tensor_list_get",
                &format!("index {i} < len {n} refused"),
            );
        }
        if inspect_each {
            inspect(t);
        }
        tensors.push(t);
    }
    let mut buf = ptr::null_mut();
    let status = c2rs_tensor_protos_encode(tensors.as_ptr(), tensors.len(), &mut buf);
    if !check_out(status, buf, "c2rs_tensor_protos_encode", Oom::Finding) {
        finding("c2rs_tensor_protos_encode", "decoded tensors do not encode");
    }
    take_buffer(buf)
}

fn protos_round_trip(data: &[u8]) {
    let Some(list) = decode_list(data, "c2rs_tensor_protos_decode") else {
        return;
    };
    let first = encode_list(list, true);
    c2rs_tensor_list_free(list);
    let Some(again) = decode_list(&first, "c2rs_tensor_protos_decode (re-encoded)") else {
        finding(
            "c2rs_tensor_protos_encode",
            "the re-encoded TensorProtos does not decode",
        );
    };
    let second = encode_list(again, false);
    c2rs_tensor_list_free(again);
    if first != second {
        finding(
            "c2rs_tensor_protos_encode",
            "re-encoding re-decoded TensorProtos changed its bytes",
        );
    }
}

/// Reads a tensor back through every accessor and touches all of its storage: dims agree
/// with numel, data holds numel × itemsize readable bytes, every STRING element is readable.
pub fn inspect(t: *const c2rs_tensor) {
    let mut dtype = 0;
    if !check(
        c2rs_tensor_dtype(t, &mut dtype),
        "c2rs_tensor_dtype",
        Oom::Finding,
    ) {
        finding("c2rs_tensor_dtype", "refused on a live tensor");
    }
    let (mut dims, mut ndim) = (ptr::null(), 0usize);
    if !check(
        c2rs_tensor_dims(t, &mut dims, &mut ndim),
        "c2rs_tensor_dims",
        Oom::Finding,
    ) {
        finding("c2rs_tensor_dims", "refused on a live tensor");
    }
    let dims: &[i64] = if ndim == 0 {
        &[]
    } else {
        // SAFETY: the tensor owns `ndim` dims at `dims` while it lives.
        unsafe { std::slice::from_raw_parts(dims, ndim) }
    };
    let mut numel = 0i64;
    if !check(
        c2rs_tensor_numel(t, &mut numel),
        "c2rs_tensor_numel",
        Oom::Finding,
    ) {
        finding("c2rs_tensor_numel", "refused on a live tensor");
    }
    // A zero dim makes the tensor empty whatever the others (their product may overflow).
    let product = if dims.contains(&0) {
        Some(0)
    } else {
        dims.iter().try_fold(
            1i64,
            |acc, &d| if d < 0 { None } else { acc.checked_mul(d) },
        )
    };
    if product != Some(numel) {
        finding(
            "c2rs_tensor_numel",
            &format!("numel {numel} disagrees with dims {dims:?}"),
        );
    }
    let Ok(dtype) = DataType::try_from(dtype) else {
        finding(
            "c2rs_tensor_dtype",
            &format!("{dtype} is not a tensor dtype"),
        );
    };
    let numel = usize::try_from(numel).unwrap_or(0);
    match dtype.item_size() {
        Some(size) => {
            let mut data = ptr::null();
            let status = c2rs_tensor_data(t, &mut data);
            if !check(status, "c2rs_tensor_data", Oom::Finding) {
                finding("c2rs_tensor_data", "refused on a live non-STRING tensor");
            }
            let Some(nbytes) = numel.checked_mul(size) else {
                finding(
                    "c2rs_tensor_data",
                    "numel × itemsize overflows for a live tensor",
                );
            };
            if nbytes > 0 {
                if data.is_null() {
                    finding("c2rs_tensor_data", "NULL data for a non-empty tensor");
                }
                // SAFETY: a live tensor of this dtype owns numel × itemsize bytes at `data`.
                touch(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), nbytes) });
            }
        }
        None => {
            for i in 0..numel.min(STRINGS_READ) {
                let (mut p, mut len) = (ptr::null(), 0usize);
                let status = c2rs_tensor_string_at(t, i, &mut p, &mut len);
                if !check(status, "c2rs_tensor_string_at", Oom::Finding) {
                    finding(
                        "c2rs_tensor_string_at",
                        &format!("index {i} < numel refused"),
                    );
                }
                if len > 0 {
                    // SAFETY: element `i` owns `len` bytes at `p` while the tensor lives.
                    touch(unsafe { std::slice::from_raw_parts(p, len) });
                }
            }
        }
    }
}
