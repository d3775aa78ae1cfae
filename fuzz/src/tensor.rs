//! The `tensor_proto` target: raw bytes as a serialized `TensorProto` and as a `TensorProtos`
//! (a DB record). What decodes is read back through every accessor and re-encoded; the
//! re-encoding must decode again to the same tensors (dtype, dims, element bytes, strings),
//! so encoding is canonical (equal tensors, equal bytes) without encoding twice.

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

/// Decodes, inspects and re-encodes; the re-encoding must decode to the same tensor (so
/// encoding is canonical: equal tensors encode to equal bytes, without encoding twice).
fn tensor_round_trip(data: &[u8]) {
    let Some(t) = decode_tensor(data, "c2rs_tensor_from_proto") else {
        return;
    };
    inspect(t);
    let first = encode_tensor(t);
    let Some(again) = decode_tensor(&first, "c2rs_tensor_from_proto (re-encoded)") else {
        finding(
            "c2rs_tensor_to_proto",
            "the re-encoded TensorProto does not decode",
        );
    };
    if let Err(what) = same_tensor(t, again) {
        finding(
            "c2rs_tensor_to_proto",
            &format!("the re-encoded TensorProto decodes to another tensor: {what}"),
        );
    }
    c2rs_tensor_free(t);
    c2rs_tensor_free(again);
}

/// A live tensor's dtype, dims, and bytes (fixed-size dtypes) or elements (STRING).
struct Content<'a> {
    dtype: i32,
    dims: &'a [i64],
    bytes: &'a [u8],
    strings: Vec<&'a [u8]>,
}

fn content<'a>(t: *const c2rs_tensor) -> Content<'a> {
    let mut dtype = 0;
    let (mut dims, mut ndim) = (ptr::null(), 0usize);
    let mut numel = 0i64;
    if !(check(
        c2rs_tensor_dtype(t, &mut dtype),
        "c2rs_tensor_dtype",
        Oom::Finding,
    ) && check(
        c2rs_tensor_dims(t, &mut dims, &mut ndim),
        "c2rs_tensor_dims",
        Oom::Finding,
    ) && check(
        c2rs_tensor_numel(t, &mut numel),
        "c2rs_tensor_numel",
        Oom::Finding,
    )) {
        finding("c2rs_tensor_dtype/dims/numel", "refused on a live tensor");
    }
    let dims: &[i64] = if ndim == 0 {
        &[]
    } else {
        // SAFETY: the tensor owns `ndim` dims at `dims` while it lives.
        unsafe { std::slice::from_raw_parts(dims, ndim) }
    };
    let numel = usize::try_from(numel).unwrap_or(0);
    let item = DataType::try_from(dtype).ok().and_then(|d| d.item_size());
    let mut c = Content {
        dtype,
        dims,
        bytes: &[],
        strings: Vec::new(),
    };
    match item {
        Some(size) => {
            let mut data = ptr::null();
            let nbytes = numel.saturating_mul(size);
            if check(
                c2rs_tensor_data(t, &mut data),
                "c2rs_tensor_data",
                Oom::Finding,
            ) && nbytes > 0
                && !data.is_null()
            {
                // SAFETY: a live tensor of this dtype owns numel × itemsize bytes at `data`
                // (`inspect` has checked it on the first tensor).
                c.bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), nbytes) };
            }
        }
        None => {
            for i in 0..numel {
                let (mut p, mut len) = (ptr::null(), 0usize);
                if !check(
                    c2rs_tensor_string_at(t, i, &mut p, &mut len),
                    "c2rs_tensor_string_at",
                    Oom::Finding,
                ) {
                    finding(
                        "c2rs_tensor_string_at",
                        &format!("index {i} < numel refused"),
                    );
                }
                c.strings.push(if len == 0 {
                    &[]
                } else {
                    // SAFETY: element `i` owns `len` bytes at `p` while the tensor lives.
                    unsafe { std::slice::from_raw_parts(p, len) }
                });
            }
        }
    }
    c
}

/// Whether two live tensors hold the same dtype, dims and elements (bytes compared as bytes,
/// so NaNs compare by their bits); else what differs.
fn same_tensor(a: *const c2rs_tensor, b: *const c2rs_tensor) -> Result<(), String> {
    let (a, b) = (content(a), content(b));
    if a.dtype != b.dtype || a.dims != b.dims {
        return Err(format!(
            "dtype {} dims {:?} became dtype {} dims {:?}",
            a.dtype, a.dims, b.dtype, b.dims
        ));
    }
    if a.bytes != b.bytes {
        return Err("the element bytes differ".into());
    }
    if a.strings != b.strings {
        return Err("the STRING elements differ".into());
    }
    Ok(())
}

fn decode_list(bytes: &[u8], call: &str) -> Option<*mut c2rs_tensor_list> {
    let mut list = ptr::null_mut();
    let status = c2rs_tensor_protos_decode(bytes.as_ptr(), bytes.len(), &mut list);
    check_out(status, list, call, Oom::Finding).then_some(list)
}

/// Inspects the list's tensors (borrowed from it) and returns their TensorProtos encoding.
fn encode_list(list: *const c2rs_tensor_list) -> Vec<u8> {
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
        inspect(t);
        tensors.push(t);
    }
    let mut buf = ptr::null_mut();
    let status = c2rs_tensor_protos_encode(tensors.as_ptr(), tensors.len(), &mut buf);
    if !check_out(status, buf, "c2rs_tensor_protos_encode", Oom::Finding) {
        finding("c2rs_tensor_protos_encode", "decoded tensors do not encode");
    }
    take_buffer(buf)
}

/// As [`tensor_round_trip`] for a TensorProtos: the re-encoding must decode to the same
/// tensors, in order.
fn protos_round_trip(data: &[u8]) {
    let Some(list) = decode_list(data, "c2rs_tensor_protos_decode") else {
        return;
    };
    let first = encode_list(list);
    let Some(again) = decode_list(&first, "c2rs_tensor_protos_decode (re-encoded)") else {
        finding(
            "c2rs_tensor_protos_encode",
            "the re-encoded TensorProtos does not decode",
        );
    };
    let n = c2rs_tensor_list_len(list);
    if c2rs_tensor_list_len(again) != n {
        finding(
            "c2rs_tensor_protos_encode",
            "the re-encoded TensorProtos holds another number of tensors",
        );
    }
    for i in 0..n {
        let (mut a, mut b) = (ptr::null(), ptr::null());
        let got_a = c2rs_tensor_list_get(list, i, &mut a);
        let got_b = c2rs_tensor_list_get(again, i, &mut b);
        if !check_out(got_a, a, "c2rs_tensor_list_get", Oom::Finding)
            || !check_out(got_b, b, "c2rs_tensor_list_get", Oom::Finding)
        {
            finding(
                "c2rs_tensor_list_get",
                &format!("index {i} < len {n} refused"),
            );
        }
        if let Err(what) = same_tensor(a, b) {
            finding(
                "c2rs_tensor_protos_encode",
                &format!("the re-encoded TensorProtos decodes to another tensor {i}: {what}"),
            );
        }
    }
    c2rs_tensor_list_free(list);
    c2rs_tensor_list_free(again);
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
