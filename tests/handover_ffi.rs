//! The C calls a host uses to hand tensors and objects to and from caffe2rs without copies:
//! `c2rs_workspace_take_n`, `_fetch_shared_n`, `_fetch_object_n`, `_put_object_n`, the
//! `c2rs_object_*` handles, `c2rs_operator_*` (one operator as a handle, state kept across
//! runs) and `c2rs_operator_schema`. Each: ownership, bad arguments, and the writable-export
//! rule where it applies.

use std::ffi::{CStr, c_char, c_void};

use caffe2rs::ffi::buffer::{c2rs_buffer_data, c2rs_buffer_free, c2rs_buffer_len};
use caffe2rs::ffi::handle::{c2rs_buffer, c2rs_db_reader, c2rs_tensor, c2rs_workspace};
use caffe2rs::ffi::object::*;
use caffe2rs::ffi::operator_handle::*;
use caffe2rs::ffi::status::*;
use caffe2rs::ffi::tensor::*;
use caffe2rs::ffi::tensor_move::*;
use caffe2rs::ffi::version::c2rs_last_error_message;
use caffe2rs::ffi::workspace::*;
use caffe2rs::ffi::workspace_names::*;
use caffe2rs::ffi::workspace_take::*;
use caffe2rs::proto::{Argument, OperatorDef};
use caffe2rs::tensor::dlpack::DLManagedTensorVersioned;
use prost::Message;

fn last_error() -> String {
    // SAFETY: this thread's NUL-terminated last error.
    unsafe { CStr::from_ptr(c2rs_last_error_message()) }
        .to_string_lossy()
        .into_owned()
}

fn new_ws() -> *mut c2rs_workspace {
    let mut ws = std::ptr::null_mut();
    assert_eq!(c2rs_workspace_new(std::ptr::null_mut(), &mut ws), C2RS_OK);
    ws
}

fn n(s: &str) -> (*const c_char, usize) {
    (s.as_ptr().cast(), s.len())
}

fn feed_i32(ws: *mut c2rs_workspace, name: &str, values: &[i32]) -> *const c_void {
    let dims = [values.len() as i64];
    let mut t = std::ptr::null_mut();
    assert_eq!(
        c2rs_tensor_new(C2RS_DTYPE_INT32, dims.as_ptr(), 1, &mut t),
        C2RS_OK
    );
    let mut p: *mut c_void = std::ptr::null_mut();
    assert_eq!(c2rs_tensor_mutable_data(t, &mut p), C2RS_OK);
    // SAFETY: `values.len()` writable i32 of the live tensor.
    unsafe { std::slice::from_raw_parts_mut(p as *mut i32, values.len()) }.copy_from_slice(values);
    let (name, len) = n(name);
    assert_eq!(c2rs_workspace_feed_move_n(ws, name, len, t), C2RS_OK);
    p
}

fn data_of(t: *const c2rs_tensor) -> *const c_void {
    let mut p: *const c_void = std::ptr::null();
    assert_eq!(c2rs_tensor_data(t, &mut p), C2RS_OK);
    p
}

