//! Every golden TensorProto (written by Google's protobuf runtime, tests/data/golden/tensors)
//! decodes through the C ABI to the dtype, dims and values of its manifest entry, and
//! re-encodes to bytes that decode to the same tensor.

use std::ffi::CStr;
use std::path::PathBuf;

use caffe2rs::ffi::buffer::{c2rs_buffer_data, c2rs_buffer_free, c2rs_buffer_len};
use caffe2rs::ffi::handle::{c2rs_buffer, c2rs_tensor, c2rs_tensor_list};
use caffe2rs::ffi::status::{C2RS_OK, C2RS_PARSE_ERROR};
use caffe2rs::ffi::tensor::*;
use caffe2rs::ffi::version::c2rs_last_error_message;
use serde_json::Value;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden/tensors")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(golden_dir().join("manifest.json"))
        .expect("golden manifest present");
    serde_json::from_str(&text).expect("manifest is JSON")
}

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string owned by this thread.
    unsafe { CStr::from_ptr(c2rs_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

fn decode(bytes: &[u8]) -> *mut c2rs_tensor {
    let mut t: *mut c2rs_tensor = std::ptr::null_mut();
    let status = c2rs_tensor_from_proto(bytes.as_ptr(), bytes.len(), &mut t);
    assert_eq!(status, C2RS_OK, "{}", last_error());
    t
}

fn encode(t: *const c2rs_tensor) -> Vec<u8> {
    let mut buf: *mut c2rs_buffer = std::ptr::null_mut();
    assert_eq!(c2rs_tensor_to_proto(t, &mut buf), C2RS_OK);
    let len = c2rs_buffer_len(buf);
    // SAFETY: the buffer is live and holds `len` bytes.
    let bytes = if len == 0 {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(c2rs_buffer_data(buf), len) }.to_vec()
    };
    c2rs_buffer_free(buf);
    bytes
}

fn dtype_number(name: &str) -> i32 {
    match name {
        "FLOAT" => C2RS_DTYPE_FLOAT,
        "INT32" => C2RS_DTYPE_INT32,
        "BYTE" => C2RS_DTYPE_BYTE,
        "STRING" => C2RS_DTYPE_STRING,
        "BOOL" => C2RS_DTYPE_BOOL,
        "UINT8" => C2RS_DTYPE_UINT8,
        "INT8" => C2RS_DTYPE_INT8,
        "UINT16" => C2RS_DTYPE_UINT16,
        "INT16" => C2RS_DTYPE_INT16,
        "INT64" => C2RS_DTYPE_INT64,
        "FLOAT16" => C2RS_DTYPE_FLOAT16,
        "DOUBLE" => C2RS_DTYPE_DOUBLE,
        other => panic!("manifest names an unknown dtype {other}"),
    }
}

/// IEEE half → f32, exact for every finite half.
fn half_to_f32(bits: u16) -> f32 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f32::from(bits & 0x3ff);
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 => {
            if frac == 0.0 {
                sign * f32::INFINITY
            } else {
                f32::NAN
            }
        }
        _ => sign * (1.0 + frac / 1024.0) * 2f32.powi(exp - 15),
    }
}

/// Element `i` of a non-string tensor as an exact JSON-comparable value.
fn element(t: *const c2rs_tensor, dtype: i32, i: usize) -> Value {
    let mut data: *const std::ffi::c_void = std::ptr::null();
    assert_eq!(c2rs_tensor_data(t, &mut data), C2RS_OK);
    // SAFETY: `i` < numel and `data` points to numel elements of `dtype`.
    unsafe {
        match dtype {
            C2RS_DTYPE_FLOAT => Value::from(f64::from(*(data as *const f32).add(i))),
            C2RS_DTYPE_DOUBLE => Value::from(*(data as *const f64).add(i)),
            C2RS_DTYPE_INT32 => Value::from(*(data as *const i32).add(i)),
            C2RS_DTYPE_INT64 => Value::from(*(data as *const i64).add(i)),
            C2RS_DTYPE_BOOL => Value::from(*(data as *const u8).add(i) != 0),
            C2RS_DTYPE_UINT8 | C2RS_DTYPE_BYTE => Value::from(*(data as *const u8).add(i)),
            C2RS_DTYPE_INT8 => Value::from(*(data as *const i8).add(i)),
            C2RS_DTYPE_UINT16 => Value::from(*(data as *const u16).add(i)),
            C2RS_DTYPE_INT16 => Value::from(*(data as *const i16).add(i)),
            C2RS_DTYPE_FLOAT16 => Value::from(f64::from(half_to_f32(*(data as *const u16).add(i)))),
            other => panic!("not a numeric dtype {other}"),
        }
    }
}

fn string_at(t: *const c2rs_tensor, i: usize) -> Vec<u8> {
    let (mut ptr, mut len) = (std::ptr::null(), 0usize);
    assert_eq!(c2rs_tensor_string_at(t, i, &mut ptr, &mut len), C2RS_OK);
    assert!(!ptr.is_null());
    // SAFETY: the library returned `len` readable bytes at `ptr`.
    unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
}

/// All values of `t` in row-major order, as the manifest writes them.
fn values(t: *const c2rs_tensor) -> Vec<Value> {
    let mut dtype = 0;
    let mut numel = 0i64;
    assert_eq!(c2rs_tensor_dtype(t, &mut dtype), C2RS_OK);
    assert_eq!(c2rs_tensor_numel(t, &mut numel), C2RS_OK);
    (0..numel as usize)
        .map(|i| {
            if dtype == C2RS_DTYPE_STRING {
                Value::from(String::from_utf8(string_at(t, i)).expect("golden strings are UTF-8"))
            } else {
                element(t, dtype, i)
            }
        })
        .collect()
}

fn dims(t: *const c2rs_tensor) -> Vec<i64> {
    let (mut ptr, mut n) = (std::ptr::null(), 0usize);
    assert_eq!(c2rs_tensor_dims(t, &mut ptr, &mut n), C2RS_OK);
    if n == 0 {
        return Vec::new();
    }
    // SAFETY: the library returned `n` dims owned by the live tensor.
    unsafe { std::slice::from_raw_parts(ptr, n) }.to_vec()
}

/// Checks a decoded tensor against its manifest entry; a segment entry lists only the
/// segment's values, and the rest of the tensor must be zero.
fn check_against_entry(t: *const c2rs_tensor, entry: &Value) {
    let name = entry["name"].as_str().unwrap_or("?");
    let mut dtype = 0;
    assert_eq!(c2rs_tensor_dtype(t, &mut dtype), C2RS_OK);
    assert_eq!(
        dtype,
        dtype_number(entry["data_type"].as_str().unwrap_or("")),
        "{name}: dtype"
    );
    let expected_dims: Vec<i64> = entry["dims"]
        .as_array()
        .expect("dims")
        .iter()
        .map(|d| d.as_i64().expect("int dim"))
        .collect();
    assert_eq!(dims(t), expected_dims, "{name}: dims");
    let expected = entry["values"].as_array().expect("values").clone();
    let got = values(t);
    match entry.get("segment").and_then(Value::as_array) {
        None => assert_eq!(got, expected, "{name}: values"),
        Some(seg) => {
            let (b, e) = (
                seg[0].as_u64().unwrap_or(0) as usize,
                seg[1].as_u64().unwrap_or(0) as usize,
            );
            assert_eq!(&got[b..e], expected.as_slice(), "{name}: segment values");
            assert!(
                got[..b]
                    .iter()
                    .chain(&got[e..])
                    .all(|v| v.as_f64() == Some(0.0)),
                "{name}: outside the segment is zero"
            );
        }
    }
}