fn blob_type(ws: *mut c2rs_workspace, name: &str) -> String {
    let mut out: *const c_char = std::ptr::null();
    let (name, len) = n(name);
    assert_eq!(c2rs_workspace_blob_type_n(ws, name, len, &mut out), C2RS_OK);
    // SAFETY: a static NUL-terminated type name.
    unsafe { CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned()
}

fn buffer_text(b: *mut c2rs_buffer) -> String {
    // SAFETY: the live buffer's bytes, copied before it is freed.
    let s = unsafe { std::slice::from_raw_parts(c2rs_buffer_data(b), c2rs_buffer_len(b)) };
    let text = String::from_utf8(s.to_vec()).unwrap();
    c2rs_buffer_free(b);
    text
}

#[test]
fn take_moves_the_tensor_out_and_leaves_the_blob_empty() {
    let ws = new_ws();
    let p = feed_i32(ws, "x", &[1, 2, 3]);
    let (name, len) = n("x");
    let mut t = std::ptr::null_mut();
    let mut o = std::ptr::null_mut();
    assert_eq!(
        c2rs_workspace_take_n(ws, name, len, &mut t, &mut o),
        C2RS_OK
    );
    assert!(o.is_null());
    assert_eq!(data_of(t), p, "moved, not copied");
    assert_eq!(blob_type(ws, "x"), "nullptr (uninitialized)");
    // The taken tensor is its storage's only holder: handed over writable.
    let mut m: *mut DLManagedTensorVersioned = std::ptr::null_mut();
    assert_eq!(
        c2rs_tensor_into_dlpack(t, true, &mut m, std::ptr::null_mut()),
        C2RS_OK
    );
    // SAFETY: `m` is a live writable export of 3 int32; deleted once.
    unsafe {
        assert_eq!((*m).dl_tensor.data as *const c_void, p);
        ((*m).deleter.unwrap())(m);
    }
    // An empty blob gives nothing and succeeds.
    assert_eq!(
        c2rs_workspace_take_n(ws, name, len, &mut t, &mut o),
        C2RS_OK
    );
    assert!(t.is_null() && o.is_null());
    c2rs_workspace_free(ws);
}

#[test]
fn take_refuses_bad_arguments_and_non_tensors_without_touching_the_blob() {
    let ws = new_ws();
    let mut t = std::ptr::null_mut();
    let (name, len) = n("missing");
    assert_eq!(
        c2rs_workspace_take_n(ws, name, len, &mut t, std::ptr::null_mut()),
        C2RS_NOT_FOUND
    );
    assert!(
        last_error().contains("Can't find blob: missing"),
        "{}",
        last_error()
    );
    assert_eq!(
        c2rs_workspace_take_n(
            std::ptr::null_mut(),
            name,
            len,
            &mut t,
            std::ptr::null_mut()
        ),
        C2RS_INVALID_ARGUMENT
    );
    assert_eq!(
        c2rs_workspace_take_n(ws, name, len, std::ptr::null_mut(), std::ptr::null_mut()),
        C2RS_INVALID_ARGUMENT
    );
    let bad = b"\xff";
    assert_eq!(
        c2rs_workspace_take_n(ws, bad.as_ptr().cast(), 1, &mut t, std::ptr::null_mut()),
        C2RS_INVALID_ARGUMENT
    );
    let (s, slen) = n("s");
    assert_eq!(
        c2rs_workspace_feed_string_n(ws, s, slen, b"abc".as_ptr(), 3),
        C2RS_OK
    );
    assert_eq!(
        c2rs_workspace_take_n(ws, s, slen, &mut t, std::ptr::null_mut()),
        C2RS_TYPE_MISMATCH
    );
    assert_eq!(blob_type(ws, "s"), "std::string", "untouched");
    // With `object`, any content moves out.
    let mut o = std::ptr::null_mut();
    assert_eq!(c2rs_workspace_take_n(ws, s, slen, &mut t, &mut o), C2RS_OK);
    assert!(t.is_null() && !o.is_null());
    let (mut p, mut l) = (std::ptr::null(), 0usize);
    assert_eq!(c2rs_object_bytes(o, &mut p, &mut l), C2RS_OK);
    // SAFETY: `l` bytes owned by the live object.
    assert_eq!(unsafe { std::slice::from_raw_parts(p, l) }, b"abc");
    assert_eq!(blob_type(ws, "s"), "nullptr (uninitialized)");
    c2rs_object_free(o);
    c2rs_workspace_free(ws);
}

#[test]
fn a_shared_fetch_copies_nothing_and_never_changes() {
    let ws = new_ws();
    let p = feed_i32(ws, "x", &[5, 6]);
    let (name, len) = n("x");
    let mut snap = std::ptr::null_mut();
    assert_eq!(
        c2rs_workspace_fetch_shared_n(ws, name, len, &mut snap),
        C2RS_OK
    );
    assert_eq!(data_of(snap), p, "the blob's own storage");
    let mut in_place = true;
    assert_eq!(c2rs_tensor_writes_in_place(snap, &mut in_place), C2RS_OK);
    assert!(!in_place, "shared with the blob");
    // A shared snapshot is exported read-only, never writable.
    let mut m: *mut DLManagedTensorVersioned = std::ptr::null_mut();
    assert_eq!(
        c2rs_tensor_into_dlpack(snap, true, &mut m, std::ptr::null_mut()),
        C2RS_ENFORCE_NOT_MET
    );
    // Feeding the blob again does not change the snapshot; it survives the workspace.
    feed_i32(ws, "x", &[7, 8]);
    c2rs_workspace_free(ws);
    // SAFETY: two readable i32 of the live snapshot.
    assert_eq!(
        unsafe { std::slice::from_raw_parts(data_of(snap) as *const i32, 2) },
        &[5, 6]
    );
    c2rs_tensor_free(snap);
    let ws = new_ws();
    assert_eq!(
        c2rs_workspace_fetch_shared_n(ws, name, len, &mut snap),
        C2RS_NOT_FOUND
    );
    assert_eq!(
        c2rs_workspace_fetch_shared_n(ws, name, len, std::ptr::null_mut()),
        C2RS_INVALID_ARGUMENT
    );
    let (s, slen) = n("s");
    assert_eq!(
        c2rs_workspace_feed_string_n(ws, s, slen, b"a".as_ptr(), 1),
        C2RS_OK
    );
    assert_eq!(
        c2rs_workspace_fetch_shared_n(ws, s, slen, &mut snap),
        C2RS_TYPE_MISMATCH
    );
    c2rs_workspace_free(ws);
}

fn op_bytes(ty: &str, inputs: &[&str], outputs: &[&str], args: Vec<Argument>) -> Vec<u8> {
    OperatorDef {
        r#type: Some(ty.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        arg: args,
        ..Default::default()
    }
    .encode_to_vec()
}

fn int_arg(name: &str, v: i64) -> Argument {
    Argument {
        name: Some(name.into()),
        i: Some(v),
        ..Default::default()
    }
}

#[test]
fn objects_carry_a_queue_between_workspaces_by_reference() {
    let a = new_ws();
    let b = new_ws();
    let create = op_bytes(
        "CreateBlobsQueue",
        &[],
        &["q"],
        vec![int_arg("capacity", 2)],
    );
    assert_eq!(
        c2rs_workspace_run_operator_once(a, create.as_ptr(), create.len()),
        C2RS_OK
    );
    let (q, qlen) = n("q");
    let mut obj = std::ptr::null_mut();
    assert_eq!(c2rs_workspace_fetch_object_n(a, q, qlen, &mut obj), C2RS_OK);
    // SAFETY: a static NUL-terminated name.
    let ty = unsafe { CStr::from_ptr(c2rs_object_type_name(obj)) };
    assert_eq!(ty.to_str().unwrap(), blob_type(a, "q"));
    assert_eq!(c2rs_workspace_put_object_n(b, q, qlen, obj), C2RS_OK);
    let mut again = std::ptr::null_mut();
    assert_eq!(
        c2rs_workspace_fetch_object_n(b, q, qlen, &mut again),
        C2RS_OK
    );
    let (mut id1, mut id2) = (std::ptr::null(), std::ptr::null());
    assert_eq!(c2rs_object_id(obj, &mut id1), C2RS_OK);
    assert_eq!(c2rs_object_id(again, &mut id2), C2RS_OK);
    assert_eq!(id1, id2, "the same queue, not a copy");
    // Enqueue in `a`, dequeue in `b`: one queue, no copy of the tensor.
    let p = feed_i32(a, "x", &[42]);
    let enq = op_bytes("EnqueueBlobs", &["q", "x"], &["x"], vec![]);
    assert_eq!(
        c2rs_workspace_run_operator_once(a, enq.as_ptr(), enq.len()),
        C2RS_OK
    );
    let deq = op_bytes("DequeueBlobs", &["q"], &["y"], vec![]);
    assert_eq!(
        c2rs_workspace_run_operator_once(b, deq.as_ptr(), deq.len()),
        C2RS_OK
    );
    let (y, ylen) = n("y");
    let mut t = std::ptr::null_mut();
    assert_eq!(
        c2rs_workspace_take_n(b, y, ylen, &mut t, std::ptr::null_mut()),
        C2RS_OK
    );
    assert_eq!(data_of(t), p);
    c2rs_tensor_free(t);
    // Bad arguments.
    assert!(c2rs_object_type_name(std::ptr::null()).is_null());
    assert_eq!(
        c2rs_workspace_put_object_n(b, q, qlen, std::ptr::null()),
        C2RS_INVALID_ARGUMENT
    );
    let (x, xlen) = n("y");
    assert_eq!(
        c2rs_workspace_fetch_object_n(b, x, xlen, &mut again),
        C2RS_TYPE_MISMATCH,
        "an empty blob holds no object"
    );
    let mut reader: *mut c2rs_db_reader = std::ptr::null_mut();
    assert_eq!(c2rs_object_db_reader(obj, &mut reader), C2RS_TYPE_MISMATCH);
    assert!(
        last_error().contains("not a std::unique_ptr<caffe2::db::DBReader>"),
        "{}",
        last_error()
    );
    let (mut bp, mut bl) = (std::ptr::null(), 0usize);
    assert_eq!(c2rs_object_bytes(obj, &mut bp, &mut bl), C2RS_TYPE_MISMATCH);
    c2rs_object_free(obj);
    c2rs_object_free(std::ptr::null_mut());
    c2rs_workspace_free(a);
    c2rs_workspace_free(b);
}

#[test]
fn byte_objects_round_trip_and_clone_copies() {
    let mut o = std::ptr::null_mut();
    assert_eq!(c2rs_object_from_bytes(b"a\0b".as_ptr(), 3, &mut o), C2RS_OK);
    let mut c = std::ptr::null_mut();
    assert_eq!(c2rs_object_clone(o, &mut c), C2RS_OK);
    c2rs_object_free(o);
    let (mut p, mut l) = (std::ptr::null(), 0usize);
    assert_eq!(c2rs_object_bytes(c, &mut p, &mut l), C2RS_OK);
    // SAFETY: `l` bytes owned by the live clone.
    assert_eq!(unsafe { std::slice::from_raw_parts(p, l) }, b"a\0b");
    let ws = new_ws();
    let (name, len) = n("s");
    assert_eq!(c2rs_workspace_put_object_n(ws, name, len, c), C2RS_OK);
    assert_eq!(blob_type(ws, "s"), "std::string");
    c2rs_object_free(c);
    assert_eq!(
        c2rs_object_from_bytes(std::ptr::null(), 2, &mut o),
        C2RS_INVALID_ARGUMENT
    );
    assert_eq!(c2rs_object_from_bytes(std::ptr::null(), 0, &mut o), C2RS_OK);
    c2rs_object_free(o);
    c2rs_workspace_free(ws);
}

#[test]
fn an_operator_handle_keeps_its_state_across_runs_and_outlives_its_workspace_handle() {
    let ws = new_ws();
    let create = op_bytes("CreateCounter", &[], &["c"], vec![int_arg("init_count", 2)]);
    assert_eq!(
        c2rs_workspace_run_operator_once(ws, create.as_ptr(), create.len()),
        C2RS_OK
    );
    let def = op_bytes("CountDown", &["c"], &["done"], vec![]);
    let mut op = std::ptr::null_mut();
    assert_eq!(
        c2rs_operator_new(ws, def.as_ptr(), def.len(), &mut op),
        C2RS_OK
    );
    let done = |ws| {
        let (d, dlen) = n("done");
        let mut t = std::ptr::null_mut();
        assert_eq!(c2rs_workspace_fetch_n(ws, d, dlen, &mut t), C2RS_OK);
        // SAFETY: one readable bool byte of the live tensor.
        let v = unsafe { *(data_of(t) as *const u8) } != 0;
        c2rs_tensor_free(t);
        v
    };
    assert_eq!(c2rs_operator_run(op), C2RS_OK);
    assert!(!done(ws));
    assert_eq!(c2rs_operator_run(op), C2RS_OK);
    assert!(!done(ws));
    assert_eq!(c2rs_operator_run(op), C2RS_OK);
    assert!(done(ws));
    // The handle keeps the workspace alive.
    c2rs_workspace_free(ws);
    assert_eq!(c2rs_operator_run(op), C2RS_OK);
    c2rs_operator_cancel(op);
    c2rs_operator_cancel(std::ptr::null());
    c2rs_operator_free(op);
    c2rs_operator_free(std::ptr::null_mut());
}

#[test]
fn operator_handles_report_creation_and_run_errors_with_the_operator() {
    let ws = new_ws();
    let mut op = std::ptr::null_mut();
    let def = op_bytes("NoSuchOp", &[], &[], vec![]);
    assert_eq!(
        c2rs_operator_new(ws, def.as_ptr(), def.len(), &mut op),
        C2RS_NOT_FOUND
    );
    assert!(last_error().contains("NoSuchOp"), "{}", last_error());
    let def = op_bytes("CountDown", &["missing"], &["d"], vec![]);
    assert_eq!(
        c2rs_operator_new(ws, def.as_ptr(), def.len(), &mut op),
        C2RS_ENFORCE_NOT_MET
    );
    assert!(
        last_error().contains("Encountered a non-existing input blob: missing"),
        "{}",
        last_error()
    );
    assert_eq!(
        c2rs_operator_new(ws, b"\xff\xff".as_ptr(), 2, &mut op),
        C2RS_PARSE_ERROR
    );
    assert_eq!(
        c2rs_operator_new(std::ptr::null_mut(), def.as_ptr(), def.len(), &mut op),
        C2RS_INVALID_ARGUMENT
    );
    assert_eq!(c2rs_operator_run(std::ptr::null()), C2RS_INVALID_ARGUMENT);
    // A run failure names the operator: CountDown on a blob holding a tensor.
    feed_i32(ws, "c", &[1]);
    let def = op_bytes("CountDown", &["c"], &["d"], vec![]);
    assert_eq!(
        c2rs_operator_new(ws, def.as_ptr(), def.len(), &mut op),
        C2RS_OK
    );
    assert_eq!(c2rs_operator_run(op), C2RS_TYPE_MISMATCH);
    assert!(
        last_error().starts_with("c2rs_operator_run: op (CountDown): "),
        "{}",
        last_error()
    );
    c2rs_operator_free(op);
    c2rs_workspace_free(ws);
}

#[test]
fn the_schema_json_describes_arguments_with_type_and_default() {
    let mut json = std::ptr::null_mut();
    assert_eq!(
        c2rs_operator_schema(c"TensorProtosDBInput".as_ptr(), &mut json),
        C2RS_OK
    );
    let v: serde_json::Value = serde_json::from_str(&buffer_text(json)).unwrap();
    assert_eq!(v["type"], "TensorProtosDBInput");
    assert_eq!(v["has_schema"], true);
    assert_eq!(v["inputs"]["min"], 1);
    assert_eq!(v["inputs"]["max"], 1);
    assert!(v["outputs"]["max"].is_null(), "unbounded");
    let args = v["args"].as_array().unwrap();
    let batch = args.iter().find(|a| a["name"] == "batch_size").unwrap();
    assert_eq!(batch["type"], "int");
    assert_eq!(batch["default"], "0");
    assert_eq!(batch["required"], false);
    assert!(!batch["doc"].as_str().unwrap().is_empty());
    assert!(v["devices"].as_array().unwrap().contains(&"CPU".into()));
    assert_eq!(
        c2rs_operator_schema(c"NoSuchOp".as_ptr(), &mut json),
        C2RS_NOT_FOUND
    );
    assert!(json.is_null());
    assert_eq!(
        c2rs_operator_schema(std::ptr::null(), &mut json),
        C2RS_INVALID_ARGUMENT
    );
    assert_eq!(
        c2rs_operator_schema(c"Save".as_ptr(), std::ptr::null_mut()),
        C2RS_INVALID_ARGUMENT
    );
}