#[test]
fn every_golden_tensor_decodes_to_its_manifest_values_and_round_trips() {
    let manifest = manifest();
    let entries = manifest["tensors"].as_array().expect("tensors list");
    assert!(entries.len() >= 15, "the manifest lists every dtype");
    for entry in entries {
        let file = entry["file"].as_str().expect("file");
        let bytes = std::fs::read(golden_dir().join(file)).expect("golden file readable");
        let t = decode(&bytes);
        check_against_entry(t, entry);
        let again = decode(&encode(t));
        check_against_entry(again, entry);
        assert_eq!(values(again), values(t), "{file}: re-encoded values");
        c2rs_tensor_free(again);
        c2rs_tensor_free(t);
    }
}

#[test]
fn golden_tensor_protos_hold_every_case_but_the_segment_in_order() {
    let manifest = manifest();
    let expected: Vec<&Value> = manifest["tensors"]
        .as_array()
        .expect("tensors")
        .iter()
        .filter(|e| e.get("segment").is_none())
        .collect();
    let bytes = std::fs::read(golden_dir().join("all.tensorprotos.pb")).expect("golden file");
    let mut list: *mut c2rs_tensor_list = std::ptr::null_mut();
    assert_eq!(
        c2rs_tensor_protos_decode(bytes.as_ptr(), bytes.len(), &mut list),
        C2RS_OK,
        "{}",
        last_error()
    );
    assert_eq!(c2rs_tensor_list_len(list), expected.len());
    let mut borrowed: Vec<*const c2rs_tensor> = Vec::new();
    for (i, entry) in expected.iter().enumerate() {
        let mut t: *const c2rs_tensor = std::ptr::null();
        assert_eq!(c2rs_tensor_list_get(list, i, &mut t), C2RS_OK);
        check_against_entry(t, entry);
        borrowed.push(t);
    }
    // Re-encode the whole record and decode it again: same tensors.
    let mut buf: *mut c2rs_buffer = std::ptr::null_mut();
    assert_eq!(
        c2rs_tensor_protos_encode(borrowed.as_ptr(), borrowed.len(), &mut buf),
        C2RS_OK
    );
    let mut list2: *mut c2rs_tensor_list = std::ptr::null_mut();
    assert_eq!(
        c2rs_tensor_protos_decode(c2rs_buffer_data(buf), c2rs_buffer_len(buf), &mut list2),
        C2RS_OK
    );
    for (i, entry) in expected.iter().enumerate() {
        let mut t: *const c2rs_tensor = std::ptr::null();
        assert_eq!(c2rs_tensor_list_get(list2, i, &mut t), C2RS_OK);
        check_against_entry(t, entry);
    }
    c2rs_buffer_free(buf);
    c2rs_tensor_list_free(list2);
    c2rs_tensor_list_free(list);
}

#[test]
fn every_truncation_of_a_golden_file_is_decoded_or_rejected_cleanly() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("golden dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pb"))
        .collect();
    files.sort();
    for path in files {
        let bytes = std::fs::read(&path).expect("readable");
        for cut in 0..bytes.len() {
            let mut t: *mut c2rs_tensor = std::ptr::null_mut();
            let status = c2rs_tensor_from_proto(bytes.as_ptr(), cut, &mut t);
            if status == C2RS_OK {
                assert!(!t.is_null());
                c2rs_tensor_free(t);
            } else {
                assert!(t.is_null(), "out stays NULL on failure");
                assert!(
                    last_error().starts_with("c2rs_tensor_from_proto: "),
                    "{}",
                    last_error()
                );
            }
        }
    }
}

#[test]
fn garbage_bytes_are_a_parse_error_with_a_message() {
    let garbage: [&[u8]; 4] = [
        &[0xff, 0xff, 0xff],
        &[0x0a, 0x05, 0x01],
        &[0x08],
        &[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f],
    ];
    for bytes in garbage {
        let mut t: *mut c2rs_tensor = std::ptr::null_mut();
        assert_eq!(
            c2rs_tensor_from_proto(bytes.as_ptr(), bytes.len(), &mut t),
            C2RS_PARSE_ERROR,
            "{bytes:?}"
        );
        assert!(t.is_null());
        assert!(last_error().contains("TensorProto"), "{}", last_error());
    }
}
